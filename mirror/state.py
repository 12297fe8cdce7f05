"""What a mirror remembers between runs, under ``DATA/state/mirror/`` (never served).

- ``roots/<N>.json``: the trusted root chain, from the pinned version on;
- ``index.json``: the bytes of the committed (served) index;
- ``trust.json``: the rollback floor, a pending re-check, the last root probe;
- ``health.json``: the last sync summary and each upstream's record;
- ``sync.lock``: one sync at a time per data directory (``flock``; a killed
  process releases it).

Every file is replaced atomically, so a crash leaves the old or the new copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from tamizdat.errors import TamizdatError, UsageError
from tamizdat.fsutil import atomic_write
from tamizdat.keys import timefmt
from tamizdat.server.datadir import DataDir

from .trust import TrustedState

STATE_FORMAT = 1


@dataclass
class UpstreamRecord:
    """How one upstream has behaved (shown in /healthz and `--json`)."""

    spec: str
    public_name: str
    last_ok: str | None = None
    last_error: dict[str, str] | None = None  # code, message, kind (rejected|network), at
    consecutive_failures: int = 0

    def success(self, at: dt.datetime) -> None:
        self.last_ok = timefmt.format(at)
        self.consecutive_failures = 0

    def failure(self, err: TamizdatError, kind: str, at: dt.datetime) -> None:
        self.last_error = {"code": err.code, "message": err.message[:300], "kind": kind, "at": timefmt.format(at)}
        if err.step is not None:
            self.last_error["step"] = err.step
        self.consecutive_failures += 1

    def public(self) -> dict[str, Any]:
        return {
            "upstream": self.public_name,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass
class SyncSummary:
    """The outcome of one sync (the CLI prints it, /healthz shows the last one)."""

    ok: bool = False
    started: str = ""
    seconds: float = 0.0
    upstream: str | None = None  # the one that succeeded
    changed: bool = False
    index_version: int | None = None
    new: int = 0  # bundles added to the store
    retracted: int = 0  # bundle files removed because the index retracts them
    pruned: int = 0  # superseded or unlisted bundle files removed
    rejected: int = 0  # offers refused (documents or bundles)
    bytes: int = 0
    requests: int = 0
    floor_reset: bool = False
    errors: list[dict[str, str]] = field(default_factory=list)
    log: dict[str, Any] | None = None  # the witness round's report (mirror.logsync); tlog requests counted there

    @property
    def code(self) -> str:
        """One stable word for the result."""
        if self.ok:
            return "ok"
        return self.errors[-1]["code"] if self.errors else "failed"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "code": self.code}


class StateStore:
    """Reads and writes ``DATA/state/mirror``."""

    def __init__(self, data: DataDir):
        self.data = data
        self.dir = data.state / "mirror"

    def create(self) -> StateStore:
        (self.dir / "roots").mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    # -- trust -----------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        path = self.dir / "trust.json"
        if not path.exists():
            return {}
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise UsageError(f"{path} is not a tamizdat mirror state file", code="bad-state")
        return doc

    def load_trust(self, root_keyid: str) -> TrustedState:
        """The trusted state (re-verified from the pinned key id), empty on a first run."""
        meta = self._meta()
        if meta and meta.get("root_keyid") != root_keyid:
            raise UsageError(
                "this data directory mirrors another publisher (root key id differs)", code="root-keyid-mismatch"
            )
        folder = self.dir / "roots"
        versions = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()) if folder.is_dir() else []
        roots = [(folder / f"{v}.json").read_bytes() for v in versions]
        index_path = self.dir / "index.json"
        index = index_path.read_bytes() if index_path.exists() and roots else None
        floor = meta.get("index_floor")
        return TrustedState.restore(
            root_keyid,
            roots,
            index,
            index_floor=floor if isinstance(floor, int) else None,
            reverify=bool(meta.get("reverify", False)),
        )

    def last_root_probe(self) -> float:
        value = self._meta().get("last_root_probe", 0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def save_root(self, version: int, data: bytes) -> None:
        atomic_write(self.dir / "roots" / f"{version}.json", data, mode=0o600)

    def save_trust(self, trust: TrustedState, *, last_root_probe: float | None = None) -> None:
        """Persist the index bytes (if any) and the small facts beside them."""
        if trust.index is not None:
            path = self.dir / "index.json"
            if not path.exists() or path.read_bytes() != trust.index.raw:
                atomic_write(path, trust.index.raw, mode=0o600)
        probe = self.last_root_probe() if last_root_probe is None else last_root_probe
        meta = {
            "format": STATE_FORMAT,
            "root_keyid": trust.root_keyid,
            "index_floor": trust.index_floor,
            "reverify": trust.reverify,
            "last_root_probe": probe,
        }
        atomic_write(self.dir / "trust.json", json.dumps(meta, sort_keys=True).encode(), mode=0o600)

    # -- health ----------------------------------------------------------
    def load_health(self) -> tuple[dict[str, UpstreamRecord], dict[str, Any] | None, str | None]:
        """Upstream records, the last summary and the time of the last good sync."""
        path = self.dir / "health.json"
        if not path.exists():
            return {}, None, None
        try:
            doc = json.loads(path.read_bytes())
            records = {r["spec"]: UpstreamRecord(**r) for r in doc.get("upstreams", [])}
            return records, doc.get("last_sync"), doc.get("last_ok")
        except (ValueError, TypeError, KeyError):
            return {}, None, None  # a damaged health file is only history: start over

    def save_health(self, records: dict[str, UpstreamRecord], summary: SyncSummary, last_ok: str | None) -> None:
        doc = {
            "format": STATE_FORMAT,
            "upstreams": [asdict(r) for r in records.values()],
            "last_sync": summary.to_json(),
            "last_ok": last_ok,
        }
        # History, not trust: no fsync (a crash may lose the last record, never the served state).
        atomic_write(self.dir / "health.json", json.dumps(doc, sort_keys=True).encode(), mode=0o600, durable=False)

    # -- lock ------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, wait: float = 0.0) -> Iterator[None]:
        """Hold the data directory's sync lock (``busy`` if another sync holds it)."""
        self.create()
        fd = os.open(self.dir / "sync.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise UsageError("another sync is running on this data directory", code="busy") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)
