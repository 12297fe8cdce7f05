"""Helpers of the origin's transparency-log tests: read the log back as a mirror or reader would."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from tamizdat.bundles.tlog import (
    Checkpoint,
    CosignatureSigner,
    Ed25519Signer,
    Leaf,
    LeafKind,
    Note,
    SignedCheckpoint,
    TreeBuilder,
    open_checkpoint,
    sign_checkpoint,
)
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.keys import dsse
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.server.appkeys import ORIGIN
from tamizdat.server.tlog.keeper import LogKeeper

from .support import Api


async def log_health(api: Api) -> dict[str, Any]:
    """The ``log`` object of the origin's /healthz."""
    return dict((await (await api.client.get("/healthz")).json())["log"])


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
        rows = db.execute("SELECT n, kind, id, index_version FROM tlog_leaves ORDER BY n")
        return [(int(n), int(kind), str(i), int(v)) for n, kind, i, v in rows]
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


def checkpoint_of(data_dir: Path, trust: LogTrust, *, quorum: bool = True) -> SignedCheckpoint:
    """The public checkpoint, verified with the root's trust (log key, origin; the quorum unless told not to)."""
    data = (data_dir / "public" / "tlog" / "checkpoint").read_bytes()
    if quorum:
        return trust.verify_checkpoint(data)
    policy = trust.policy
    return open_checkpoint(data, policy.log_verifiers(trust.origin), policy.witness_verifiers(), origin=trust.origin)


class FakeWitness:
    """A witness's static view on 127.0.0.1: serves ``note`` (404 while None) or fails with ``status``."""

    def __init__(self, name: str = "mirror-a", seed: int = 7) -> None:
        self.signer = CosignatureSigner(name, SigningKey.from_seed(bytes([seed]) * 32))
        self.note: bytes | None = None
        self.status = 200
        self.paths: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/tlog/witness/{origin_hash}/checkpoint", self._view)

    @property
    def name(self) -> str:
        return self.signer.name

    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    async def _view(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if self.status != 200:
            return web.Response(status=self.status)
        if self.note is None:
            raise web.HTTPNotFound()
        return web.Response(body=self.note, content_type="text/plain")

    def cosign(self, note: bytes, at: int | None = None) -> bytes:
        """``note`` with this witness's cosignature added (as a witness publishes its view)."""
        parsed = Note.parse(note)
        line = self.signer.cosign(parsed.text, int(time.time()) if at is None else at)
        return parsed.with_signatures([line]).to_bytes()


def set_policy(offline: KeyDir, policy: str) -> LogTrust:
    """Publish root N+1 with this witness policy; returns its trust."""
    root = offline.set_log_policy(policy)
    trust = LogTrust.from_root(root)
    assert trust is not None
    return trust


def sign_with_log_key(keys_dir: Path, checkpoint: Checkpoint) -> bytes:
    """A checkpoint signed with the origin's own log key (what a stolen key or an older state could show)."""
    root = KeyDir(keys_dir).chain().newest
    [keyid] = root.log_keys()
    key = SigningKey.load(keys_dir / "signing" / f"{keyid}.pem")
    return sign_checkpoint(checkpoint, [Ed25519Signer(checkpoint.origin, key)])
