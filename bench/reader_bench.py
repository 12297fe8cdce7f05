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
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import tempfile
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


def main(quick: bool = False) -> list[dict[str, Any]]:
    smp_mod = _sample_module()
    runs = 2 if quick else 5
    rows: list[dict[str, Any]] = []
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
