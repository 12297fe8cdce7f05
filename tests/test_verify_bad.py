"""Every rejection rule has a named bad bundle, rejected at exactly its step with its code.

The table is tests/assets/bad/expected.json (written with the fixtures by
tests/make_assets.py). Each row is checked through the Python API and through
``tamizdat verify FILE --root-key ID --json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BAD, GOLDEN, GOLDEN_ROOT_KEYID, contents

from tamizdat.bundles import verify_bundle
from tamizdat.cli import main
from tamizdat.errors import RejectedError

TABLE: dict[str, dict[str, str]] = json.loads((BAD / "expected.json").read_text())
NAMES = sorted(TABLE)
DOC = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text()

# The acceptance list of the issue: each hazard must have its own fixture.
REQUIRED = {
    "article-byte-flipped.zip": ("22", "entry-corrupt"),
    "manifest-payload-flipped.zip": ("17", "manifest-bad-signature"),
    "signature-flipped.zip": ("17", "manifest-bad-signature"),
    "entry-not-in-manifest.zip": ("21", "entry-not-in-manifest"),
    "entry-missing.zip": ("21", "entry-missing"),
    "duplicate-name.zip": ("8", "zip-duplicate-name"),
    "case-collision.zip": ("8", "zip-case-collision"),
    "dotdot-path.zip": ("8", "zip-bad-name"),
    "absolute-path.zip": ("8", "zip-bad-name"),
    "backslash-path.zip": ("8", "zip-bad-name"),
    "nul-in-name.zip": ("8", "zip-bad-name"),
    "symlink.zip": ("6", "zip-symlink"),
    "encrypted.zip": ("4", "zip-encrypted"),
    "method-bzip2.zip": ("5", "zip-method"),
    "overlap.zip": ("9", "zip-overlap"),
    "entry-too-large.zip": ("10", "zip-entry-too-large"),
    "zip-bomb.zip": ("10", "zip-ratio"),
    "prepended-data.zip": ("9", "zip-prepended-data"),
    "trailing-data.zip": ("2", "zip-trailing-data"),
    "archive-comment.zip": ("2", "zip-comment"),
    "wrong-root-key.zip": ("13", "root-not-pinned"),
    "key-revoked.zip": ("19", "key-revoked"),
    "key-outside-window-before.zip": ("19", "key-outside-window"),
    "key-outside-window-after.zip": ("19", "key-outside-window"),
    "key-purpose.zip": ("19", "key-purpose"),
    "root-chain-gap.zip": ("14", "root-chain-gap"),
    "root-not-signed-by-previous.zip": ("15", "root-chain-signature"),
    "dos-timestamp.zip": ("7", "zip-not-canonical"),
    "unsorted.zip": ("8", "zip-not-sorted"),
    "local-mismatch.zip": ("9", "zip-local-mismatch"),
    "gap.zip": ("9", "zip-gap"),
    "manifest-unknown-field.zip": ("18", "bad-manifest"),
    "manifest-duplicate-key.zip": ("18", "json-duplicate-key"),
    "root-small-order-key.zip": ("12", "bad-public-key"),
}

# Codes of docs/format.md that no fixture can carry at the default limits
# (a 256 MiB file); tests/test_verify_limits.py covers them with small limits.
# Codes whose fixture would have to be huge: tested with small limits or directly instead
# (test_verify_limits.py; test_keys_root.py for a root chain over 1,000 versions).
NEEDS_SMALL_LIMITS = {"zip-too-large", "zip-total-too-large", "root-chain"}


def _pinned(row: dict[str, str]) -> str:
    return row.get("root_keyid", GOLDEN_ROOT_KEYID)


def test_table_and_files_agree() -> None:
    assert sorted(p.name for p in BAD.glob("*.zip")) == NAMES
    for name, row in TABLE.items():
        assert set(row) <= {"step", "code", "hazard", "root_keyid"}, name
        assert row["step"].isdigit() and 1 <= int(row["step"]) <= 22, name


def test_table_has_every_required_row() -> None:
    missing = {n for n in REQUIRED if n not in TABLE}
    assert not missing
    for name, (step, code) in REQUIRED.items():
        assert (TABLE[name]["step"], TABLE[name]["code"]) == (step, code), name


def test_every_code_of_the_verification_steps_has_a_fixture() -> None:
    steps = DOC[DOC.index("## Verification steps") :]
    codes = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", steps))
    assert len(codes) > 40
    assert codes - {row["code"] for row in TABLE.values()} == NEEDS_SMALL_LIMITS


def test_every_step_has_a_fixture() -> None:
    assert {int(row["step"]) for row in TABLE.values()} == set(range(1, 23))


@pytest.mark.parametrize("name", NAMES)
def test_bad_bundle_is_rejected_at_its_step(name: str) -> None:
    row = TABLE[name]
    with pytest.raises(RejectedError) as info:
        verify_bundle(BAD / name, root_keyid=_pinned(row))
    assert (info.value.step, info.value.code) == (row["step"], row["code"]), info.value.message


@pytest.mark.parametrize("name", NAMES)
def test_bad_bundle_cli_exits_1_with_a_one_line_reason(name: str) -> None:
    row = TABLE[name]
    result = CliRunner().invoke(main, ["verify", str(BAD / name), "--root-key", _pinned(row), "--json"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    out_lines = result.stdout.splitlines()
    assert len(out_lines) == 1
    report = json.loads(out_lines[0])
    assert report["ok"] is False
    assert report["error"]["code"] == row["code"]
    assert report["error"]["step"] == row["step"]
    err_lines = result.stderr.splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", NAMES)
def test_bad_bundle_regenerates_byte_identical(name: str, regenerated: Path) -> None:
    assert (regenerated / "bad" / name).read_bytes() == (BAD / name).read_bytes()


def test_expected_table_regenerates_byte_identical(regenerated: Path) -> None:
    assert (regenerated / "bad" / "expected.json").read_bytes() == (BAD / "expected.json").read_bytes()
    assert sorted(p.name for p in (regenerated / "bad").iterdir()) == sorted(p.name for p in BAD.iterdir())


def test_wrong_root_key_fixture_is_the_valid_golden_bundle() -> None:
    data = (BAD / "wrong-root-key.zip").read_bytes()
    assert data == (GOLDEN / "article-en.zip").read_bytes()
    assert _pinned(TABLE["wrong-root-key.zip"]) != GOLDEN_ROOT_KEYID
    verify_bundle(BAD / "wrong-root-key.zip", root_keyid=GOLDEN_ROOT_KEYID)


def test_revoked_fixture_is_valid_without_the_revoking_root(tmp_path: Path) -> None:
    """The revocation in meta/roots/2.json is the only thing wrong with key-revoked.zip."""
    from helpers import canonical_zip

    files = contents((BAD / "key-revoked.zip").read_bytes())
    revoking = files.pop("meta/roots/2.json")
    stripped = tmp_path / "stripped.zip"
    stripped.write_bytes(canonical_zip(files))
    verify_bundle(stripped, root_keyid=GOLDEN_ROOT_KEYID)
    with pytest.raises(RejectedError) as info:
        verify_bundle(stripped, trusted_root=revoking)
    assert (info.value.step, info.value.code) == ("19", "key-revoked")


def test_bomb_fixture_is_a_real_bomb() -> None:
    import zipfile

    with zipfile.ZipFile(BAD / "zip-bomb.zip") as zf:
        info = zf.getinfo("index.html")
    assert info.file_size == 10_000_000 and info.compress_size < 20_000
