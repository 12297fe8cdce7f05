"""The signed, sharded index: fields, shards, retraction, one shard per change, re-signing before expiry."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tamizdat.keys import timefmt
from tamizdat.server import rounds
from tamizdat.server.appkeys import ORIGIN
from tamizdat.server.datadir import DataDir

from .conftest import AppFactory
from .support import Api, article, read_index, wait_for


async def test_index_fields(make_api: AppFactory, keys_dir: Path, data_dir: Path) -> None:
    api = await make_api(mirrors=["https://m1.example.org/", "https://m2.example.org/"], index_lifetime=3600)
    _, out = await api.call("POST", "/api/v1/articles", article("a1"))
    await api.flush()
    index, shards = await read_index(api.client, keys_dir)
    assert index.mirrors == ("https://m1.example.org/", "https://m2.example.org/")
    assert (index.expires - index.created).total_seconds() == 3600
    assert index.root_version == 1
    [entry] = [e for s in shards for e in s.bundles]
    assert entry.id == out["versions"][0]["bundle_id"] and entry.kind == "article"
    path = DataDir(data_dir).bundle_path(entry.id)
    assert path.stat().st_size == entry.size
    # the public tree holds exactly the static layout
    public = DataDir(data_dir).public
    top = sorted(p.name for p in public.iterdir())
    assert top == ["bundles", "index", "index.json", "root.json", "roots", "tlog"]
    assert (public / "root.json").read_bytes() == (keys_dir / "root.json").read_bytes()
    assert (public / "roots" / "1.json").read_bytes() == (keys_dir / "roots" / "1.json").read_bytes()
    assert not list(DataDir(data_dir).tmp.iterdir())


async def test_versions_strictly_increase(api: Api, keys_dir: Path) -> None:
    seen = []
    for n in range(3):
        await api.call("POST", "/api/v1/articles", article(f"a{n}"))
        await api.flush()
        seen.append((await read_index(api.client, keys_dir))[0].version)
    assert seen == sorted(set(seen)) and len(seen) == 3
    assert await api.app[ORIGIN].publisher.flush() is None  # nothing changed: no new version


async def test_retraction_removes_file_and_marks_entry(api: Api, keys_dir: Path, data_dir: Path) -> None:
    _, out = await api.call("POST", "/api/v1/articles", article("gone"))
    await api.call("PUT", "/api/v1/articles/gone", article("gone", body="v2"))
    await api.flush()
    ids = [v["bundle_id"] for v in (await api.call("GET", "/api/v1/articles/gone"))[1]["versions"]]
    assert all(DataDir(data_dir).bundle_path(b).exists() for b in ids)
    status, out = await api.call("POST", "/api/v1/articles/gone/retraction", {"reason": "court order"})
    assert status == 200 and out["state"] == "retracted"
    assert out["retracted"]["reason"] == "court order"
    await api.flush()
    _, shards = await read_index(api.client, keys_dir)
    entries = {e.id: e for s in shards for e in s.bundles}
    for bid in ids:
        assert entries[bid].retracted is not None and entries[bid].retracted.reason == "court order"
        assert not DataDir(data_dir).bundle_path(bid).exists()
        assert (await api.client.get(f"/bundles/{bid}.zip")).status == 404
    _, got = await api.call("GET", "/api/v1/articles/gone")
    assert {v["state"] for v in got["versions"]} == {"retracted"}


async def test_one_change_rewrites_one_shard(
    api: Api, keys_dir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rounds, "SHARD_CAPACITY", 3)
    for n in range(7):
        await api.call("POST", "/api/v1/articles", article(f"a{n}"))
    await api.flush()
    before, shards = await read_index(api.client, keys_dir)
    assert [s.count for s in before.shards] == [3, 3, 1]
    assert [e.articles[0].id for s in shards for e in s.bundles] == [f"a{n}" for n in range(7)]
    shard_dir = DataDir(data_dir).shards
    mtimes = {p.name: p.stat().st_mtime_ns for p in shard_dir.iterdir()}
    await asyncio.sleep(0.01)
    await api.call("POST", "/api/v1/articles/a4/retraction", {"reason": "x"})  # in the middle shard
    await api.flush()
    after, _ = await read_index(api.client, keys_dir)
    assert after.version > before.version
    assert after.shards[0] == before.shards[0] and after.shards[2] == before.shards[2]
    assert after.shards[1] != before.shards[1]
    new_files = {p.name for p in shard_dir.iterdir()} - set(mtimes)
    assert new_files == {f"{after.shards[1].sha256}.json"}
    for name, mtime in mtimes.items():
        assert (shard_dir / name).stat().st_mtime_ns == mtime  # untouched shards were not rewritten


async def test_resigned_before_expiry(make_api: AppFactory, keys_dir: Path) -> None:
    # Re-signed when half the lifetime is left: 10 s leaves a loaded machine 5 s of slack.
    api = await make_api(index_lifetime=10)
    first, _ = await read_index(api.client, keys_dir)

    async def newer() -> bool:
        index, _ = await read_index(api.client, keys_dir)
        return index.version > first.version

    await wait_for(newer, timeout=25)
    index, _ = await read_index(api.client, keys_dir)
    assert index.expires > timefmt.now()


async def test_old_shards_are_collected(make_api: AppFactory, keys_dir: Path, data_dir: Path) -> None:
    api = await make_api(shard_grace=0)
    for n in range(3):
        await api.call("POST", "/api/v1/articles", article(f"a{n}"))
        await api.flush()
        await asyncio.sleep(1.05)  # shard times are whole seconds
    await api.flush()
    index, _ = await read_index(api.client, keys_dir)
    names = sorted(os.listdir(DataDir(data_dir).shards))
    assert names == sorted(f"{r.sha256}.json" for r in index.shards)
