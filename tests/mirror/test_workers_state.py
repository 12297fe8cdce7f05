"""A serving-only mirror app (``mirror run --workers N``, processes 1..N-1) follows what the syncing one commits.

In-process: mirror A syncs as process 0 would; a second app over the same data
directory, built by ``serving_app`` as a serving child builds it, must answer
``/healthz`` with the same document as A's app after every sync, and must never
write the state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tamizdat.mirror.app import make_app, serving_app
from tamizdat.mirror.cli import resolve
from tamizdat.server.datadir import DataDir

from .conftest import FAST, MirrorFactory
from .simulator import Simulator

Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _state_files(state: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(state)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in state.rglob("*") if p.is_file()}


async def _healthz(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/healthz")
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_serving_app_shows_what_the_syncing_process_committed(
    sim: Simulator, make_mirror: MirrorFactory, aiohttp_client: Client
) -> None:
    with sim.serve() as url:
        syncing = make_mirror(sim.root_keyid, [url], config=FAST)
        values = resolve(DataDir(syncing.data.root), sim.root_keyid, (url,))
        argument = json.loads(json.dumps({"data": str(syncing.data.root), "settings": values}))  # as on argv
        serving = await aiohttp_client(serving_app(argument))  # before any sync: nothing served yet
        main = await aiohttp_client(make_app(syncing, interval=60, background_sync=False))
        before = await _healthz(serving)
        assert before["index"] is None and before["last_sync"] is None and before["ok"] is False

        assert (await syncing.sync()).ok
        first = await _healthz(serving)
        assert first == await _healthz(main)
        assert first["ok"] and first["index"]["version"] == 1 and first["bundles"] == 3
        assert first["last_sync"]["at"] == syncing.last_summary["started"]  # type: ignore[index]

        sim.add(2)
        sim.publish()
        state = syncing.store.dir
        assert (await syncing.sync()).ok
        written = _state_files(state)
        second = await _healthz(serving)
        assert second == await _healthz(main)
        assert second["index"]["version"] == 2 and second["bundles"] == 5
        assert second["last_sync"]["new"] == 2
        home = await serving.get("/")
        assert home.status == 200
        assert _state_files(state) == written  # the serving app wrote nothing


async def test_reload_is_skipped_when_nothing_changed(
    sim: Simulator, make_mirror: MirrorFactory, aiohttp_client: Client
) -> None:
    with sim.serve() as url:
        syncing = make_mirror(sim.root_keyid, [url], config=FAST)
        assert (await syncing.sync()).ok
    values = resolve(DataDir(syncing.data.root), sim.root_keyid, (url,))
    app = serving_app({"data": str(syncing.data.root), "settings": values})
    client = await aiohttp_client(app)
    await _healthz(client)
    from tamizdat.mirror.app import MIRROR

    trust = app[MIRROR].trust
    await _healthz(client)
    assert app[MIRROR].trust is trust  # same stat results: no second verification
    index = syncing.store.dir / "index.json"
    os.utime(index, ns=(index.stat().st_atime_ns, index.stat().st_mtime_ns + 1_000_000))
    await _healthz(client)
    assert app[MIRROR].trust is not trust
