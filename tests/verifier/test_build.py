"""The page's minified script (verify.min.js) against its sources, and its size goal.

The committed build must be what the pinned terser makes of the sources today:
its header records the sources' digest (checked everywhere), and where Node.js
and terser are installed (always in CI, after ``npm ci``) the script is rebuilt
and compared byte for byte. The interface strings other than English ship
deflated; the page inflates them itself; where it cannot, it still says in the reader's
language that it cannot check bundles (the rest stays in English).
"""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles import verifier_build
from tamizdat.bundles.verifier import DIST_NAME, page_bytes, strip_header
from tamizdat.bundles.verifier_build import (
    BuildError,
    build_dist,
    dist_path,
    main,
    pack_strings,
    recorded_sha256,
    script_input,
    sources_sha256,
)

from .conftest import VerifierPage, _missing

GOAL_BYTES = 60_000  # bench/verifier_bench.py's goal (KB of 1000 bytes)


def _text(name: str) -> str:
    return resources.files("tamizdat.bundles").joinpath("verifier", name).read_text("utf-8")


def _strings() -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = json.loads(_text("strings.json"))
    return doc


@pytest.fixture(scope="module")
def rebuilt() -> str:
    """verify.min.js as the installed terser makes it today (one run per module)."""
    if shutil.which("node") is None:
        _missing("node")
    try:
        verifier_build.terser_version()
    except BuildError:
        _missing("terser (npm ci)")
    return build_dist()


def test_build_records_the_sources_it_was_made_from() -> None:
    assert recorded_sha256(_text(DIST_NAME)) == sources_sha256(), (
        "bundles/verifier/verify.min.js is stale: run python -m tamizdat.bundles.verifier_build"
    )


def test_rebuild_is_byte_identical(rebuilt: str) -> None:
    assert rebuilt == _text(DIST_NAME), "run python -m tamizdat.bundles.verifier_build"


def test_check_mode_reports_a_stale_build(
    rebuilt: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / DIST_NAME
    stale.write_text("// old\n", encoding="utf-8")
    monkeypatch.setattr(verifier_build, "dist_path", lambda root=None: stale)
    monkeypatch.setattr(verifier_build, "build_dist", lambda root=None: rebuilt)
    assert main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: verify.min.js is stale") and err.count("\n") == 1
    assert stale.read_text(encoding="utf-8") == "// old\n"  # --check writes nothing
    stale.write_text(rebuilt, encoding="utf-8")
    assert main(["--check"]) == 0
    assert dist_path().name == DIST_NAME


def test_missing_terser_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="npm ci"):
        verifier_build.build_dist(tmp_path)


def test_a_lost_placeholder_stops_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    real = verifier_build._source
    monkeypatch.setattr(verifier_build, "_source", lambda n: real(n).replace('"{{STRINGS_PACKED}}"', '""'))
    with pytest.raises(BuildError, match="STRINGS_PACKED"):
        script_input()


def test_input_is_deterministic_and_holds_every_language() -> None:
    assert script_input() == script_input()
    strings = _strings()
    others = {lang: texts for lang, texts in strings.items() if lang != "en"}
    packed = pack_strings(others)
    assert packed in _text(DIST_NAME)
    inflated = zlib.decompress(base64.b64decode(packed), -15)
    assert json.loads(inflated) == others
    assert list(others) == ["ru", "uk", "fa"]
    assert strings["en"]["intro"] in _text(DIST_NAME)


def test_page_is_under_the_size_goal() -> None:
    assert len(page_bytes()) < GOAL_BYTES
    script = strip_header(_text(DIST_NAME))
    assert not script.startswith("//") and "{{" not in script


# -- in the browser -------------------------------------------------------------------------------

LANGS_JS = "() => [...document.querySelectorAll('#lang option')].map(o => o.value)"


def test_languages_arrive_without_a_file(fresh_page: Any) -> None:
    vp: VerifierPage = fresh_page(locale="uk-UA")
    vp.open()
    vp.page.wait_for_function("() => document.documentElement.lang === 'uk'")
    assert vp.page.inner_text("h1") == _strings()["uk"]["h1"]
    assert vp.page.evaluate(LANGS_JS) == ["en", "ru", "uk", "fa"]
    vp.page.select_option("#lang", "fa")
    assert vp.page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == ["fa", "rtl"]
    assert vp.page.inner_text("h1") == _strings()["fa"]["h1"]
    assert not vp.errors and not vp.foreign_requests()


def test_without_inflate_the_reader_is_still_told_in_their_language(fresh_page: Any, bases: Any) -> None:
    """An engine with no DecompressionStream cannot check bundles: the page says so in the
    reader's language (inline fallback strings); everything else stays in English."""
    ru = _strings()["ru"]
    vp: VerifierPage = fresh_page(locale="ru-RU", init="delete window.DecompressionStream;")
    vp.open()
    vp.page.wait_for_function("() => document.documentElement.lang === 'ru'")
    assert vp.page.evaluate(LANGS_JS) == ["en", "ru", "uk", "fa"]
    assert vp.page.inner_text("h1") == _strings()["en"]["h1"]
    base = bases["article"]
    assert vp.verdict(base.path, base.root_keyid)[0] == "unsupported"
    assert ru["unsupported"].split(";")[0] in vp.page.inner_text("#verdict")
    assert not vp.errors
