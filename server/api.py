"""The publishing API under /api/v1/ (docs/api.md; OpenAPI at /api/v1/openapi.json).

Handlers parse the request, call one method of :class:`~tamizdat.server.origin.Origin`
and answer JSON. Authentication (server.auth) and the JSON error shape
(server.api_errors) are middlewares.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tamizdat.bundles.media import MAX_IMAGE_BYTES
from tamizdat.keys import strictjson

from .api_errors import ApiError
from .api_schema import ApiArticle, parse_api_article, parse_edition, parse_notice_body, parse_reason
from .appkeys import ORIGIN
from .openapi import openapi_document
from .origin import MEDIA_TYPES, Origin

PREFIX = "/api/v1"
ID = "{id:[A-Za-z0-9][A-Za-z0-9._-]{0,127}}"
MEDIA_ID = "{id:[0-9a-f]{64}}"
MAX_LIMIT = 1000
INLINE_JSON = 64 * 1024


def _origin(request: web.Request) -> Origin:
    return request.app[ORIGIN]


def _json(data: Any, status: int = 200, location: str | None = None) -> web.Response:
    resp = web.json_response(data, status=status, dumps=lambda v: strictjson.dumps(v).decode("utf-8"))
    resp.headers["Cache-Control"] = "no-store"
    if location:
        resp.headers["Location"] = location
    return resp


async def read_json(request: web.Request) -> Any:
    """The request body as strict JSON (415 if not declared JSON, 413 over the limit, 400 if malformed)."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported-media-type", "send the body as application/json")
    body = await request.read()
    if not body:
        raise ApiError(400, "bad-json", "the request body is empty")
    if len(body) > INLINE_JSON:  # a big document is CPU work: parse it off the event loop
        return await asyncio.to_thread(strictjson.loads, body)
    return strictjson.loads(body)


async def _parse_article(request: web.Request, path_id: str | None = None) -> ApiArticle:
    """Check an article body; a big one (nh3 sanitising is CPU work) off the event loop."""
    doc = await read_json(request)
    if (request.content_length or 0) > INLINE_JSON:
        return await asyncio.to_thread(parse_api_article, doc, path_id=path_id)
    return parse_api_article(doc, path_id=path_id)


MAX_OFFSET = 2**53 - 1


def _page(request: web.Request) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "bad-query", "limit and offset must be integers") from None
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, "bad-query", f"limit must be 1 to {MAX_LIMIT}, offset 0 to {MAX_OFFSET}")
    return limit, offset


# -- meta ---------------------------------------------------------------------
async def get_openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())


async def get_status(request: web.Request) -> web.Response:
    return _json(await _origin(request).status())


# -- articles -----------------------------------------------------------------
async def list_articles(request: web.Request) -> web.Response:
    limit, offset = _page(request)
    state = request.query.get("state")
    if state not in (None, "active", "retracted"):
        raise ApiError(400, "bad-query", "state must be 'active' or 'retracted'")
    return _json(await _origin(request).list_articles(limit=limit, offset=offset, state=state))


async def create_article(request: web.Request) -> web.Response:
    art = await _parse_article(request)
    out = await _origin(request).create_article(art)
    return _json(out, 201, f"{PREFIX}/articles/{out['id']}")


async def get_article(request: web.Request) -> web.Response:
    return _json(await _origin(request).get_article(request.match_info["id"]))


async def put_article(request: web.Request) -> web.Response:
    art = await _parse_article(request, path_id=request.match_info["id"])
    out, changed = await _origin(request).update_article(art)
    return _json({**out, "changed": changed})


async def retract_article(request: web.Request) -> web.Response:
    reason = parse_reason(await read_json(request))
    return _json(await _origin(request).retract_article(request.match_info["id"], reason))


# -- editions -----------------------------------------------------------------
async def list_editions(request: web.Request) -> web.Response:
    limit, offset = _page(request)
    return _json(await _origin(request).list_editions(limit=limit, offset=offset))


