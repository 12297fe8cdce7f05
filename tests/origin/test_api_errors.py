"""Every error code of the API with its JSON body: never HTML, never a traceback."""

from __future__ import annotations

from typing import Any

from .conftest import AppFactory
from .support import Api, article, image_bytes


def assert_error(status: int, body: Any, want_status: int, code: str | None = None) -> None:
    assert status == want_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


async def test_400_malformed_json(api: Api) -> None:
    for raw in (b"{", b"", b'{"id": "a", "id": "b"}', b"[1.5]"):
        resp = await api.client.post(
            "/api/v1/articles", data=raw, headers=api.headers({"Content-Type": "application/json"})
        )
        assert_error(resp.status, await resp.json(), 400)


async def test_400_bad_query(api: Api) -> None:
    for query in ("limit=0", "limit=x", "offset=-1", "state=gone"):
        status, body = await api.call("GET", f"/api/v1/articles?{query}")
        assert_error(status, body, 400, "bad-query")


async def test_404(api: Api) -> None:
    assert_error(*await api.call("GET", "/api/v1/articles/missing"), 404, "not-found")
    assert_error(*await api.call("PUT", "/api/v1/articles/missing", article("missing")), 404, "not-found")
    assert_error(*await api.call("GET", "/api/v1/notices/missing"), 404, "not-found")
    assert_error(*await api.call("GET", "/api/v1/editions/missing"), 404, "not-found")
    assert_error(*await api.call("GET", "/api/v1/media/" + "0" * 64), 404, "not-found")
    assert_error(*await api.call("GET", "/api/v1/no-such-thing"), 404, "not-found")
    assert_error(*await api.call("POST", "/api/v1/articles/missing/retraction", {"reason": "x"}), 404)


async def test_405_is_json(api: Api) -> None:
    status, body = await api.call("DELETE", "/api/v1/articles")
    assert_error(status, body, 405, "method-not-allowed")


async def test_409_conflicts(api: Api) -> None:
    assert (await api.call("POST", "/api/v1/articles", article("a1")))[0] == 201
    assert_error(*await api.call("POST", "/api/v1/articles", article("a1")), 409, "article-exists")
    assert_error(*await api.call("PUT", "/api/v1/articles/a1", article("a1", title="x", version=5)), 409)
    assert (await api.call("POST", "/api/v1/notices", {"id": "n", "regions": ["RU"], "text": {"en": "t"}}))[0] == 201
    assert_error(
        *await api.call("POST", "/api/v1/notices", {"id": "n", "regions": ["RU"], "text": {"en": "t"}}),
        409,
        "notice-exists",
    )
    assert (await api.call("PUT", "/api/v1/articles/a1", article("a1", notices=["n"])))[0] == 200
    assert_error(*await api.call("DELETE", "/api/v1/notices/n"), 409, "notice-in-use")
    assert (await api.call("POST", "/api/v1/articles/a1/retraction", {"reason": "legal"}))[0] == 200
    assert_error(*await api.call("POST", "/api/v1/articles/a1/retraction", {"reason": "again"}), 409)
    assert_error(*await api.call("PUT", "/api/v1/articles/a1", article("a1", title="y")), 409, "article-retracted")
    assert_error(*await api.call("POST", "/api/v1/editions", {"articles": ["a1"]}), 409, "article-retracted")


async def test_413_request_too_large(make_api: AppFactory) -> None:
    api = await make_api(max_request_bytes=2000)
    status, body = await api.call("POST", "/api/v1/articles", article("big", body="x" * 5000))
    assert_error(status, body, 413, "too-large")


async def test_413_image_too_large(api: Api) -> None:
    status, body = await api.upload(b"\x89PNG" + b"\0" * (10 * 1024 * 1024 + 1), "image/png")
    assert_error(status, body, 413, "image-too-large")


async def test_415_wrong_content_type(api: Api) -> None:
    resp = await api.client.post(
        "/api/v1/articles", data=b'{"id": "a"}', headers=api.headers({"Content-Type": "text/plain"})
    )
    assert_error(resp.status, await resp.json(), 415, "unsupported-media-type")
    for ctype in ("image/gif", "application/octet-stream", "image/svg+xml"):
        assert_error(*await api.upload(image_bytes(), ctype), 415, "unsupported-media-type")
    # declared PNG, but the bytes are a JPEG
    assert_error(*await api.upload(image_bytes("JPEG"), "image/png"), 415, "media-type-mismatch")


async def test_422_schema_violations(api: Api) -> None:
    bad_docs = [
        {"id": "a"},
        article("bad id!"),
        article("a", lang="English"),
        article("a", published="yesterday"),
        article("a", unknown=1),
        article("a", body_html="<p>x</p>"),  # both body and body_html
        article("a", images=[{"path": "x.png"}]),
        article("a", images=[{"media": "0" * 64}]),  # never uploaded
        article("a", notices=["nope"]),  # unknown notice
        [article("a")],
    ]
    for doc in bad_docs:
        status, body = await api.call("POST", "/api/v1/articles", doc)
        assert_error(status, body, 422)
    assert_error(*await api.call("POST", "/api/v1/notices", {"id": "n", "regions": ["Russia"], "text": {}}), 422)
    assert_error(*await api.call("POST", "/api/v1/editions", {"articles": []}), 422)
    assert_error(*await api.call("POST", "/api/v1/editions", {"articles": ["nope"]}), 422, "unknown-article")
    assert (await api.call("POST", "/api/v1/articles", article("a")))[0] == 201
    assert_error(*await api.call("POST", "/api/v1/articles/a/retraction", {}), 422)
    assert_error(*await api.call("PUT", "/api/v1/articles/a", article("b")), 422, "id-mismatch")
    assert_error(*await api.upload(b"not an image", "image/png"), 422, "image-type")


async def test_static_404_is_not_an_api_concern(api: Api) -> None:
    resp = await api.client.get("/bundles/" + "0" * 64 + ".zip")
    assert resp.status == 404
