"""The reader flow in a real Chromium, with JavaScript on and off.

Save and share go through the notice and a POST confirmation; nothing before
the confirmation carries a ZIP or a QR code; the session leaves no storage,
cache or service worker and talks only to the page's own host; Leave replaces
the history entry; the offline reader shows the notice; languages switch
(Persian right to left); axe finds no serious or critical issue; nothing
scrolls sideways at 320 px.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import reader_sample as sample_mod
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from reader_sample import Site

from tamizdat.bundles.cli import verify_cmd

LEAVE_HOST = "https://www.google.com/"
UI_LANGS = ["en", "ru", "uk", "fa"]
SAVE_LABEL = {"en": "Save the file", "ru": "Сохранить файл", "uk": "Зберегти файл", "fa": "ذخیرهٔ پرونده"}


class Session:
    """One browser context with a log of every request and response."""

    def __init__(self, browser: Any, site: Site, *, js: bool, **options: Any):
        self.site = site
        self.js = js
        self.context = browser.new_context(java_script_enabled=js, accept_downloads=True, **options)
        self.context.set_default_timeout(120_000)  # generous: the suite may share a loaded machine
        self.requests: list[Any] = []
        self.responses: list[tuple[str, str, int]] = []
        self.context.on("request", lambda r: self.requests.append(r))
        self.context.on(
            "response", lambda r: self.responses.append((r.url, r.headers.get("content-type", ""), r.status))
        )
        self.page = self.context.new_page()

    def goto(self, path: str) -> Any:
        return self.page.goto(self.site.a.url + path)

    def zip_or_qr_seen(self) -> bool:
        zips = any(ct.startswith("application/zip") for _, ct, _ in self.responses)
        codes = any(urlsplit(u).path.endswith("/code.png") and st == 200 for u, _, st in self.responses)
        return zips or codes or self.page.locator("svg.qr").count() > 0

    def check_no_trail(self) -> None:
        """Nothing stored, no worker, no cache; every request went to the page's own host."""
        state = self.context.storage_state()
        assert state["cookies"] == []
        for origin in state["origins"]:
            assert not origin.get("localStorage"), origin
            assert not origin.get("indexedDB"), origin
        assert self.context.service_workers == []
        if self.js and self.page.url.startswith(self.site.a.url):
            assert self.page.evaluate("caches.keys()") == []
            assert self.page.evaluate("sessionStorage.length") == 0
            assert self.page.evaluate("localStorage.length") == 0
            assert self.page.evaluate("indexedDB.databases().then(d => d.length)") == 0
            assert self.page.evaluate("navigator.serviceWorker.getRegistrations().then(r => r.length)") == 0
        host = urlsplit(self.site.a.url).netloc
        for req in self.requests:
            assert urlsplit(req.url).netloc == host, req.url
            assert "referer" not in {k.lower() for k in req.all_headers()}, req.url

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session_factory(browser: Any, site: Site) -> Iterator[Any]:
    made: list[Session] = []

    def make(js: bool, **options: Any) -> Session:
        s = Session(browser, site, js=js, **options)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def decode(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "one QR code"
    return str(found[0].text)


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_save_flow(session_factory: Any, site: Site, js: bool, tmp_path: Path) -> None:
    s = session_factory(js)
    bid = site.ids["en"]
    s.goto("/")
    s.page.click(f"text={sample_mod.HEADLINES['en']}")
    assert s.page.url == f"{site.a.url}/v/{bid}/1"
    assert s.page.title() == "Article"
    s.page.click("text=Save to this device…")
    assert s.page.url == f"{site.a.url}/save/{bid}"
    assert s.page.locator("h1").inner_text() == "Before you save this file"
    assert sample_mod.NOTICE_TEXT["en"] in s.page.inner_text("blockquote >> nth=0")
    assert not s.zip_or_qr_seen()
    # The first thing to focus after the heading is the safe choice.
    first = s.page.locator("main a, main button, main input:not([type=hidden]), main summary").first
    assert first.inner_text() == "Go back without saving"
    # Going back saves nothing.
    first.click()
    assert "/v/" in s.page.url and not s.zip_or_qr_seen()
    s.page.go_back()
    with s.page.expect_download() as info:
        s.page.click("button:has-text('Save the file')")
    download = info.value
    assert download.suggested_filename == f"{bid}.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes() == site.sample.data.bundle_path(bid).read_bytes()
    result = CliRunner().invoke(verify_cmd, [str(saved), "--root-key", site.keyid])
    assert result.exit_code == 0, result.output
    posts = [r for r in s.requests if r.method == "POST"]
    assert [urlsplit(r.url).path for r in posts] == [f"/save/{bid}/file"]
    # A GET on the confirm URL is refused and downloads nothing.
    resp = s.goto(f"/save/{bid}/file")
    assert resp.status == 405 and s.page.locator("h1").inner_text() == "Use the button on the notice page"
    s.check_no_trail()


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_share_flow(session_factory: Any, site: Site, js: bool) -> None:
    s = session_factory(js)
    bid = site.ids["ru"]
    s.goto(f"/v/{bid}/1")
    s.page.click("text=Share with a link or QR code…")
    assert s.page.locator("h1").inner_text() == "Before you share this file"
    assert not s.zip_or_qr_seen()
    resp = s.goto(f"/share/{bid}/code")
    assert resp.status == 405 and not s.zip_or_qr_seen()
    s.page.go_back()
    s.page.click("button:has-text('Make the link and QR code')")
    assert s.page.locator("h1").inner_text() == "Link and QR code"
    link = s.page.locator("main bdi.id").first.inner_text()
    assert link.startswith(f"{site.a.url}/b/{bid}#k={site.keyid}")
    shot = s.page.locator("svg.qr").screenshot()
    assert decode(shot) == link
    with s.page.expect_download() as info:
        s.page.click("button:has-text('Download the QR code as an image')")
    download = info.value
    assert download.suggested_filename == f"{bid}.png"
    assert decode(Path(download.path()).read_bytes()) == link
    s.check_no_trail()


def test_landing_page_reads_the_fragment(session_factory: Any, site: Site) -> None:
    s = session_factory(True)
    bid = site.ids["uk"]
    s.goto(f"/b/{bid}#k={site.keyid}&m=mirror-two.example.net,http://127.0.0.1:9")
    assert s.page.locator("#bid").inner_text() == bid
    assert s.page.locator("#same").is_visible() and not s.page.locator("#other").is_visible()
    assert not s.page.locator("#nojs").is_visible()
    hrefs = s.page.locator("#ml a").evaluate_all("els => els.map(e => e.href)")
    assert hrefs == [
        f"https://mirror-two.example.net/b/{bid}#k={site.keyid}&m=mirror-two.example.net,http://127.0.0.1:9",
        f"http://127.0.0.1:9/b/{bid}#k={site.keyid}&m=mirror-two.example.net,http://127.0.0.1:9",
    ]
    s.page.click("#open")
    assert s.page.url == f"{site.a.url}/v/{bid}/1"
    s.goto(f"/b/{bid}#k={'0' * 64}")
    assert s.page.locator("#other").is_visible()
    # A hostile fragment stays text.
    s.goto(f"/b/{bid}#k={site.keyid}&m=javascript:alert(1),%3Cimg%20src=x%3E")
    assert s.page.locator("#ml img").count() == 0
    for href in s.page.locator("#ml a").evaluate_all("els => els.map(e => e.href)"):
        assert href.startswith(("https://", "http://"))
    s.check_no_trail()


def test_landing_page_without_script(session_factory: Any, site: Site) -> None:
    s = session_factory(False)
    bid = site.ids["uk"]
    s.goto(f"/b/{bid}#k={site.keyid}")
    assert s.page.locator("#nojs").is_visible() and not s.page.locator("#withjs").is_visible()
    s.page.fill("#fid", bid)
    s.page.click("button:has-text('Open the file')")
    assert s.page.url == f"{site.a.url}/v/{bid}/1"
    s.check_no_trail()


def test_leave_replaces_the_history_entry(session_factory: Any, site: Site) -> None:
    s = session_factory(True)
    s.context.route(
        LEAVE_HOST + "**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!DOCTYPE html><title>Weather</title><p>Sunny</p>"
        ),
    )
    s.goto("/")
    home = s.page.url
    s.page.click(f"text={sample_mod.HEADLINES['en']}")
    assert "/v/" in s.page.url
    s.page.keyboard.press("Tab")
    assert s.page.evaluate("document.activeElement.id") == "leave"
    s.page.keyboard.press("Enter")
    s.page.wait_for_url(LEAVE_HOST + "**")
    assert s.page.title() == "Weather"
    s.page.go_back()
    assert s.page.url == home, "Back must not return to the article"
    assert sample_mod.HEADLINES["en"] not in s.page.locator("h1").inner_text()


