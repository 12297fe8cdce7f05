"""Reader routes over HTTP: headers, gates, downloads, verification, neutral names, stale state."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import reader_http as rhttp
import reader_sample as sample_mod
from reader_sample import Site

from tamizdat.server.datadir import DataDir

FORBIDDEN_WORDS = ("tamizdat", sample_mod.PUBLISHER.lower(), "obscura", "vesti")


def routes(site: Site) -> list[str]:
    i = site.ids
    return [
        "/",
        "/?lang=ru",
        "/?lang=fa",
        f"/v/{i['edition']}",
        f"/v/{i['en']}",
        f"/v/{i['en']}/1",
        f"/v/{i['fa']}/1?lang=fa",
        f"/v/{i['old']}/1",
        f"/save/{i['en']}",
        f"/share/{i['en']}",
        f"/b/{i['en']}",
        f"/find?id={i['en']}",
        "/check",
        "/mirrors",
        "/clear",
        f"/v/{i['tampered']}/1",
        f"/v/{i['withdrawn']}/1",
        f"/save/{i['tampered']}",
        "/v/" + "0" * 64 + "/1",
        f"/v/{i['en']}/9",
        f"/save/{i['en']}/file",
        f"/share/{i['en']}/code",
        f"/share/{i['en']}/code.png",
    ]


def media_url(site: Site) -> str:
    page = rhttp.get(site.a.url + f"/v/{site.ids['en']}/1").text
    m = re.search(r'src="(/v/[0-9a-f]{64}/media/[0-9a-f]{16}\.png)"', page)
    assert m, "the article shows its image"
    return m.group(1)


def check_headers(reply: rhttp.Reply, where: str) -> None:
    assert reply.header("Cache-Control") == "no-store", where
    assert reply.header("Referrer-Policy") == "no-referrer", where
    csp = reply.header("Content-Security-Policy") or ""
    assert csp.startswith("default-src 'none'"), where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert not reply.all("Set-Cookie"), where
    assert reply.header("X-Content-Type-Options") == "nosniff", where


def test_headers_on_every_route(site: Site) -> None:
    for server in (site.a, site.b):
        for path in [*routes(site), media_url(site)]:
            for method in ("GET", "HEAD"):
                reply = rhttp.request(server.url + path, method)
                check_headers(reply, f"{method} {path}")
        for path in (
            f"/save/{site.ids['en']}/file",
            f"/share/{site.ids['en']}/code",
            f"/share/{site.ids['en']}/code.png",
        ):
            check_headers(rhttp.post(server.url + path, {"confirm": path.split("/")[1]}), f"POST {path}")


def test_pages_carry_lang_and_scripts_by_hash(site: Site) -> None:
    for path in routes(site):
        reply = rhttp.get(site.a.url + path)
        if not (reply.header("Content-Type") or "").startswith("text/html"):
            continue
        html = reply.text
        assert re.search(r'<html lang="(en|ru|uk|fa)" dir="(ltr|rtl)">', html), path
        csp = reply.header("Content-Security-Policy") or ""
        for script in re.findall(r"<script>(.*?)</script>", html, re.S):
            digest = hashlib.sha256(script.encode()).digest()
            import base64

            assert f"'sha256-{base64.b64encode(digest).decode()}'" in csp, path
        assert "<script src" not in html and "<link" not in html, path
        assert "serviceWorker" not in html and "localStorage" not in html and "indexedDB" not in html
        assert "@font-face" not in html and "@import" not in html


def test_confirm_urls_refuse_get(site: Site) -> None:
    i = site.ids["en"]
    for path in (f"/save/{i}/file", f"/share/{i}/code", f"/share/{i}/code.png"):
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            reply = rhttp.request(site.a.url + path, method)
            assert reply.status == 405, (method, path)
            assert not reply.body.startswith(b"PK")
            assert b"\x89PNG" not in reply.body


def test_save_without_confirmation_gives_the_notice_not_the_zip(site: Site) -> None:
    i = site.ids["en"]
    gate = rhttp.get(site.a.url + f"/save/{i}")
    assert gate.status == 200 and not gate.body.startswith(b"PK")
    assert sample_mod.NOTICE_TEXT["en"] in gate.text
    assert f"Signed by <bdi>{sample_mod.PUBLISHER}</bdi>" in gate.text
    # A POST without the form's confirmation shows the notice again.
    for form in ({}, {"confirm": "share"}, {"confirm": "yes"}):
        reply = rhttp.post(site.a.url + f"/save/{i}/file", form)
        assert reply.status == 400 and not reply.body.startswith(b"PK")
        assert sample_mod.NOTICE_TEXT["en"] in reply.text
    for form in ({}, {"confirm": "save"}):
        for path in (f"/share/{i}/code", f"/share/{i}/code.png"):
            reply = rhttp.post(site.a.url + path, form)
            assert reply.status == 400 and b"<svg" not in reply.body and b"\x89PNG" not in reply.body


def test_gate_wording_and_button_order(site: Site) -> None:
    html = rhttp.get(site.a.url + f"/save/{site.ids['en']}").text
    main = html[html.index("<main>") : html.index("</main>")]
    h1 = main.index("<h1>")
    focusable = [
        m.start() for m in re.finditer(r"<(a|button|input(?! type=\"hidden\")|select|textarea|details)\b", main)
    ]
    first = min(p for p in focusable if p > h1)
    assert main[first:].startswith('<a class="btn safe"') and "Go back without saving" in main[first : first + 300]
    assert ">Save the file</button>" in main
    assert main.index("Go back without saving") < main.index("Save the file</button>")
    for word in (">OK<", ">Yes<", ">Continue<"):
        assert word not in main
    # Our words: what to do first, the act, reading is not the act, the limits, no location asked.
    for phrase in (
        "First read the publisher’s notice",
        "Saving puts a copy",
        "Reading on this site is not saving",
        "stays on your device until you delete it",
        "Your network can see",
        "does not ask where you are",
        "Belarus and Russia",
    ):
        assert phrase in main, phrase
    share = rhttp.get(site.a.url + f"/share/{site.ids['en']}").text
    assert share.index("Go back without sharing") < share.index("Make the link and QR code</button>")
    assert "Reading on this site is not sharing" in share


def test_download_is_the_verified_file_byte_for_byte(site: Site, tmp_path: Path) -> None:
    i = site.ids["en"]
    first = rhttp.post(site.a.url + f"/save/{i}/file", {"confirm": "save"})
    second = rhttp.post(
        site.a.url + f"/save/{i}/file",
        {"confirm": "save"},
        headers={"User-Agent": "someone else", "Accept-Language": "fa"},
    )
    mirror = rhttp.post(site.b.url + f"/save/{i}/file", {"confirm": "save"})
    assert first.status == 200 and first.body.startswith(b"PK")
    assert first.header("Content-Type") == "application/zip"
    assert first.header("Content-Disposition") == f'attachment; filename="{i}.zip"'
    assert first.header("Cache-Control") == "no-store"
    assert first.header("Location") is None
    assert first.body == second.body == mirror.body == site.sample.data.bundle_path(i).read_bytes()
    # Neutral names: the file name and every entry name.
    names = zipfile.ZipFile(io.BytesIO(first.body)).namelist()
    for text in [*names, first.header("Content-Disposition") or ""]:
        low = text.lower()
        assert not any(w in low for w in FORBIDDEN_WORDS), text
        assert not any(h.lower() in low for h in sample_mod.HEADLINES.values()), text
    # And `unzip -l` agrees.
    if shutil.which("unzip"):
        import subprocess

        out = tmp_path / f"{i}.zip"
        out.write_bytes(first.body)
        listing = subprocess.run(["unzip", "-l", str(out)], capture_output=True, text=True, check=True).stdout
        assert not any(w in listing.lower() for w in FORBIDDEN_WORDS)
        assert "court" not in listing.lower()


def test_downloaded_file_passes_tamizdat_verify(site: Site, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tamizdat.bundles.cli import verify_cmd

    i = site.ids["fa"]
    body = rhttp.post(site.a.url + f"/save/{i}/file?lang=fa", {"confirm": "save"}).body
    path = tmp_path / f"{i}.zip"
    path.write_bytes(body)
    result = CliRunner().invoke(verify_cmd, [str(path), "--root-key", site.keyid])
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output


def test_unverified_bundles_are_never_rendered(site: Site) -> None:
    t = site.ids["tampered"]
    for path in (f"/v/{t}", f"/v/{t}/1", f"/save/{t}", f"/share/{t}"):
        reply = rhttp.get(site.a.url + path)
        assert reply.status == 502, path
        assert "Tampered story" not in reply.text
        assert "failed its check" in reply.text
    reply = rhttp.post(site.a.url + f"/save/{t}/file", {"confirm": "save"})
    assert reply.status == 502 and not reply.body.startswith(b"PK")
    reply = rhttp.post(site.a.url + f"/share/{t}/code", {"confirm": "share"})
    assert reply.status == 502 and b"<svg" not in reply.body
    assert "Tampered story" not in rhttp.get(site.a.url + "/").text


def test_withdrawn_superseded_and_unknown(site: Site) -> None:
    w = site.ids["withdrawn"]
    reply = rhttp.get(site.a.url + f"/v/{w}/1")
    assert reply.status == 410 and "Withdrawn story" not in reply.text and "Factual error" in reply.text
    assert rhttp.post(site.a.url + f"/save/{w}/file", {"confirm": "save"}).status == 410
    home = rhttp.get(site.a.url + "/").text
    assert "Withdrawn story" not in home and "Hearing set for Monday" not in home
    old = rhttp.get(site.a.url + f"/v/{site.ids['old']}/1").text
    assert "A newer version of this file exists." in old and f"/v/{site.ids['en']}" in old
    assert rhttp.get(site.a.url + "/v/" + "1" * 64).status == 404
    assert rhttp.get(site.a.url + "/v/xyz").status == 404


def test_home_lists_latest_articles_per_language(site: Site) -> None:
    html = rhttp.get(site.a.url + "/").text
    for lang in ("en", "ru", "uk", "fa"):
        assert f'<section lang="{lang}"' in html
    assert sample_mod.HEADLINES["fa"] in html
    assert '<section lang="fa" dir="rtl"' in html
    ru = rhttp.get(site.a.url + "/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}).text
    assert '<html lang="ru" dir="ltr">' in ru
    assert ru.index('<section lang="ru"') < ru.index('<section lang="en"')


def test_article_page(site: Site) -> None:
    html = rhttp.get(site.a.url + f"/v/{site.ids['en']}/1?lang=uk").text
    assert '<html lang="uk" dir="ltr">' in html
    assert '<article lang="en" dir="ltr">' in html
    for part in (
        sample_mod.HEADLINES["en"],
        "A short summary of the hearing.",
        "Staff reporter",
        "Background",
        "The courthouse",
        'alt="A blue rectangle"',
        "<time datetime=",
    ):
        assert part in html, part
    assert "<title>Стаття</title>" in html
    img = rhttp.get(site.a.url + media_url(site))
    assert img.status == 200 and img.body.startswith(b"\x89PNG") and img.header("Content-Type") == "image/png"
    fa = rhttp.get(site.a.url + f"/v/{site.ids['fa']}/1?lang=fa").text
    assert '<html lang="fa" dir="rtl">' in fa and '<article lang="fa" dir="rtl">' in fa
    assert f'<bdi dir="ltr" class="id">{site.ids["fa"]}</bdi>' in fa


def test_titles_and_urls_are_neutral(site: Site) -> None:
    for path in routes(site):
        html = rhttp.get(site.a.url + path).text
        m = re.search(r"<title>(.*?)</title>", html)
        if not m:
            continue
        title = m.group(1).lower()
        assert not any(w in title for w in FORBIDDEN_WORDS), (path, title)
        assert not any(h.lower() in title for h in sample_mod.HEADLINES.values()), (path, title)
        for href in re.findall(r'href="(/[^"]*)"', html):
            assert re.fullmatch(r"/[a-z0-9/._=?&;-]*", href), href


def test_descriptive_titles_setting(site: Site, tmp_path: Path) -> None:
    server = sample_mod.Server(sample_mod.make_app(site.sample.data, descriptive_titles=True)).start()
    try:
        html = rhttp.get(server.url + f"/v/{site.ids['en']}/1").text
        assert f"<title>{sample_mod.HEADLINES['en']}</title>" in html
    finally:
        server.stop()


def test_landing_page_is_the_same_for_every_link(site: Site) -> None:
    a = rhttp.get(site.a.url + f"/b/{site.ids['en']}")
    b = rhttp.get(site.a.url + f"/b/{site.ids['ru']}")
    c = rhttp.get(site.a.url + "/b/" + "f" * 64)
    assert a.status == b.status == c.status == 200
    assert a.body == b.body == c.body
    html = a.text
    assert site.ids["en"] not in html
    assert 'name="robots" content="noindex' in html
    assert "og:" not in html and "twitter:" not in html
    assert "<title>A shared file</title>" in html
    assert "scripts are off" in html  # the no-script explanation


def test_find_form_goes_to_the_file(site: Site) -> None:
    reply = rhttp.get(site.a.url + f"/find?id=https://x/b/{site.ids['ru']}&lang=ru")
    assert reply.status == 303 and reply.header("Location") == f"/v/{site.ids['ru']}?lang=ru"


def test_clear_page(site: Site) -> None:
    reply = rhttp.get(site.a.url + "/clear")
    assert reply.header("Clear-Site-Data") == '"cache", "storage"'
    for browser in ("Chrome on Android", "Firefox on Android", "Safari on iPhone", "Ctrl+Shift+Delete", "Downloads"):
        assert browser in reply.text


def test_check_and_mirrors_pages(site: Site) -> None:
    html = rhttp.get(site.a.url + "/check?lang=fa").text
    assert f'<bdi dir="ltr" class="id">{site.keyid}</bdi>' in html
    mirrors = rhttp.get(site.a.url + "/mirrors").text
    for m in site.sample.mirrors:
        assert f'href="{m}"' in mirrors


def test_verifier_page_is_served_when_it_matches_the_index(site: Site, tmp_path: Path) -> None:
    base = tmp_path / "v"
    shutil.copytree(site.sample.data.root, base)
    data = DataDir(base)
    page = (
        b'<!DOCTYPE html><html lang="en"><head><meta http-equiv="Content-Security-Policy" '
        b"content=\"default-src 'none'; script-src 'sha256-abc'\"><title>Verify</title></head><body></body></html>"
    )
    (data.public / "verify.html").write_bytes(page)
    server = sample_mod.Server(sample_mod.make_app(data)).start()
    try:
        reply = rhttp.get(server.url + "/verify.html")
        assert reply.status == 200 and reply.body == page
        assert reply.header("Content-Security-Policy") == "default-src 'none'; script-src 'sha256-abc'"
        check_headers(reply, "/verify.html")
        check = rhttp.get(server.url + "/check").text
        assert hashlib.sha256(page).hexdigest() in check
        assert 'href="/verify.html" download="verify.html"' in check
    finally:
        server.stop()


def test_audience_hides_only_notices_that_cannot_apply(site: Site) -> None:
    i = site.ids["iran"]
    on_a = rhttp.get(site.a.url + f"/save/{i}").text
    on_b = rhttp.get(site.b.url + f"/save/{i}").text
    assert "Only for readers in Iran." in on_a
    assert "Only for readers in Iran." not in on_b
    assert "concern places this site does not serve" in on_b
    # A notice for RU/BY and one for everywhere stay on B.
    assert sample_mod.NOTICE_TEXT["en"] in rhttp.get(site.b.url + f"/save/{site.ids['en']}").text
    assert sample_mod.NOTICE_TEXT["en"] in rhttp.get(site.b.url + f"/save/{site.ids['fa']}").text
    # The reader is never asked where they are.
    assert "<select" not in on_b and "region" not in on_b.lower().replace("regions", "")


def test_stale_index_still_serves_what_is_verified(tmp_path: Path) -> None:
    smp = sample_mod.build_sample(tmp_path, expired=True)
    server = sample_mod.Server(sample_mod.make_app(smp.data)).start()
    try:
        home = rhttp.get(server.url + "/").text
        assert "Not updated since" in home and sample_mod.HEADLINES["en"] in home
        art = rhttp.get(server.url + f"/v/{smp.ids['en']}/1").text
        assert "Not updated since" in art
        assert rhttp.post(server.url + f"/save/{smp.ids['en']}/file", {"confirm": "save"}).body.startswith(b"PK")
    finally:
        server.stop()


def test_bad_index_shows_nothing(tmp_path: Path) -> None:
    smp = sample_mod.build_sample(tmp_path)
    raw = bytearray((smp.public / "index.json").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (smp.public / "index.json").write_bytes(bytes(raw))
    server = sample_mod.Server(sample_mod.make_app(smp.data)).start()
    try:
        home = rhttp.get(server.url + "/").text
        assert sample_mod.HEADLINES["en"] not in home and "could not check its list" in home
        assert rhttp.get(server.url + f"/v/{smp.ids['en']}/1").status == 404
    finally:
        server.stop()


def test_replaced_file_is_verified_again(tmp_path: Path) -> None:
    smp = sample_mod.build_sample(tmp_path)
    server = sample_mod.Server(sample_mod.make_app(smp.data)).start()
    try:
        i = smp.ids["ru"]
        assert rhttp.get(server.url + f"/v/{i}/1").status == 200
        path = smp.data.bundle_path(i)
        raw = bytearray(path.read_bytes())
        raw[-100] ^= 0x01  # inside the central directory
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(raw))
        tmp.replace(path)  # a new inode, as a mirror's rename would make
        assert rhttp.get(server.url + f"/v/{i}/1").status == 502
        assert not rhttp.post(server.url + f"/save/{i}/file", {"confirm": "save"}).body.startswith(b"PK")
    finally:
        server.stop()


@pytest.mark.parametrize("lang", ["en", "ru", "uk", "fa"])
def test_every_language_renders_every_page(site: Site, lang: str) -> None:
    for path in routes(site):
        sep = "&" if "?" in path else "?"
        reply = rhttp.get(site.a.url + path + (sep + f"lang={lang}" if "lang=" not in path else ""))
        if (reply.header("Content-Type") or "").startswith("text/html"):
            want = "fa" if "lang=fa" in path else lang
            if "lang=" in path and "lang=fa" not in path:
                want = path.split("lang=")[1][:2]
            assert f'<html lang="{want}"' in reply.text, path
            assert reply.status < 500 or reply.status == 502, path
