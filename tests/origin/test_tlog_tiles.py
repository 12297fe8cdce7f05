"""The log keeper's tiles across tile boundaries: TreeBuilder's bytes, immutable full tiles, dead partials.

The keeper runs here without the app: leaves are inserted in the state
database as rounds would record them, then ``after_round`` publishes them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tamizdat.bundles.tlog import (
    LeafKind,
    TileId,
    check_extends,
    consistency_proof_from_tiles,
    inclusion_proof_from_tiles,
    leaf_hash,
    verify_inclusion,
)
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.server.datadir import DataDir
from tamizdat.server.keyring import Keyring
from tamizdat.server.store import Store
from tamizdat.server.tlog import signed
from tamizdat.server.tlog.keeper import LogConfig, LogKeeper
from tamizdat.server.tlog.tree import TileFiles, collect_partials

from .tlog_support import checkpoint_of, db_leaves, entries_of, replay, tlog_files, trust_of


@pytest.fixture
async def store(data_dir: Path) -> AsyncIterator[Store]:
    DataDir(data_dir).create()
    async with Store.in_state_dir(data_dir / "state") as s:
        yield s


async def _keeper(store: Store, data_dir: Path, keys_dir: Path, grace: float = 3600.0) -> LogKeeper:
    keeper = LogKeeper(
        store, DataDir(data_dir), Keyring(keys_dir), LogConfig(gather_interval=3600, partial_grace=grace)
    )
    await keeper.start()
    return keeper


async def _round(store: Store, version: int, count: int) -> None:
    """``count`` leaves of one round (synthetic index leaves: no bundle files needed)."""
    async with store.tx() as tx:
        first = int(await tx.value("SELECT COALESCE(MAX(n) + 1, 0) FROM tlog_leaves"))
        await tx.many(
            "INSERT INTO tlog_leaves (n, kind, id, index_version) VALUES (?, ?, ?, ?)",
            [
                (first + i, LeafKind.INDEX, hashlib.sha256(b"%d" % (first + i)).hexdigest(), version)
                for i in range(count)
            ],
        )


async def test_tiles_across_boundaries_equal_tree_builder_and_full_tiles_stay(
    store: Store, data_dir: Path, keys_dir: Path
) -> None:
    keeper = await _keeper(store, data_dir, keys_dir)
    keys = Keyring(keys_dir).snapshot()
    trust = trust_of(keys_dir)
    files = TileFiles.in_public(data_dir / "public")
    checkpoints = []
    inode_of_first_full = None
    for version, count in enumerate([1, 255, 1, 300, 65_000, 700], 1):
        await _round(store, version, count)
        await keeper.after_round(keys)
        assert keeper.state == "ok", keeper.message
        cp = checkpoint_of(data_dir, trust).checkpoint
        assert cp.size == len(db_leaves(data_dir))
        if checkpoints:
            old = checkpoints[-1]
            check_extends(old, cp, consistency_proof_from_tiles(old.size, cp.size, files.read))
        checkpoints.append(cp)
        full = files.path(TileId(0, 0))
        if full.exists():
            inode = full.stat().st_ino
            assert inode_of_first_full in (None, inode), "a full tile was rewritten"
            inode_of_first_full = inode
    expected, builder = replay(db_leaves(data_dir))
    assert tlog_files(data_dir) == expected
    assert builder.root() == checkpoints[-1].root
    assert files.path(TileId(1, 0)).exists() and files.path(TileId(0, 255)).exists()  # 65,536 leaves: a full L1 tile
    assert signed.load(data_dir / "state") is not None


async def test_a_tile_with_other_bytes_is_never_rewritten(store: Store, data_dir: Path, keys_dir: Path) -> None:
    keeper = await _keeper(store, data_dir, keys_dir)
    keys = Keyring(keys_dir).snapshot()
    await _round(store, 1, 300)
    await keeper.after_round(keys)
    files = TileFiles.in_public(data_dir / "public")
    tile = files.path(TileId(0, 0))
    tile.write_bytes(b"\x00" * 8192)
    # a keeper that has to rebuild every tile (no signed state, no checkpoint: a fresh log from the database)
    (data_dir / "state" / signed.SIGNED_NAME).unlink()
    files.checkpoint.unlink()
    keeper = await _keeper(store, data_dir, keys_dir)
    await _round(store, 2, 1)
    await keeper.after_round(keys)
    assert keeper.state == "error" and "refusing to rewrite" in keeper.message
    assert tile.read_bytes() == b"\x00" * 8192
    assert not files.checkpoint.exists()


async def test_resume_from_the_database_when_the_tiles_are_gone(store: Store, data_dir: Path, keys_dir: Path) -> None:
    keeper = await _keeper(store, data_dir, keys_dir)
    keys = Keyring(keys_dir).snapshot()
    trust = trust_of(keys_dir)
    await _round(store, 1, 600)
    await keeper.after_round(keys)
    old = checkpoint_of(data_dir, trust).checkpoint
    for path in sorted((data_dir / "public" / "tlog" / "tile").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    keeper = await _keeper(store, data_dir, keys_dir)  # a restart: the tiles are rebuilt from the leaves
    await _round(store, 2, 3)
    await keeper.after_round(keys)
    assert keeper.state == "ok", keeper.message
    new = checkpoint_of(data_dir, trust).checkpoint
    files = TileFiles.in_public(data_dir / "public")
    check_extends(old, new, consistency_proof_from_tiles(old.size, new.size, files.read))
    expected, _ = replay(db_leaves(data_dir))
    assert tlog_files(data_dir) == expected  # the signed size's partials were written again too


async def test_dead_partials_go_after_the_grace_period(store: Store, data_dir: Path, keys_dir: Path) -> None:
    keeper = await _keeper(store, data_dir, keys_dir, grace=0.5)
    keys = Keyring(keys_dir).snapshot()
    trust = trust_of(keys_dir)
    files = TileFiles.in_public(data_dir / "public")
    await _round(store, 1, 100)
    await keeper.after_round(keys)
    early = checkpoint_of(data_dir, trust).checkpoint
    await _round(store, 2, 200)  # completes tile 0 (size 300)
    await keeper.after_round(keys)
    dead, live = files.root / "tile/0/000.p", files.root / "tile/0/001.p"
    assert (dead / "100").exists() and (live / "44").exists()
    await keeper.gather_once()
    assert dead.exists()  # the full tile is younger than the grace period
    time.sleep(0.6)
    keeper._last_gc = 0.0  # the next pass may collect at once (it waits min(grace, 1 hour) between passes)
    await keeper.gather_once()
    assert not dead.exists() and not (files.root / "tile/entries/000.p").exists()
    assert (live / "44").exists() and (files.root / "tile/entries/001.p/44").exists()
    # proofs under the older checkpoint still build: the full tile stands in for the vanished partial
    entries = entries_of(db_leaves(data_dir))
    proof = inclusion_proof_from_tiles(42, early.size, files.read)
    verify_inclusion(leaf_hash(entries[42]), 42, early.size, proof, early.root)


def test_collect_partials_keeps_current_ones(tmp_path: Path) -> None:
    files = TileFiles(tmp_path / "tlog")
    for rel in ("tile/0/000", "tile/0/000.p/5", "tile/0/x001/234.p/7", "tile/entries/000", "tile/entries/000.p/5"):
        path = files.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert collect_partials(files, grace=60) == []
    old = time.time() - 120
    for rel in ("tile/0/000", "tile/entries/000"):
        os.utime(files.root / rel, (old, old))
    assert sorted(collect_partials(files, grace=60)) == ["tile/0/000.p", "tile/entries/000.p"]
    assert (files.root / "tile/0/x001/234.p/7").exists()  # no full tile yet: current


def test_trust_of_default_keys_is_quorum_none(keys_dir: Path) -> None:
    trust: LogTrust = trust_of(keys_dir)
    assert trust.policy.quorum is None and trust.policy.witnesses == ()
