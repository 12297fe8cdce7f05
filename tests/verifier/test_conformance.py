"""Differential conformance: the browser page and `tamizdat verify` agree on every bundle.

The corpus is the Python suite's golden and named bad bundles (tests/assets/),
this package's own valid bundles, and seeded mutations of them. For each, the
page's verdict (valid/invalid, step and code) must equal the Python verifier's,
computed here, never copied from a table.
"""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path

import pytest

from .conftest import VerifierPage
from .corpus import MANIFEST, Base, files_of, mutations, python_verdict

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SEED = 20261126
PER_BASE = int(os.environ.get("TAMIZDAT_VERIFIER_MUTATIONS", "110"))


def _asset_cases() -> list[tuple[Path, str]]:
    golden, bad = ASSETS / "golden", ASSETS / "bad"
    key_file = golden / "root_keyid.txt"
    if not key_file.is_file():
        return []
    key = key_file.read_text().strip()
    cases = [(p, key) for p in sorted(golden.glob("*.zip"))]
    table_file = bad / "expected.json"
    table = json.loads(table_file.read_text()) if table_file.is_file() else {}
    for p in sorted(bad.glob("*.zip")):
        cases.append((p, table.get(p.name, {}).get("root_keyid", key)))
    return cases


ASSET_CASES = _asset_cases()


@pytest.mark.skipif(not ASSET_CASES, reason="tests/assets/ (golden and bad bundles) not present")
@pytest.mark.parametrize(("path", "key"), ASSET_CASES, ids=[f"{p.parent.name}/{p.name}" for p, _ in ASSET_CASES])
def test_assets(verifier: VerifierPage, path: Path, key: str) -> None:
    expected = python_verdict(path, key)
    assert verifier.verdict(path, key) == expected
    if path.parent.name == "golden":
        assert expected[0] == "valid"


def test_every_bad_asset_is_listed() -> None:
    bad = ASSETS / "bad"
    if not (bad / "expected.json").is_file():
        pytest.skip("tests/assets/bad/expected.json not present")
    table = json.loads((bad / "expected.json").read_text())
    assert sorted(p.name for p in bad.glob("*.zip")) == sorted(table)


def test_bases_valid(verifier: VerifierPage, bases: dict[str, Base]) -> None:
    for base in bases.values():
        assert python_verdict(base.path, base.root_keyid) == ("valid", None, None)
        assert verifier.verdict(base.path, base.root_keyid) == ("valid", None, None)


def _signed_content(data: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    files = files_of(data)
    payload = base64.b64decode(json.loads(files[MANIFEST])["payload"])
    return payload, {n: c for n, c in files.items() if not n.startswith(b"meta/")}


@pytest.mark.parametrize("name", ["article", "edition", "rotated"])
def test_mutations(verifier: VerifierPage, bases: dict[str, Base], tmp_path: Path, name: str) -> None:
    base = bases[name]
    original = _signed_content(base.data)
    rnd = random.Random(f"{SEED}-{name}")
    disagreements, accepted_changes, steps = [], [], set()
    for m in mutations(base, rnd, PER_BASE):
        path = tmp_path / f"{m.name[:60].replace('/', '_')}.zip"
        path.write_bytes(m.data)
        py = python_verdict(path, base.root_keyid)
        page = verifier.verdict(path, base.root_keyid)
        steps.add(py[1])
        if page != py:
            disagreements.append((m.name, py, page))
        if py[0] == "valid" and not m.resigned:
            # Unsigned edits may only touch what no signature covers (envelope
            # layout, extra or dropped roots): what is shown must be unchanged.
            try:
                same = _signed_content(m.data) == original
            except Exception:
                same = False
            if not same:
                accepted_changes.append(m.name)
    assert not disagreements, f"{len(disagreements)} of {PER_BASE}: {disagreements[:10]}"
    assert not accepted_changes
    assert len(steps) >= 12, sorted(s or 0 for s in steps)  # the corpus reaches most steps
    assert not verifier.errors
    assert not verifier.foreign_requests()
