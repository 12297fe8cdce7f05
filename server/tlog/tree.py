"""The log's tiles on disk: ``DATA/public/tlog/tile/...`` and ``tlog/checkpoint``.

Everything here blocks (file I/O, hashing): call it in a worker thread.

- :func:`write_batch` writes a :class:`~tamizdat.bundles.tlog.TileBatch`
  atomically, file by file; a tile that exists is left alone when its bytes are
  equal and refused when they differ (full tiles are immutable, and a partial
  tile of one width is fixed by the leaves it covers);
- :meth:`TileFiles.read` reads a tile back, falling back to the full tile when a
  partial one was collected;
- :func:`collect_partials` removes ``.p/`` directories whose full tile exists
  and is older than the grace period.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tamizdat.bundles.tlog import TileBatch, TileError, TileId
from tamizdat.fsutil import atomic_write

TLOG = "tlog"
CHECKPOINT = "checkpoint"
INDEX_PROOF = "index.tlog-proof"


@dataclass(frozen=True)
class TileFiles:
    """The ``tlog/`` folder of a public tree."""

    root: Path  # DATA/public/tlog

    @classmethod
    def in_public(cls, public: Path) -> TileFiles:
        return cls(public / TLOG)

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT

    @property
    def index_proof(self) -> Path:
        return self.root / INDEX_PROOF

    def path(self, tile: TileId) -> Path:
        return self.root / tile.path()

    def write_index(self, leaf_id: str, envelope: bytes) -> None:
        """Archive a logged index envelope as ``tlog/index/<leaf id>.json`` (written once)."""
        target = self.root / "index" / f"{leaf_id}.json"
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, envelope)

    def read(self, tile: TileId) -> bytes:
        """A tile's bytes; a partial tile that is gone is read from its full tile."""
        try:
            return self.path(tile).read_bytes()
        except FileNotFoundError:
            if not tile.is_partial:
                raise TileError(f"tile {tile.path()} is missing", code="missing-tile") from None
        try:
            return self.path(tile.full()).read_bytes()
        except FileNotFoundError:
            raise TileError(f"tile {tile.path()} is missing", code="missing-tile") from None


def write_batch(files: TileFiles, batch: TileBatch) -> int:
    """Write the batch's entry bundles and tiles; returns how many files were new.

    Files are not synced one by one: the caller syncs the filesystem once
    before it signs a checkpoint covering them.
    """
    written = 0
    for rel, data in batch.files():
        path = files.root / rel
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            atomic_write(path, data, durable=False)
            written += 1
            continue
        if old != data:
            raise TileError(
                f"log tile {rel} exists with other bytes: refusing to rewrite it (the log's state and the "
                "public tree disagree)",
                code="tile-conflict",
            )
    return written


def collect_partials(files: TileFiles, grace: float, now: float | None = None) -> list[str]:
    """Remove every ``<tile>.p/`` directory whose full tile exists and is older than ``grace`` seconds.

    Returns the removed directories (relative to ``tlog/``).
    """
    moment = time.time() if now is None else now
    base = files.root / "tile"
    removed: list[str] = []
    if not base.is_dir():
        return removed
    for folder, dirs, _names in os.walk(base):
        for name in list(dirs):
            if not name.endswith(".p"):
                continue
            dirs.remove(name)  # never descend into partials
            full = Path(folder) / name[:-2]
            if not full.is_file():
                continue  # the full tile does not exist yet: the partial is current
            if moment - full.stat().st_mtime >= grace:
                shutil.rmtree(Path(folder) / name, ignore_errors=True)
                removed.append(str((Path(folder) / name).relative_to(files.root)))
    return removed
