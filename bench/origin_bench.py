"""Origin benchmarks: publishing throughput through the API, and the cost of one index update.

1. Articles per second through the publishing API in-process (aiohttp test
   server on 127.0.0.1, 32 requests in flight), from the first POST until a
   round has listed every bundle in a signed index (packaging runs in
   ``pack_workers`` processes, one per core). Baseline: the same
   articles packaged (build + sign + strict verify) one after another without
   the API, store or index: the work the API cannot avoid.
2. One index update (one retraction in an old shard, then a round: one shard
   re-rendered, one sync, a new signed index.json) with 1,000 and with 10,000
   bundles in the store. Goal: within 1.5x of each other, since only the
   touched shard is rewritten.

``main(quick)`` returns rows {name, value, unit, baseline, ratio, goal, met}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tamizdat.bundles.content import ArticleInput, BundleInput
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir

try:
    from bench.common import markdown_text
except ImportError:  # run as a file: python bench/origin_bench.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.common import markdown_text


def _articles(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {
            "id": f"bench-{i}",
            "lang": "en",
            "title": f"Bench article {i}",
            "body": markdown_text(rng, "en", 4000),
            "published": "2026-01-01T00:00:00Z",
        }
        for i in range(n)
    ]


def _keys(path: Path) -> KeyDir:
    kd = KeyDir(path)
    kd.init("Bench Newsroom")
    (path / "root-private").rename(path.parent / "offline-root")
    return kd


# -- 1. throughput ---------------------------------------------------------------------------------


async def _api_run(work: Path, docs: list[dict[str, Any]]) -> float:
    from aiohttp.test_utils import TestClient, TestServer

    from tamizdat.server import tokens
    from tamizdat.server.app import make_app
    from tamizdat.server.appkeys import ORIGIN

    keys = work / "keys"
    _keys(keys)
    app = make_app(work / "data", keys, round_seconds=0.2)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        origin = app[ORIGIN]
        token = await tokens.create(origin.store, "bench")
        headers = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(32)

        async def post(doc: dict[str, Any]) -> None:
            async with gate:
                resp = await client.post("/api/v1/articles", json=doc, headers=headers)
                assert resp.status == 201, await resp.text()

        await post({**docs[0], "id": "warm-up"})  # start the packaging processes outside the timing
        await origin.publisher.flush()
        start = time.perf_counter()
        await asyncio.gather(*(post(d) for d in docs))
        while (await origin.status())["pending_changes"]:
            await origin.publisher.flush()
        return time.perf_counter() - start
    finally:
        await client.close()


def _direct_run(work: Path, docs: list[dict[str, Any]]) -> float:
    from tamizdat.server import packager

    keys = work / "keys"
    kd = _keys(keys)
    tmp = work / "tmp"
    tmp.mkdir()
    chain, root_keyid = kd.chain(), kd.root_keyid()
    signer = kd.signer("bundle")
    start = time.perf_counter()
    for d in docs:
        art = ArticleInput(
            id=d["id"],
            lang=d["lang"],
            title=d["title"],
            body=d["body"],
            published=timefmt.parse(d["published"]),
            notices=(),
        )
        packager.pack(
            BundleInput((art,), kind="article"),
            signer=signer,
            chain=chain,
            root_keyid=root_keyid,
            tmp=tmp,
            created=timefmt.now(),
        )
    return time.perf_counter() - start


def throughput(quick: bool) -> dict[str, Any]:
    n = 100 if quick else 300
    docs = _articles(n)
    api_rates, direct_rates = [], []
    with tempfile.TemporaryDirectory() as w:  # warm up: imports, templates, Markdown parser
        _direct_run(Path(w), docs[:5])
    for _ in range(1 if quick else 3):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            api_rates.append(n / asyncio.run(_api_run(Path(a), docs)))
            direct_rates.append(n / _direct_run(Path(b), docs))
    value, base = statistics.median(api_rates), statistics.median(direct_rates)
    ratio = value / base
    return {
        "name": f"origin: publish through the API ({n} articles of ~4 KB, until indexed)",
        "value": round(value, 1),
        "unit": "articles/s",
        "baseline": round(base, 1),
        "ratio": f"{ratio:.2f}x of packaging alone",
        "goal": ">= 0.5x of packaging alone",
        "met": ratio >= 0.5,
    }


# -- 2. one index update -----------------------------------------------------------------------------


async def _populate(store: Any, count: int, now: dt.datetime) -> None:
    created = timefmt.format(now)
    rows = []
    for i in range(count):
        bid = hashlib.sha256(f"bundle-{i}".encode()).hexdigest()
        arts = json.dumps([{"id": f"a{i}", "version": 1, "lang": "en", "title": f"Article number {i}"}])
        rows.append((bid, "article", created, hashlib.sha256(bid.encode()).hexdigest(), 12345, arts, "[]", "k"))
    async with store.tx() as tx:
        await tx.many(
            "INSERT INTO bundles (id, kind, created, sha256, size, articles, supersedes, signer, file) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'public')",
            rows,
        )


class _Store:
    """A store of ``count`` listed bundles and its publisher, for timing one-change rounds."""

    def __init__(self, work: Path, count: int):
        self.work, self.count = work, count
        self.rng = random.Random(count)

    async def open(self) -> None:
        from tamizdat.server.datadir import DataDir
        from tamizdat.server.keyring import Keyring
        from tamizdat.server.rounds import Publisher, RoundConfig
        from tamizdat.server.store import Store

        keys = self.work / "keys"
        _keys(keys)
        data = DataDir(self.work / "data").create()
        self.store = await Store.in_state_dir(data.state).open()
        self.publisher = Publisher(self.store, data, Keyring(keys), RoundConfig(5.0, 86400, (), 600))
        await _populate(self.store, self.count, timefmt.now())
        await self.publisher.run_round()  # lists everything: every shard rendered once

    async def one_update(self) -> float:
        """Retract one bundle (not in the last shard) and time the round that publishes it."""
        seq = self.rng.randrange(1, self.count - 1024) if self.count > 2048 else self.rng.randrange(1, self.count)
        async with self.store.tx() as tx:
            await tx.run(
                "UPDATE bundles SET retracted_at = ?, retract_reason = 'bench', dirty = dirty + 1 WHERE seq = ?",
                (timefmt.format(timefmt.now()), seq),
            )
        self.publisher.changed()
        start = time.perf_counter()
        result = await self.publisher.run_round()
        elapsed = time.perf_counter() - start
        assert result is not None and result.shards_written == 1
        return elapsed


async def _update_costs(small_dir: Path, large_dir: Path, rounds_n: int) -> tuple[float, float]:
    """Median round time with 1,000 and 10,000 bundles, interleaved so machine noise hits both."""
    small, large = _Store(small_dir, 1_000), _Store(large_dir, 10_000)
    await small.open()
    await large.open()
    try:
        s_times, l_times = [], []
        for i in range(rounds_n):
            pair = (small, large) if i % 2 else (large, small)
            for st in pair:
                (s_times if st is small else l_times).append(await st.one_update())
        return statistics.median(s_times), statistics.median(l_times)
    finally:
        await small.store.close()
        await large.store.close()


def index_update(quick: bool) -> dict[str, Any]:
    rounds_n = 9 if quick else 31
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        small, large = asyncio.run(_update_costs(Path(a), Path(b), rounds_n))
    ratio = large / small
    return {
        "name": "origin: one index update, 10,000 bundles (baseline: 1,000)",
        "value": round(large * 1000, 2),
        "unit": "ms",
        "baseline": round(small * 1000, 2),
        "ratio": f"{ratio:.2f}x",
        "goal": "<= 1.5x",
        "met": ratio <= 1.5,
    }


def main(quick: bool) -> list[dict[str, Any]]:
    return [throughput(quick), index_update(quick)]


if __name__ == "__main__":
    for row in main("--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
