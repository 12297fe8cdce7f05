"""The origin's log keeper: the writer (:mod:`.writer`) plus the background gathering.

docs/transparency.md ("Origin") and docs/operator-origin.md ("Transparency
log"). A background task (:meth:`LogKeeper.gather_once`, every
``tlog_gather_interval`` seconds and right after each round) reads the
witnesses' views: after a start it lets the writer sign only once they show
nothing newer than its last signed checkpoint (:func:`.witnesses.judge`); it
publishes what rounds left unpublished, merges the witnesses' cosignatures of
the current checkpoint into ``tlog/checkpoint``, writes the proofs once the
quorum is met, and removes dead partial tiles.

When the root's trust lost something (a log key revoked, the witness policy
changed), the next pass finds the bundle proofs whose checkpoint the newest
root no longer accepts (:mod:`.stale`), marks them stale and rewrites them under
the first quorum-cosigned checkpoint; /healthz counts them (``proofs_stale``,
the index proof included) until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.aioutil import cancel_and_wait
from tamizdat.bundles.tlog import Checkpoint, SignedCheckpoint, merge_cosignatures, open_checkpoint
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.proofs import tree_root
from tamizdat.bundles.tlog.reader import FUTURE_SKEW
from tamizdat.bundles.tlog.tiles import tile_hash_reader
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.bundles.tlog.witness import evidence_name
from tamizdat.fsutil import atomic_write
from tamizdat.keys import timefmt

from ..datadir import DataDir, sync_filesystem
from ..httpclient import BoundedClient
from ..keyring import Keyring, KeySnapshot
from ..store import Store
from . import leaves, proofs, stale, tree, witnesses
from .witnesses import WitnessView
from .writer import ERROR, LogWriter, note_text, pause_for_tests

log = logging.getLogger("tamizdat.server.tlog")


def _keep(target: Path, note: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, note)


PROOF_BATCH = 4096
FORK_CODE = "fork"  # evidence files: the mirrors' naming (bundles.tlog.witness.evidence_name)
WARN_AFTER = 60.0  # seconds a witness's view has failed in a row before the log says so


@dataclass(frozen=True)
class LogConfig:
    gather_interval: float = 30.0
    partial_grace: float = 7 * 24 * 3600.0


@dataclass(frozen=True)
class SeenWitness:
    size: int
    time: int


def counted(policy: Policy, signed: SignedCheckpoint, now: int, max_age: int) -> dict[str, int]:
    """Policy witnesses whose cosignature counts now: not older than ``max_age``, not dated in the future."""
    fresh = policy.witnesses_of(signed, not_before=now - max_age)
    return {name: ts for name, ts in fresh.items() if ts <= now + FUTURE_SKEW}


class LogKeeper(LogWriter):
    """The transparency log of one origin (one per app): rounds call :meth:`append` and :meth:`after_round`."""

    def __init__(self, store: Store, data: DataDir, keyring: Keyring, config: LogConfig | None = None):
        super().__init__(store, data, keyring)
        self.config = config or LogConfig()
        self._task: asyncio.Task[None] | None = None
        self._client: BoundedClient | None = None
        self._seen: dict[str, SeenWitness] = {}
        self._unreachable: dict[str, str] = {}
        self._failing_since: dict[str, float] = {}  # monotonic time of each failing witness's first failure
        self._warned: dict[str, str] = {}  # the error last logged per witness
        self._last_gc = 0.0
        self.alarm: str | None = None
        self.proofs_stale = 0  # bundle proofs marked stale and not yet rewritten
        self.index_proof_stale = False
        self._mark: stale.TrustMark | None = None  # the trust the written proofs were last checked against
        self._mark_loaded = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the state (before the first round); the gathering starts with :meth:`run`."""
        await self.load()

    async def run(self) -> None:
        """Start the background gathering (after the first round); its first pass runs at once."""
        self._client = await BoundedClient(witnesses.CLIENT_CONFIG).__aenter__()
        self.wanted.set()
        self._task = asyncio.create_task(self._loop(), name="tamizdat-tlog-gather")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None
        async with self.lock:  # let a running publication finish
            pass

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wanted.wait(), self.config.gather_interval)
            self.wanted.clear()
            try:
                await self.gather_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep gathering; one line per distinct problem
                self.report(ERROR, f"log gathering failed: {exc}", error=True)
                log.debug("log gathering failed", exc_info=True)

    async def after_round(self, keys: KeySnapshot) -> None:
        """Publish what the round appended (tiles, then the signed checkpoint if allowed); never raises."""
        pause_for_tests("tlog-appended")
        await self.try_publish(keys)
        self.wanted.set()  # gather the new checkpoint's cosignatures and proofs

    def status(self) -> dict[str, Any]:
        """The ``log`` object of /healthz (a fork alarm shows until a restart, whatever else happens)."""
        return {
            "state": witnesses.FORK_SEEN if self.alarm else self.state,
            "message": self.alarm or self.message,
            "origin": self.origin,
            "size": self.size,
            "signed_size": self.last.checkpoint.size if self.last is not None else 0,
            "quorum_met": self.quorum_met,
            "proofs_stale": self.proofs_stale + int(self.index_proof_stale),
            "witnesses": {
                name: {"size": seen.size, "time": timefmt.format(dt.datetime.fromtimestamp(seen.time, dt.UTC))}
                for name, seen in sorted(self._seen.items())
            },
            "unreachable": sorted(self._unreachable),
        }

    # -- gathering -----------------------------------------------------------------------------

    async def gather_once(self) -> None:
        """One pass: witnesses' views, the restore check, publishing, merged cosignatures, proofs, partials."""
        keys = await asyncio.to_thread(self.keyring.snapshot)
        trust = self.trust(keys)
        if trust is None:
            return
        views: list[WitnessView] = []
        if any(w.url for w in trust.policy.witnesses):
            if self._client is None:
                raise RuntimeError("the log keeper is not running")
            revoked = witnesses.revoked_log_verifiers(keys.root, trust.origin)
            views = await witnesses.fetch_views(self._client, trust, revoked)
        self._note_views(views)
        async with self.lock:
            await self._check_forks(views)
            self.judge(views, trust)
        if not self.may_sign:
            return
        await self.try_publish(keys)  # what rounds appended while waiting, or after a failure
        async with self.lock:
            current = self.current
            if current is not None:
                current = await self._merge(trust, current, views)
        await self._find_stale(trust)
        if current is not None and self.quorum_met:
            await self._write_proofs(current)
        await self._check_index_proof(trust)
        await self._collect_partials()

    async def _check_forks(self, views: list[WitnessView]) -> None:
        """Keep as evidence, and raise the alarm on, any view of another tree signed by our log key."""
        last = self.last.checkpoint if self.last is not None else None
        if last is None or not any(v.checkpoint is not None for v in views):
            return
        read = tile_hash_reader(last.size, self.files.read)
        forks = await asyncio.to_thread(witnesses.contradicting, views, last, lambda n: tree_root(n, read))
        for v in forks:
            assert v.signed is not None and v.checkpoint is not None
            note = v.signed.to_bytes()
            name = evidence_name(FORK_CODE, v.checkpoint.size, note)
            target = self.data.state / "tlog-evidence" / name
            if not target.exists():
                await asyncio.to_thread(_keep, target, note)
            self.alarm = (
                f"witness {v.name} shows a checkpoint of size {v.checkpoint.size} signed by this log's key whose "
                "root is not this origin's tree at that size: the log key signed another history (stolen key?). "
                f"Evidence: DATA/state/tlog-evidence/{name}; rotate the log key (docs/transparency.md)."
            )
            self.report(witnesses.FORK_SEEN, self.alarm, error=True)

    def _note_views(self, views: list[WitnessView]) -> None:
        """Record the witnesses' answers; a witness that keeps failing is logged once per distinct error.

        Failures right after a start are normal (the origin usually starts
        before its mirrors): they show in /healthz at once, and in the log once a
        witness has failed for :data:`WARN_AFTER` seconds in a row.
        """
        now = time.monotonic()
        for v in views:
            if v.error is not None:
                since = self._failing_since.setdefault(v.name, now)
                if now - since >= WARN_AFTER and self._warned.get(v.name) != v.error:
                    log.warning("transparency log: witness %s: %s", v.name, v.error)
                    self._warned[v.name] = v.error
                self._unreachable[v.name] = v.error
                continue
            self._unreachable.pop(v.name, None)
            self._failing_since.pop(v.name, None)
            self._warned.pop(v.name, None)
            if v.checkpoint is not None and v.cosigned_at is not None:
                self._seen[v.name] = SeenWitness(v.checkpoint.size, v.cosigned_at)

    async def _merge(self, trust: LogTrust, current: bytes, views: list[WitnessView]) -> bytes:
        """Merge the views' cosignatures of the current checkpoint; decide whether the quorum is met.

        Views signed by a log key revoked since give their cosignatures of the
        same body too (:func:`.witnesses.salvage`).
        """
        policy = trust.policy
        now = int(time.time())
        if not await self.trusted(current, trust):  # a revoked key signed it and no log key is left to re-sign
            self.quorum_met = False
            return current
        text = note_text(current)
        extra = [
            s.signature
            for v in views
            if v.signed is not None and v.signed.note.text == text
            for s in v.signed.cosignatures
            if s.timestamp is not None and s.timestamp <= now + FUTURE_SKEW  # a future date would shadow later ones
        ]
        extra += [
            s.signature
            for v in views
            for s in witnesses.salvage(v, text, policy)
            if s.timestamp is not None and s.timestamp <= now + FUTURE_SKEW
        ]
        logs, wits = policy.log_verifiers(trust.origin), policy.witness_verifiers()
        merged = await asyncio.to_thread(merge_cosignatures, current, extra, logs, wits) if extra else current
        if merged != current:
            await self.write_checkpoint(merged)
        opened = await asyncio.to_thread(open_checkpoint, merged, logs, wits, origin=trust.origin)
        met = policy.satisfied(counted(policy, opened, now, trust.max_age))
        if met and not self.quorum_met:
            log.info("transparency log: the witnesses' quorum cosigned size %d", opened.checkpoint.size)
        self.quorum_met = met
        return merged

    async def _write_proofs(self, note: bytes) -> None:
        """Proofs for every bundle leaf the (quorum-cosigned) ``note`` covers, stale ones again, the index proof."""
        size = Checkpoint.parse(note_text(note)).size
        for state in (leaves.PROOF_PENDING, leaves.PROOF_STALE):
            replace = state == leaves.PROOF_STALE
            while not replace or self.proofs_stale > 0:
                async with self.store.tx(write=False) as tx:
                    pending = await leaves.proofless_bundles(tx, size, PROOF_BATCH, state=state)
                if not pending:
                    break
                done = await asyncio.to_thread(
                    proofs.write_bundle_proofs, self.files, self.data, note, size, pending, replace=replace
                )
                await asyncio.to_thread(sync_filesystem, self.data.root)
                async with self.store.tx() as tx:
                    await leaves.mark_proofs_done(tx, done)
                if replace:
                    self.proofs_stale = max(0, self.proofs_stale - len(done))
            if replace and self.proofs_stale:
                log.info("transparency log: rewrote the stale proofs under size %d", size)
                self.proofs_stale = 0
        await asyncio.to_thread(proofs.write_index_proof, self.files, note, size)

    async def _find_stale(self, trust: LogTrust) -> None:
        """After the trust lost a log key or changed its policy: mark the proofs it no longer accepts stale."""
        mark = stale.TrustMark.of(trust)
        path = self.data.state / stale.MARK_NAME
        if not self._mark_loaded:
            self._mark = await asyncio.to_thread(stale.load_mark, path)
            async with self.store.tx(write=False) as tx:
                self.proofs_stale = await leaves.count_stale_proofs(tx)
            self._mark_loaded = True
        if mark == self._mark:
            return
        if not mark.keeps(self._mark):
            judge = stale.ProofJudge(trust, int(time.time()))
            after, found = -1, 0
            while True:
                async with self.store.tx(write=False) as tx:
                    rows = await leaves.written_proofs(tx, after, PROOF_BATCH)
                if not rows:
                    break
                files = [(n, proofs.proof_path(self.data, bid)) for n, bid in rows]
                bad = await asyncio.to_thread(stale.stale_files, judge, files)
                if bad:
                    async with self.store.tx() as tx:
                        await leaves.mark_proofs_stale(tx, bad)
                    found += len(bad)
                after = rows[-1][0]
            self.proofs_stale += found
            if found:
                log.warning(
                    "transparency log: %d bundle proof(s) no longer verify under the newest root; "
                    "they are rewritten once the witnesses' quorum cosigns a checkpoint",
                    found,
                )
        await asyncio.to_thread(stale.save_mark, path, mark)
        self._mark = mark

    async def _check_index_proof(self, trust: LogTrust) -> None:
        judge = stale.ProofJudge(trust, int(time.time()))
        self.index_proof_stale = await asyncio.to_thread(judge.file_good, self.files.index_proof) is False

    async def _collect_partials(self) -> None:
        now = time.monotonic()
        if self._last_gc and now - self._last_gc < min(self.config.partial_grace, 3600.0):
            return
        self._last_gc = now
        removed = await asyncio.to_thread(tree.collect_partials, self.files, self.config.partial_grace)
        if removed:
            log.info("transparency log: removed %d dead partial tile folder(s)", len(removed))
