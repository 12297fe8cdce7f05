"""The origin's log keeper: appends each round's leaves, publishes tiles, signs, gathers cosignatures.

docs/transparency.md ("Origin") and docs/operator-origin.md ("Transparency
log"). For every publishing round (server.rounds):

1. :meth:`LogKeeper.append` records the round's leaves in the transaction that
   records the index version (:mod:`.leaves`);
2. after ``index.json`` is switched, :meth:`LogKeeper.after_round` syncs the
   database, extends the tree, writes the new tiles, syncs them, checks that the
   new tree extends the last signed checkpoint (a consistency proof from the
   local tiles), records the new checkpoint as signed (fsynced) and only then
   writes ``tlog/checkpoint``.

A background task (:meth:`LogKeeper.gather_once`, every ``tlog_gather_interval``
seconds and right after each round) reads the witnesses' views: after a start
it refuses to sign until they show nothing newer than the last signed
checkpoint (restore from backup, :func:`.witnesses.judge`); it merges their
cosignatures of the current checkpoint into ``tlog/checkpoint``, writes the
proofs once the quorum is met, and removes dead partial tiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from tamizdat.bundles.tlog import (
    Checkpoint,
    Ed25519Signer,
    Note,
    TileBatch,
    TileError,
    TreeBuilder,
    check_extends,
    consistency_proof_from_tiles,
    decode_entry_bundle,
    merge_cosignatures,
    open_checkpoint,
    sign_checkpoint,
)
from tamizdat.bundles.tlog.tiles import ENTRIES, TILE_HEIGHT, TileId
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import TamizdatError, UsageError
from tamizdat.fsutil import atomic_write
from tamizdat.keys import dsse, timefmt

from ..datadir import DataDir, sync_filesystem
from ..httpclient import BoundedClient
from ..keyring import Keyring, KeySnapshot
from ..store import Store, Tx
from . import leaves, proofs, signed, tree, witnesses
from .leaves import Appended
from .signed import LastSigned
from .witnesses import RESTORED, WAITING, Verdict, WitnessView

log = logging.getLogger("tamizdat.server.tlog")

PAUSE_SECONDS = 120.0
PROOF_BATCH = 4096
NO_LOG = "no-log"
STARTING = "starting"
NO_LOG_KEY = "no-log-key"
BAD_POLICY = "bad-policy"
ERROR = "error"


def _test_pause(point: str) -> None:
    """Test-only hook: ``TAMIZDAT_TEST_PAUSE_AT=<point>`` freezes the process here until a test kills it."""
    if os.environ.get("TAMIZDAT_TEST_PAUSE_AT") == point:
        print(f"TAMIZDAT-PAUSED {point}", file=sys.stderr, flush=True)
        time.sleep(PAUSE_SECONDS)  # blocks the event loop on purpose: nothing moves until the kill


@dataclass(frozen=True)
class LogConfig:
    gather_interval: float = 30.0
    partial_grace: float = 7 * 24 * 3600.0


@dataclass(frozen=True)
class SeenWitness:
    size: int
    time: int


def _rebuild(entries: list[bytes]) -> tuple[TreeBuilder, TileBatch]:
    builder = TreeBuilder()
    builder.extend(entries)
    return builder, builder.flush()


def _extend(builder: TreeBuilder, entries: list[bytes]) -> TileBatch:
    builder.extend(entries)
    return builder.flush()


class LogKeeper:
    """The transparency log of one origin (one per app; see the module docstring)."""

    def __init__(self, store: Store, data: DataDir, keyring: Keyring, config: LogConfig | None = None):
        self.store = store
        self.data = data
        self.keyring = keyring
        self.config = config or LogConfig()
        self.files = tree.TileFiles.in_public(data.public)
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: BoundedClient | None = None
        self._builder: TreeBuilder | None = None
        self._last: LastSigned | None = None
        self._local: bytes | None = None  # tlog/checkpoint as found at start (judged once)
        self._current: bytes | None = None  # tlog/checkpoint as published now
        self._verdict: Verdict | None = None
        self._trust_keys: KeySnapshot | None = None
        self._trust: LogTrust | None = None
        self._size = 0
        self._seen: dict[str, SeenWitness] = {}
        self._unreachable: dict[str, str] = {}
        self._quorum_met = False
        self._last_gc = 0.0
        self._logged: set[str] = set()
        self.state = STARTING
        self.message = ""
        self.origin: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the state (before the first round); the gathering task starts with :meth:`run`."""
        self._last = await asyncio.to_thread(signed.load, self.data.state)
        self._local = await asyncio.to_thread(_read_or_none, self.files.checkpoint)
        self._current = self._local
        async with self.store.tx(write=False) as tx:
            self._size = await leaves.log_size(tx)

    async def run(self) -> None:
        """Start the background gathering (after the first round)."""
        self._client = await BoundedClient(witnesses.CLIENT_CONFIG).__aenter__()
        self._kick.set()
        self._task = asyncio.create_task(self._loop(), name="tamizdat-tlog-gather")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None
        async with self._lock:
            pass

    def kick(self) -> None:
        """Gather now (instead of at the next interval)."""
        self._kick.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.config.gather_interval)
            self._kick.clear()
            try:
                await self.gather_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep gathering; one line per distinct problem
                self._report(ERROR, f"log gathering failed: {exc}", error=True)
                log.debug("log gathering failed", exc_info=True)

    # -- state reporting -----------------------------------------------------------------

    def _report(self, state: str, message: str, *, error: bool = False) -> None:
        self.state, self.message = state, message
        if message not in self._logged:
            self._logged.add(message)
            (log.error if error else log.info)("transparency log: %s", message)

    def status(self) -> dict[str, Any]:
        """The ``log`` object of /healthz."""
        return {
            "state": self.state,
            "message": self.message,
            "origin": self.origin,
            "size": self._size,
            "signed_size": self._last.checkpoint.size if self._last is not None else 0,
            "quorum_met": self._quorum_met,
            "witnesses": {
                name: {"size": seen.size, "time": timefmt.format(dt.datetime.fromtimestamp(seen.time, dt.UTC))}
                for name, seen in sorted(self._seen.items())
            },
            "unreachable": sorted(self._unreachable),
        }

    def trust(self, keys: KeySnapshot) -> LogTrust | None:
        """The root's log trust (None: no log, or a policy the origin cannot use; the state says why)."""
        root = keys.root
        if keys is not self._trust_keys:
            self._trust_keys = keys
            self._trust = None
            self.origin = root.tlog.origin if root.tlog is not None else None
            try:
                self._trust = LogTrust.from_root(root)
            except TamizdatError as exc:
                self._report(BAD_POLICY, f"root version {root.version}: {exc.message}", error=True)
                return None
            if self._trust is None:
                self._report(NO_LOG, "the root keeps no transparency log")
        return self._trust

    # -- the round's hooks ---------------------------------------------------------------------

    async def append(
        self, tx: Tx, keys: KeySnapshot, *, index_version: int, index_raw: bytes, rendered_retracted: set[int]
    ) -> Appended | None:
        """Record the round's leaves in the round's index transaction (None: the root keeps no log)."""
        if keys.root.tlog is None:
            return None
        payload = dsse.Envelope.from_bytes(index_raw, expected_type=dsse.INDEX_TYPE).payload
        return await leaves.append_round(
            tx, index_version=index_version, index_payload=payload, rendered_retracted=rendered_retracted
        )

    async def after_round(self, keys: KeySnapshot) -> None:
        """Publish what the round appended: tiles, then (if allowed) the signed checkpoint. Never raises."""
        _test_pause("tlog-appended")
        try:
            async with self._lock:
                await self._publish(keys)
        except asyncio.CancelledError:
            raise
        except TamizdatError as exc:
            self._builder = None  # re-derive from the signed state and the database next time
            self._report(ERROR, exc.message, error=True)
        except Exception as exc:
            self._builder = None
            self._report(ERROR, f"publishing the log failed: {exc}", error=True)
            log.debug("publishing the log failed", exc_info=True)
        self._kick.set()

    # -- publishing ---------------------------------------------------------------------------

    async def _publish(self, keys: KeySnapshot) -> None:
        """Extend the tree to the database's leaves, write tiles, sign (holding the lock)."""
        trust = self.trust(keys)
        if trust is None:
            return
        async with self.store.tx(write=False) as tx:
            self._size = await leaves.log_size(tx)
        if not self._gate(trust):
            return
        builder = await self._ensure_builder()
        if self._size < builder.size:
            raise UsageError(
                f"the state database holds {self._size} log leaves but the last signed checkpoint has "
                f"{builder.size}: DATA/state is older than the log's signed state; restore both from one backup",
                code="log-state",
            )
        if self._size > builder.size:
            async with self.store.tx(write=False) as tx:
                entries = await leaves.read_entries(tx, builder.size, self._size)
            await asyncio.to_thread(sync_filesystem, self.data.root)  # the leaves, before any tile names them
            try:
                batch = await asyncio.to_thread(_extend, builder, entries)
                await asyncio.to_thread(tree.write_batch, self.files, batch)
            except BaseException:
                self._builder = None
                raise
            _test_pause("tlog-tiles")
            await asyncio.to_thread(sync_filesystem, self.data.root)
        await self._sign(trust, keys, builder)

    def _gate(self, trust: LogTrust) -> bool:
        """Whether signing may happen now; judges at once when no witness can be asked."""
        verdict = self._verdict
        if verdict is not None and (verdict.may_sign or verdict.state == RESTORED):
            return verdict.may_sign
        if any(w.url for w in trust.policy.witnesses):
            if verdict is None:
                self._report(WAITING, "asking the witnesses before the first checkpoint after a start")
            self._kick.set()
            return False
        return self._judge([], trust)

    def _judge(self, views: list[WitnessView], trust: LogTrust) -> bool:
        """Apply :func:`.witnesses.judge`; a refusal sticks until a restart, a permission until a refusal."""
        local = None
        if self._local is not None:
            try:
                local = open_checkpoint(
                    self._local, trust.policy.log_verifiers(trust.origin), origin=trust.origin
                ).checkpoint
            except TamizdatError as exc:
                log.warning("transparency log: ignoring the public tree's tlog/checkpoint: %s", exc.message)
        last = self._last.checkpoint if self._last is not None else None
        verdict = witnesses.judge(views, trust, last, local)
        if verdict.state == RESTORED or self._verdict is None or not self._verdict.may_sign:
            self._verdict = verdict
            if verdict.state == RESTORED:
                self._report(RESTORED, verdict.message, error=True)
            elif not verdict.may_sign:
                self._report(verdict.state, verdict.message)
            else:
                self._local = None  # judged: from now on only this process signs
        return self._verdict.may_sign

    async def _ensure_builder(self) -> TreeBuilder:
        if self._builder is not None:
            return self._builder
        last = self._last
        if last is None or last.checkpoint.size == 0:
            self._builder = TreeBuilder()
            return self._builder
        size, root = last.checkpoint.size, last.checkpoint.root
        try:
            builder = await asyncio.to_thread(TreeBuilder.resume, size, self.files.read, root=root)
        except TileError as exc:
            log.warning("transparency log: rebuilding the tiles from the database (%s)", exc.message)
            async with self.store.tx(write=False) as tx:
                if await leaves.log_size(tx) < size:
                    raise UsageError(
                        f"the state database holds fewer log leaves than the last signed checkpoint ({size})",
                        code="log-state",
                    ) from None
                entries = await leaves.read_entries(tx, 0, size)
            builder, batch = await asyncio.to_thread(_rebuild, entries)
            if builder.root() != root:
                raise UsageError(
                    "the state database's log leaves do not hash to the last signed checkpoint", code="log-state"
                ) from None
            await asyncio.to_thread(tree.write_batch, self.files, batch)  # every tile of the signed size again
        else:
            await self._check_tail(size)
        self._builder = builder
        return builder

    async def _check_tail(self, size: int) -> None:
        """The database's last leaves equal the public tree's last entry bundle."""
        start = (size - 1) >> TILE_HEIGHT << TILE_HEIGHT
        async with self.store.tx(write=False) as tx:
            if await leaves.log_size(tx) < size:
                raise UsageError(
                    f"the state database holds fewer log leaves than the last signed checkpoint ({size})",
                    code="log-state",
                )
            db = await leaves.read_entries(tx, start, size)
        tile = TileId(ENTRIES, start >> TILE_HEIGHT, size - start)
        disk = await asyncio.to_thread(lambda: decode_entry_bundle(self.files.read(tile), tile.width))
        if disk != db:
            raise UsageError("the state database's log leaves differ from the public tiles", code="log-state")

    async def _sign(self, trust: LogTrust, keys: KeySnapshot, builder: TreeBuilder) -> None:
        origin = trust.origin
        new = Checkpoint(origin, builder.size, builder.root())
        last = self._last
        if new.size == 0:
            return
        if last is not None and last.checkpoint.origin != origin:
            raise UsageError(
                f"the root's log origin is {origin!r} but this origin signed {last.checkpoint.origin!r}",
                code="log-state",
            )
        if last is not None and (last.checkpoint.size, last.checkpoint.root) == (new.size, new.root):
            if self._current is None or Checkpoint.parse(_note_text(self._current)) != new:
                await self._write_checkpoint(last.note)  # signed before a crash, never published
            self._report_ok()
            return
        old = last.checkpoint if last is not None else None
        proof: list[bytes] = []
        if old is not None and old.size > 0 and new.size > old.size:
            proof = await asyncio.to_thread(consistency_proof_from_tiles, old.size, new.size, self.files.read)
        try:
            check_extends(old, new, proof)
        except TamizdatError as exc:
            raise UsageError(
                f"refusing to sign size {new.size}: the local tree does not extend the last signed checkpoint "
                f"(size {old.size if old else 0}): {exc.message}",
                code="log-state",
            ) from None
        try:
            key = self.keyring.signer("log", timefmt.now())
        except UsageError as exc:
            self._report(NO_LOG_KEY, exc.message, error=True)
            return
        note = await asyncio.to_thread(sign_checkpoint, new, [Ed25519Signer(origin, key)])
        self._last = await asyncio.to_thread(signed.save, self.data.state, note)
        _test_pause("tlog-signed")
        await self._write_checkpoint(note)
        self._quorum_met = trust.policy.quorum is None
        self._report_ok()

    async def _write_checkpoint(self, note: bytes) -> None:
        await asyncio.to_thread(atomic_write, self.files.checkpoint, note)
        self._current = note

    def _report_ok(self) -> None:
        if self.state != witnesses.OK:
            self._report(witnesses.OK, "signing")

    # -- gathering -----------------------------------------------------------------------------

    async def gather_once(self) -> None:
        """One pass: witnesses' views, the restore check, merged cosignatures, proofs, partial tiles."""
        keys = await asyncio.to_thread(self.keyring.snapshot)
        trust = self.trust(keys)
        if trust is None:
            return
        views: list[WitnessView] = []
        if any(w.url for w in trust.policy.witnesses):
            if self._client is None:
                raise RuntimeError("the log keeper is not running")
            views = await witnesses.fetch_views(self._client, trust)
        self._note_views(views)
        async with self._lock:
            was = self._verdict.may_sign if self._verdict is not None else False
            if self._judge(views, trust) and not was:
                await self._publish(keys)  # what rounds appended while waiting
            current = self._current
            if current is not None and self._verdict is not None and self._verdict.may_sign:
                current = await self._merge(trust, current, views)
        if current is not None and self._quorum_met:
            await self._write_proofs(current)
        await self._collect_partials()

    def _note_views(self, views: list[WitnessView]) -> None:
        for v in views:
            if v.error is not None:
                if self._unreachable.get(v.name) != v.error:
                    log.warning("transparency log: witness %s: %s", v.name, v.error)
                self._unreachable[v.name] = v.error
                continue
            self._unreachable.pop(v.name, None)
            if v.checkpoint is not None and v.cosigned_at is not None:
                self._seen[v.name] = SeenWitness(v.checkpoint.size, v.cosigned_at)

    async def _merge(self, trust: LogTrust, current: bytes, views: list[WitnessView]) -> bytes:
        """Merge the views' cosignatures of the current checkpoint; decide whether the quorum is met."""
        policy = trust.policy
        text = _note_text(current)
        extra = [
            s.signature
            for v in views
            if v.signed is not None and v.signed.note.text == text
            for s in v.signed.cosignatures
        ]
        logs, wits = policy.log_verifiers(trust.origin), policy.witness_verifiers()
        merged = await asyncio.to_thread(merge_cosignatures, current, extra, logs, wits) if extra else current
        if merged != current:
            await self._write_checkpoint(merged)
        opened = await asyncio.to_thread(open_checkpoint, merged, logs, wits, origin=trust.origin)
        fresh = int(time.time()) - trust.max_age
        met = policy.satisfied(policy.witnesses_of(opened, not_before=fresh))
        if met and not self._quorum_met:
            log.info("transparency log: the quorum cosigned size %d", opened.checkpoint.size)
        self._quorum_met = met
        return merged

    async def _write_proofs(self, note: bytes) -> None:
        """Proofs for every bundle leaf the (quorum-cosigned) ``note`` covers, and the index proof."""
        size = Checkpoint.parse(_note_text(note)).size
        while True:
            async with self.store.tx(write=False) as tx:
                pending = await leaves.proofless_bundles(tx, size, PROOF_BATCH)
            if not pending:
                break
            done = await asyncio.to_thread(proofs.write_bundle_proofs, self.files, self.data, note, size, pending)
            await asyncio.to_thread(sync_filesystem, self.data.root)
            async with self.store.tx() as tx:
                await leaves.mark_proofs_done(tx, done)
        await asyncio.to_thread(proofs.write_index_proof, self.files, note, size)

    async def _collect_partials(self) -> None:
        now = time.monotonic()
        if self._last_gc and now - self._last_gc < min(self.config.partial_grace, 3600.0):
            return
        self._last_gc = now
        removed = await asyncio.to_thread(tree.collect_partials, self.files, self.config.partial_grace)
        if removed:
            log.info("transparency log: removed %d dead partial tile folder(s)", len(removed))


def _note_text(note: bytes) -> str:
    return Note.parse(note).text


def _read_or_none(path: Any) -> bytes | None:
    try:
        return bytes(path.read_bytes())
    except FileNotFoundError:
        return None
