"""RFC 6962 Merkle tree hashing (SHA-256) and compact ranges.

- leaf hash ``SHA-256(0x00 ‖ entry)``, node hash ``SHA-256(0x01 ‖ left ‖ right)``;
- the root of ``n > 1`` leaves splits at the largest power of two below ``n``;
  the root of the empty tree is ``SHA-256("")``.

A *node* ``(level, index)`` is the root of the perfect subtree over leaves
``[index·2^level, (index+1)·2^level)``. A *compact range* of a tree of size ``n``
is the list of perfect subtree roots that cover ``[0, n)``, largest first: one per
set bit of ``n``, so at most 64 hashes, and it is all that is needed to append
leaves and compute every later root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from .errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_TREE_SIZE = (1 << 64) - 1  # sizes and indexes are uint64 on the wire

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"

Node = tuple[int, int]  # (level, index)


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash of a log entry."""
    return _sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return _sha256(_NODE + left + right).digest()


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree whose 2^k bottom hashes are given, left to right."""
    level = list(hashes)
    n = len(level)
    if n == 0 or n & (n - 1):
        raise ValueError("perfect_root needs a power-of-two number of hashes")
    sha = _sha256
    while len(level) > 1:
        it = iter(level)
        level = [sha(_NODE + a + b).digest() for a, b in zip(it, it, strict=True)]
    return level[0]


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """``H(h0, H(h1, … H(h_{n-2}, h_{n-1})))``: the root over adjacent subtrees, largest first."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(_NODE + h + acc).digest()
    return acc


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError("split_point needs n >= 2")
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The maximal perfect subtrees covering leaves ``[start, end)``, left to right.

    For the ranges that RFC 6962 proofs use (``start`` a multiple of a power of
    two at least ``end - start``), folding their hashes with :func:`fold_right`
    gives ``MTH(D[start:end])``.
    """
    if not 0 <= start <= end:
        raise ValueError("bad range")
    nodes: list[Node] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """``MTH`` over the given leaf hashes (RFC 6962 §2.1), computed from scratch."""
    cr = CompactRange()
    cr.extend(hashes)
    return cr.root()


class CompactRange:
    """The perfect subtree roots covering ``[0, size)``: an append-only tree in O(log n) hashes.

    ``append`` merges equal-sized subtrees as a binary counter carries, so
    appending ``n`` leaves costs ``n - popcount(n)`` node hashes in total.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Iterable[bytes]) -> CompactRange:
        """Rebuild from a stored size and its subtree roots (largest first)."""
        out = cls()
        hs = list(hashes)
        if not 0 <= size <= MAX_TREE_SIZE or len(hs) != size.bit_count():
            raise ProofError("compact range does not match its size", code="bad-compact-range")
        if any(len(h) != HASH_SIZE for h in hs):
            raise ProofError("compact range hash is not 32 bytes", code="bad-compact-range")
        out._size, out._hashes = size, hs
        return out

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots, largest (leftmost) first; one per set bit of ``size``."""
        return tuple(self._hashes)

    def nodes(self) -> list[Node]:
        """The ``(level, index)`` of each hash in :attr:`hashes`."""
        return range_nodes(0, self._size)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (not an entry: hash entries with :func:`leaf_hash`)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash is not 32 bytes")
        hashes = self._hashes
        h = leaf
        n = self._size
        sha = _sha256
        while n & 1:
            h = sha(_NODE + hashes.pop() + h).digest()
            n >>= 1
        hashes.append(h)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        return fold_right(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange.from_hashes(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size})"
