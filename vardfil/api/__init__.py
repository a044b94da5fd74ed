"""The journal systems' API (``/api/v1``): a file in, its kvittens out, for one unit per token.

The contract is fixed (the region's journal systems call it exactly): ``POST /filer`` with
``Authorization: Bearer TOKEN`` and a multipart field ``file`` answers 200 with the kvittens JSON
(FILSPECIFIKATION.md section 6.4); ``?test=true`` judges the file and records nothing; 401 without
a valid token, 403 when the file name's HSA-id is not the token's unit, 413 past 200 MB; every
error is ``{"error": ..., "detail": ...}``. ``GET /kvittenser/{receipt_id}`` and its
``/findings.csv`` answer only for the token's own unit (404 otherwise). OpenAPI:
``/api/v1/openapi.json``.
"""

from vardfil.api.routes import create_api

__all__ = ["create_api"]