def test_leave_without_script_is_a_plain_link(session_factory: Any, site: Site) -> None:
    s = session_factory(False)
    s.goto(f"/v/{site.ids['en']}/1")
    leave = s.page.locator("#leave")
    assert leave.get_attribute("href") == sample_mod.reader_settings()["leave_url"]
    assert "noreferrer" in (leave.get_attribute("rel") or "")
    first = s.page.locator("a, button, input:not([type=hidden]), summary").first
    assert first.get_attribute("id") == "leave"
    assert "does not erase your history" in s.page.inner_text("#leave-note")


def test_offline_reader_in_the_bundle_shows_the_notice(session_factory: Any, site: Site, tmp_path: Path) -> None:
    bid = site.ids["en"]
    with zipfile.ZipFile(site.sample.data.bundle_path(bid)) as zf:
        for name in zf.namelist():
            if name.endswith(".html"):
                target = tmp_path / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
    s = session_factory(False)
    s.page.goto((tmp_path / "index.html").as_uri())
    text = s.page.inner_text("body")
    assert sample_mod.NOTICE_TEXT["en"] in text
    s.page.goto((tmp_path / "articles" / "1.html").as_uri())
    assert sample_mod.NOTICE_TEXT["en"] in s.page.inner_text("body")
    assert "verify.html" in s.page.inner_text("body")


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_language_switch_and_persian(session_factory: Any, site: Site, js: bool) -> None:
    s = session_factory(js, locale="ru-RU")
    s.goto("/")
    assert s.page.get_attribute("html", "lang") == "ru"
    s.page.click("a[hreflang=fa]")
    assert s.page.get_attribute("html", "lang") == "fa" and s.page.get_attribute("html", "dir") == "rtl"
    assert s.page.locator("h1").inner_text() == "تازه‌ترین مقاله‌ها"
    s.page.click(f"text={sample_mod.HEADLINES['en']}")
    assert s.page.url.endswith("?lang=fa")
    assert s.page.get_attribute("article", "lang") == "en" and s.page.get_attribute("article", "dir") == "ltr"
    ident = s.page.locator("bdi.id").first
    assert ident.get_attribute("dir") == "ltr" and ident.inner_text() == site.ids["en"]
    s.page.click("text=ذخیره روی این دستگاه…")
    assert s.page.locator("h1").inner_text() == "پیش از ذخیرهٔ این پرونده"
    assert s.page.get_attribute("blockquote >> nth=0", "lang") == "fa"
    s.page.click("a[hreflang=uk]")
    assert (
        s.page.get_attribute("html", "lang") == "uk"
        and s.page.locator("h1").inner_text() == "Перш ніж зберегти цей файл"
    )
    with s.page.expect_download() as info:
        s.page.click(f"button:has-text('{SAVE_LABEL['uk']}')")
    assert info.value.suggested_filename == f"{site.ids['en']}.zip"
    s.check_no_trail()


def _axe_pages(site: Site) -> list[tuple[str, str | None]]:
    i = site.ids
    return [
        ("/", None),
        (f"/v/{i['en']}/1", None),
        (f"/v/{i['fa']}/1", None),
        (f"/save/{i['en']}", None),
        (f"/share/{i['en']}", None),
        (f"/share/{i['en']}", "button.act"),  # the share page after confirming
        (f"/b/{i['en']}#k={site.keyid}&m=mirror.example.org", None),
        ("/check", None),
        ("/clear", None),
    ]


@pytest.mark.parametrize("lang", UI_LANGS)
def test_accessibility_and_320px(session_factory: Any, site: Site, lang: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    s = session_factory(True, viewport={"width": 320, "height": 640})
    for path, click in _axe_pages(site):
        base, _, frag = path.partition("#")
        s.goto(f"{base}?lang={lang}" + (f"#{frag}" if frag else ""))
        if click:
            s.page.click(click)
        assert s.page.get_attribute("html", "lang") == lang
        results = axe.run(s.page)
        bad = [
            (v["id"], v["impact"], [n["html"][:100] for n in v["nodes"][:3]])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], (path, lang, bad)
        width = s.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] == 320, (path, lang, width)
