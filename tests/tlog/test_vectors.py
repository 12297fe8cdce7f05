"""Third-party proof vectors: transparency-dev/merkle probes and real CT log proofs (argon2020)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog.errors import ProofError
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.proofs import verify_consistency, verify_inclusion

from .util import ASSETS

MERKLE = ASSETS / "transparency-dev-merkle" / "testdata"
ARGON = ASSETS / "golang-mod-argon2020"

INCLUSION = sorted((MERKLE / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((MERKLE / "consistency").rglob("*.json"))


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _id(path: Path) -> str:
    return str(path.relative_to(MERKLE))


def test_vector_counts() -> None:
    """Every probe file is collected (the copy is complete), negative ones included."""
    assert len(INCLUSION) + len(CONSISTENCY) == 196
    wrong = [p for p in [*INCLUSION, *CONSISTENCY] if _load(p)["wantErr"]]
    assert len(wrong) > 150


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_probe(path: Path) -> None:
    p = _load(path)
    args = (_b64(p["leafHash"]), p["leafIdx"], p["treeSize"], [_b64(h) for h in p["proof"] or []], _b64(p["root"]))
    if p["wantErr"]:
        with pytest.raises(ProofError) as err:
            verify_inclusion(*args)
        assert err.value.code == "bad-proof"
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_probe(path: Path) -> None:
    p = _load(path)
    args = (p["size1"], p["size2"], [_b64(h) for h in p["proof"] or []], _b64(p["root1"]), _b64(p["root2"]))
    if p["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_empty_root_and_leaf_rejected() -> None:
    """The probe the issue names: an empty root and an empty leaf hash never verify."""
    p = _load(MERKLE / "inclusion" / "single-entry" / "empty-root-and-leaf.json")
    assert p["root"] == "" and p["leafHash"] == "" and p["wantErr"]
    with pytest.raises(ProofError):
        verify_inclusion(b"", 0, 1, [], b"")


def _argon() -> tuple[int, bytes]:
    sth = _load(ARGON / "sth.json")
    return sth["tree_size"], _b64(sth["sha256_root_hash"])


def test_argon2020_inclusion() -> None:
    size, root = _argon()
    entry = _b64(_load(ARGON / "entries.json")["entries"][0]["leaf_input"])
    proof = [_b64(h) for h in _load(ARGON / "proof.json")["audit_path"]]
    verify_inclusion(leaf_hash(entry), 10000, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(entry), 10001, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(entry + b"x"), 10000, size, proof, root)


def test_argon2020_consistency() -> None:
    size, root = _argon()
    old_root = _b64("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=")
    proof = [_b64(h) for h in _load(ARGON / "consistency.json")["consistency"]]
    verify_consistency(3654490, size, proof, old_root, root)
    with pytest.raises(ProofError):
        verify_consistency(3654491, size, proof, old_root, root)
    with pytest.raises(ProofError):
        verify_consistency(3654490, size, proof[:-1], old_root, root)
