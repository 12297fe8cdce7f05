"""The append-only tree state of a tiled log: append entries, get the tiles to write.

:class:`TreeBuilder` keeps the right edge of the tree: the hashes of the
partial tile at each level (fewer than 256 each) and the entries of the partial
entry bundle. That is enough to append, to compute the root and compact range,
and to produce every tile and entry bundle a new tree size needs. Both the
origin (which appends new leaves) and a full mirror (which re-appends the
entries it fetched, then compares the tiles it built with the origin's) use it.

A publishing round::

    builder = TreeBuilder.resume(size, read_tile, root=checkpoint.root)  # or TreeBuilder()
    for entry in entries:
        builder.append(entry)
    batch = builder.flush()
    # write batch.tiles and batch.entry_bundles, sync, then sign the checkpoint
    # (batch.size, batch.root); later remove batch.garbage directories

Partial tiles of a size that got a checkpoint must stay served until the full
tile exists; :attr:`TileBatch.garbage` lists the full tiles that appeared in this
batch whose ``.p/`` directory (every partial width of it) may now be removed,
after whatever grace period the operator keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import TileError
from .hashing import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, CompactRange, fold_right, leaf_hash, perfect_root
from .tiles import (
    ENTRIES,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileId,
    TileReader,
    decode_entry_bundle,
    encode_entry_bundle,
    partial_width,
    split_hashes,
    tile_count,
)


@dataclass
class TileBatch:
    """What to write for a new tree size, and what became collectable."""

    size: int
    root: bytes
    tiles: list[tuple[TileId, bytes]] = field(default_factory=list)
    entry_bundles: list[tuple[TileId, bytes]] = field(default_factory=list)
    garbage: list[TileId] = field(default_factory=list)  # full tiles whose ``partial_dir()`` is dead

    def files(self) -> list[tuple[str, bytes]]:
        """Every ``(relative path, bytes)`` to write: entry bundles, then tiles level by level."""
        return [(t.path(), data) for t, data in (*self.entry_bundles, *self.tiles)]

    def garbage_dirs(self) -> list[str]:
        return [t.partial_dir() for t in self.garbage]


def _peaks(level_hashes: list[bytes]) -> list[bytes]:
    """Perfect subtree roots over a partial tile's hashes, largest first."""
    out: list[bytes] = []
    i, n = 0, len(level_hashes)
    for bit in range(TILE_HEIGHT - 1, -1, -1):
        if n >> bit & 1:
            out.append(perfect_root(level_hashes[i : i + (1 << bit)]))
            i += 1 << bit
    return out


