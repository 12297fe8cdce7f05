"""C2SP tlog-tiles: tile and entry-bundle paths, layout, encoding, and proofs from tiles.

A tile at level ``L`` holds up to 256 consecutive hashes of tree level ``8L``
(``tile/<L>/<N>``); a full tile is 8,192 bytes. An entry bundle holds up to 256
entries, each prefixed by a big-endian uint16 length (``tile/entries/<N>``). The
rightmost tiles of a tree of size ``s`` are partial: width ``floor(s/256^L) mod
256`` at level ``L``, path suffix ``.p/<W>``; a partial tile is never hashed into
the level above. ``N`` is written in 3-digit groups, all but the last prefixed by
``x``: 1234067 -> ``x001/x234/067``.

:class:`TileId` names both kinds (``level == ENTRIES`` for entry bundles).
A :data:`TileReader` returns a tile's bytes; for a partial tile it may return
the full tile instead (partials vanish once the full tile exists: clients fall
back to it), and only the first ``width`` hashes are used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import TileError
from .hashing import HASH_SIZE, MAX_TREE_SIZE, Node, perfect_root
from .proofs import nodes_for_consistency, nodes_for_inclusion, prove_consistency, prove_inclusion, tree_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE  # 8,192
ENTRIES = -1  # the "level" of entry bundles
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF

_N_GROUP = re.compile(r"x\d{3}")
_DECIMAL = re.compile(r"0|[1-9]\d*")


def format_index(n: int) -> str:
    """``1234067 -> "x001/x234/067"``; ``5 -> "005"``."""
    if n < 0:
        raise ValueError("tile index is negative")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def parse_index(parts: Sequence[str]) -> int:
    """Inverse of :func:`format_index` over path elements; refuses non-canonical forms."""
    if not parts or len(parts[-1]) != 3 or not parts[-1].isdigit() or not parts[-1].isascii():
        raise TileError("malformed tile index", code="bad-tile-path")
    n = 0
    for p in parts[:-1]:
        if not _N_GROUP.fullmatch(p) or not p.isascii():
            raise TileError("malformed tile index", code="bad-tile-path")
        n = n * 1000 + int(p[1:])
    n = n * 1000 + int(parts[-1])
    if format_index(n) != "/".join(parts):
        raise TileError("non-canonical tile index", code="bad-tile-path")
    return n


@dataclass(frozen=True, order=True)
class TileId:
    """A hash tile (``level >= 0``) or an entry bundle (``level == ENTRIES``), full or partial."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not ENTRIES <= self.level <= MAX_LEVEL or self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise TileError(f"invalid tile {self.level}/{self.index}/{self.width}", code="bad-tile-path")

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        return self.level == ENTRIES

    def full(self) -> TileId:
        """The full tile with the same level and index."""
        return TileId(self.level, self.index)

    def path(self) -> str:
        """Relative path: ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]``."""
        base = f"tile/{'entries' if self.is_entries else self.level}/{format_index(self.index)}"
        return f"{base}.p/{self.width}" if self.is_partial else base

    def partial_dir(self) -> str:
        """The directory holding this tile's partial versions: ``<path of the full tile>.p``."""
        return self.full().path() + ".p"

    @property
    def start(self) -> int:
        """First leaf covered (the spec's *start index*)."""
        return self.index << (TILE_HEIGHT * (max(self.level, 0) + 1))

    @property
    def end(self) -> int:
        """One past the last leaf covered by this (possibly partial) tile."""
        span = 1 << (TILE_HEIGHT * max(self.level, 0))
        return self.start + self.width * span

    @classmethod
    def parse(cls, path: str) -> TileId:
        """Parse a relative tile path; refuses every non-canonical spelling."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "tile":
            raise TileError("not a tile path", code="bad-tile-path")
        if parts[1] == "entries":
            level = ENTRIES
        elif _DECIMAL.fullmatch(parts[1]) and parts[1].isascii() and int(parts[1]) <= MAX_LEVEL:
            level = int(parts[1])
        else:
            raise TileError("bad tile level", code="bad-tile-path")
        rest = parts[2:]
        width = TILE_WIDTH
        if len(rest) >= 2 and rest[-2].endswith(".p"):
            w = rest[-1]
            if not (_DECIMAL.fullmatch(w) and w.isascii() and 1 <= int(w) < TILE_WIDTH):
                raise TileError("bad partial tile width", code="bad-tile-path")
            width = int(w)
            rest = [*rest[:-2], rest[-2][:-2]]
        tile = cls(level, parse_index(rest), width)
        if tile.path() != path:
            raise TileError("non-canonical tile path", code="bad-tile-path")
        return tile


TileReader = Callable[[TileId], bytes]
"""Returns the bytes of a tile (or, for a partial tile, possibly the full tile)."""


# -- layout -------------------------------------------------------------------------------------


def partial_width(level: int, size: int) -> int:
    """Width of the partial tile at ``level`` (``ENTRIES`` counts as 0) for a tree of ``size``."""
    return (size >> (TILE_HEIGHT * max(level, 0))) & (TILE_WIDTH - 1)


def tile_count(size: int) -> int:
    """How many hash levels a tree of ``size`` has tiles at."""
    levels = 0
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels


def partial_tiles(size: int, *, entries: bool = False) -> list[TileId]:
    """The partial tiles of a tree of ``size`` (level 0 first), plus the partial entry bundle if asked."""
    out: list[TileId] = []
    if entries and size & (TILE_WIDTH - 1):
        out.append(TileId(ENTRIES, size >> TILE_HEIGHT, size & (TILE_WIDTH - 1)))
    for level in range(tile_count(size)):
        w = partial_width(level, size)
        if w:
            out.append(TileId(level, size >> (TILE_HEIGHT * (level + 1)), w))
    return out


def tile_layout(size: int, *, entries: bool = False) -> list[TileId]:
    """Every tile of a tree of ``size``: full tiles then the partial one, level by level."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise TileError("tree size out of range", code="bad-tile")
    out: list[TileId] = []
    if entries:
        out.extend(TileId(ENTRIES, n) for n in range(size >> TILE_HEIGHT))
        if size & (TILE_WIDTH - 1):
            out.append(TileId(ENTRIES, size >> TILE_HEIGHT, size & (TILE_WIDTH - 1)))
    for level in range(tile_count(size)):
        full = size >> (TILE_HEIGHT * (level + 1))
        out.extend(TileId(level, n) for n in range(full))
        w = partial_width(level, size)
        if w:
            out.append(TileId(level, full, w))
    return out


