"""The mirror app in-process: static paths, /healthz, and what it says when the index expires."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tamizdat.keys import timefmt
from tamizdat.mirror.app import make_app
from tamizdat.mirror.sync import Mirror

from .conftest import MirrorFactory
from .simulator import Simulator

Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def test_static_paths_and_healthz(sim: Simulator, make_mirror: MirrorFactory, aiohttp_client: Client) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        assert (await m.sync()).ok
    client = await aiohttp_client(make_app(m, interval=60, background_sync=False))
    for path in (
        "index.json",
        "root.json",
        "roots/1.json",
        *[p for p in sim.files if p.startswith(("index/", "bundles/"))],
    ):
        resp = await client.get("/" + path)
        assert resp.status == 200, path
        assert await resp.read() == sim.files[path]
    resp = await client.get("/healthz")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["ok"] and doc["index"]["version"] == 1 and doc["bundles"] == 3
    assert doc["index"]["expired"] is False and doc["stale"] is False
    [up] = doc["upstreams"]
    assert up["upstream"] == url and up["last_ok"] and up["last_error"] is None and up["consecutive_failures"] == 0
    assert resp.headers["Cache-Control"] == "no-store"
    assert (await client.get("/settings.toml")).status == 404
    assert (await client.get("/../state/mirror/trust.json")).status == 404


async def test_expired_index_is_reported(sim: Simulator, make_mirror: MirrorFactory, aiohttp_client: Client) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        assert (await m.sync()).ok
        later = Mirror(
            m.data,
            root_keyid=sim.root_keyid,
            upstreams=[url],
            config=m.config,
            clock=lambda: timefmt.now() + dt.timedelta(days=2),
        )
        s = await later.sync()  # the upstream offers only the index we hold, and it has expired
        assert not s.ok and s.code == "expired"
    client = await aiohttp_client(make_app(later, interval=60, background_sync=False))
    resp = await client.get("/healthz")
    assert resp.status == 503
    doc = await resp.json()
    assert doc["ok"] is False and doc["index"]["expired"] is True and doc["stale"] is True
    assert doc["last_sync"]["code"] == "expired"
    # Still served: readers get the verified state, marked as not updated.
    assert (await client.get("/index.json")).status == 200
