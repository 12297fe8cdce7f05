"""API errors: always ``{"error": {"code": "...", "message": "..."}}``, never HTML or a traceback.

:class:`ApiError` carries an HTTP status and a stable code. The middleware
turns it, aiohttp's own HTTP errors (404, 405, 413 ...), tamizdat errors
(schema violations are 422, malformed JSON 400) and anything unexpected (500,
logged here, never shown) into that JSON shape for every path under /api/.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tamizdat.errors import FormatError, RejectedError, TamizdatError, UsageError

log = logging.getLogger("tamizdat.server.api")

API_PREFIX = "/api/"
STATUS_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    500: "internal",
    503: "unavailable",
}
# tamizdat error codes that are not plain schema violations
_CODE_STATUS = {
    "image-too-large": 413,
    "no-signing-key": 503,
    "no-keys": 503,
    "bad-keydir": 503,
}


class ApiError(Exception):
    """An error answer: HTTP ``status``, stable ``code``, human ``message``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    resp = web.json_response(error_body(code, message), status=status, headers=headers)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def from_tamizdat(err: TamizdatError) -> ApiError:
    status = _CODE_STATUS.get(err.code)
    if status is None:
        if isinstance(err, FormatError) and err.code.startswith("json-"):
            status = 400
        elif isinstance(err, (RejectedError, UsageError)):
            status = 422
        else:
            status = 500
    return ApiError(status, err.code, err.message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for every /api/ path."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.code, err.message, err.headers)
    except TamizdatError as err:
        api = from_tamizdat(err)
        return error_response(api.status, api.code, api.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = STATUS_CODES.get(exc.status, "error")
        message = exc.reason
        if exc.status == 413:
            message = "the request body is too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, message, headers)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error (logged on the server)")
