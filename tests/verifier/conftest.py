"""Fixtures for the browser verifier: the system Chromium driven by Playwright, from file://.

One browser and one page serve a whole package run; a case loads a bundle
through the real ``input#bundle`` and waits for ``#verdict``. Without Chromium
or Playwright these tests skip locally and fail in CI (``$CI`` set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.verifier import page_bytes

from .corpus import Base, build_bases

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FINAL = ("valid", "invalid", "error", "unsupported", "need-key")
VERDICT_JS = """() => { const d = document.getElementById('verdict').dataset;
  return [d.verdict || null, d.step || null, d.code || null]; }"""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI for the browser verifier tests")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(CHROMIUM)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture(scope="package")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "verify.html"
    path.write_bytes(page_bytes())
    return path


@pytest.fixture(scope="package")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Base]:
    return {b.name: b for b in build_bases(tmp_path_factory.mktemp("bases"))}


class VerifierPage:
    """The page in one browser tab, with every request it makes recorded."""

    def __init__(self, page: Any, path: Path):
        self.page = page
        self.url = path.as_uri()
        self.key: str | None = None
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, key: str | None = None) -> None:
        self.page.goto(self.url + (f"#k={key}" if key else ""))
        self.key = key

    def verdict(self, path: Path, key: str) -> tuple[str, int | None, str | None]:
        """Load ``path`` through the file picker; the page's (verdict, step, code)."""
        if key != self.key:
            self.open(key)
        self.page.evaluate("() => document.getElementById('verdict').removeAttribute('data-verdict')")
        self.page.set_input_files("#bundle", str(path))
        self.page.wait_for_function(
            f"() => {list(FINAL)!r}.includes(document.getElementById('verdict').dataset.verdict)", timeout=120_000
        )
        kind, step, code = self.page.evaluate(VERDICT_JS)
        return (kind, int(step) if step else None, code)

    def foreign_requests(self) -> list[str]:
        """Requests other than the page itself and the blob: URLs it made."""
        return [u for u in self.requests if u.split("#")[0] != self.url and not u.startswith(("blob:", "data:"))]


@pytest.fixture(scope="package")
def verifier(browser: Any, page_path: Path) -> Iterator[VerifierPage]:
    context = browser.new_context(viewport={"width": 800, "height": 900}, locale="en-US")
    vp = VerifierPage(context.new_page(), page_path)
    yield vp
    context.close()


@pytest.fixture
def fresh_page(browser: Any, page_path: Path) -> Iterator[Any]:
    """A new context per test (own storage), as a factory: fresh_page(locale=..., viewport=..., init=...)."""
    contexts = []

    def make(*, locale: str = "en-US", width: int = 800, init: str | None = None) -> VerifierPage:
        context = browser.new_context(viewport={"width": width, "height": 800}, locale=locale)
        contexts.append(context)
        if init:
            context.add_init_script(init)
        return VerifierPage(context.new_page(), page_path)

    yield make
    for c in contexts:
        c.close()
