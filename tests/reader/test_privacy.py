"""No trail on the server: the reader routes write nothing, and no log holds a client address or marker."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import reader_http as rhttp
import reader_sample as sample_mod
from reader_sample import Site

from tamizdat.server.reader import READER

MARKER = "MarkerAgent-7f3c1e-reader-privacy"
ADDRESS = b"127.0.0.1"


def tree_state(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def grep(roots: list[Path], needles: list[bytes]) -> list[str]:
    hits = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                data = (Path(dirpath) / name).read_bytes()
                for needle in needles:
                    if needle in data:
                        hits.append(f"{Path(dirpath) / name}: {needle!r}")
    return hits


def traffic(site: Site, base: str) -> None:
    ua = {"User-Agent": MARKER, "X-Forwarded-For": "203.0.113.77", "Accept-Language": "fa"}
    i = site.ids
    for path in (
        "/",
        f"/v/{i['en']}/1",
        f"/v/{i['tampered']}/1",
        f"/v/{i['withdrawn']}/1",
        "/v/" + "0" * 64,
        f"/save/{i['en']}",
        f"/share/{i['en']}",
        f"/b/{i['en']}",
        f"/find?id={i['en']}&q={MARKER}",
        "/check",
        "/mirrors",
        "/clear",
        f"/save/{i['en']}/file",
        "/nope",
        f"/?lang=ru&m={MARKER}",
    ):
        rhttp.get(base + path, headers=ua)
    for path, form in (
        (f"/save/{i['en']}/file", {"confirm": "save"}),
        (f"/share/{i['en']}/code", {"confirm": "share"}),
        (f"/share/{i['en']}/code.png", {"confirm": "share"}),
        (f"/save/{i['en']}/file", {"x": MARKER}),
    ):
        rhttp.post(base + path, form, headers=ua)


def test_no_client_address_or_marker_on_disk(site: Site, browser: Any, tmp_path: Path) -> None:
    before = tree_state(site.sample.data.root, site.b_data)
    traffic(site, site.a.url)
    traffic(site, site.b.url)
    ctx = browser.new_context(user_agent=MARKER, accept_downloads=True)
    try:
        page = ctx.new_page()
        page.goto(site.a.url + "/")
        page.click(f"text={sample_mod.HEADLINES['en']}")
        page.click("text=Share with a link or QR code…")
        page.click("button:has-text('Make the link and QR code')")
        page.goto(site.b.url + f"/save/{site.ids['ru']}")
        with page.expect_download():
            page.click("button:has-text('Save the file')")
    finally:
        ctx.close()
    # The reader pages wrote nothing at all into either data directory.
    assert tree_state(site.sample.data.root, site.b_data) == before
    for h in logging.getLogger().handlers:
        h.flush()
    access = (site.logs / "access-a.log").read_text()
    assert "GET /v/" in access  # the access log is on in these tests, and it is used
    hits = grep([site.sample.data.root, site.b_data, site.logs], [ADDRESS, MARKER.encode(), b"203.0.113.77"])
    assert hits == []


def test_an_internal_error_is_logged_without_the_address(site: Site, tmp_path: Path) -> None:
    log_file = tmp_path / "errors.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    app = sample_mod.make_app(site.sample.data)

    async def broken() -> None:
        raise RuntimeError("broken on purpose")

    app[READER].store.snapshot = broken  # type: ignore[method-assign]
    server = sample_mod.Server(app).start()
    try:
        reply = rhttp.get(server.url + "/", headers={"User-Agent": MARKER})
        assert reply.status == 500
        assert reply.header("Cache-Control") == "no-store" and not reply.all("Set-Cookie")
    finally:
        server.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
    text = log_file.read_bytes()
    assert b"broken on purpose" in text and b"reader: internal error" in text
    assert ADDRESS not in text and MARKER.encode() not in text
