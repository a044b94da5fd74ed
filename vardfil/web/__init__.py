"""What the two HTTP front doors (the portal and the API) share: the ASGI middleware (arrival
stamp, body limit, security headers) and the streaming upload reader."""