async def create_edition(request: web.Request) -> web.Response:
    req = parse_edition(await read_json(request))
    out = await _origin(request).create_edition(req)
    return _json(out, 201, f"{PREFIX}/editions/{out['id']}")


async def get_edition(request: web.Request) -> web.Response:
    return _json(await _origin(request).get_edition(request.match_info["id"]))


async def retract_edition(request: web.Request) -> web.Response:
    reason = parse_reason(await read_json(request))
    return _json(await _origin(request).retract_edition(request.match_info["id"], reason))


# -- media --------------------------------------------------------------------
async def upload_media(request: web.Request) -> web.Response:
    declared = request.content_type
    if declared not in MEDIA_TYPES:
        raise ApiError(415, "unsupported-media-type", "upload image/jpeg, image/png or image/webp")
    too_big = ApiError(413, "image-too-large", f"an image may be at most {MAX_IMAGE_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_IMAGE_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise too_big
        chunks.append(chunk)
    if not size:
        raise ApiError(400, "empty-body", "the request body is empty")
    info, created = await _origin(request).add_media(declared, b"".join(chunks))
    return _json(info.to_json(), 201 if created else 200, f"{PREFIX}/media/{info.id}")


async def get_media(request: web.Request) -> web.Response:
    return _json((await _origin(request).get_media(request.match_info["id"])).to_json())


# -- notices ------------------------------------------------------------------
async def list_notices(request: web.Request) -> web.Response:
    return _json(await _origin(request).list_notices())


async def create_notice(request: web.Request) -> web.Response:
    notice = parse_notice_body(await read_json(request))
    out, _ = await _origin(request).put_notice(notice, create_only=True)
    return _json(out, 201, f"{PREFIX}/notices/{out['id']}")


async def get_notice(request: web.Request) -> web.Response:
    return _json(await _origin(request).get_notice(request.match_info["id"]))


async def put_notice(request: web.Request) -> web.Response:
    notice = parse_notice_body(await read_json(request), path_id=request.match_info["id"])
    out, created = await _origin(request).put_notice(notice, create_only=False)
    return _json(out, 201 if created else 200, f"{PREFIX}/notices/{out['id']}" if created else None)


async def delete_notice(request: web.Request) -> web.Response:
    await _origin(request).delete_notice(request.match_info["id"])
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


def routes() -> list[web.RouteDef]:
    """Every API route; the OpenAPI document lists exactly these (a test checks)."""
    return [
        web.get(f"{PREFIX}/openapi.json", get_openapi, allow_head=False),
        web.get(f"{PREFIX}/status", get_status, allow_head=False),
        web.get(f"{PREFIX}/articles", list_articles, allow_head=False),
        web.post(f"{PREFIX}/articles", create_article),
        web.get(f"{PREFIX}/articles/{ID}", get_article, allow_head=False),
        web.put(f"{PREFIX}/articles/{ID}", put_article),
        web.post(f"{PREFIX}/articles/{ID}/retraction", retract_article),
        web.get(f"{PREFIX}/editions", list_editions, allow_head=False),
        web.post(f"{PREFIX}/editions", create_edition),
        web.get(f"{PREFIX}/editions/{ID}", get_edition, allow_head=False),
        web.post(f"{PREFIX}/editions/{ID}/retraction", retract_edition),
        web.post(f"{PREFIX}/media", upload_media),
        web.get(f"{PREFIX}/media/{MEDIA_ID}", get_media, allow_head=False),
        web.get(f"{PREFIX}/notices", list_notices, allow_head=False),
        web.post(f"{PREFIX}/notices", create_notice),
        web.get(f"{PREFIX}/notices/{ID}", get_notice, allow_head=False),
        web.put(f"{PREFIX}/notices/{ID}", put_notice),
        web.delete(f"{PREFIX}/notices/{ID}", delete_notice),
    ]
