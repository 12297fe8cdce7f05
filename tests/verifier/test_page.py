"""The page itself: self-contained, silent on the network, honest, readable, multilingual."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from tamizdat.bundles.verifier import build_page, csp_hash, page_bytes, page_sha256, register

from .conftest import VerifierPage
from .corpus import Base, files_of, repack, resign_with

FRAME_READY = """() => { const f = document.querySelector('#frame-box iframe');
  return !!(f && f.contentDocument && f.contentDocument.querySelector('article')); }"""
FRAME_TEXT = "() => document.querySelector('#frame-box iframe').contentDocument.body.innerText"


def _split(page: str) -> tuple[str, str]:
    m = re.search(r"<script>(.*)</script>", page, re.DOTALL)
    assert m
    return page[: m.start()] + page[m.end() :], m.group(1)


def _csp(page: str) -> dict[str, list[str]]:
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert m
    return {d.split()[0]: d.split()[1:] for d in m.group(1).split("; ")}


# -- the file -------------------------------------------------------------------------------------


def test_page_is_one_self_contained_file() -> None:
    page = page_bytes().decode("utf-8")
    markup, script = _split(page)
    assert page.count("<script") == 1 and markup.count("<style") == 1
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"\s(src|href|style|on[a-z]+)\s*=", markup), "no loads, inline styles or handlers in markup"
    for api in ("fetch(", "XMLHttpRequest", "WebSocket", "sendBeacon", "EventSource", "import(", "Worker(", "eval("):
        assert api not in script
    assert "document.cookie" not in script


def test_csp_lists_exactly_the_inline_code() -> None:
    page = page_bytes().decode("utf-8")
    _, script = _split(page)
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert style
    frame_css = resources.files("tamizdat.bundles").joinpath("verifier", "frame.css").read_text("utf-8")
    csp = _csp(page)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == [f"'{csp_hash(script)}'"]
    assert csp["style-src"] == [f"'{csp_hash(style.group(1))}'", f"'{csp_hash(frame_css)}'"]
    assert csp["img-src"] == ["blob:"]
    for directive in ("connect-src", "frame-src", "base-uri", "form-action"):
        assert csp[directive] == ["'none'"]
    assert csp_hash(frame_css) in script  # the reading frame's own policy


def test_page_is_deterministic_and_hashed() -> None:
    assert build_page() == page_bytes()
    assert page_sha256() == hashlib.sha256(page_bytes()).hexdigest()
    for name in ("verify.html", "core.js", "ui.js", "frame.css"):
        assert resources.files("tamizdat.bundles").joinpath("verifier", name).is_file()


def test_cli(tmp_path: Path) -> None:
    group = click.Group()
    register(group)
    runner = CliRunner()
    out = tmp_path / "v.html"
    res = runner.invoke(group, ["verifier", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == page_bytes()
    res = runner.invoke(group, ["verifier", "--hash"])
    assert res.exit_code == 0 and res.output == page_sha256() + "\n"
    res = runner.invoke(group, ["verifier", "-o", str(tmp_path / "w.html"), "--hash", "--json"])
    assert json.loads(res.output)["sha256"] == page_sha256()
    assert runner.invoke(group, ["verifier"]).exit_code == 2


def test_every_language_has_every_string() -> None:
    strings = json.loads(resources.files("tamizdat.bundles").joinpath("verifier", "strings.json").read_text("utf-8"))
    keys = {lang: set(texts) for lang, texts in strings.items()}
    assert set(keys) == {"en", "ru", "uk", "fa"}
    assert len(keys["en"]) > 40
    for lang in ("ru", "uk", "fa"):
        assert keys[lang] == keys["en"], lang


# -- in the browser -------------------------------------------------------------------------------


def _hostile(base: Base) -> bytes:
    files = files_of(base.data)
    doc = json.loads(files[b"articles/1.json"])
    doc["body_html"] = (
        "<p>Visible paragraph.</p>"
        "<script>parent.pwned = 1; document.title = 'pwned'</script>"
        '<img src="https://example.org/x.png" onerror="parent.pwned = 2">'
        '<a href="javascript:parent.pwned=3">js link</a> '
        '<a href="https://example.org/page">normal link</a>'
        '<iframe src="https://example.org/frame"></iframe>'
        "<style>body{background:url(https://example.org/bg.png)}</style>"
        '<p style="background:url(https://example.org/s.png)">styled</p>'
        '<form action="https://example.org/f"><input name="q"></form>'
        '<meta http-equiv="refresh" content="0;url=https://example.org/r">'
        '<svg><image href="https://example.org/svg.png"/></svg>'
    )
    doc["sections"] = [{"heading": "Head", "html": '<p onclick="parent.pwned=4">section text</p>'}]
    return resign_with(base, {b"articles/1.json": json.dumps(doc).encode()})


def test_valid_bundle_notice_first_then_articles(verifier: VerifierPage, bases: dict[str, Base]) -> None:
    base = bases["article"]
    assert verifier.verdict(base.path, base.root_keyid) == ("valid", None, None)
    page = verifier.page
    page.wait_for_function(FRAME_READY)
    assert page.is_visible("#reading")
    order = page.evaluate(
        """() => { const n = document.querySelector('#notices .notice');
        const f = document.querySelector('#frame-box iframe');
        return !!(n && f && (n.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING)); }"""
    )
    assert order, "the signed notice comes before the articles"
    notices = page.inner_text("#notices")
    assert "Sharing this publication can be punished" in notices
    assert "Signed by Example Newsroom" in notices
    text = page.evaluate(FRAME_TEXT)
    assert "Plant discharged waste" in text and "Paragraph one of story 1" in text
    assert page.evaluate("() => document.querySelector('#frame-box iframe').contentDocument.images[0].naturalWidth") > 0
    assert page.get_attribute("#frame-box iframe", "sandbox") == "allow-same-origin"
    assert not verifier.errors


def test_no_network_while_verifying_and_reading(fresh_page: Any, bases: dict[str, Base], tmp_path: Path) -> None:
    vp: VerifierPage = fresh_page()
    base = bases["edition"]
    assert vp.verdict(base.path, base.root_keyid) == ("valid", None, None)
    buttons = vp.page.locator("#toc button")
    assert buttons.count() == 3
    for i in range(3):
        buttons.nth(i).click()
        vp.page.wait_for_function(FRAME_READY)
    hostile = tmp_path / "hostile.zip"
    hostile.write_bytes(_hostile(bases["article"]))
    assert vp.verdict(hostile, bases["article"].root_keyid) == ("valid", None, None)
    vp.page.wait_for_function(FRAME_READY)
    vp.page.frame_locator("#frame-box iframe").locator("a", has_text="normal link").click()
    vp.page.wait_for_timeout(300)
    assert vp.requests and vp.requests[0] == vp.url
    assert not vp.foreign_requests(), vp.foreign_requests()
    assert any(u.startswith("blob:") for u in vp.requests)  # the images, from verified bytes


def test_bundle_html_stays_inert(verifier: VerifierPage, bases: dict[str, Base], tmp_path: Path) -> None:
    path = tmp_path / "hostile.zip"
    path.write_bytes(_hostile(bases["article"]))
    assert verifier.verdict(path, bases["article"].root_keyid) == ("valid", None, None)
    page = verifier.page
    page.wait_for_function(FRAME_READY)
    inside = page.evaluate(
        """() => { const d = document.querySelector('#frame-box iframe').contentDocument;
        const bad = 'script,iframe,style:not(head style),form,input,meta[http-equiv=refresh],svg,' +
          'img:not(figure img),[onclick],[onerror],[style],a[href]';
        return {bad: d.querySelectorAll(bad).length, text: d.body.innerText}; }"""
    )
    assert inside["bad"] == 0
    assert "Visible paragraph." in inside["text"] and "section text" in inside["text"]
    assert "https://example.org/page" in inside["text"]  # links are shown, not followed
    assert page.evaluate("() => window.pwned") is None
    assert "pwned" not in page.title()
    assert not verifier.foreign_requests()


@pytest.mark.parametrize("what", ["media", "article-data", "manifest", "root"])
def test_invalid_bundle_shows_nothing(
    verifier: VerifierPage, bases: dict[str, Base], tmp_path: Path, what: str
) -> None:
    base = bases["article"]
    files = files_of(base.data)
    name = {
        "media": next(n for n in files if n.startswith(b"media/")),
        "article-data": b"articles/1.json",
        "manifest": b"meta/manifest.dsse.json",
        "root": b"meta/roots/1.json",
    }[what]
    content = bytearray(files[name])
    content[len(content) // 2] ^= 0x01
    path = tmp_path / f"{what}.zip"
    path.write_bytes(repack(b"", {**files, name: bytes(content)}))
    kind, step, code = verifier.verdict(path, base.root_keyid)
    assert kind == "invalid" and step and code
    page = verifier.page
    assert page.get_attribute("#reading", "hidden") is not None
    assert page.locator("#frame-box iframe").count() == 0
    shown = page.inner_text("body")
    for secret in ("Plant discharged waste", "Paragraph one", "Sharing this publication", "Example Newsroom"):
        assert secret not in shown
    assert f"{step} · {code}" in page.inner_text("#verdict")


@pytest.mark.parametrize(
    "init",
    [
        "delete window.DecompressionStream;",
        "Object.defineProperty(Crypto.prototype, 'subtle', {get() { return undefined; }});",
        "SubtleCrypto.prototype.verify = async function () { return true; };",
        "SubtleCrypto.prototype.importKey = async function () { throw new DOMException('no', 'NotSupportedError'); };",
        """window.DecompressionStream = class { constructor() { const t = new TransformStream();
           this.readable = t.readable; this.writable = t.writable; } };""",
    ],
    ids=["no-decompression", "no-subtle", "verify-always-true", "no-ed25519", "lenient-inflate"],
)
def test_old_browsers_are_told_so(fresh_page: Any, bases: dict[str, Base], init: str) -> None:
    vp: VerifierPage = fresh_page(init=init)
    base = bases["article"]
    assert vp.verdict(base.path, base.root_keyid)[0] == "unsupported"
    assert "tamizdat verify" in vp.page.inner_text("#verdict")
    assert vp.page.get_attribute("#reading", "hidden") is not None


LANGS = [
    ("en-US", "en", "ltr", "Not valid"),
    ("ru-RU", "ru", "ltr", "не прошёл"),
    ("uk-UA", "uk", "ltr", "не пройшов"),
    ("fa-IR", "fa", "rtl", "معتبر نیست"),
]


@pytest.mark.parametrize(("locale", "lang", "direction", "invalid_text"), LANGS, ids=[x[1] for x in LANGS])
def test_languages_and_small_screens(
    fresh_page: Any, bases: dict[str, Base], tmp_path: Path, locale: str, lang: str, direction: str, invalid_text: str
) -> None:
    vp: VerifierPage = fresh_page(locale=locale, width=320)
    base = bases["edition"]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(base.data[:-1])
    assert vp.verdict(bad, base.root_keyid)[0] == "invalid"
    page = vp.page
    assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [lang, direction]
    assert invalid_text in page.inner_text("#verdict")
    assert vp.verdict(base.path, base.root_keyid) == ("valid", None, None)
    page.wait_for_function(FRAME_READY)
    page.wait_for_timeout(100)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    ids = page.evaluate("() => [...document.querySelectorAll('#verdict dd bdi')].map(b => [b.dir, b.textContent])")
    assert [base.root_keyid != x[1] and x[0] for x in ids[:1]] == ["ltr"] and len(ids[0][1]) == 64
    # The explicit switch re-renders everything in the chosen language.
    other = "en" if lang != "en" else "fa"
    page.select_option("#lang", other)
    assert page.evaluate("() => document.documentElement.lang") == other
    assert page.inner_text("#verdict").startswith("Valid" if other == "en" else "معتبر")


def test_nothing_stored_unless_asked(fresh_page: Any, bases: dict[str, Base]) -> None:
    vp: VerifierPage = fresh_page()
    base = bases["article"]
    assert vp.verdict(base.path, base.root_keyid)[0] == "valid"
    page = vp.page
    assert page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    assert page.input_value("#root-key") == base.root_keyid
    assert page.inner_text("#key-note") != ""  # "filled in from the link"
    page.check("#remember")
    assert page.evaluate("() => Object.entries(localStorage)") == [["k", base.root_keyid]]
    vp.open()
    assert page.input_value("#root-key") == base.root_keyid and page.is_checked("#remember")
    other = bases["rotated"].root_keyid
    vp.open(other)
    assert page.input_value("#root-key") == other
    assert "different key" in page.inner_text("#key-note")
    page.uncheck("#remember")
    assert page.evaluate("() => localStorage.length") == 0


def test_key_typed_after_the_file(fresh_page: Any, bases: dict[str, Base]) -> None:
    vp: VerifierPage = fresh_page()
    base = bases["article"]
    vp.open()
    vp.page.set_input_files("#bundle", str(base.path))
    vp.page.wait_for_function("() => document.getElementById('verdict').dataset.verdict === 'need-key'")
    vp.page.fill("#root-key", "not a key")
    assert "64" in vp.page.inner_text("#key-note")
    vp.page.fill("#root-key", "  " + base.root_keyid.upper() + " ")
    vp.page.wait_for_function("() => document.getElementById('verdict').dataset.verdict === 'valid'")


def test_pinned_key_mismatch(verifier: VerifierPage, bases: dict[str, Base]) -> None:
    base = bases["article"]
    other = bases["rotated"].root_keyid
    assert verifier.verdict(base.path, other) == ("invalid", 13, "root-not-pinned")
    assert "key you entered" in verifier.page.inner_text("#verdict")


def test_reader_sees_signed_notice_text_not_unsigned(verifier: VerifierPage, bases: dict[str, Base]) -> None:
    # The notice shown is the manifest's (signed); index.html's copy is never read.
    base = bases["edition"]
    assert verifier.verdict(base.path, base.root_keyid)[0] == "valid"
    texts = verifier.page.inner_text("#notices")
    payload = json.loads(base64.b64decode(json.loads(files_of(base.data)[b"meta/manifest.dsse.json"])["payload"]))
    assert all(any(t in texts for t in n["text"].values()) for n in payload["notices"])


def test_missing_browser_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from . import conftest

    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception):
        conftest._missing("/usr/bin/chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        conftest._missing("/usr/bin/chromium")


def test_drop_a_file_on_the_page(fresh_page: Any, bases: dict[str, Base]) -> None:
    vp: VerifierPage = fresh_page()
    base = bases["article"]
    vp.open(base.root_keyid)
    vp.page.evaluate(
        """(b64) => { const bin = atob(b64), u = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([u], 'dropped.zip', {type: 'application/zip'}));
        document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""",
        base64.b64encode(base.data).decode(),
    )
    vp.page.wait_for_function("() => document.getElementById('verdict').dataset.verdict === 'valid'")
    vp.page.wait_for_function(FRAME_READY)
    assert not vp.foreign_requests()
