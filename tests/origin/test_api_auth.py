"""Authentication: no token 401, bad token 401, revoked token 403; the OpenAPI document is public."""

from __future__ import annotations

from tamizdat.server import tokens
from tamizdat.server.appkeys import ORIGIN

from .support import Api


def _is_error(body: object, code: str) -> bool:
    return isinstance(body, dict) and body.get("error", {}).get("code") == code and body["error"].get("message")


async def test_no_token_is_401(api: Api) -> None:
    resp = await api.client.get("/api/v1/articles")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert _is_error(await resp.json(), "unauthorized")


async def test_bad_token_is_401(api: Api) -> None:
    for header in ("Bearer nope", "Bearer tzd_" + "A" * 43, "Basic dXNlcjpwYXNz", "Bearer "):
        resp = await api.client.get("/api/v1/articles", headers={"Authorization": header})
        assert resp.status == 401, header
        body = await resp.json()
        assert body["error"]["code"] in ("invalid-token", "unauthorized")


async def test_revoked_token_is_403(api: Api) -> None:
    assert (await api.call("GET", "/api/v1/status"))[0] == 200
    await tokens.revoke(api.app[ORIGIN].store, "test")
    status, body = await api.call("GET", "/api/v1/status")
    assert status == 403
    assert _is_error(body, "token-revoked")


async def test_token_is_stored_hashed(api: Api) -> None:
    async with api.app[ORIGIN].store.tx(write=False) as tx:
        rows = await tx.all("SELECT * FROM tokens")
    assert len(rows) == 1
    assert api.token not in repr([tuple(r) for r in rows])
    assert rows[0]["hash"] == tokens.token_hash(api.token)


async def test_openapi_needs_no_token(api: Api) -> None:
    resp = await api.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["openapi"] == "3.1.0"


async def test_unknown_api_route_is_json_even_unauthenticated(api: Api) -> None:
    resp = await api.client.get("/api/v1/nothing-here")
    assert resp.status == 401
    assert resp.content_type == "application/json"
