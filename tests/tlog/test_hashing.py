"""RFC 6962 hashing and compact ranges against a naive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamizdat.bundles.tlog.errors import ProofError
from tamizdat.bundles.tlog.hashing import (
    EMPTY_ROOT,
    CompactRange,
    fold_right,
    leaf_hash,
    node_hash,
    range_nodes,
    root_from_leaf_hashes,
    split_point,
)
from tamizdat.bundles.tlog.proofs import MemoryTree

from .util import entry, naive_leaf, naive_mth


def test_known_hashes() -> None:
    # RFC 6962 test vectors (as in transparency-dev/merkle rfc6962 tests).
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert node_hash(b"N123", b"N456").hex() == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"


def test_domain_separation() -> None:
    assert leaf_hash(b"a" * 64) != node_hash(b"a" * 32, b"a" * 32)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_split_point() -> None:
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]
    with pytest.raises(ValueError):
        split_point(1)


def test_range_nodes() -> None:
    assert range_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    assert range_nodes(3, 3) == []
    assert range_nodes(0, 70_000) == [(16, 0), (12, 16), (8, 272), (6, 1092), (5, 2186), (4, 4374)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=600))
def test_compact_range_root_equals_full_recomputation(size: int) -> None:
    leaves = [naive_leaf(entry(i)) for i in range(size)]
    cr = CompactRange()
    cr.extend(leaves)
    assert cr.size == size
    assert len(cr.hashes) == size.bit_count()
    assert cr.root() == naive_mth(leaves) == root_from_leaf_hashes(leaves)
    assert [cr.hashes[i] for i in range(len(cr.hashes))] == [
        naive_mth(leaves[(i << lv) : (i + 1) << lv]) for lv, i in cr.nodes()
    ]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300))
def test_compact_range_extends_from_stored_state(a: int, b: int) -> None:
    leaves = [naive_leaf(entry(i)) for i in range(a + b)]
    first = CompactRange()
    first.extend(leaves[:a])
    resumed = CompactRange.from_hashes(first.size, first.hashes)
    resumed.extend(leaves[a:])
    assert resumed.root() == naive_mth(leaves)
    assert resumed == CompactRange.from_hashes(a + b, resumed.hashes)


def test_compact_range_rejects_bad_state() -> None:
    with pytest.raises(ProofError):
        CompactRange.from_hashes(3, [b"\x00" * 32])
    with pytest.raises(ProofError):
        CompactRange.from_hashes(1, [b"\x00" * 31])
    with pytest.raises(ValueError):
        CompactRange().append(b"short")


def test_fold_right_empty() -> None:
    assert fold_right([]) == EMPTY_ROOT


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_memory_tree_roots_at_every_size(size: int) -> None:
    leaves = [naive_leaf(entry(i)) for i in range(size)]
    tree = MemoryTree(leaves)
    for s in {0, size // 3, size // 2, size}:
        assert tree.root(s) == naive_mth(leaves[:s])
