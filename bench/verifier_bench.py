"""Benchmark: the browser verifier page against `tamizdat verify`, on the same bundles, in the same run.

    /work/venv/bin/python -m bench.verifier_bench [--quick]

For a 10 MB and a 100 MB bundle (fixed-seed keys, media entries of fixed
random bytes) it measures:

- the page in the system Chromium from file://: ``performance.now()`` around
  the verify call, read from ``#verdict[data-ms]`` (the file is picked through
  the real ``input#bundle``; the page is reloaded before each run);
- the Python verifier in-process (``verify_bundle``), the baseline;
- the ``tamizdat verify`` command (a new process each time, for information).

Goal: the page within 3x of the Python verifier. Also the page's size (goal:
under 60 KB). Every figure is a median of several runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import parse_bundle_input
from tamizdat.bundles.verifier import page_bytes
from tamizdat.bundles.verify import verify_bundle
from tamizdat.keys.keydir import KeyDir

MB = 1_000_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ENTRY = 25 * MB  # under the 32 MiB entry limit
GOAL_RATIO = 3.0
GOAL_KB = 60.0


def _row(
    name: str,
    value: float,
    unit: str,
    baseline: float | None = None,
    goal: str = "-",
    met: bool | None = None,
) -> dict[str, Any]:
    ratio = f"{value / baseline:.2f}x" if baseline else "-"
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline and round(baseline, 3),
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def build(folder: Path, size: int) -> tuple[Path, str]:
    """A bundle of about ``size`` bytes: one article plus stored media of fixed random bytes."""
    keys = KeyDir(folder / "keys")
    if not (keys.path / "root.json").exists():
        keys.init("Bench", seeds=[bytes([1]) * 32, bytes([2]) * 32], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    doc = {
        "articles": [
            {
                "id": "bench",
                "lang": "en",
                "title": "Benchmark",
                "body": "Text. " * 200,
                "published": "2026-02-01T00:00:00Z",
            }
        ]
    }
    inp = parse_bundle_input(json.dumps(doc).encode(), base=folder)
    rnd = random.Random(size)
    extra: dict[str, Path | bytes] = {}
    left, n = size, 0
    while left > 0:
        chunk = min(ENTRY, left)
        media = folder / f"m{size}-{n}.bin"
        if not media.exists() or media.stat().st_size != chunk:
            media.write_bytes(rnd.randbytes(chunk))
        extra[f"media/{n:016x}.jpg"] = media
        left -= chunk
        n += 1
    out = folder / f"bundle-{size // MB}mb.zip"
    signer = keys.signer("bundle", at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    build_bundle(inp, signer=signer, chain=keys.chain(), out=out, extra_files=extra, durable=False)
    return out, keys.root_keyid()


def _python_ms(path: Path, key: str) -> float:
    t0 = time.perf_counter()
    verify_bundle(path, root_keyid=key)
    return (time.perf_counter() - t0) * 1000


def time_cli(path: Path, key: str, runs: int) -> float:
    exe = Path(sys.executable).with_name("tamizdat")
    cmd = [str(exe), "verify", str(path), "--root-key", key]
    if not exe.exists():
        cmd = [sys.executable, "-m", "tamizdat.cli", "verify", str(path), "--root-key", key]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _page_ms(page: Any, url: str, path: Path, key: str) -> float:
    page.goto(f"{url}#k={key}")
    page.set_input_files("#bundle", str(path))
    page.wait_for_function(
        "() => ['valid', 'invalid', 'error', 'unsupported']"
        ".includes(document.getElementById('verdict').dataset.verdict)",
        timeout=600_000,
    )
    verdict, ms = page.evaluate(
        "() => [document.getElementById('verdict').dataset.verdict, document.getElementById('verdict').dataset.ms]"
    )
    if verdict != "valid":
        raise RuntimeError(f"the page says {verdict} for {path.name}")
    return float(ms)


def time_both(page: Any | None, url: str, path: Path, key: str, runs: int) -> tuple[float, float | None]:
    """Medians of the Python verifier and the page, runs interleaved so that load drift hits both alike."""
    _python_ms(path, key)  # warm the page cache and imports
    if page is not None:
        _page_ms(page, url, path, key)  # and the browser's
    py, pg = [], []
    for _ in range(runs):
        py.append(_python_ms(path, key))
        if page is not None:
            pg.append(_page_ms(page, url, path, key))
    return statistics.median(py), (statistics.median(pg) if pg else None)


def main(quick: bool = False) -> list[dict[str, Any]]:
    runs = 3 if quick else 7
    size_kb = len(page_bytes()) / 1000
    rows = [_row("verifier page size", size_kb, "KB", goal=f"< {GOAL_KB:g} KB", met=size_kb < GOAL_KB)]
    try:
        from playwright.sync_api import sync_playwright

        available = os.access(CHROMIUM, os.X_OK)
    except ImportError:
        available = False
    with tempfile.TemporaryDirectory(prefix="verifier-bench-") as tmp:
        folder = Path(tmp)
        page_file = folder / "verify.html"
        page_file.write_bytes(page_bytes())
        bundles = [(label, *build(folder, size)) for label, size in (("10 MB", 10 * MB), ("100 MB", 100 * MB))]
        python: dict[str, float] = {}
        page_ms: dict[str, float] = {}
        if available:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page()
                for label, path, key in bundles:
                    py, pg = time_both(page, page_file.as_uri(), path, key, runs)
                    python[label] = py
                    if pg is not None:
                        page_ms[label] = pg
                browser.close()
        else:
            for label, path, key in bundles:
                python[label] = time_both(None, "", path, key, runs)[0]
        cli = {label: time_cli(path, key, max(2, runs // 2)) for label, path, key in bundles}
        for label, path, _ in bundles:
            mb = path.stat().st_size / MB
            if label in page_ms:
                value = page_ms[label]
                rows.append(
                    _row(
                        f"verifier page: verify {label} bundle ({mb:.1f} MB file)",
                        value,
                        "ms",
                        python[label],
                        goal=f"<= {GOAL_RATIO:g}x python",
                        met=value <= GOAL_RATIO * python[label],
                    )
                )
            else:
                rows.append(
                    _row(f"verifier page: verify {label} (no Chromium here)", float("nan"), "ms", python[label])
                )
            rows.append(_row(f"python verify_bundle {label} (baseline)", python[label], "ms"))
            rows.append(_row(f"tamizdat verify CLI {label} (process)", cli[label], "ms"))
    return rows


if __name__ == "__main__":
    for r in main(quick="--quick" in sys.argv):
        print(json.dumps(r, ensure_ascii=False))
