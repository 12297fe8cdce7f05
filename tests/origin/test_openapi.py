"""The OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

import pytest
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


def test_document_validates_as_openapi_31() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi_document())


def _check(schema_name: str, instance: object) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = openapi_document()
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(root).validate(instance)


async def test_responses_match_their_schemas(api: Api) -> None:
    """Real answers of every kind validate against the documented schemas."""
    from .support import article, image_bytes

    _, notice = await api.call("POST", "/api/v1/notices", {"id": "n1", "regions": ["RU"], "text": {"en": "Careful."}})
    _check("Notice", notice)
    _, media = await api.upload(image_bytes(), "image/png")
    _check("Media", media)
    _, created = await api.call(
        "POST", "/api/v1/articles", article("a1", notices=["n1"], images=[{"media": media["id"]}])
    )
    _check("Article", created)
    _, updated = await api.call("PUT", "/api/v1/articles/a1", article("a1", body="changed"))
    _check("ArticleUpdate", updated)
    await api.flush()
    _check("Article", (await api.call("GET", "/api/v1/articles/a1"))[1])
    _check("ArticleList", (await api.call("GET", "/api/v1/articles"))[1])
    _, edition = await api.call("POST", "/api/v1/editions", {"articles": ["a1"], "title": "T"})
    _check("Edition", edition)
    _check("EditionList", (await api.call("GET", "/api/v1/editions"))[1])
    _check("NoticeList", (await api.call("GET", "/api/v1/notices"))[1])
    _check("Status", (await api.call("GET", "/api/v1/status"))[1])
    _, retracted = await api.call("POST", "/api/v1/articles/a1/retraction", {"reason": "r"})
    _check("Article", retracted)
    _check("Error", (await api.call("GET", "/api/v1/articles/nope"))[1])
