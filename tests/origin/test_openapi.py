"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

from aiohttp import web

from tamizdat.server.api import routes
from tamizdat.server.openapi import openapi_document

from .support import Api

METHODS = {"get", "put", "post", "delete", "patch"}


def _routed() -> set[tuple[str, str]]:
    app = web.Application()
    app.add_routes(routes())
    return {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }


def _documented() -> set[tuple[str, str]]:
    doc = openapi_document()
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_route_is_documented_and_vice_versa() -> None:
    assert _routed() == _documented()


def test_document_is_well_formed() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            out = [node["$ref"]] if "$ref" in node else []
            return out + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for path, item in doc["paths"].items():
        params = {p["name"] for p in item.get("parameters", [])}
        assert params == ({"id"} if "{id}" in path else set()), path
        for method, op in item.items():
            if method in METHODS:
                assert op["operationId"] and op["responses"], (path, method)


async def test_served_document_matches(api: Api) -> None:
    resp = await api.client.get("/api/v1/openapi.json")
    assert await resp.json() == openapi_document()
