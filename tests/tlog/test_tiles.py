"""C2SP tlog-tiles: paths, layout (the spec's examples), entry bundles, the tree builder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamizdat.bundles.tlog.builder import TileBatch, TreeBuilder
from tamizdat.bundles.tlog.errors import TileError
from tamizdat.bundles.tlog.hashing import EMPTY_ROOT, leaf_hash
from tamizdat.bundles.tlog.proofs import MemoryTree, prove_inclusion, tree_root
from tamizdat.bundles.tlog.tiles import (
    ENTRIES,
    FULL_TILE_BYTES,
    TileId,
    decode_entry_bundle,
    encode_entry_bundle,
    format_index,
    partial_tiles,
    split_hashes,
    tile_hash_reader,
    tile_layout,
)

from .util import TileStore, entry, naive_leaf, naive_mth

# -- paths --------------------------------------------------------------------------------------


def test_path_split_spec_example() -> None:
    assert format_index(1234067) == "x001/x234/067"
    assert TileId(0, 1234067).path() == "tile/0/x001/x234/067"
    assert TileId(2, 1234067, 112).path() == "tile/2/x001/x234/067.p/112"
    assert TileId(ENTRIES, 1234067).path() == "tile/entries/x001/x234/067"
    assert TileId(ENTRIES, 5, 17).path() == "tile/entries/005.p/17"
    assert TileId(0, 1234067, 9).partial_dir() == "tile/0/x001/x234/067.p"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1_000_000, "x001/x000/000"),
        (2**40, "x001/x099/x511/x627/776"),
    ],
)
def test_format_index(n: int, text: str) -> None:
    assert format_index(n) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-1, max_value=63), st.integers(min_value=0, max_value=2**56), st.integers(1, 256))
def test_tile_path_round_trip(level: int, index: int, width: int) -> None:
    tile = TileId(level, index, width)
    assert TileId.parse(tile.path()) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1234",
        "tile/0/x000/123",  # leading zero group
        "tile/00/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/012",
        "tile/0/000.p/",
        "tile/0/x1/000",
        "tile/0/001/000",  # middle group without x
        "tile/data/000",
        "tiles/0/000",
        "tile/0",
        "tile/0/x001",
        "tile/0/00a",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits are digits to str.isdigit
        "/tile/0/000",
    ],
)
def test_bad_tile_paths(path: str) -> None:
    with pytest.raises(TileError):
        TileId.parse(path)


def test_tile_id_bounds() -> None:
    for args in [(64, 0, 256), (-2, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(TileError):
            TileId(*args)


# -- layout -------------------------------------------------------------------------------------


def _summary(size: int) -> dict[int, tuple[int, int]]:
    """Per level: (number of full tiles, partial width or 0)."""
    out: dict[int, tuple[int, int]] = {}
    for t in tile_layout(size):
        full, width = out.get(t.level, (0, 0))
        out[t.level] = (full + 1, width) if not t.is_partial else (full, t.width)
    return out


def test_layout_spec_example_70000() -> None:
    """tlog-tiles: 273 full level-0 tiles, a partial of width 112, one full level-1 tile,
    a level-1 partial of width 17 and a level-2 partial of width 1."""
    assert _summary(70_000) == {0: (273, 112), 1: (1, 17), 2: (0, 1)}
    assert [t.path() for t in partial_tiles(70_000)] == ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]


def test_layout_spec_example_256() -> None:
    """A tree of 256 leaves: one full level-0 tile and a level-1 partial of width 1."""
    assert tile_layout(256) == [TileId(0, 0), TileId(1, 0, 1)]
    assert tile_layout(0) == []
    assert tile_layout(1) == [TileId(0, 0, 1)]


def test_layout_one_million() -> None:
    """notes/transparency-log.md: 3,921 full tiles + 3 partials (64/66/15), 32,125,472 bytes."""
    tiles = tile_layout(1_000_000)
    full = [t for t in tiles if not t.is_partial]
    partial = [t.width for t in tiles if t.is_partial]
    assert len(full) == 3921 and partial == [64, 66, 15]
    assert sum(t.width * 32 for t in tiles) == 32_125_472
    bundles = tile_layout(1_000_000, entries=True)
    assert sum(1 for t in bundles if t.is_entries) == 3907


# -- entry bundles ------------------------------------------------------------------------------


def test_entry_bundle_round_trip() -> None:
    entries = [b"", b"a", b"x" * 65535, bytes(range(256))]
    data = encode_entry_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:4] == b"\x00\x01"
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, 4) == entries
    with pytest.raises(TileError):
        decode_entry_bundle(data, 3)
    with pytest.raises(TileError):
        decode_entry_bundle(data[:-1])
    with pytest.raises(TileError):
        decode_entry_bundle(data + b"\x00")
    with pytest.raises(TileError):
        encode_entry_bundle([b"x" * 65536])
    with pytest.raises(TileError):
        decode_entry_bundle(encode_entry_bundle([b""] * 257))
    full = encode_entry_bundle([b"%d" % i for i in range(256)])
    assert decode_entry_bundle(full, 10) == [b"%d" % i for i in range(10)]  # full bundle for a vanished partial


def test_split_hashes_sizes() -> None:
    assert split_hashes(b"\x01" * 64, 2) == [b"\x01" * 32] * 2
    assert len(split_hashes(b"\x01" * FULL_TILE_BYTES, 3)) == 3  # full tile for a vanished partial
    with pytest.raises(TileError):
        split_hashes(b"\x01" * 63, 2)
    with pytest.raises(TileError):
        split_hashes(b"\x01" * 96, 2)


# -- the builder --------------------------------------------------------------------------------


def _build(sizes: list[int]) -> tuple[TreeBuilder, TileStore, list[TileBatch]]:
    b = TreeBuilder()
    store = TileStore()
    batches: list[TileBatch] = []
    for s in sizes:
        b.extend(entry(i) for i in range(b.size, s))
        batch = b.flush()
        store.write(batch.files())
        batches.append(batch)
    return b, store, batches


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=5).map(sorted))
def test_builder_matches_reference_and_layout(sizes: list[int]) -> None:
    b, store, batches = _build(sizes)
    for batch in batches:
        leaves = [naive_leaf(entry(i)) for i in range(batch.size)]
        assert batch.root == (naive_mth(leaves) if batch.size <= 600 else MemoryTree(leaves).root())
        # Every tile the size needs exists, with the right width.
        for t in tile_layout(batch.size, entries=True):
            assert len(store.files[t.path()]) == (t.width * 32 if not t.is_entries else len(store.files[t.path()]))
    final = sizes[-1]
    assert b.root() == tree_root(final, tile_hash_reader(final, store.read))
    assert b.compact_range().root() == b.root()
    assert b.partial_entries() == [entry(i) for i in range(final - final % 256, final)]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.integers(min_value=0, max_value=2000))
def test_tiles_at_two_sizes_agree_on_full_tiles(a: int, b: int) -> None:
    """Tiles written at s1 < s2 by separate builders agree on every full tile (immutability)."""
    s1, s2 = sorted((a, b))
    _, one, _ = _build([s1])
    _, two, _ = _build([s2])
    full_one = {p: d for p, d in one.files.items() if ".p/" not in p}
    for path, data in full_one.items():
        assert two.files[path] == data
    # ...and a partial tile at s1 is a prefix of the same tile at s2.
    for path, data in one.files.items():
        if ".p/" in path:
            tile = TileId.parse(path)
            bigger = [t for t in tile_layout(s2, entries=True) if t.level == tile.level and t.index == tile.index]
            assert two.files[bigger[0].path()].startswith(data)


def test_flush_writes_only_what_changed_and_reports_garbage() -> None:
    b = TreeBuilder()
    first = b.flush()
    assert first.size == 0 and first.root == EMPTY_ROOT and not first.files()
    b.extend(entry(i) for i in range(100))
    batch = b.flush()
    assert [t.path() for t, _ in batch.tiles] == ["tile/0/000.p/100"]
    assert [t.path() for t, _ in batch.entry_bundles] == ["tile/entries/000.p/100"]
    assert b.flush().files() == []  # nothing new
    b.extend(entry(i) for i in range(100, 300))
    batch = b.flush()
    assert sorted(t.path() for t, _ in batch.tiles) == ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]
    assert batch.garbage_dirs() == ["tile/entries/000.p", "tile/0/000.p"]
    b.extend(entry(i) for i in range(300, 256 * 256 + 5))
    batch = b.flush()
    assert TileId(1, 0) in [t for t, _ in batch.tiles]
    assert set(batch.garbage) == {TileId(ENTRIES, 1), TileId(0, 1), TileId(1, 0)}


def test_garbage_collection_leaves_what_the_layout_needs() -> None:
    """After collection: every full tile, and the partials of every checkpointed size whose
    full tile does not exist yet (older, narrower ones included: old checkpoints need them)."""
    b = TreeBuilder()
    store = TileStore()
    sizes = list(range(0, 5000, 37))
    for size in sizes:
        b.extend(entry(i) for i in range(b.size, size))
        batch = b.flush()
        store.write(batch.files())
        for d in batch.garbage_dirs():
            store.remove_dir(d)
    final = tile_layout(b.size, entries=True)
    full = {t for t in final if not t.is_partial}
    needed = {t.path() for t in full}
    needed |= {t.path() for s in sizes for t in tile_layout(s, entries=True) if t.is_partial and t.full() not in full}
    assert set(store.files) == needed
    assert sum(1 for p in store.files if ".p/" in p) < 3 * 256 + 256


def test_resume_continues_identically() -> None:
    b, store, _ = _build([700])
    resumed = TreeBuilder.resume(700, store.read, root=b.root())
    assert resumed.root() == b.root() and resumed.partial_entries() == b.partial_entries()
    assert resumed.flush().files() == []  # the partials it read count as written
    for x in (b, resumed):
        x.extend(entry(i) for i in range(700, 1300))
    one, two = b.flush(), resumed.flush()
    assert one.files() == two.files() and one.garbage == two.garbage and one.root == two.root


def test_resume_refuses_tampered_tiles() -> None:
    b, store, _ = _build([700])
    root = b.root()
    evil = dict(store.files)
    path = TileId(0, 2, 188).path()
    evil[path] = b"\x00" + evil[path][1:]
    with pytest.raises(TileError):
        TreeBuilder.resume(700, lambda t: evil[t.path()], root=root)
    evil = dict(store.files)
    bundle = TileId(ENTRIES, 2, 188).path()
    evil[bundle] = encode_entry_bundle([b"forged", *decode_entry_bundle(evil[bundle])[1:]])
    with pytest.raises(TileError):
        TreeBuilder.resume(700, lambda t: evil[t.path()])
    evil = dict(store.files)
    path = TileId(1, 0, 2).path()
    evil[path] = evil[path][::-1]
    with pytest.raises(TileError):
        TreeBuilder.resume(700, lambda t: evil[t.path()], root=root)


def test_resume_empty_and_exact_tile_sizes() -> None:
    assert TreeBuilder.resume(0, lambda t: b"").root() == EMPTY_ROOT
    b, store, _ = _build([512])
    r = TreeBuilder.resume(512, store.read, root=b.root())
    r.append(entry(512))
    assert r.root() == MemoryTree(leaf_hash(entry(i)) for i in range(513)).root()


def test_proof_from_tiles_with_vanished_partials() -> None:
    """A reader falls back to the full tile when a partial was collected (tlog-tiles)."""
    b, store, _ = _build([300, 600])
    tree = MemoryTree(leaf_hash(entry(i)) for i in range(600))

    def fallback(t: TileId) -> bytes:
        if t.path() in store.files:
            return store.files[t.path()]
        return store.files[t.full().path()]

    store.remove_dir("tile/0/001.p")
    store.write(b.flush().files())  # nothing new: size unchanged
    # Size 300 needs tile/0/001.p/44, gone now that tile/0/001 is full at 600.
    assert TileId(0, 1).path() in store.files and TileId(0, 1, 44).path() not in store.files
    proof = prove_inclusion(299, 300, tile_hash_reader(300, fallback))
    assert proof == tree.inclusion_proof(299, 300)


def test_entry_too_large() -> None:
    with pytest.raises(TileError):
        TreeBuilder().append(b"x" * 65536)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=6))
def test_extend_equals_append(chunks: list[int]) -> None:
    one, two = TreeBuilder(), TreeBuilder()
    n = 0
    for c in chunks:
        batch = [entry(i) for i in range(n, n + c)]
        n += c
        for e in batch:
            one.append(e)
        assert two.extend(batch) == n
        a, b = one.flush(), two.flush()
        assert a.files() == b.files() and a.garbage == b.garbage and a.root == b.root
    assert one.compact_range() == two.compact_range()
    with pytest.raises(TileError):
        two.extend([b"ok", b"x" * 65536])
    assert two.size == n
