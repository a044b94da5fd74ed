"""The web portal (FastAPI, server-rendered Jinja2): ``vardfil serve``."""
