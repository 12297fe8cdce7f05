"""Fixtures of the reader-flow tests: a signed DATA tree, two servers over it, a browser.

Server A is an origin-like node; server B a mirror-like node over its own copy
of the tree that declares an audience (RU, BY). The signed index lists both
(as ``localhost`` URLs, so the client address 127.0.0.1 never needs to appear
in any file). Every log record of the session goes to ``logs/python.log`` and
the servers' access logs to ``logs/access-*.log``, so the privacy test can
grep them.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reader_sample as sample_mod
from reader_sample import Site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("reader")
    logs = base / "logs"
    logs.mkdir()
    handler = logging.FileHandler(logs / "python.log")
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    old_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    port_a, port_b = sample_mod.free_port(), sample_mod.free_port()
    smp = sample_mod.build_sample(base, mirrors=[f"http://localhost:{port_a}", f"http://localhost:{port_b}"])
    b_root = base / "mirror-b"
    shutil.copytree(smp.data.root, b_root)
    from tamizdat.server.datadir import DataDir

    a = sample_mod.Server(sample_mod.make_app(smp.data), port=port_a, log_file=logs / "access-a.log").start()
    b = sample_mod.Server(
        sample_mod.make_app(DataDir(b_root), audience=["RU", "BY"], root_keyid=smp.root_keyid),
        port=port_b,
        log_file=logs / "access-b.log",
    ).start()
    try:
        yield Site(smp, a, b, logs, b_root)
    finally:
        a.stop()
        b.stop()
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(old_level)
        handler.close()


def _launch() -> Any:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (install Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as exc:
        pw.stop()
        if os.environ.get("CI"):
            pytest.fail(f"cannot launch {CHROMIUM}: {exc}")
        pytest.skip(f"cannot launch {CHROMIUM}: {exc}")
    return pw, browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope: a sync Playwright instance keeps its event loop running while it
    # lives, so it must stop before the verifier tests start their own.
    pw, b = _launch()
    try:
        yield b
    finally:
        b.close()
        pw.stop()
