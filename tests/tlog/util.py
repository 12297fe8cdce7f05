"""Helpers of the transparency-log tests: a naive RFC 6962 reference, fixed keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from tamizdat.bundles.tlog.tiles import TileId
from tamizdat.keys.ed25519 import SigningKey

ASSETS = Path(__file__).resolve().parent / "assets"


def naive_mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, recursively, straight from the definition (independent of the module)."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(leaf_hashes[:k]) + naive_mth(leaf_hashes[k:])).digest()


def naive_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def entry(i: int) -> bytes:
    """A deterministic synthetic log entry."""
    return b"entry %d" % i


def key(seed: int) -> SigningKey:
    return SigningKey.from_seed(bytes([seed]) * 32)


class TileStore:
    """A dict standing in for the static file tree of a log."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.reads: list[TileId] = []

    def write(self, files: Sequence[tuple[str, bytes]]) -> None:
        for path, data in files:
            old = self.files.get(path)
            assert old is None or old == data, f"{path} rewritten with other bytes"
            self.files[path] = data

    def read(self, tile: TileId) -> bytes:
        self.reads.append(tile)
        return self.files[tile.path()]

    def remove_dir(self, prefix: str) -> int:
        gone = [p for p in self.files if p.startswith(prefix + "/")]
        for p in gone:
            del self.files[p]
        return len(gone)
