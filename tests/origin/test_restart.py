"""Stopping the app and starting a new one on the same DATA keeps articles, tokens and the index version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tamizdat.server.app import make_app

from .support import ROUND, Api, article, read_index


async def test_restart_keeps_everything(aiohttp_client: Any, make_api: Any, data_dir: Path, keys_dir: Path) -> None:
    api: Api = await make_api()
    await api.call("POST", "/api/v1/articles", article("keep"))
    await api.call("PUT", "/api/v1/articles/keep", article("keep", body="second"))
    await api.flush()
    before, _ = await read_index(api.client, keys_dir)
    await api.client.close()  # runs the app's cleanup: rounds stop, the database closes

    app = make_app(data_dir, keys_dir, round_seconds=ROUND)
    client = await aiohttp_client(app)
    again = Api(client, api.token)  # the same token still works
    status, got = await again.call("GET", "/api/v1/articles/keep")
    assert status == 200 and got["current_version"] == 2
    assert [v["state"] for v in got["versions"]] == ["superseded", "published"]
    after, shards = await read_index(client, keys_dir)
    assert after.version > before.version
    assert len([e for s in shards for e in s.bundles]) == 2
    status, out = await again.call("PUT", "/api/v1/articles/keep", article("keep", body="third"))
    assert status == 200 and out["current_version"] == 3
    await again.flush()
    assert (await read_index(client, keys_dir))[0].version > after.version


async def test_schema_version_is_recorded(api: Api, data_dir: Path) -> None:
    import sqlite3

    from tamizdat.server.migrations import SCHEMA_VERSION

    db = sqlite3.connect(data_dir / "state" / "origin.sqlite3")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from tamizdat.errors import UsageError
    from tamizdat.server.store import Store

    path = tmp_path / "state" / "origin.sqlite3"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(UsageError, match="upgrade"):
        await Store(path).open()
