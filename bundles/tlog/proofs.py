"""Inclusion and consistency proofs (RFC 6962 §2.1.1-2.1.2; verification as RFC 9162 §2.1.3-2.1.4).

Proofs are built from any source of node hashes: a :data:`HashReader` gets a
list of nodes ``(level, index)`` (perfect subtrees, see :mod:`.hashing`) and
returns their hashes. :class:`MemoryTree` is one (every node in memory);
:func:`tamizdat.bundles.tlog.tiles.tile_hash_reader` is the other (nodes
recomputed from C2SP tiles). Each proof hash is the hash of a range of leaves,
which is computed from the perfect subtrees covering it, so proofs from tiles
and from the full tree are byte-identical.

Verification never trusts the source: a proof built from tampered tiles simply
does not verify against a signed root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .errors import ProofError
from .hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    Node,
    fold_right,
    leaf_hash,
    node_hash,
    range_nodes,
    split_point,
)

HashReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Returns the hashes of the given nodes, in order."""

MAX_PROOF_HASHES = 64


def _check_size(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{what} is not a uint64", code="bad-proof")


# -- which ranges a proof is made of --------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges ``[a, b)`` whose hashes form the inclusion proof of ``index`` (RFC 6962 PATH)."""
    _check_size(index, "index")
    _check_size(size, "tree size")
    if index >= size:
        raise ProofError(f"index {index} is not below tree size {size}", code="bad-proof")
    out: list[tuple[int, int]] = []
    a, b = 0, size
    while b - a > 1:
        k = split_point(b - a)
        if index < a + k:
            out.append((a + k, b))
            b = a + k
        else:
            out.append((a, a + k))
            a += k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form the consistency proof ``old_size -> new_size`` (RFC 6962 PROOF)."""
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if not 0 < old_size <= new_size:
        raise ProofError("consistency proofs need 0 < old size <= new size", code="bad-proof")
    out: list[tuple[int, int]] = []
    a, b, m, complete = 0, new_size, old_size, True
    while m != b - a:
        k = split_point(b - a)
        if m <= k:
            out.append((a + k, b))
            b = a + k
        else:
            out.append((a, a + k))
            a += k
            m -= k
            complete = False
    if not complete:
        out.append((a, b))
    out.reverse()
    return out


def _hash_ranges(ranges: Sequence[tuple[int, int]], read: HashReader) -> list[bytes]:
    groups = [range_nodes(a, b) for a, b in ranges]
    wanted: list[Node] = list(dict.fromkeys(n for g in groups for n in g))
    got = list(read(wanted)) if wanted else []
    if len(got) != len(wanted) or any(len(h) != HASH_SIZE for h in got):
        raise ProofError("hash reader returned the wrong number or size of hashes", code="bad-proof")
    known = dict(zip(wanted, got, strict=True))
    return [fold_right([known[n] for n in g]) for g in groups]


def nodes_for_inclusion(index: int, size: int) -> list[Node]:
    """Every node a reader must supply to prove inclusion of ``index`` in a tree of ``size``."""
    return list(dict.fromkeys(n for a, b in inclusion_ranges(index, size) for n in range_nodes(a, b)))


def nodes_for_consistency(old_size: int, new_size: int) -> list[Node]:
    """Every node a reader must supply to prove ``old_size -> new_size`` (none if equal)."""
    if old_size == new_size:
        return []
    return list(dict.fromkeys(n for a, b in consistency_ranges(old_size, new_size) for n in range_nodes(a, b)))


# -- building proofs ------------------------------------------------------------------------------


def prove_inclusion(index: int, size: int, read: HashReader) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return _hash_ranges(inclusion_ranges(index, size), read)


def prove_consistency(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """The consistency proof from ``old_size`` to ``new_size`` (empty if the sizes are equal)."""
    if old_size == new_size:
        _check_size(old_size, "size")
        return []
    return _hash_ranges(consistency_ranges(old_size, new_size), read)


def tree_root(size: int, read: HashReader) -> bytes:
    """The root hash of the tree of ``size`` leaves."""
    _check_size(size, "tree size")
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges([(0, size)], read)[0]


# -- verifying proofs (RFC 9162 §2.1.3.2 and §2.1.4.2) --------------------------------------------


def _check_hashes(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError("proof is too long", code="bad-proof")
    for h in proof:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError("proof hash is not 32 bytes", code="bad-proof")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index``; raises if malformed."""
    _check_size(index, "index")
    _check_size(size, "tree size")
    if index >= size:
        raise ProofError(f"index {index} is not below tree size {size}", code="bad-proof")
    if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash is not 32 bytes", code="bad-proof")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long", code="bad-proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short", code="bad-proof")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf hash ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not match the root", code="bad-proof")