def tile_for(level: int, index: int, size: int) -> TileId:
    """The tile (full or partial, as it exists at ``size``) holding hash ``index`` of tile level ``level``."""
    n = index >> TILE_HEIGHT
    if (n + 1) << (TILE_HEIGHT * (level + 1)) <= size:
        return TileId(level, n)
    w = partial_width(level, size)
    if (size >> (TILE_HEIGHT * (level + 1))) != n or (index & (TILE_WIDTH - 1)) >= w:
        raise TileError(f"hash {index} of tile level {level} is not in a tree of size {size}", code="bad-tile")
    return TileId(level, n, w)


def _tile_slot(node: Node, size: int) -> tuple[TileId, int, int]:
    """Where a complete node's hash is computed from: (tile, first hash, count)."""
    level, index = node
    if (index + 1) << level > size:
        raise TileError(f"node {node} is not complete in a tree of size {size}", code="bad-tile")
    tl = level // TILE_HEIGHT
    h = level - tl * TILE_HEIGHT
    first = index << h
    return tile_for(tl, first, size), first & (TILE_WIDTH - 1), 1 << h


def tiles_for_nodes(nodes: Iterable[Node], size: int) -> list[TileId]:
    """The distinct tiles needed to compute ``nodes`` in a tree of ``size``."""
    return list(dict.fromkeys(_tile_slot(n, size)[0] for n in nodes))


