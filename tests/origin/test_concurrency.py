"""200 concurrent publishes give one consistent index: nothing lost, versions increasing, files present."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from tamizdat.bundles.verify import verify_bundle
from tamizdat.server.datadir import DataDir

from .support import Api, article, read_index, wait_for

N = 200


async def test_concurrent_publishes(api: Api, keys_dir: Path, data_dir: Path, root_keyid: str) -> None:
    versions: list[int] = []
    stop = asyncio.Event()

    async def watch() -> None:  # index versions seen by a reader while the writers run
        while not stop.is_set():
            resp = await api.client.get("/index.json")
            if resp.status == 200:
                index, _ = await read_index(api.client, keys_dir)
                versions.append(index.version)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(api.call("POST", "/api/v1/articles", article(f"c{n}")) for n in range(N)))
    assert [s for s, _ in results] == [201] * N
    expected = {out["versions"][0]["bundle_id"] for _, out in results}

    async def all_listed() -> bool:
        _, shards = await read_index(api.client, keys_dir)
        return expected <= {e.id for s in shards for e in s.bundles}

    await wait_for(all_listed, timeout=60)
    stop.set()
    await watcher
    assert versions == sorted(versions), "index versions went backwards"
    _index, shards = await read_index(api.client, keys_dir)  # shard hashes checked here (step I7)
    entries = [e for s in shards for e in s.bundles]
    assert len(entries) == N and {e.id for e in entries} == expected
    assert sorted(e.articles[0].id for e in entries) == sorted(f"c{n}" for n in range(N))
    data = DataDir(data_dir)
    for e in entries:
        path = data.bundle_path(e.id)
        raw = path.read_bytes()
        assert len(raw) == e.size and hashlib.sha256(raw).hexdigest() == e.sha256
        assert verify_bundle(path, root_keyid=root_keyid).bundle_id == e.id
    _, listing = await api.call("GET", "/api/v1/articles?limit=1000")
    assert listing["total"] == N
