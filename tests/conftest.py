"""Fixtures shared by the foundation tests (keys, bundles, verification, CLI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import BAD, GOLDEN, GOLDEN_NAMES, golden_keydir

from tamizdat.keys.keydir import KeyDir


@pytest.fixture(scope="session")
def root_keyid() -> str:
    """The pinned root key id of the golden key directory (checked in)."""
    return (GOLDEN / "root_keyid.txt").read_text().strip()


@pytest.fixture(scope="session")
def golden_bytes() -> dict[str, bytes]:
    """Each checked-in golden bundle's bytes, by file name."""
    return {name: (GOLDEN / name).read_bytes() for name in GOLDEN_NAMES}


@pytest.fixture(scope="session")
def bad_table() -> dict[str, dict[str, str]]:
    """tests/assets/bad/expected.json: bad bundle name -> step, code, hazard (and a pinned id)."""
    return json.loads((BAD / "expected.json").read_text())


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture rebuilt from scratch by tests/make_assets.py in a temp folder."""
    import make_assets

    out = tmp_path_factory.mktemp("assets")
    (out / "golden").mkdir()
    (out / "bad").mkdir()
    make_assets.generate(out)
    return out


@pytest.fixture
def keydir(tmp_path: Path) -> KeyDir:
    """A fresh key directory holding the fixed golden keys at root version 1."""
    return golden_keydir(tmp_path / "keys")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No passphrase in the environment (the CLI reads one from there)."""
    monkeypatch.delenv("TAMIZDAT_ROOT_PASSPHRASE", raising=False)
    monkeypatch.delenv("TAMIZDAT_NEW_ROOT_PASSPHRASE", raising=False)
