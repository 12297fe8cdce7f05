"""Helpers of the origin's transparency-log tests: read the log back as a mirror or reader would."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from tamizdat.bundles.tlog import Leaf, LeafKind, SignedCheckpoint, TreeBuilder
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.keys import dsse
from tamizdat.keys.keydir import KeyDir
from tamizdat.server.appkeys import ORIGIN
from tamizdat.server.tlog.keeper import LogKeeper

from .support import Api


def keeper(api: Api) -> LogKeeper:
    log = api.app[ORIGIN].publisher.log
    assert log is not None
    return log


def trust_of(keys_dir: Path) -> LogTrust:
    trust = LogTrust.from_root(KeyDir(keys_dir).chain().newest)
    assert trust is not None
    return trust


def db_leaves(data_dir: Path) -> list[tuple[int, int, str, int]]:
    """(n, kind, id hex, index version) of every leaf in the state database."""
    db = sqlite3.connect(data_dir / "state" / "origin.sqlite3")
    try:
        return [tuple(r) for r in db.execute("SELECT n, kind, id, index_version FROM tlog_leaves ORDER BY n")]  # type: ignore[misc]
    finally:
        db.close()


def entries_of(rows: Iterable[tuple[int, int, str, int]]) -> list[bytes]:
    return [Leaf(LeafKind(kind), bytes.fromhex(i)).to_bytes() for _, kind, i, _ in rows]


def index_leaf_id(index_json: bytes) -> str:
    """The id of an index's leaf: SHA-256 of the DSSE payload of ``index.json``."""
    payload = dsse.Envelope.from_bytes(index_json, expected_type=dsse.INDEX_TYPE).payload
    return hashlib.sha256(payload).hexdigest()


def tlog_files(data_dir: Path) -> dict[str, bytes]:
    """Every tile and entry bundle under ``public/tlog/tile`` (relative to ``public/tlog``)."""
    base = data_dir / "public" / "tlog"
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted((base / "tile").rglob("*"))
        if p.is_file() and not p.name.startswith(".tmp-")
    }


def replay(rows: list[tuple[int, int, str, int]]) -> tuple[dict[str, bytes], TreeBuilder]:
    """The tiles a log writer emits when each round's leaves (grouped by index version) get a checkpoint."""
    builder = TreeBuilder()
    files: dict[str, bytes] = {}
    version = None
    pending: list[tuple[int, int, str, int]] = []

    def flush() -> None:
        builder.extend(entries_of(pending))
        for path, data in builder.flush().files():
            assert files.get(path, data) == data, f"{path} emitted twice with other bytes"
            files[path] = data
        pending.clear()

    for row in rows:
        if version is not None and row[3] != version:
            flush()
        version = row[3]
        pending.append(row)
    if pending:
        flush()
    return files, builder


def checkpoint_of(data_dir: Path, trust: LogTrust) -> SignedCheckpoint:
    return trust.verify_checkpoint((data_dir / "public" / "tlog" / "checkpoint").read_bytes())
