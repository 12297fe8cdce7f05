"""A mirror keeps answering while it commits a sync: slow disk calls stay off the event loop.

`mirror run` serves readers and syncs in the same event loop. The commit's
``syncfs(2)`` waits for every dirty page of the filesystem (measured: 242 ms
while an origin wrote on the same disk), so if it runs on the loop, every
connection stalls that long. Here the mirror app runs in-process with
``sync_filesystem`` slowed to 0.5 s; a client polls ``/root.json`` while a
sync commits; no poll (a request and a 10 ms pause, on the same loop) may
take as long as the slowed ``syncfs``. (Found by the load test's tail
latencies; the commit's disk calls now run in a thread.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tamizdat.mirror import sync as sync_mod
from tamizdat.mirror.app import make_app
from tamizdat.mirror.sync import Mirror
from tamizdat.server.datadir import DataDir, sync_filesystem

from .support import Origin, article, wait_until

SLOW_SYNCFS = 0.5


@pytest.mark.slow
async def test_serving_does_not_stall_while_a_sync_commits(
    origin: Origin, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        status, body = origin.publish(article(n, prefix="loop"))
        assert status == 201, body
    await asyncio.to_thread(wait_until, lambda: len(origin.listed()) == 3, 60, "the articles to be listed")
    mirror = Mirror(DataDir(tmp_path / "mirror"), root_keyid=origin.root_keyid, upstreams=[origin.url])
    assert (await mirror.sync()).ok  # root.json is served from here on
    client = await aiohttp_client(make_app(mirror, interval=3600, background_sync=False))

    real = sync_filesystem
    synced = []

    def slow_syncfs(path: Path) -> None:
        time.sleep(SLOW_SYNCFS)  # a busy disk
        real(path)
        synced.append(path)

    monkeypatch.setattr(sync_mod, "sync_filesystem", slow_syncfs)
    for n in range(3, 6):
        status, body = origin.publish(article(n, prefix="loop"))
        assert status == 201, body
    await asyncio.to_thread(wait_until, lambda: len(origin.listed()) == 6, 60, "the new articles to be listed")

    # The client shares the server's event loop: a blocked loop shows as one long iteration.
    worst = 0.0
    task = asyncio.create_task(mirror.sync())
    while not task.done():
        start = time.perf_counter()
        resp = await client.get("/root.json")
        assert resp.status == 200
        await resp.read()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - start)
    summary = await task
    assert summary.ok and summary.new == 3 and synced, summary
    assert worst < SLOW_SYNCFS, f"the event loop stood still {worst:.2f} s while the sync committed"