def tiles_for_inclusion(index: int, size: int) -> list[TileId]:
    """The tiles to fetch to build an inclusion proof (fetch them in parallel, then prove)."""
    return tiles_for_nodes(nodes_for_inclusion(index, size), size)


def tiles_for_consistency(old_size: int, new_size: int) -> list[TileId]:
    """The tiles of the new tree to fetch to build a consistency proof."""
    return tiles_for_nodes(nodes_for_consistency(old_size, new_size), new_size)


# -- reading tiles ------------------------------------------------------------------------------


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """The first ``width`` hashes of a tile; accepts exactly ``width`` hashes or a full tile."""
    if len(data) != width * HASH_SIZE and len(data) != FULL_TILE_BYTES:
        raise TileError(f"tile is {len(data)} bytes, want {width * HASH_SIZE}", code="bad-tile")
    return [data[i : i + HASH_SIZE] for i in range(0, width * HASH_SIZE, HASH_SIZE)]


def tile_hash_reader(size: int, read_tile: TileReader) -> Callable[[Sequence[Node]], list[bytes]]:
    """A :data:`~tamizdat.bundles.tlog.proofs.HashReader` that recomputes nodes from tiles.

    Each tile is read at most once per call. Tiles are not trusted: a proof made
    from tampered tiles fails verification against a signed root.
    """

    def read(nodes: Sequence[Node]) -> list[bytes]:
        cache: dict[TileId, list[bytes]] = {}
        out: list[bytes] = []
        for node in nodes:
            tile, first, count = _tile_slot(node, size)
            hashes = cache.get(tile)
            if hashes is None:
                hashes = cache[tile] = split_hashes(read_tile(tile), tile.width)
            run = hashes[first : first + count]
            out.append(run[0] if count == 1 else perfect_root(run))
        return out

    return read


# -- entry bundles ------------------------------------------------------------------------------


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Concatenate entries, each prefixed by its big-endian uint16 length."""
    items = list(entries)
    if max(map(len, items), default=0) > MAX_ENTRY_SIZE:
        raise TileError("log entry is longer than 65,535 bytes", code="bad-entry")
    return b"".join([len(e).to_bytes(2, "big") + e for e in items])


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Split an entry bundle; with ``width``, demand that many entries (or a full bundle)."""
    out: list[bytes] = []
    i, n = 0, len(data)
    while i < n:
        if i + 2 > n:
            raise TileError("truncated entry length", code="bad-entry-bundle")
        size = int.from_bytes(data[i : i + 2], "big")
        i += 2
        if i + size > n:
            raise TileError("truncated entry", code="bad-entry-bundle")
        out.append(data[i : i + size])
        i += size
        if len(out) > TILE_WIDTH:
            raise TileError("entry bundle holds more than 256 entries", code="bad-entry-bundle")
    if width is not None:
        if len(out) == TILE_WIDTH and width < TILE_WIDTH:
            return out[:width]  # full bundle served for a vanished partial
        if len(out) != width:
            raise TileError(f"entry bundle holds {len(out)} entries, want {width}", code="bad-entry-bundle")
    return out


# -- conveniences over a tile reader ------------------------------------------------------------


def inclusion_proof_from_tiles(index: int, size: int, read_tile: TileReader) -> list[bytes]:
    """The inclusion proof of ``index`` in the tree of ``size``, computed from its tiles."""
    return prove_inclusion(index, size, tile_hash_reader(size, read_tile))


def consistency_proof_from_tiles(old_size: int, new_size: int, read_tile: TileReader) -> list[bytes]:
    """The consistency proof ``old_size -> new_size``, computed from the new tree's tiles."""
    return prove_consistency(old_size, new_size, tile_hash_reader(new_size, read_tile))


def root_from_tiles(size: int, read_tile: TileReader) -> bytes:
    """The root of the tree of ``size`` from its tiles (compare it with a signed checkpoint)."""
    return tree_root(size, tile_hash_reader(size, read_tile))
