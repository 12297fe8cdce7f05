"""Bearer-token authentication for /api/v1/ (the OpenAPI document stays public).

401 without a token or with an unknown one (with ``WWW-Authenticate: Bearer``),
403 with a revoked one. The token is looked up on every request, so
``tamizdat tokens revoke`` takes effect at once, even while the server runs.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from . import tokens
from .api_errors import ApiError
from .appkeys import ORIGIN

PROTECTED = "/api/v1/"
PUBLIC = frozenset({"/api/v1/openapi.json"})
TOKEN_NAME = web.RequestKey("token_name", str)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tamizdat"'}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PROTECTED) or request.path in PUBLIC:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>", headers=_CHALLENGE)
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid-token", "the Authorization header must be 'Bearer <token>'", headers=_CHALLENGE)
    async with request.app[ORIGIN].store.tx(write=False) as tx:
        verdict, name = await tokens.check(tx, token.strip())
    if verdict is tokens.Check.UNKNOWN:
        raise ApiError(401, "invalid-token", "the token is not valid", headers=_CHALLENGE)
    if verdict is tokens.Check.REVOKED:
        raise ApiError(403, "token-revoked", "the token was revoked")
    assert name is not None
    request[TOKEN_NAME] = name
    return await handler(request)