class TreeBuilder:
    """Append-only tree state that emits C2SP tiles and entry bundles."""

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[list[bytes]] = [[]]  # partial tile hashes at each tile level
        self._entries: list[bytes] = []  # entries of the partial entry bundle
        self._tiles: list[tuple[TileId, bytes]] = []
        self._bundles: list[tuple[TileId, bytes]] = []
        self._garbage: list[TileId] = []
        self._written: dict[int, TileId] = {}  # newest partial written per level (ENTRIES too)

    # -- state ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def root(self) -> bytes:
        """The current root hash."""
        if self._size == 0:
            return EMPTY_ROOT
        peaks: list[bytes] = []
        for level in range(len(self._edge) - 1, -1, -1):
            peaks.extend(_peaks(self._edge[level]))
        return fold_right(peaks)

    def compact_range(self) -> CompactRange:
        peaks: list[bytes] = []
        for level in range(len(self._edge) - 1, -1, -1):
            peaks.extend(_peaks(self._edge[level]))
        return CompactRange.from_hashes(self._size, peaks)

    def partial_entries(self) -> list[bytes]:
        """Entries of the partial entry bundle (``size mod 256`` of them)."""
        return list(self._entries)

    # -- appending --------------------------------------------------------------------------

    def append(self, entry: bytes) -> int:
        """Append one log entry (at most 65,535 bytes); returns its index."""
        if len(entry) > 0xFFFF:
            raise TileError("log entry is longer than 65,535 bytes", code="bad-entry")
        if self._size >= MAX_TREE_SIZE:
            raise TileError("tree is full", code="bad-tile")
        index = self._size
        self._entries.append(entry)
        if len(self._entries) == TILE_WIDTH:
            n = index >> TILE_HEIGHT
            self._bundles.append((TileId(ENTRIES, n), encode_entry_bundle(self._entries)))
            self._entries = []
            self._retire(ENTRIES, n)
        self._push(0, leaf_hash(entry), index)
        self._size += 1
        return index

    def extend(self, entries: Iterable[bytes]) -> int:
        """Append entries; returns the new size. Same result as :meth:`append` in a loop, faster."""
        pending = list(entries)
        if max(map(len, pending), default=0) > 0xFFFF:
            raise TileError("log entry is longer than 65,535 bytes", code="bad-entry")
        if self._size + len(pending) > MAX_TREE_SIZE:
            raise TileError("tree is full", code="bad-tile")
        sha = hashlib.sha256
        i = 0
        while i < len(pending):
            # Fill the current level-0 tile and entry bundle (they share boundaries).
            room = TILE_WIDTH - len(self._entries)
            chunk = pending[i : i + room]
            i += len(chunk)
            self._entries.extend(chunk)
            row = self._edge[0]
            row.extend([sha(b"\x00" + e).digest() for e in chunk])
            self._size += len(chunk)
            if len(row) == TILE_WIDTH:
                n = (self._size - 1) >> TILE_HEIGHT
                self._bundles.append((TileId(ENTRIES, n), encode_entry_bundle(self._entries)))
                self._entries = []
                self._retire(ENTRIES, n)
                self._tiles.append((TileId(0, n), b"".join(row)))
                h = perfect_root(row)
                self._edge[0] = []
                self._retire(0, n)
                if len(self._edge) == 1:
                    self._edge.append([])
                self._push(1, h, self._size - 1)
        return self._size

    def _push(self, level: int, h: bytes, index: int) -> None:
        """Add hash ``h`` to the tile row at ``level``; ``index`` is the leaf that completed it."""
        edge = self._edge
        while True:
            row = edge[level]
            row.append(h)
            if len(row) < TILE_WIDTH:
                return
            # The tile is full: emit it and carry its root to the level above.
            n = index >> (TILE_HEIGHT * (level + 1))
            self._tiles.append((TileId(level, n), b"".join(row)))
            h = perfect_root(row)
            edge[level] = []
            self._retire(level, n)
            level += 1
            if len(edge) == level:
                edge.append([])

    def _retire(self, level: int, n: int) -> None:
        written = self._written.pop(level, None)
        if written is not None:
            if written.index != n:  # cannot happen: partials are written in order
                raise AssertionError("partial tile bookkeeping is out of order")
            self._garbage.append(TileId(level, n))

    # -- output -----------------------------------------------------------------------------

    def flush(self) -> TileBatch:
        """Tiles and entry bundles to write for the current size since the last flush.

        Full tiles completed since then, plus each partial tile (and the partial
        entry bundle) whose width changed. Call it at every size that will get a
        checkpoint: the spec requires those partial tiles to exist.
        """
        batch = TileBatch(self._size, self.root(), self._tiles, self._bundles, self._garbage)
        self._tiles, self._bundles, self._garbage = [], [], []
        if self._entries:
            tile = TileId(ENTRIES, self._size >> TILE_HEIGHT, len(self._entries))
            if self._written.get(ENTRIES) != tile:
                batch.entry_bundles.append((tile, encode_entry_bundle(self._entries)))
                self._written[ENTRIES] = tile
        for level, row in enumerate(self._edge):
            if row:
                tile = TileId(level, self._size >> (TILE_HEIGHT * (level + 1)), len(row))
                if self._written.get(level) != tile:
                    batch.tiles.append((tile, b"".join(row)))
                    self._written[level] = tile
        batch.tiles.sort(key=lambda t: (t[0].level, t[0].index, t[0].width))
        return batch

    # -- resuming ---------------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        size: int,
        read_tile: TileReader,
        *,
        root: bytes | None = None,
    ) -> TreeBuilder:
        """Rebuild the state of a tree of ``size`` from its partial tiles and entry bundle.

        Reads at most one tile per level plus the partial entry bundle, checks the
        entries against the level-0 tile and, given ``root`` (from a verified
        checkpoint), the root: tampered tiles are refused. The partials read are
        taken as already written.
        """
        if not 0 <= size <= MAX_TREE_SIZE:
            raise TileError("tree size out of range", code="bad-tile")
        b = cls()
        b._size = size
        levels = tile_count(size)
        b._edge = [[] for _ in range(max(levels, 1))]
        for level in range(levels):
            w = partial_width(level, size)
            if w:
                tile = TileId(level, size >> (TILE_HEIGHT * (level + 1)), w)
                b._edge[level] = split_hashes(read_tile(tile), w)
                b._written[level] = tile
        w0 = size & (TILE_WIDTH - 1)
        if w0:
            tile = TileId(ENTRIES, size >> TILE_HEIGHT, w0)
            b._entries = decode_entry_bundle(read_tile(tile), w0)
            if [leaf_hash(e) for e in b._entries] != b._edge[0]:
                raise TileError("partial entry bundle does not match the level-0 tile", code="bad-tile")
            b._written[ENTRIES] = tile
        if root is not None and b.root() != root:
            raise TileError("tiles do not match the checkpoint root", code="bad-tile")
        if any(len(h) != HASH_SIZE for row in b._edge for h in row):
            raise TileError("bad hash in tile", code="bad-tile")
        return b