def roots_from_consistency_proof(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes | None = None
) -> tuple[bytes, bytes]:
    """The roots at ``old_size`` and ``new_size`` that ``proof`` implies (RFC 9162 §2.1.4.2 computes both).

    A proof read from untrusted tiles whose new root equals a signed root shows
    what that signed tree held at ``old_size`` (hashes cannot be forged). When
    ``old_size`` is a power of two the old tree is a node of the new one and
    the proof leaves it out: pass that node as ``old_root`` (it is the path's
    first hash and comes back unchanged). Needs ``0 < old_size < new_size``.
    """
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if not 0 < old_size < new_size:
        raise ProofError("roots from a consistency proof need 0 < old size < new size", code="bad-proof")
    _check_hashes(proof)
    path = list(proof)
    if not path:
        raise ProofError("consistency proof is empty", code="bad-proof")
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        if not isinstance(old_root, bytes) or len(old_root) != HASH_SIZE:
            raise ProofError("the old root (a node of the new tree) is needed for this old size", code="bad-proof")
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long", code="bad-proof")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short", code="bad-proof")
    return fr, sr


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the tree ``old_size`` is a prefix of ``new_size``.

    Equal sizes need an empty proof and equal roots. An old size of 0 is
    rejected: a proof from the empty tree proves nothing (any tree extends it),
    so callers handle "no previous state" themselves (see
    :func:`tamizdat.bundles.tlog.checkpoint.check_extends`).
    """
    _check_size(old_size, "old size")
    _check_size(new_size, "new size")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is above new size {new_size}", code="bad-proof")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless", code="bad-proof")
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty", code="bad-proof")
        if old_root != new_root:
            raise ProofError("sizes are equal but the roots differ", code="bad-proof")
        return
    fr, sr = roots_from_consistency_proof(old_size, new_size, proof, old_root)
    if fr != old_root or sr != new_root:
        raise ProofError(f"consistency proof {old_size} -> {new_size} does not match the roots", code="bad-proof")


# -- an in-memory tree (tests, small logs, tools) -------------------------------------------------


class MemoryTree:
    """Every complete node of the tree in memory: O(n) hashes, O(1) node lookup."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, entry: bytes) -> int:
        """Append a log entry; returns its index."""
        return self.append_hash(leaf_hash(entry))

    def append_hash(self, leaf: bytes) -> int:
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash is not 32 bytes")
        levels = self._levels
        index = len(levels[0])
        levels[0].append(leaf)
        level, i, h = 0, index, leaf
        while i & 1:
            h = node_hash(levels[level][i - 1], h)
            level += 1
            i >>= 1
            if len(levels) == level:
                levels.append([])
            levels[level].append(h)
        return index

    def node(self, level: int, index: int) -> bytes:
        try:
            if level < 0 or index < 0:
                raise IndexError
            return self._levels[level][index]
        except IndexError:
            raise ProofError(f"node ({level}, {index}) is not in the tree", code="bad-proof") from None

    def read_hashes(self, nodes: Sequence[Node]) -> list[bytes]:
        """A :data:`HashReader` over this tree."""
        return [self.node(level, index) for level, index in nodes]

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: the current size); any earlier size works."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ProofError("size is beyond the tree", code="bad-proof")
        return tree_root(n, self.read_hashes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        n = self.size if size is None else size
        if n > self.size:
            raise ProofError("size is beyond the tree", code="bad-proof")
        return prove_inclusion(index, n, self.read_hashes)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        n = self.size if new_size is None else new_size
        if n > self.size:
            raise ProofError("size is beyond the tree", code="bad-proof")
        return prove_consistency(old_size, n, self.read_hashes)
