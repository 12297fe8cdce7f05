"""Benchmark: weight and load time of the reader pages on a slow link.

    /work/venv/bin/python -m bench.reader_bench [--quick]

Over a DATA tree built like the reader tests' (fixed-seed keys; a long
English article of about 12,000 characters with three sections and two
images, plus the short sample articles), served by the reader routes on
127.0.0.1:

- page weight: the HTML of the home, article and notice pages (the CSS is
  inline, so this is HTML + CSS; images apart). Goal: the article page
  <= 50 KiB. Baseline: the same article's offline page inside the bundle.
- time to DOMContentLoaded in the system Chromium over an emulated slow link
  (400 kbit/s both ways, 400 ms round trip, through CDP
  Network.emulateNetworkConditions), a fresh browser context per load so each
  one opens its connection. Goal: <= 5 s. Baseline: a 60-byte page on the
  same server and link (the floor the round trips set).
- pages under load while the index changes: the reader app alone (a child
  process, as in `mirror run`) over 150 one-article bundles, wrk with 250
  keep-alive connections on the load test's mix (``/``, ``/?lang=ru``, each
  ``/v/<id>/1``), while the bench does what a mirror's sync does to the tree
  every 0.5 s: renames a new ``index.json`` in (same bytes, new inode: a new
  snapshot to verify) or a new copy of a listed bundle (a file never verified).
  Baseline: the same load with the tree left alone. Latency p50/p90/p99,
  medians of the rounds (3 of 6 s in full mode, 1 of 2 s in quick mode).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from aiohttp import web

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GOAL_KIB = 50.0
GOAL_MS = 5000.0
LINK = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8, "uploadThroughput": 400_000 / 8}
LONG_CHARS = 12_000


def _sample_module() -> Any:
    path = Path(__file__).resolve().parent.parent / "tests" / "reader" / "reader_sample.py"
    spec = importlib.util.spec_from_file_location("reader_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reader_sample"] = module
    spec.loader.exec_module(module)
    return module


def _row(
    name: str, value: float, unit: str, baseline: float | None = None, goal: str = "-", met: bool | None = None
) -> dict[str, Any]:
    ratio = f"{value / baseline:.2f}x" if baseline else "-"
    return {
        "name": name,
        "value": round(value, 2),
        "unit": unit,
        "baseline": baseline and round(baseline, 2),
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def _dcl_ms(browser: Any, url: str) -> float:
    context = browser.new_context()
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", LINK)
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        value = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
        return float(value)
    finally:
        context.close()


LOAD_BUNDLES = 150
LOAD_CONNECTIONS = 250
CHANGE_EVERY = 0.5

_LOAD_APP = r"""
import importlib.util, sys
from pathlib import Path
from aiohttp import web
spec = importlib.util.spec_from_file_location("reader_sample", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["reader_sample"] = module
spec.loader.exec_module(module)
from tamizdat.server.datadir import DataDir
app = module.make_app(DataDir(Path(sys.argv[2])))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), access_log=None, print=None)
"""

_LOAD_LUA = r"""
local paths = {}
for line in io.lines("%(paths)s") do table.insert(paths, line) end
math.randomseed(%(seed)d)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK-JSON {"requests": %%d, "duration_us": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def _load_tree(base: Path) -> tuple[Any, list[str]]:
    """A DATA tree with LOAD_BUNDLES one-article bundles (en and ru) under a signed index; (DataDir, ids)."""
    import datetime as dt
    import random

    from tamizdat.bundles.build import build_bundle
    from tamizdat.bundles.content import BundleInput
    from tamizdat.bundles.index import ArticleInfo, BundleEntry, Index, ShardedList, sign_index
    from tamizdat.keys import timefmt
    from tamizdat.server.datadir import DataDir

    from .common import _NOTICE, _article, make_publisher

    pub = make_publisher(base / "keys")
    data = DataDir(base / "data").create()
    sl = ShardedList()
    rng = random.Random(5)
    ids = []
    for n in range(LOAD_BUNDLES):
        created = pub.now + dt.timedelta(minutes=n)
        out = base / "build.zip"
        inp = BundleInput(articles=(_article(rng, n, 3000, 1),), notices=(_NOTICE,))
        built = build_bundle(inp, signer=pub.signer, chain=pub.chain, out=out, created=created, durable=False)
        shutil.move(out, data.bundle_path(built.bundle_id))
        infos = tuple(ArticleInfo(a.id, a.version, a.lang, a.title) for a in built.manifest.articles)
        sl.append(BundleEntry(built.bundle_id, built.sha256, built.size, created, built.manifest.kind, infos))
        ids.append(built.bundle_id)
    refs = []
    for ref, blob in sl.render():
        data.shard_path(ref.sha256).write_bytes(blob)
        refs.append(ref)
    created = pub.now + dt.timedelta(hours=4)
    index = Index(1, created, timefmt.now() + dt.timedelta(days=7), pub.chain.newest.version, (), tuple(refs))
    for v, doc in enumerate(pub.chain.envelopes, 1):
        (data.roots / f"{v}.json").write_bytes(doc)
    (data.public / "root.json").write_bytes(pub.chain.envelopes[-1])
    (data.public / "index.json").write_bytes(sign_index(index, pub.keydir.signer("index", at=created)))
    return data, ids


def _renew(path: Path) -> None:
    """Rename a fresh copy over ``path``: same bytes, a new inode (as a sync's rename makes)."""
    tmp = path.with_name(path.name + ".new")
    shutil.copyfile(path, tmp)
    os.replace(tmp, path)


def _load_run(
    base: str, paths_file: Path, work: Path, seconds: float, seed: int, change: list[Path]
) -> dict[str, float]:
    """One wrk run; while it runs, renew ``change`` files in turn every CHANGE_EVERY s (if any)."""
    script = work / f"load-{seed}.lua"
    script.write_text(_LOAD_LUA % {"paths": paths_file, "seed": seed})
    args = ["wrk", "-t", "2", "-c", str(LOAD_CONNECTIONS), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s"]
    proc = subprocess.Popen([*args, "-s", str(script), base + "/"], stdout=subprocess.PIPE, text=True)
    turn = 0
    while proc.poll() is None:
        time.sleep(CHANGE_EVERY)
        if change and proc.poll() is None:
            _renew(change[turn % len(change)])
            turn += 1
    out = proc.communicate()[0]
    doc = json.loads(next(line for line in out.splitlines() if line.startswith("WRK-JSON "))[9:])
    if doc["errors"]:
        raise RuntimeError(f"wrk saw {doc['errors']} errors on the reader pages")
    return {
        "rps": doc["requests"] / (doc["duration_us"] / 1e6),
        **{k: doc[f"{k}_us"] / 1000 for k in ("p50", "p90", "p99", "max")},
        "changes": turn,
    }


def load_rows(quick: bool) -> list[dict[str, Any]]:
    """Reader pages under load, with the tree left alone and while it changes as a sync changes it."""
    if shutil.which("wrk") is None:
        return [_row("reader pages under load (no wrk here)", float("nan"), "ms")]
    rounds, seconds = (1, 2.0) if quick else (3, 6.0)
    sample_path = Path(__file__).resolve().parent.parent / "tests" / "reader" / "reader_sample.py"
    with tempfile.TemporaryDirectory(prefix="reader-load-") as tmp:
        work = Path(tmp)
        data, ids = _load_tree(work)
        paths_file = work / "paths.txt"
        paths_file.write_text("\n".join(["/", "/?lang=ru", *(f"/v/{i}/1" for i in ids)]) + "\n")
        import socket
        import urllib.request

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-c", _LOAD_APP, str(sample_path), str(data.root), str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(base + "/", timeout=30) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            for p in paths_file.read_text().split():
                urllib.request.urlopen(base + p, timeout=30).read()  # every page once: caches warm
            files = [data.bundle_path(i) for i in ids[:: max(1, len(ids) // 10)]]
            order = [p for f in files for p in (data.public / "index.json", f)]  # index, a file, index, ...
            still, moving = [], []
            for r in range(rounds):
                still.append(_load_run(base, paths_file, work, seconds, 2 * r + 1, []))
                moving.append(_load_run(base, paths_file, work, seconds, 2 * r + 2, order))
        finally:
            proc.terminate()
            proc.wait(30)
    med = {
        k: {q: statistics.median(run[q] for run in runs) for q in runs[0]}
        for k, runs in (("still", still), ("moving", moving))
    }
    m, s = med["moving"], med["still"]
    return [
        _row(
            f"reader pages p99, {LOAD_CONNECTIONS} connections, tree changing every {CHANGE_EVERY:g} s",
            m["p99"],
            "ms",
            s["p99"],
            goal="info: baseline = same load, tree unchanged",
        ),
        _row("reader pages p90, same load, tree changing", m["p90"], "ms", s["p90"]),
        _row("reader pages p50, same load, tree changing", m["p50"], "ms", s["p50"]),
        _row("reader pages max, same load, tree changing", m["max"], "ms", s["max"]),
        _row("reader pages req/s, same load, tree changing", m["rps"], "req/s", s["rps"]),
    ]


def main(quick: bool = False) -> list[dict[str, Any]]:
    smp_mod = _sample_module()
    runs = 2 if quick else 5
    rows: list[dict[str, Any]] = []
    rows += load_rows(quick)
    with tempfile.TemporaryDirectory(prefix="reader-bench-") as tmp:
        smp = smp_mod.build_sample(Path(tmp), long_chars=LONG_CHARS)
        app = smp_mod.make_app(smp.data)
        app.router.add_get(
            "/bench-floor",
            lambda _: web.Response(
                text="<!DOCTYPE html><html lang=en><title>x</title><p>x</p></html>", content_type="text/html"
            ),
        )
        server = smp_mod.Server(app).start()
        try:
            bid = smp.ids["long"]
            pages = {"home": "/", "article": f"/v/{bid}/1", "notice": f"/save/{bid}"}
            import urllib.request

            sizes = {k: len(urllib.request.urlopen(server.url + p).read()) / 1024 for k, p in pages.items()}
            with zipfile.ZipFile(smp.data.bundle_path(bid)) as zf:
                offline = len(zf.read("articles/1.html")) / 1024
            for k in ("article", "home", "notice"):
                rows.append(
                    _row(
                        f"reader {k} page weight (HTML+CSS)",
                        sizes[k],
                        "KiB",
                        offline if k == "article" else None,
                        goal=f"<= {GOAL_KIB:g} KiB",
                        met=sizes[k] <= GOAL_KIB,
                    )
                )
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                sync_playwright = None
            if sync_playwright is None or not os.access(CHROMIUM, os.X_OK):
                for k in pages:
                    rows.append(
                        _row(f"reader {k} DOMContentLoaded, 400 kbit/s 400 ms (no Chromium here)", float("nan"), "ms")
                    )
                return rows
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    _dcl_ms(browser, server.url + "/bench-floor")  # warm-up
                    floor = statistics.median(_dcl_ms(browser, server.url + "/bench-floor") for _ in range(runs))
                    for k, path in pages.items():
                        value = statistics.median(_dcl_ms(browser, server.url + path) for _ in range(runs))
                        rows.append(
                            _row(
                                f"reader {k} DOMContentLoaded, 400 kbit/s 400 ms",
                                value,
                                "ms",
                                floor,
                                goal=f"<= {GOAL_MS / 1000:g} s",
                                met=value <= GOAL_MS,
                            )
                        )
                    rows.append(_row("60-byte page DOMContentLoaded, same link (baseline)", floor, "ms"))
                finally:
                    browser.close()
        finally:
            server.stop()
    return rows


def run(ctx: Any) -> list[Any]:
    """The ``python -m bench.run`` entry point."""
    from .common import Result

    return [Result(**r) for r in main(ctx.quick)]


if __name__ == "__main__":
    for r in main(quick="--quick" in sys.argv):
        print(json.dumps(r, ensure_ascii=False))
