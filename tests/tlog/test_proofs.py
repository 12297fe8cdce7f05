"""Inclusion and consistency proofs: built from the full tree or from tiles, verified, tampered."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.errors import ProofError
from tamizdat.bundles.tlog.proofs import (
    MemoryTree,
    consistency_ranges,
    inclusion_ranges,
    prove_consistency,
    prove_inclusion,
    root_from_inclusion_proof,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)
from tamizdat.bundles.tlog.tiles import (
    consistency_proof_from_tiles,
    inclusion_proof_from_tiles,
    root_from_tiles,
    tile_hash_reader,
    tiles_for_consistency,
    tiles_for_inclusion,
)

from .util import TileStore, entry, naive_leaf, naive_mth

MAX = 2_100  # a bit more than 8 level-0 tiles: crosses tile levels 0 and 1
_TREE = MemoryTree(naive_leaf(entry(i)) for i in range(MAX))
_LEAVES = [_TREE.node(0, i) for i in range(MAX)]


def _tiles(size: int) -> TileStore:
    store = TileStore()
    b = TreeBuilder()
    b.extend(entry(i) for i in range(size))
    store.write(b.flush().files())
    return store


_STORE_CACHE: dict[int, TileStore] = {}


def tiles_at(size: int) -> TileStore:
    if size not in _STORE_CACHE:
        _STORE_CACHE[size] = _tiles(size)
    return _STORE_CACHE[size]


sizes = st.integers(min_value=1, max_value=MAX)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(sizes)
    return draw(st.integers(min_value=1, max_value=new)), new


# -- correctness ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(index_and_size())
def test_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    proof = _TREE.inclusion_proof(index, size)
    root = naive_mth(_LEAVES[:size]) if size <= 300 else _TREE.root(size)
    verify_inclusion(_LEAVES[index], index, size, proof, root)
    assert len(proof) == len(inclusion_ranges(index, size)) <= (size - 1).bit_length()


@settings(max_examples=300, deadline=None)
@given(two_sizes())
def test_consistency_proof_verifies(case: tuple[int, int]) -> None:
    old, new = case
    proof = _TREE.consistency_proof(old, new)
    verify_consistency(old, new, proof, _TREE.root(old), _TREE.root(new))
    if old == new:
        assert proof == []
    else:
        assert len(proof) == len(consistency_ranges(old, new)) <= (new - 1).bit_length() + 1


def test_small_trees_exhaustively() -> None:
    for size in range(1, 70):
        root = naive_mth(_LEAVES[:size])
        assert _TREE.root(size) == root
        for i in range(size):
            verify_inclusion(_LEAVES[i], i, size, _TREE.inclusion_proof(i, size), root)
        for old in range(1, size + 1):
            verify_consistency(old, size, _TREE.consistency_proof(old, size), naive_mth(_LEAVES[:old]), root)


def test_roots_from_consistency_proof_give_both_trees() -> None:
    """Both roots come out of the proof; a proof from a forked tree gives that tree's old root, not ours."""
    fork = MemoryTree([naive_leaf(b"other history"), *_LEAVES[1:80]])  # differs from _TREE in leaf 0 only
    for new in range(2, 80):
        for old in range(1, new):
            power = old & (old - 1) == 0
            hint = _TREE.root(old) if power else None
            got = roots_from_consistency_proof(old, new, _TREE.consistency_proof(old, new), hint)
            assert got == (_TREE.root(old), _TREE.root(new)), (old, new)
            hint = fork.root(old) if power else None
            theirs = roots_from_consistency_proof(old, new, fork.consistency_proof(old, new), hint)
            assert theirs == (fork.root(old), fork.root(new)) and theirs[0] != _TREE.root(old), (old, new)
    with pytest.raises(ProofError, match="old root"):  # 8 is a power of two: the proof leaves the old tree out
        roots_from_consistency_proof(8, 20, _TREE.consistency_proof(8, 20))
    for old, new in ((0, 5), (5, 5), (6, 5)):
        with pytest.raises(ProofError):
            roots_from_consistency_proof(old, new, _TREE.consistency_proof(1, 5), _TREE.root(1))
    with pytest.raises(ProofError, match="too short"):
        roots_from_consistency_proof(5, 70, _TREE.consistency_proof(5, 70)[:-1])
    with pytest.raises(ProofError, match="too long"):
        roots_from_consistency_proof(5, 7, [*_TREE.consistency_proof(5, 7), _LEAVES[0]])


# -- proofs from tiles equal proofs from the full tree ----------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index_and_size())
def test_inclusion_from_tiles_equals_full_tree(case: tuple[int, int]) -> None:
    index, size = case
    store = tiles_at(size)
    store.reads.clear()
    from_tiles = prove_inclusion(index, size, tile_hash_reader(size, store.read))
    assert from_tiles == _TREE.inclusion_proof(index, size)
    assert set(store.reads) == set(tiles_for_inclusion(index, size))
    assert inclusion_proof_from_tiles(index, size, store.read) == from_tiles
    assert root_from_tiles(size, store.read) == _TREE.root(size)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sizes())
def test_consistency_from_tiles_equals_full_tree(case: tuple[int, int]) -> None:
    old, new = case
    store = tiles_at(new)
    store.reads.clear()
    from_tiles = prove_consistency(old, new, tile_hash_reader(new, store.read))
    assert from_tiles == _TREE.consistency_proof(old, new)
    assert set(store.reads) == set(tiles_for_consistency(old, new))
    assert consistency_proof_from_tiles(old, new, store.read) == from_tiles


