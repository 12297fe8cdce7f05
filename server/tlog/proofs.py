"""``.tlog-proof`` files (c2sp.org/tlog-proof) from the origin's own tiles. Blocking: run in a thread.

Once a checkpoint meets the policy's quorum, every bundle leaf it covers gets
``bundles/<id>.tlog-proof`` (written once: a newer checkpoint proves nothing
more about the bundle; rewritten only when the newest root no longer accepts
its checkpoint, :mod:`.stale`), and ``tlog/index.tlog-proof`` proves the last
leaf, the current index, under the newest quorum-cosigned checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tamizdat.bundles.tlog import ProofFile, TileId, inclusion_proof_from_tiles
from tamizdat.fsutil import atomic_write

from ..datadir import DataDir
from .tree import TileFiles

PROOF_SUFFIX = ".tlog-proof"


class CachedTiles:
    """Reads tiles once per batch of proofs (neighbouring leaves share most of their tiles)."""

    def __init__(self, files: TileFiles) -> None:
        self.files = files
        self._cache: dict[TileId, bytes] = {}

    def read(self, tile: TileId) -> bytes:
        data = self._cache.get(tile)
        if data is None:
            data = self._cache[tile] = self.files.read(tile)
        return data


def proof_path(data: DataDir, bundle_id: str) -> Path:
    """``public/bundles/<id>.tlog-proof`` (removed with its bundle when it is retracted)."""
    return data.bundles / f"{bundle_id}{PROOF_SUFFIX}"


def proof_bytes(tiles: CachedTiles, index: int, note: bytes, size: int) -> bytes:
    proof = inclusion_proof_from_tiles(index, size, tiles.read)
    return ProofFile(index, tuple(proof), note).to_bytes()


def write_bundle_proofs(
    files: TileFiles,
    data: DataDir,
    note: bytes,
    size: int,
    pending: Sequence[tuple[int, str, bool]],
    *,
    replace: bool = False,
) -> list[int]:
    """Write the proof of each pending (leaf, bundle id, retracted) under ``note``; returns the leaves handled.

    A retracted bundle (its file is gone) gets none; an existing proof file is
    kept as it is unless ``replace`` (stale proofs).
    """
    tiles = CachedTiles(files)
    done: list[int] = []
    for index, bundle_id, retracted in pending:
        path = proof_path(data, bundle_id)
        if not retracted and (replace or not path.exists()) and data.bundle_path(bundle_id).exists():
            atomic_write(path, proof_bytes(tiles, index, note, size), durable=False)
        done.append(index)
    return done


def write_index_proof(files: TileFiles, note: bytes, size: int) -> bool:
    """Prove the last leaf (the index) under ``note``; True if the file changed."""
    data = proof_bytes(CachedTiles(files), size - 1, note, size)
    try:
        if files.index_proof.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(files.index_proof, data)
    return True
