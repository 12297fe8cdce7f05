"""Fixtures of the log's end-to-end tests: the system Chromium (Playwright) with the verifier page.

Like tests/verifier: without Chromium or Playwright the browser part skips
locally and fails in CI (``$CI`` set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.verifier import page_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI for the browser part of the log's end-to-end test")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(CHROMIUM)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standalone verifier page, as a reader keeps it (opened from file://)."""
    path = tmp_path_factory.mktemp("page") / "verify.html"
    path.write_bytes(page_bytes())
    return path