# -- tampering: any change of a hash, size or index is rejected -----------------------------------


def _flip(h: bytes, bit: int) -> bytes:
    return bytes(b ^ (1 << (bit % 8)) if i == bit // 8 % len(h) else b for i, b in enumerate(h))


def _root_at(size: int) -> bytes:
    """The honest root at ``size`` (a checkpoint binds size and root together), or junk past the tree."""
    return _TREE.root(size) if 0 <= size <= MAX else b"\x5a" * 32


@settings(max_examples=400, deadline=None)
@given(index_and_size(), st.data())
def test_inclusion_tampering_rejected(case: tuple[int, int], data: st.DataObject) -> None:
    """Changing any proof hash, the leaf, the root, the index or the size makes the proof fail.

    A size travels with its root (both come from one signed checkpoint), so a changed
    size is checked against the real root of that size: an RFC 6962 proof binds the
    size only through the root.
    """
    index, size = case
    proof = _TREE.inclusion_proof(index, size)
    root = _TREE.root(size)
    leaf = _LEAVES[index]
    choices = ["leaf", "root", "index", "size", "add"] + (["proof", "drop"] if proof else [])
    what = data.draw(st.sampled_from(choices))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    if what == "proof":
        k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        proof[k] = _flip(proof[k], bit)
    elif what == "leaf":
        leaf = _flip(leaf, bit)
    elif what == "root":
        root = _flip(root, bit)
    elif what == "index":
        index = data.draw(st.integers(min_value=0, max_value=size + 5).filter(lambda j: j != index))
    elif what == "size":
        size = data.draw(st.integers(min_value=0, max_value=MAX + 5).filter(lambda s: s != size))
        root = _root_at(size)
    elif what == "drop":
        proof.pop(data.draw(st.integers(min_value=0, max_value=len(proof) - 1)))
    else:
        proof.insert(data.draw(st.integers(min_value=0, max_value=len(proof))), _LEAVES[0])
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=400, deadline=None)
@given(two_sizes(), st.data())
def test_consistency_tampering_rejected(case: tuple[int, int], data: st.DataObject) -> None:
    """Changing any proof hash, either root or either size (with its root) makes the proof fail."""
    old, new = case
    proof = _TREE.consistency_proof(old, new)
    old_root, new_root = _TREE.root(old), _TREE.root(new)
    choices = ["old_root", "new_root", "old_size", "new_size", "add"] + (["proof", "drop"] if proof else [])
    what = data.draw(st.sampled_from(choices))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    if what == "proof":
        k = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        proof[k] = _flip(proof[k], bit)
    elif what == "old_root":
        old_root = _flip(old_root, bit)
    elif what == "new_root":
        new_root = _flip(new_root, bit)
    elif what == "old_size":
        old = data.draw(st.integers(min_value=0, max_value=MAX + 5).filter(lambda s: s != old))
        old_root = _root_at(old)
    elif what == "new_size":
        new = data.draw(st.integers(min_value=0, max_value=MAX + 5).filter(lambda s: s != new))
        new_root = _root_at(new)
    elif what == "drop":
        proof.pop(data.draw(st.integers(min_value=0, max_value=len(proof) - 1)))
    else:
        proof.insert(data.draw(st.integers(min_value=0, max_value=len(proof))), _LEAVES[1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof, old_root, new_root)


def test_proof_binds_size_only_through_the_root() -> None:
    """Why the tampering tests pair a size with its root: the same hashes prove leaf 0 at sizes 5 and 6."""
    proof = _TREE.inclusion_proof(0, 5)
    verify_inclusion(_LEAVES[0], 0, 6, proof, _TREE.root(5))  # a (size 6, root of 5) pair is never signed
    with pytest.raises(ProofError):
        verify_inclusion(_LEAVES[0], 0, 6, proof, _TREE.root(6))


def test_index_out_of_range_and_bad_lengths() -> None:
    proof = _TREE.inclusion_proof(3, 10)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(_LEAVES[3], 10, 10, proof)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(_LEAVES[3][:31], 3, 10, proof)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(_LEAVES[3], 3, 10, [*proof[:-1], proof[-1] + b"\x00"])
    with pytest.raises(ProofError):
        root_from_inclusion_proof(_LEAVES[3], -1, 10, proof)
    with pytest.raises(ProofError):
        verify_consistency(0, 10, [], b"", _TREE.root(10))
    with pytest.raises(ProofError):
        prove_inclusion(10, 10, _TREE.read_hashes)
    with pytest.raises(ProofError):
        consistency_ranges(0, 5)
    with pytest.raises(ProofError):
        _TREE.inclusion_proof(0, MAX + 1)


# -- sizes at a million leaves (no hashing needed: proof shapes depend on index and size only) -----


def test_proof_sizes_at_one_million() -> None:
    n = 1_000_000
    worst_inclusion = max(len(inclusion_ranges(i, n)) for i in [*range(0, n, 997), n - 1, n - 2, 999_935])
    assert worst_inclusion <= 20
    assert max(len(inclusion_ranges(i, n)) for i in range(n - 300, n)) <= 20
    worst_consistency = max(len(consistency_ranges(old, n)) for old in range(1, n, 4999))
    assert worst_consistency <= 21
    # Tiles a reader fetches to build any one inclusion proof itself (notes/transparency-log.md: <= 5).
    assert max(len(tiles_for_inclusion(i, n)) for i in range(0, n, 7919)) <= 5
