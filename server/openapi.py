"""The OpenAPI 3.1 document of the publishing API, served at /api/v1/openapi.json.

Written by hand to match server.api exactly: a test checks that every route
is described here and every path here is routed. Schemas are closed
(``additionalProperties: false``) where the server rejects unknown fields.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from tamizdat import __version__

ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
HEX64 = "^[0-9a-f]{64}$"
TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
LANG = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _s(max_len: int, min_len: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len}


_TIME = {"type": "string", "pattern": TIME, "examples": ["2026-01-31T12:00:00Z"]}
_NULLABLE_TIME = {"type": ["string", "null"], "pattern": TIME}
_RETRACTED = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["at", "reason"],
            "properties": {"at": _TIME, "reason": {"type": "string"}},
            "additionalProperties": False,
        },
    ]
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "description": "Stable, kebab-case reason (docs/api.md lists them)."},
                    "message": {"type": "string"},
                },
            }
        },
    },
    "Image": {
        "type": "object",
        "required": ["media"],
        "additionalProperties": False,
        "properties": {
            "media": {"type": "string", "pattern": HEX64, "description": "Id returned by POST /api/v1/media."},
            "caption": _s(2000),
            "alt": _s(1000),
            "credit": _s(500),
        },
    },
    "Section": {
        "type": "object",
        "required": ["heading", "body"],
        "additionalProperties": False,
        "properties": {"heading": _s(500), "body": {**_s(1_000_000, 0), "description": "Markdown."}},
    },
    "ArticleInput": {
        "type": "object",
        "description": "One article in the `bundle build` schema (docs/format.md); images by media id; "
        "exactly one of body (Markdown) and body_html (sanitised with nh3).",
        "required": ["id", "lang", "title", "published"],
        "oneOf": [{"required": ["body"]}, {"required": ["body_html"]}],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "lang": {"type": "string", "pattern": LANG, "maxLength": 35},
            "title": _s(500),
            "body": {**_s(1_000_000, 0), "description": "Markdown (raw HTML is not rendered)."},
            "body_html": {**_s(1_000_000, 0), "description": "HTML; sanitised to a short allow-list."},
            "published": _TIME,
            "updated": _TIME,
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "Optional: the version this request must create (else 409 version-conflict).",
            },
            "summary": _s(2000),
            "byline": _s(500),
            "sections": {"type": "array", "maxItems": 100, "items": _ref("Section")},
            "images": {"type": "array", "maxItems": 50, "items": _ref("Image")},
            "notices": {
                "type": "array",
                "maxItems": 64,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": ID_PATTERN},
                "description": "Ids of notices (see /api/v1/notices) this article carries.",
            },
        },
    },
    "Version": {
        "type": "object",
        "required": ["version", "created", "bundle_id", "content_sha256", "state"],
        "additionalProperties": False,
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "created": _TIME,
            "bundle_id": {"type": "string", "pattern": HEX64},
            "content_sha256": {"type": "string", "pattern": HEX64},
            "state": {"enum": ["pending", "published", "superseded", "retracted"]},
        },
    },
    "ArticleSummary": {
        "type": "object",
        "required": [
            "id",
            "state",
            "created",
            "updated",
            "current_version",
            "title",
            "lang",
            "retracted",
            "versions",
        ],
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "state": {"enum": ["pending", "published", "retracted"]},
            "created": _TIME,
            "updated": _TIME,
            "current_version": {"type": "integer", "minimum": 1},
            "title": {"type": "string"},
            "lang": {"type": "string"},
            "retracted": _RETRACTED,
            "versions": {"type": "array", "items": _ref("Version")},
        },
    },
    "Article": {
        "allOf": [
            _ref("ArticleSummary"),
            {
                "type": "object",
                "required": ["article"],
                "properties": {"article": {"type": "object", "description": "The current version's document."}},
            },
        ]
    },
    "ArticleUpdate": {
        "allOf": [
            _ref("Article"),
            {
                "type": "object",
                "required": ["changed"],
                "properties": {"changed": {"type": "boolean", "description": "False: same content, no new version."}},
            },
        ]
    },
    "ArticleList": {
        "type": "object",
        "required": ["articles", "total", "limit", "offset"],
        "additionalProperties": False,
        "properties": {
            "articles": {"type": "array", "items": _ref("ArticleSummary")},
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "Retraction": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {"reason": {**_s(1000), "description": "Published in the signed index."}},
    },
    "EditionInput": {
        "type": "object",
        "required": ["articles"],
        "additionalProperties": False,
        "properties": {
            "articles": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": ID_PATTERN},
            },
            "id": {"type": "string", "pattern": ID_PATTERN, "description": "Optional; generated if absent."},
            "title": _s(500),
            "lang": {"type": "string", "pattern": LANG, "maxLength": 35, "description": "Language of the contents."},
        },
    },
    "Edition": {
        "type": "object",
        "required": ["id", "created", "title", "lang", "articles", "bundle_id", "state", "retracted"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "created": _TIME,
            "title": {"type": ["string", "null"]},
            "lang": {"type": ["string", "null"]},
            "articles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "version"],
                    "additionalProperties": False,
                    "properties": {"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1}},
                },
            },
            "bundle_id": {"type": "string", "pattern": HEX64},
            "state": {"enum": ["pending", "published", "retracted"]},
            "retracted": _RETRACTED,
        },
    },
    "EditionList": {
        "type": "object",
        "required": ["editions", "total", "limit", "offset"],
        "additionalProperties": False,
        "properties": {
            "editions": {"type": "array", "items": _ref("Edition")},
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "NoticeInput": {
        "type": "object",
        "required": ["regions", "text"],
        "additionalProperties": False,
        "description": "`id` is required on POST; on PUT it defaults to the id in the path.",
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "regions": {
                "type": "array",
                "maxItems": 300,
                "uniqueItems": True,
                "items": {"type": "string", "pattern": "^([A-Za-z]{2}|\\*)$"},
                "description": "ISO 3166-1 alpha-2 codes, or '*' for everywhere.",
            },
            "text": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": LANG},
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 20000},
            },
        },
    },
    "Notice": {
        "type": "object",
        "required": ["id", "regions", "text", "created", "updated"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "regions": {"type": "array", "items": {"type": "string"}},
            "text": {"type": "object", "additionalProperties": {"type": "string"}},
            "created": _TIME,
            "updated": _TIME,
        },
    },
    "NoticeList": {
        "type": "object",
        "required": ["notices"],
        "additionalProperties": False,
        "properties": {"notices": {"type": "array", "items": _ref("Notice")}},
    },
    "Media": {
        "type": "object",
        "required": ["id", "type", "width", "height", "size", "created"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": HEX64, "description": "SHA-256 of the cleaned image."},
            "type": {"enum": ["image/jpeg", "image/png", "image/webp"]},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "size": {"type": "integer", "minimum": 1},
            "created": _TIME,
        },
    },
    "Status": {
        "type": "object",
        "required": [
            "index_version",
            "index_created",
            "index_expires",
            "bundles",
            "articles",
            "pending_changes",
            "round_seconds",
            "last_round_error",
        ],
        "additionalProperties": False,
        "properties": {
            "index_version": {"type": "integer", "minimum": 0},
            "index_created": _NULLABLE_TIME,
            "index_expires": _NULLABLE_TIME,
            "bundles": {"type": "integer", "minimum": 0},
            "articles": {"type": "integer", "minimum": 0},
            "pending_changes": {"type": "integer", "minimum": 0},
            "round_seconds": {"type": "number"},
            "last_round_error": {"type": ["string", "null"]},
        },
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


AUTH_ERRORS = {
    "401": _error("No token, or not a valid token (code unauthorized or invalid-token)."),
    "403": _error("The token was revoked (code token-revoked)."),
}
NO_KEY = {"503": _error("No valid signing key in the key directory (code no-signing-key).")}
BODY_ERRORS = {
    "400": _error("Malformed JSON (code bad-json or json-*)."),
    "413": _error("Body larger than the max_request_bytes setting (code too-large)."),
    "415": _error("The body is not application/json (code unsupported-media-type)."),
    "422": _error("The body breaks the schema (code bad-input, unknown-notice, unknown-media, ...)."),
}
NOT_FOUND = {"404": _error("No such resource (code not-found).")}
PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 9007199254740991, "default": 0},
    },
]
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
MEDIA_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": HEX64}}
BAD_QUERY = {"400": _error("Bad limit, offset or state (code bad-query).")}


def _op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **AUTH_ERRORS}, **extra}


PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "getOpenapi",
            "summary": "This document (no token needed).",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {}}}}},
        }
    },
    "/api/v1/status": {"get": _op("getStatus", "Index version and pending changes.", {"200": _ok("Status")})},
    "/api/v1/articles": {
        "get": _op(
            "listArticles",
            "List articles (with versions, bundle ids and state), oldest first.",
            {"200": _ok("ArticleList"), **BAD_QUERY},
            parameters=[
                *PAGE_PARAMS,
                {"name": "state", "in": "query", "schema": {"enum": ["active", "retracted"]}},
            ],
        ),
        "post": _op(
            "createArticle",
            "Create an article: version 1 and its bundle (published at the next round).",
            {
                "201": _ok("Article", "Created"),
                "409": _error("The id exists (article-exists)."),
                **BODY_ERRORS,
                **NO_KEY,
            },
            requestBody=_json_body("ArticleInput"),
        ),
    },
    "/api/v1/articles/{id}": {
        "parameters": [ID_PARAM],
        "get": _op("getArticle", "One article with every version.", {"200": _ok("Article"), **NOT_FOUND}),
        "put": _op(
            "updateArticle",
            "New version if the content or a carried notice changed; its bundle supersedes the previous one.",
            {
                "200": _ok("ArticleUpdate"),
                **NOT_FOUND,
                "409": _error("Retracted (article-retracted), or `version` is not the next (version-conflict)."),
                **BODY_ERRORS,
                **NO_KEY,
            },
            requestBody=_json_body("ArticleInput"),
        ),
    },
    "/api/v1/articles/{id}/retraction": {
        "parameters": [ID_PARAM],
        "post": _op(
            "retractArticle",
            "Retract every bundle carrying the article (editions too); the files leave the public tree.",
            {
                "200": _ok("Article"),
                **NOT_FOUND,
                "409": _error("Already retracted (already-retracted)."),
                **BODY_ERRORS,
            },
            requestBody=_json_body("Retraction"),
        ),
    },
    "/api/v1/editions": {
        "get": _op(
            "listEditions",
            "List editions, oldest first.",
            {"200": _ok("EditionList"), **BAD_QUERY},
            parameters=PAGE_PARAMS,
        ),
        "post": _op(
            "createEdition",
            "One bundle (kind edition) of the current versions of many articles, with all their notices.",
            {
                "201": _ok("Edition", "Created"),
                "409": _error("Id exists, an article is retracted, or an identical bundle exists."),
                **BODY_ERRORS,
                **NO_KEY,
            },
            requestBody=_json_body("EditionInput"),
        ),
    },
    "/api/v1/editions/{id}": {
        "parameters": [ID_PARAM],
        "get": _op("getEdition", "One edition.", {"200": _ok("Edition"), **NOT_FOUND}),
    },
    "/api/v1/editions/{id}/retraction": {
        "parameters": [ID_PARAM],
        "post": _op(
            "retractEdition",
            "Retract an edition's bundle.",
            {
                "200": _ok("Edition"),
                **NOT_FOUND,
                "409": _error("Already retracted (already-retracted)."),
                **BODY_ERRORS,
            },
            requestBody=_json_body("Retraction"),
        ),
    },
    "/api/v1/media": {
        "post": _op(
            "uploadMedia",
            "Upload one image (raw body); it is decoded and re-encoded without metadata (EXIF, XMP, GPS).",
            {
                "200": _ok("Media", "The same image was uploaded before"),
                "201": _ok("Media", "Created"),
                "400": _error("Empty body (empty-body)."),
                "413": _error("Over 10 MiB or too many pixels (image-too-large)."),
                "415": _error("Not image/jpeg, image/png or image/webp, or not what the body is."),
                "422": _error("Not a readable image (image-type)."),
            },
            requestBody={
                "required": True,
                "content": {
                    t: {"schema": {"type": "string", "format": "binary", "maxLength": 10 * 1024 * 1024}}
                    for t in ("image/jpeg", "image/png", "image/webp")
                },
            },
        )
    },
    "/api/v1/media/{id}": {
        "parameters": [MEDIA_ID_PARAM],
        "get": _op("getMedia", "An uploaded image's metadata.", {"200": _ok("Media"), **NOT_FOUND}),
    },
    "/api/v1/notices": {
        "get": _op("listNotices", "Every notice.", {"200": _ok("NoticeList")}),
        "post": _op(
            "createNotice",
            "Create a legal-risk notice (articles refer to it by id).",
            {"201": _ok("Notice", "Created"), "409": _error("The id exists (notice-exists)."), **BODY_ERRORS},
            requestBody=_json_body("NoticeInput"),
        ),
    },
    "/api/v1/notices/{id}": {
        "parameters": [ID_PARAM],
        "get": _op("getNotice", "One notice.", {"200": _ok("Notice"), **NOT_FOUND}),
        "put": _op(
            "putNotice",
            "Create or replace a notice; bundles built later carry the new text.",
            {"200": _ok("Notice"), "201": _ok("Notice", "Created"), **BODY_ERRORS},
            requestBody=_json_body("NoticeInput"),
        ),
        "delete": _op(
            "deleteNotice",
            "Delete a notice no current article carries.",
            {
                "204": {"description": "Deleted"},
                **NOT_FOUND,
                "409": _error("A current article version carries it (notice-in-use)."),
            },
        ),
    },
}


def _with_route_404(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation on a path with an id can answer 404: the id may not match its route."""
    out = copy.deepcopy(paths)
    for path, item in out.items():
        if "{" in path:
            for op in item.values():
                if isinstance(op, dict) and "responses" in op:
                    op["responses"].setdefault("404", NOT_FOUND["404"])
    return out


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tamizdat origin publishing API",
            "version": __version__,
            "description": "Publish signed news bundles. Every error is JSON {error: {code, message}}. "
            "See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made by `tamizdat tokens create NAME --data DIR`.",
                }
            },
            "schemas": SCHEMAS,
        },
        "paths": _with_route_404(PATHS),
    }


def openapi_document() -> dict[str, Any]:
    """A copy of the document (callers may not change the shared one)."""
    return copy.deepcopy(_document())
