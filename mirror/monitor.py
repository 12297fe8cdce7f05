"""The publisher's log monitor: every leaf of the log must be a bundle the publisher made.

``tamizdat log monitor`` reads the log the way a mirror does: it walks the root
chain from the pinned key id, fetches ``tlog/checkpoint`` and checks it against
the newest root's log keys and origin (no quorum needed: the monitor wants to
see everything the log key signed), then fetches the entry bundles
(``tlog/tile/entries/...``), rebuilds the tree and demands the checkpoint's
root. Each bundle leaf (kind 1) and retraction leaf (kind 2) whose bundle id
the publisher did not make is an alarm: a signing key was used behind the
publisher's back.

With a state file the monitor remembers the checkpoint it last accepted and
the compact range of its tree: the next run reads only the new leaves, and the
new checkpoint must extend the old one (a smaller size is a rollback, the same
size with another root or new leaves that do not lead to the signed root is a
fork). A fork or rollback keeps the old state, so it is reported on every run;
an unknown leaf is reported by the run that reads it, and the state moves past
it (the alarm and its JSON are the record). Without a state file nothing is
remembered and every run reads the whole log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tamizdat.bundles.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from tamizdat.bundles.tlog.errors import LeafError, TileError
from tamizdat.bundles.tlog.hashing import CompactRange, leaf_hash
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind
from tamizdat.bundles.tlog.tiles import ENTRIES, TILE_WIDTH, TileId, decode_entry_bundle
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import FormatError, NetworkError, RejectedError, UsageError
from tamizdat.fsutil import atomic_write
from tamizdat.keys.root import MAX_ROOT_CHAIN, RootChain, verify_root_chain

from .sync import root_version_hint
from .upstream import Upstream

STATE_FORMAT = 1
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_ENTRY_BUNDLE_BYTES = TILE_WIDTH * (2 + 0xFFFF)
MAX_ROOT_BYTES = 256 * 1024
TIMEOUT = 60.0
PARALLEL = 8  # entry bundles in flight
ROOT_STEPS = ("R1", "R2", "R3", "R4")


@dataclass(frozen=True)
class Alarm:
    """Something the publisher must look at.

    ``kind``: ``unknown-bundle``, ``unknown-retraction``, ``bad-leaf``, ``fork``,
    ``rollback``, ``inconsistent`` (the entries do not lead to the signed root).
    """

    kind: str
    message: str
    index: int | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(frozen=True)
class MonitorState:
    """The last accepted checkpoint: origin, size, root, compact range and the signed note itself."""

    origin: str
    size: int
    root: bytes
    compact: tuple[bytes, ...]
    checkpoint: bytes

    def to_bytes(self) -> bytes:
        doc = {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "compact": [h.hex() for h in self.compact],
            "checkpoint": base64.b64encode(self.checkpoint).decode("ascii"),
        }
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> MonitorState:
        """Parse a state file; anything unexpected is a one-line :class:`UsageError` (never overwritten)."""
        try:
            doc = json.loads(data)
            if doc["format"] != STATE_FORMAT:
                raise ValueError("unknown format")
            state = cls(
                origin=str(doc["origin"]),
                size=int(doc["size"]),
                root=bytes.fromhex(doc["root"]),
                compact=tuple(bytes.fromhex(h) for h in doc["compact"]),
                checkpoint=base64.b64decode(doc["checkpoint"], validate=True),
            )
            rng = CompactRange.from_hashes(state.size, state.compact)
            if rng.root() != state.root:
                raise ValueError("compact range does not match the root")
        except (ValueError, KeyError, TypeError, RejectedError) as exc:
            raise UsageError(
                f"the monitor state file is damaged ({exc}); move it away to start over", code="bad-state"
            ) from None
        return state


@dataclass
class MonitorReport:
    """One run: what was read and every alarm."""

    upstream: str
    origin: str = ""
    old_size: int = 0
    size: int = 0
    root: bytes = b""
    counts: dict[str, int] = field(default_factory=lambda: {"bundle": 0, "retraction": 0, "index": 0})
    alarms: list[Alarm] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)  # old/new signed notes of a fork or rollback

    @property
    def ok(self) -> bool:
        return not self.alarms

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "upstream": self.upstream,
            "origin": self.origin,
            "old_size": self.old_size,
            "size": self.size,
            "root": self.root.hex(),
            "leaves_read": self.size - self.old_size if self.size >= self.old_size else 0,
            "counts": dict(self.counts),
            "alarms": [a.to_json() for a in self.alarms],
            **({"evidence": dict(self.evidence)} if self.evidence else {}),
        }

    def text(self) -> str:
        read = max(0, self.size - self.old_size)
        c = self.counts
        head = (
            f"log {self.origin} at size {self.size}: read {read} new leaves "
            f"({c['bundle']} bundles, {c['retraction']} retractions, {c['index']} indexes)"
        )
        if self.ok:
            return head + "\nok: every logged bundle and retraction is one the publisher made"
        lines = [head, f"ALARM: {len(self.alarms)} problem(s)"]
        for a in self.alarms:
            where = f" #{a.index}" if a.index is not None else ""
            lines.append(f"  {a.kind}{where}{' ' + a.id if a.id else ''}: {a.message}")
        return "\n".join(lines)


class KnownIds(Protocol):
    """The publisher's own bundle ids."""

    def missing(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` the publisher did not make."""
        ...


class IdFile:
    """Bundle ids from a file, one per line (blank lines and ``#`` comments ignored)."""

    def __init__(self, path: Path) -> None:
        self.ids: set[str] = set()
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if len(line) != 64 or any(c not in "0123456789abcdef" for c in line):
                raise UsageError(f"{path.name} line {number}: a bundle id is 64 lowercase hex digits", code="bad-ids")
            self.ids.add(line)

    def missing(self, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if i not in self.ids}


class OriginStore:
    """The origin's SQLite store (``DATA/state/origin.sqlite3``, table ``bundles``), opened read-only."""

    def __init__(self, data_dir: Path) -> None:
        from tamizdat.server.store import DB_NAME

        self.path = data_dir / "state" / DB_NAME
        if not self.path.is_file():
            raise UsageError(f"{data_dir} holds no origin store (state/{DB_NAME})", code="no-store")

    def missing(self, ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(ids))
        found: set[str] = set()
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(row[0] for row in db.execute(f"SELECT id FROM bundles WHERE id IN ({marks})", chunk))
        except sqlite3.Error as exc:
            raise UsageError(f"cannot read the origin store: {exc}", code="bad-store") from None
        finally:
            db.close()
        return set(wanted) - found


# -- reading the upstream --------------------------------------------------------------------------


async def fetch_root_chain(up: Upstream, root_keyid: str) -> RootChain:
    """``root.json`` for the newest version, then ``roots/1..N.json``, verified from the pinned key id."""
    newest = await up.fetch("root.json", max_bytes=MAX_ROOT_BYTES, timeout=TIMEOUT)
    version = root_version_hint(newest)
    if not 1 <= version <= MAX_ROOT_CHAIN:
        raise FormatError("root.json does not parse as a root document", code="bad-root")
    docs = [await up.fetch(f"roots/{v}.json", max_bytes=MAX_ROOT_BYTES, timeout=TIMEOUT) for v in range(1, version)]
    return await asyncio.to_thread(verify_root_chain, [*docs, newest], pinned_keyid=root_keyid, steps=ROOT_STEPS)


def open_log_checkpoint(data: bytes, trust: LogTrust) -> SignedCheckpoint:
    """The checkpoint signed by a log key of the root, for the root's origin (cosignatures not required)."""
    p = trust.policy
    return open_checkpoint(data, p.log_verifiers(trust.origin), p.witness_verifiers(), origin=trust.origin)


def entry_tiles(start: int, size: int) -> list[TileId]:
    """The entry bundles (full or partial) holding leaves ``start .. size - 1``."""
    out = []
    for n in range(start // TILE_WIDTH, (size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        out.append(TileId(ENTRIES, n, width))
    return out


async def fetch_entries(up: Upstream, tile: TileId) -> list[bytes]:
    """One entry bundle; a partial that vanished falls back to the full bundle."""
    try:
        data = await up.fetch("tlog/" + tile.path(), max_bytes=MAX_ENTRY_BUNDLE_BYTES, timeout=TIMEOUT)
    except NetworkError as exc:
        if not tile.is_partial or exc.code not in ("http-404", "not-found"):
            raise
        data = await up.fetch("tlog/" + tile.full().path(), max_bytes=MAX_ENTRY_BUNDLE_BYTES, timeout=TIMEOUT)
    return decode_entry_bundle(data, tile.width)


async def read_leaves(up: Upstream, start: int, size: int) -> list[bytes]:
    """Entries ``start .. size - 1`` in order (bounded parallel fetches)."""
    tiles = entry_tiles(start, size)
    out: list[bytes] = []
    for k in range(0, len(tiles), PARALLEL):
        batch = tiles[k : k + PARALLEL]
        for tile, entries in zip(batch, await asyncio.gather(*(fetch_entries(up, t) for t in batch)), strict=True):
            lo = max(start, tile.start) - tile.start
            out.extend(entries[lo:])
    return out


# -- the check ----------------------------------------------------------------------------------


def extend(state: MonitorState | None, entries: Sequence[bytes]) -> CompactRange:
    rng = CompactRange() if state is None else CompactRange.from_hashes(state.size, state.compact)
    rng.extend(leaf_hash(e) for e in entries)
    return rng


def classify(entries: Sequence[bytes], first: int, report: MonitorReport) -> dict[str, list[tuple[int, LeafKind]]]:
    """Count the leaves; bundle id -> [(leaf index, kind)] for bundle and retraction leaves."""
    ids: dict[str, list[tuple[int, LeafKind]]] = {}
    for offset, entry in enumerate(entries):
        try:
            leaf = Leaf.parse(entry)
        except LeafError as exc:
            report.alarms.append(Alarm("bad-leaf", f"a signed leaf is malformed: {exc.message}", first + offset))
            continue
        if leaf.kind == LeafKind.INDEX:
            report.counts["index"] += 1
            continue
        report.counts["bundle" if leaf.kind == LeafKind.BUNDLE else "retraction"] += 1
        ids.setdefault(leaf.id_hex, []).append((first + offset, leaf.kind))
    return ids


async def monitor(
    up: Upstream, root_keyid: str, known: KnownIds, state: MonitorState | None
) -> tuple[MonitorReport, MonitorState | None]:
    """One run. Returns the report and the state to save (None: keep the old one)."""
    report = MonitorReport(up.public_name if up.public_name != "directory" else up.spec)
    chain = await fetch_root_chain(up, root_keyid)
    trust = LogTrust.from_root(chain.newest)
    if trust is None:
        raise UsageError(f"root version {chain.newest.version} says the publisher keeps no log", code="no-log")
    note = await up.fetch("tlog/checkpoint", max_bytes=MAX_CHECKPOINT_BYTES, timeout=TIMEOUT)
    signed = await asyncio.to_thread(open_log_checkpoint, note, trust)
    cp = signed.checkpoint
    report.origin, report.size, report.root = cp.origin, cp.size, cp.root
    if state is not None:
        if state.origin != cp.origin:
            raise UsageError(f"the state file is for log {state.origin}, not {cp.origin}", code="bad-state")
        report.old_size = state.size
    evidence = {
        "old": state.checkpoint.decode("utf-8", "replace") if state else "",
        "new": note.decode("utf-8", "replace"),
    }
    if state is not None:
        if cp.size < state.size:
            report.alarms.append(Alarm("rollback", f"the log went back from size {state.size} to {cp.size}"))
            report.evidence = evidence
            return report, None
        if cp.size == state.size and cp.root != state.root:
            report.alarms.append(Alarm("fork", f"two signed roots for size {cp.size}"))
            report.evidence = evidence
            return report, None
    start = report.old_size
    try:
        entries = await read_leaves(up, start, cp.size)
    except TileError as exc:
        raise FormatError(f"the upstream's entry bundles are malformed: {exc.message}", code=exc.code) from None
    rng = await asyncio.to_thread(extend, state, entries)
    if rng.root() != cp.root:
        base = f"the tree saved at size {start} extended by" if state is not None else "the"
        report.alarms.append(
            Alarm(
                "inconsistent",
                f"{base} entries up to size {cp.size} does not give the signed root (a fork, or tampered entries)",
            )
        )
        if state is not None:
            report.evidence = evidence
        return report, None
    ids = classify(entries, start, report)
    for bundle_id in sorted(await asyncio.to_thread(known.missing, ids), key=lambda i: ids[i][0][0]):
        for index, kind in ids[bundle_id]:
            name = "unknown-bundle" if kind == LeafKind.BUNDLE else "unknown-retraction"
            what = "a bundle" if kind == LeafKind.BUNDLE else "a retraction of a bundle"
            report.alarms.append(Alarm(name, f"{what} the publisher did not make", index, bundle_id))
    report.alarms.sort(key=lambda a: (a.index is None, a.index or 0))
    return report, MonitorState(cp.origin, cp.size, cp.root, rng.hashes, note)


def load_state(path: Path) -> MonitorState | None:
    return MonitorState.from_bytes(path.read_bytes()) if path.exists() else None


def save_state(path: Path, state: MonitorState) -> None:
    atomic_write(path, state.to_bytes())


__all__ = [
    "Alarm",
    "IdFile",
    "KnownIds",
    "MonitorReport",
    "MonitorState",
    "OriginStore",
    "entry_tiles",
    "load_state",
    "monitor",
    "save_state",
]
