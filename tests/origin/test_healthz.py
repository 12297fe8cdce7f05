"""The origin's public /healthz: index state for container healthchecks, nothing secret."""

from __future__ import annotations

from .support import Api, article


async def test_healthz_reports_the_signed_index(api: Api) -> None:
    await api.flush()
    resp = await api.client.get("/healthz")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    first = await resp.json()
    assert first["ok"] is True and first["role"] == "origin"
    assert first["index"]["version"] >= 1 and first["index"]["expired"] is False
    await api.call("POST", "/api/v1/articles", article("h1"))
    await api.flush()
    after = await (await api.client.get("/healthz")).json()
    assert after["index"]["version"] > first["index"]["version"]
    assert after["bundles"] == first["bundles"] + 1
    assert set(after) == {"ok", "role", "index", "bundles", "pending_changes", "last_round_error", "log"}
    assert after["log"]["state"] == "ok" and after["log"]["signed_size"] == after["log"]["size"] > 0


async def test_healthz_needs_no_token(api: Api) -> None:
    resp = await api.client.get("/healthz", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 200
