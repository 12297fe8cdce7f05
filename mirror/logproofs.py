"""The ``bundles/<id>.tlog-proof`` files a mirror witness writes, a bounded batch per round.

:class:`ProofMaker` computes inclusion proofs of one tree from the mirror's own
tiles: each tile's node levels computed once (255 hashes for a full tile) and
kept while proofs in leaf order need them, and each proof read off the leaf's
path directly (RFC 6962's recursion unrolled, as transparency-dev/merkle's
``proof.Inclusion`` does), which is what makes a million proofs cheap.

:class:`ProofBacklog` keeps, between rounds, the held and logged bundles that
still lack a proof: one listing of ``bundles/`` per process, then each round
folds in only the new bundle leaves and the bundles that came or went (set
differences of the held sets), plus the proofs found stale after a trust change
(:meth:`ProofBacklog.requeue`). :meth:`ProofBacklog.write` writes at most
``limit`` proofs (and stops at a deadline), in leaf order; the rest wait for
the next round, so a first quorum over a large log never stalls a sync.

Blocking (disk, hashing): run in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tamizdat.bundles.tlog.hashing import fold_right, range_nodes
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, TileId, split_hashes, tile_for
from tamizdat.fsutil import atomic_write

SUFFIX = ".tlog-proof"
_ID_CHARS = frozenset("0123456789abcdef")


class ProofMaker:
    """Inclusion proofs of many leaves of the tree of ``size`` from its tiles (node levels cached per tile)."""

    def __init__(self, size: int, read_tile: Callable[[TileId], bytes]):
        self.size = size
        self._read_tile = read_tile
        self._low: dict[int, list[list[bytes]]] = {}  # a few level-0 tiles (proofs come in leaf order)
        self._high: dict[tuple[int, int], list[list[bytes]]] = {}  # higher tiles: two per 65,536 leaves
        self._rights: dict[int, bytes] = {}
        self._lefts: tuple[int, list[bytes]] = (0, [])

    def _levels(self, tile_level: int, n: int) -> list[list[bytes]]:
        if tile_level == 0:
            got = self._low.get(n)
            if got is None:
                if len(self._low) >= 4:
                    self._low.clear()
                got = self._low[n] = self._compute(0, n)
            return got
        got = self._high.get((tile_level, n))
        if got is None:
            if len(self._high) >= 256:
                self._high.clear()
            got = self._high[(tile_level, n)] = self._compute(tile_level, n)
        return got

    def _compute(self, tile_level: int, n: int) -> list[list[bytes]]:
        """Every complete node of one tile, bottom row first (a partial tile's odd ends have none)."""
        tile = tile_for(tile_level, n << TILE_HEIGHT, self.size)
        row = split_hashes(self._read_tile(tile), tile.width)
        levels = [row]
        sha = hashlib.sha256
        while len(row) > 1:
            it = iter(row)
            row = [sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=False)]
            levels.append(row)
        return levels

    def _node(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height
        levels = self._levels(tile_level, first >> TILE_HEIGHT)
        try:
            return levels[height][(first & (TILE_WIDTH - 1)) >> height]
        except IndexError:
            raise ValueError(f"node {(level, index)} is not complete in a tree of size {self.size}") from None

    def _right(self, end: int) -> bytes:
        """The root over leaves ``[end, size)`` (one proof hash for every leaf left of ``end``)."""
        got = self._rights.get(end)
        if got is None:
            if len(self._rights) >= 64:
                self._rights.clear()
            got = self._rights[end] = fold_right([self._node(*n) for n in range_nodes(end, self.size)])
        return got

    def _left(self, begin: int) -> list[bytes]:
        """The perfect subtrees covering ``[0, begin)``, nearest first."""
        if self._lefts[0] != begin:
            self._lefts = (begin, [self._node(*n) for n in reversed(range_nodes(0, begin))])
        return self._lefts[1]

    def __call__(self, index: int) -> list[bytes]:
        """The RFC 6962 inclusion proof of leaf ``index``, bottom first (as ``prove_inclusion`` gives it).

        The leaf's path meets the tree's right edge at the "fork" node (the
        highest complete node holding the leaf): its siblings below the fork,
        then the root of everything right of the fork, then the subtrees left of it.
        """
        n = self.size
        if not 0 <= index < n:
            raise ValueError(f"leaf {index} is not in a tree of size {n}")
        inner = (index ^ n).bit_length() - 1
        out = [self._node(level, (index >> level) ^ 1) for level in range(inner)]
        begin = (index >> inner) << inner
        end = begin + (1 << inner)
        if end < n:
            out.append(self._right(end))
        out += self._left(begin)
        return out


class ProofBacklog:
    """Held, logged bundles without a ``.tlog-proof`` in ``folder``, kept incrementally between rounds."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._proved: set[str] | None = None  # proof files present (listed once, then tracked)
        self._held: frozenset[str] = frozenset()  # the held set the last update saw
        self._seen = 0  # bundle leaves (in log order) already folded in
        self._heap: list[tuple[int, str]] = []  # (leaf index, id); may hold ids proved or gone since
        self._queued: set[str] = set()

    @property
    def pending(self) -> int:
        """Bundles waiting for a proof."""
        return len(self._queued)

    def update(self, bundles: Mapping[str, int], order: Sequence[str], held: frozenset[str]) -> int:
        """Fold in new bundle leaves and the held set; removes the proofs of bundles no longer held.

        ``bundles`` maps every logged bundle id to its leaf index, ``order`` lists
        them in log order (both only grow). Returns how many proof files were removed.
        """
        gone: set[str] | frozenset[str]
        if self._proved is None:
            self._proved = self._list()
            gone = self._proved - held
            fresh: Sequence[str] = order
        elif held is self._held:  # the same listing as last round (kept while bundles/ is unchanged)
            gone = frozenset()
            fresh = order[self._seen :]
        else:
            lost = self._held - held
            gone = lost & self._proved
            self._queued -= lost
            fresh = [*order[self._seen :], *(held - self._held)]
        self._seen, self._held = len(order), held
        new: list[tuple[int, str]] = []
        for bid in fresh:
            if bid in held and bid not in self._proved and bid not in self._queued and bid in bundles:
                self._queued.add(bid)
                new.append((bundles[bid], bid))
        if len(new) > len(self._heap) // 8:
            self._heap += new
            heapq.heapify(self._heap)
        else:
            for item in new:
                heapq.heappush(self._heap, item)
        for bid in gone:  # the bundle left (retracted, pruned): its proof goes with it
            with contextlib.suppress(FileNotFoundError):
                (self.folder / f"{bid}{SUFFIX}").unlink()
            self._proved.discard(bid)
        return len(gone)

    def proved(self) -> list[str]:
        """The bundles whose proof file is present (after :meth:`update`), sorted."""
        return sorted(self._proved or ())

    def requeue(self, ids: Iterable[str], bundles: Mapping[str, int]) -> int:
        """Write these present proofs again (found stale: the newest root no longer accepts them); how many."""
        if self._proved is None:
            raise ValueError("update the backlog before requeueing proofs")
        count = 0
        for bid in ids:
            if bid in self._proved and bid not in self._queued and bid in bundles:
                self._queued.add(bid)
                heapq.heappush(self._heap, (bundles[bid], bid))
                count += 1
        return count

    def write(self, prove: Callable[[int], bytes], *, limit: int, deadline: float | None = None) -> int:
        """Write up to ``limit`` proofs in leaf order (stopping at ``deadline``, ``time.monotonic``); returns how many.

        ``prove(index)`` gives the proof file's bytes. Call :meth:`update` first.
        """
        if self._proved is None:
            raise ValueError("update the backlog before writing proofs")
        written = 0
        while self._heap and written < limit and (deadline is None or time.monotonic() < deadline):
            index, bid = heapq.heappop(self._heap)
            if bid not in self._queued:
                continue  # no longer held, or a duplicate
            atomic_write(self.folder / f"{bid}{SUFFIX}", prove(index), durable=False)
            self._queued.discard(bid)
            self._proved.add(bid)
            written += 1
        if not self._queued:
            self._heap.clear()
        return written

    def _list(self) -> set[str]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return set()
        n = len(SUFFIX)
        return {name[:-n] for name in names if name.endswith(SUFFIX) and len(name) == 64 + n and _is_hex(name[:-n])}


def _is_hex(text: str) -> bool:
    return _ID_CHARS.issuperset(text)


def proof_bytes(prove: ProofMaker, note: bytes) -> Callable[[int], bytes]:
    """``index -> .tlog-proof`` bytes under the checkpoint ``note``."""
    return lambda index: ProofFile(index, tuple(prove(index)), note).to_bytes()


__all__ = ["ProofBacklog", "ProofMaker", "proof_bytes"]
