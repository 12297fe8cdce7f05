"""Golden bundles: rebuilt byte for byte from fixed keys, and valid under the pinned root key id."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import (
    GOLDEN,
    GOLDEN_NAMES,
    GOLDEN_ROOT_KEYID,
    GOLDEN_SIGNING_KEY,
    MANIFEST,
    canonical_zip,
    contents,
    golden_keydir,
    read_zip,
    write_zip,
)

from tamizdat.bundles import verify_bundle
from tamizdat.cli import main
from tamizdat.keys.root import verify_root_chain

BUNDLE_IDS = json.loads((GOLDEN / "bundle_ids.json").read_text())


def _roots_in(files: dict[str, bytes]) -> list[str]:
    return sorted(n for n in files if n.startswith("meta/roots/"))


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_bundle_regenerates_byte_identical(name: str, regenerated: Path) -> None:
    assert (regenerated / "golden" / name).read_bytes() == (GOLDEN / name).read_bytes()


def test_golden_key_documents_regenerate_byte_identical(regenerated: Path) -> None:
    checked_in = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())
    rebuilt = sorted(p.relative_to(regenerated / "golden") for p in (regenerated / "golden").rglob("*") if p.is_file())
    assert rebuilt == checked_in
    for rel in checked_in:
        assert (regenerated / "golden" / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_bundle_verifies_against_the_fixed_root_key_id(name: str, root_keyid: str) -> None:
    result = verify_bundle(GOLDEN / name, root_keyid=root_keyid)
    payload = base64.b64decode(json.loads(contents((GOLDEN / name).read_bytes())[MANIFEST])["payload"])
    assert result.bundle_id == hashlib.sha256(payload).hexdigest() == BUNDLE_IDS[name]
    assert result.manifest.root_keyid == root_keyid
    assert result.manifest.publisher == "Example Newsroom"


def test_pinned_id_is_the_first_root_key_of_version_1(root_keyid: str) -> None:
    env = json.loads((GOLDEN / "keys" / "roots" / "1.json").read_bytes())
    root = json.loads(base64.b64decode(env["payload"]))
    first = sorted(root["root_keys"], key=lambda k: k["keyid"])[0]
    assert hashlib.sha256(base64.b64decode(first["public"])).hexdigest() == first["keyid"] == root_keyid
    assert root_keyid == GOLDEN_ROOT_KEYID


def test_checked_in_root_documents_form_the_chain(root_keyid: str) -> None:
    docs = [(GOLDEN / "keys" / "roots" / f"{v}.json").read_bytes() for v in (1, 2, 3)]
    chain = verify_root_chain(docs, pinned_keyid=root_keyid)
    assert [r.version for r in chain.roots] == [1, 2, 3]
    assert (GOLDEN / "keys" / "root.json").read_bytes() == docs[-1]
    assert root_keyid not in chain.newest.root_keys  # version 2 rotated the root key


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_bundles_carry_the_checked_in_roots(name: str, golden_bytes: dict[str, bytes]) -> None:
    files = contents(golden_bytes[name])
    for entry_name in _roots_in(files):
        assert files[entry_name] == (GOLDEN / "keys" / "roots" / entry_name.rsplit("/", 1)[1]).read_bytes()


def test_article_golden_holds_one_english_article_with_a_small_png(golden_bytes: dict[str, bytes]) -> None:
    data = golden_bytes["article-en.zip"]
    files = contents(data)
    result = verify_bundle(GOLDEN / "article-en.zip", root_keyid=GOLDEN_ROOT_KEYID)
    assert result.manifest.kind == "article"
    assert [(a.id, a.lang, a.version) for a in result.manifest.articles] == [("court-2026", "en", 1)]
    assert result.signing_keyid == GOLDEN_SIGNING_KEY.keyid
    assert _roots_in(files) == ["meta/roots/1.json"]
    images = [n for n in files if n.startswith("media/")]
    assert len(images) == 1 and images[0].endswith(".png")
    png = files[images[0]]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and 100 < len(png) < 1000
    assert images[0] == f"media/{hashlib.sha256(png).hexdigest()[:16]}.png"
    article = json.loads(files["articles/1.json"])
    assert article["images"][0]["path"] == images[0]
    assert article["dir"] == "ltr"
    assert [n.regions for n in result.manifest.notices] == [("BY", "RU")]
    # Stored media, deflated text, as the canonical form requires.
    methods = {e.text_name: e.method for e in read_zip(data)}
    assert methods[images[0]] == 0 and methods["index.html"] == 8


def test_edition_golden_holds_en_ru_fa_and_a_multilingual_notice(golden_bytes: dict[str, bytes]) -> None:
    result = verify_bundle(GOLDEN / "edition-multilang.zip", root_keyid=GOLDEN_ROOT_KEYID)
    m = result.manifest
    assert m.kind == "edition" and m.title == "Weekly edition 5/2026"
    assert [a.lang for a in m.articles] == ["en", "ru", "fa"]
    risk = next(n for n in m.notices if n.id == "risk")
    assert set(risk.text) == {"en", "ru", "fa"}
    assert risk.regions == ("BY", "IR", "RU")
    files = contents(golden_bytes["edition-multilang.zip"])
    fa = json.loads(files["articles/3.json"])
    assert fa["dir"] == "rtl" and fa["lang"] == "fa"
    assert 'dir="rtl"' in files["articles/3.html"].decode()


def test_rotated_golden_carries_roots_1_to_3(golden_bytes: dict[str, bytes]) -> None:
    result = verify_bundle(GOLDEN / "rotated.zip", root_keyid=GOLDEN_ROOT_KEYID)
    files = contents(golden_bytes["rotated.zip"])
    assert _roots_in(files) == ["meta/roots/1.json", "meta/roots/2.json", "meta/roots/3.json"]
    assert result.root.version == 3
    assert GOLDEN_ROOT_KEYID not in result.root.root_keys
    assert result.signing_keyid != GOLDEN_SIGNING_KEY.keyid  # signed by the key rotate-signing added
    assert result.manifest.supersedes == (BUNDLE_IDS["article-en.zip"],)
    assert result.manifest.articles[0].version == 2


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_hand_rolled_writer_reproduces_golden_bytes(name: str, golden_bytes: dict[str, bytes]) -> None:
    """The test ZIP writer is exact: fixtures made with it differ from goldens only where intended."""
    data = golden_bytes[name]
    assert write_zip(read_zip(data)) == data
    assert canonical_zip(contents(data)) == data


def test_cli_bundle_build_reproduces_the_article_golden(tmp_path: Path, clean_env: None) -> None:
    import make_assets

    golden_keydir(tmp_path / "keys")
    inputs = make_assets.write_inputs(tmp_path / "inputs")
    out = tmp_path / "out.zip"
    args = ["bundle", "build", str(inputs["article-en"]), "--keys", str(tmp_path / "keys"), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--created", "2026-02-01T12:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bundle_id"] == BUNDLE_IDS["article-en.zip"]
    assert report["signing_keyid"] == GOLDEN_SIGNING_KEY.keyid
    assert out.read_bytes() == (GOLDEN / "article-en.zip").read_bytes()


def test_make_assets_script_writes_the_same_tree(tmp_path: Path) -> None:
    """``python tests/make_assets.py DIR`` works as a script and reproduces tests/assets/ exactly."""
    import subprocess
    import sys

    from helpers import ASSETS, TESTS

    out = tmp_path / "assets"
    result = subprocess.run(
        [sys.executable, str(TESTS / "make_assets.py"), str(out)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for folder in ("golden", "bad"):
        made = sorted(p.relative_to(out) for p in (out / folder).rglob("*") if p.is_file())
        assert made == sorted(p.relative_to(ASSETS) for p in (ASSETS / folder).rglob("*") if p.is_file())
        for rel in made:
            assert (out / rel).read_bytes() == (ASSETS / rel).read_bytes(), rel
