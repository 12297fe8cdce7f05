"""The origin's log writer: appends each round's leaves, writes the tiles, signs the checkpoint.

For every publishing round (server.rounds, docs/transparency.md "Origin"):

1. :meth:`LogWriter.append` records the round's leaves in the transaction that
   records the index version (:mod:`.leaves`);
2. after ``index.json`` is switched, :meth:`LogWriter.publish` syncs the
   filesystem (the leaves are durable before a tile names them), extends the
   tree, writes the new tiles, syncs again, checks that the new tree extends
   the last signed checkpoint (a consistency proof from the local tiles),
   records the new checkpoint as signed (fsynced, :mod:`.signed`) and only
   then writes ``tlog/checkpoint``.

Signing waits for the restore check (:func:`.witnesses.judge`): at once when
no witness has a URL, otherwise once the gathering task
(:class:`~.keeper.LogKeeper`) has asked them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import time

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
    open_checkpoint,
    sign_checkpoint,
)
from tamizdat.bundles.tlog.tiles import ENTRIES, TILE_HEIGHT, TileId
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import TamizdatError, UsageError
from tamizdat.fsutil import atomic_write
from tamizdat.keys import dsse, timefmt

from ..datadir import DataDir, sync_filesystem
from ..keyring import Keyring, KeySnapshot
from ..store import Store, Tx
from . import leaves, signed, tree, witnesses
from .leaves import Appended
from .signed import LastSigned
from .witnesses import RESTORED, WAITING, Verdict, WitnessView

log = logging.getLogger("tamizdat.server.tlog")

PAUSE_SECONDS = 120.0
OK = witnesses.OK
NO_LOG = "no-log"
STARTING = "starting"
NO_LOG_KEY = "no-log-key"
BAD_POLICY = "bad-policy"
ERROR = "error"


def pause_for_tests(point: str) -> None:
    """Test-only hook: ``TAMIZDAT_TEST_PAUSE_AT=<point>`` freezes the process here until a test kills it."""
    if os.environ.get("TAMIZDAT_TEST_PAUSE_AT") == point:
        print(f"TAMIZDAT-PAUSED {point}", file=sys.stderr, flush=True)
        time.sleep(PAUSE_SECONDS)  # blocks the event loop on purpose: nothing moves until the kill


def note_text(note: bytes) -> str:
    return Note.parse(note).text


def _rebuild(entries: list[bytes]) -> tuple[TreeBuilder, TileBatch]:
    builder = TreeBuilder()
    builder.extend(entries)
    return builder, builder.flush()


def _extend(builder: TreeBuilder, entries: list[bytes]) -> TileBatch:
    builder.extend(entries)
    return builder.flush()


def _trusted(note: bytes, trust: LogTrust) -> bool:
    """Whether a log key of the newest root signed ``note`` (not one revoked since)."""
    try:
        open_checkpoint(note, trust.policy.log_verifiers(trust.origin), origin=trust.origin)
    except TamizdatError:
        return False
    return True


def _read_or_none(path: os.PathLike[str]) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


class LogWriter:
    """Appends, writes tiles and signs for one origin; ``lock`` orders it with the gathering."""

    def __init__(self, store: Store, data: DataDir, keyring: Keyring):
        self.store = store
        self.data = data
        self.keyring = keyring
        self.files = tree.TileFiles.in_public(data.public)
        self.lock = asyncio.Lock()
        self.wanted = asyncio.Event()  # the gathering should run now (e.g. to ask the witnesses)
        self.builder: TreeBuilder | None = None
        self.last: LastSigned | None = None
        self.current: bytes | None = None  # tlog/checkpoint as published now
        self.verdict: Verdict | None = None
        self.quorum_met = False
        self.size = 0
        self.state = STARTING
        self.message = ""
        self.origin: str | None = None
        self._local: bytes | None = None  # tlog/checkpoint as found at start (judged once)
        self._trust_keys: KeySnapshot | None = None
        self._trust: LogTrust | None = None
        self._logged: set[str] = set()
        self._trusted_seen: tuple[bytes, LogTrust, bool] | None = None

    async def load(self) -> None:
        """Read the signed state, the public checkpoint and the log's size (before the first round)."""
        self.last = await asyncio.to_thread(signed.load, self.data.state)
        self._local = self.current = await asyncio.to_thread(_read_or_none, self.files.checkpoint)
        async with self.store.tx(write=False) as tx:
            self.size = await leaves.log_size(tx)

    # -- state -----------------------------------------------------------------------------

    def report(self, state: str, message: str, *, error: bool = False) -> None:
        """Set the state shown in /healthz; each distinct message is logged once."""
        self.state, self.message = state, message
        if message not in self._logged:
            self._logged.add(message)
            (log.error if error else log.info)("transparency log: %s", message)

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
                self.report(BAD_POLICY, f"root version {root.version}: {exc.message}", error=True)
                return None
            if self._trust is None:
                self.report(NO_LOG, "the root keeps no transparency log")
        return self._trust

    @property
    def may_sign(self) -> bool:
        return self.verdict is not None and self.verdict.may_sign

    def judge(self, views: list[WitnessView], trust: LogTrust) -> bool:
        """Apply :func:`.witnesses.judge`; a refusal sticks until a restart, a permission until a refusal."""
        local = None
        if self._local is not None:
            try:
                local = open_checkpoint(
                    self._local, trust.policy.log_verifiers(trust.origin), origin=trust.origin
                ).checkpoint
            except TamizdatError as exc:
                log.warning("transparency log: ignoring the public tree's tlog/checkpoint: %s", exc.message)
        last = self.last.checkpoint if self.last is not None else None
        verdict = witnesses.judge(views, trust, last, local)
        if verdict.state == RESTORED or not self.may_sign:
            self.verdict = verdict
            if verdict.state == RESTORED:
                self.report(RESTORED, verdict.message, error=True)
            elif not verdict.may_sign:
                self.report(verdict.state, verdict.message)
            else:
                self._local = None  # judged: from now on only this process signs
        return self.may_sign

    # -- appending (in the round's transaction) ------------------------------------------------

    async def append(
        self, tx: Tx, keys: KeySnapshot, *, index_version: int, index_raw: bytes, rendered_retracted: set[int]
    ) -> Appended | None:
        """Record the round's leaves in the round's index transaction (None: the root keeps no log)."""
        if keys.root.tlog is None:
            return None
        envelope = await asyncio.to_thread(dsse.Envelope.from_bytes, index_raw, expected_type=dsse.INDEX_TYPE)
        payload = envelope.payload
        # The archive of logged indexes (tlog/index/<leaf id>.json): immutable, named by the leaf's id.
        await asyncio.to_thread(self.files.write_index, hashlib.sha256(payload).hexdigest(), index_raw)
        return await leaves.append_round(
            tx, index_version=index_version, index_payload=payload, rendered_retracted=rendered_retracted
        )

    # -- publishing ------------------------------------------------------------------------------

    async def try_publish(self, keys: KeySnapshot) -> None:
        """:meth:`publish` under the lock; a failure becomes the state (and one log line), never an exception."""
        try:
            async with self.lock:
                await self.publish(keys)
        except asyncio.CancelledError:
            raise
        except TamizdatError as exc:
            self.builder = None  # re-derived from the signed state and the database next time
            self.report(ERROR, exc.message, error=True)
        except Exception as exc:
            self.builder = None
            self.report(ERROR, f"publishing the log failed: {exc}", error=True)
            log.debug("publishing the log failed", exc_info=True)

    async def publish(self, keys: KeySnapshot) -> None:
        """Extend the tree to the database's leaves, write the tiles, sign (the caller holds the lock)."""
        trust = self.trust(keys)
        if trust is None:
            return
        async with self.store.tx(write=False) as tx:
            self.size = await leaves.log_size(tx)
        if not self._gate(trust):
            return
        builder = await self._ensure_builder()
        if self.size < builder.size:
            raise UsageError(
                f"the state database holds {self.size} log leaves but the last signed checkpoint has "
                f"{builder.size}: DATA/state is older than the log's signed state; restore both from one backup",
                code="log-state",
            )
        if self.size > builder.size:
            async with self.store.tx(write=False) as tx:
                entries = await leaves.read_entries(tx, builder.size, self.size)
            await asyncio.to_thread(sync_filesystem, self.data.root)  # the leaves, before any tile names them
            try:
                batch = await asyncio.to_thread(_extend, builder, entries)
                await asyncio.to_thread(tree.write_batch, self.files, batch)
            except BaseException:
                self.builder = None
                raise
            pause_for_tests("tlog-tiles")
            await asyncio.to_thread(sync_filesystem, self.data.root)
        await self._sign(trust, builder)

    def _gate(self, trust: LogTrust) -> bool:
        """Whether signing may happen now; judges at once when no witness can be asked."""
        if self.verdict is not None and (self.verdict.may_sign or self.verdict.state == RESTORED):
            return self.verdict.may_sign
        if any(w.url for w in trust.policy.witnesses):
            if self.verdict is None:
                self.report(WAITING, "asking the witnesses before the first checkpoint after a start")
            self.wanted.set()
            return False
        return self.judge([], trust)

    async def _ensure_builder(self) -> TreeBuilder:
        """The tree at the last signed size: from its tiles, else rebuilt from the database's leaves."""
        if self.builder is not None:
            return self.builder
        last = self.last
        if last is None or last.checkpoint.size == 0:
            self.builder = TreeBuilder()
            return self.builder
        size, root = last.checkpoint.size, last.checkpoint.root
        try:
            builder = await asyncio.to_thread(TreeBuilder.resume, size, self.files.read, root=root)
        except TileError as exc:
            log.warning("transparency log: rebuilding the tiles from the database (%s)", exc.message)
            async with self.store.tx(write=False) as tx:
                await self._check_db_size(tx, size)
                entries = await leaves.read_entries(tx, 0, size)
            builder, batch = await asyncio.to_thread(_rebuild, entries)
            if builder.root() != root:
                raise UsageError(
                    "the state database's log leaves do not hash to the last signed checkpoint", code="log-state"
                ) from None
            await asyncio.to_thread(tree.write_batch, self.files, batch)  # every tile of the signed size again
        else:
            await self._check_tail(size)
        self.builder = builder
        return builder

    @staticmethod
    async def _check_db_size(tx: Tx, size: int) -> None:
        if await leaves.log_size(tx) < size:
            raise UsageError(
                f"the state database holds fewer log leaves than the last signed checkpoint ({size}): "
                "restore DATA/state from one backup",
                code="log-state",
            )

    async def _check_tail(self, size: int) -> None:
        """The database's last leaves equal the public tree's last entry bundle."""
        start = (size - 1) >> TILE_HEIGHT << TILE_HEIGHT
        async with self.store.tx(write=False) as tx:
            await self._check_db_size(tx, size)
            db = await leaves.read_entries(tx, start, size)
        tile = TileId(ENTRIES, start >> TILE_HEIGHT, size - start)
        disk = await asyncio.to_thread(lambda: decode_entry_bundle(self.files.read(tile), tile.width))
        if disk != db:
            raise UsageError("the state database's log leaves differ from the public tiles", code="log-state")

    async def _sign(self, trust: LogTrust, builder: TreeBuilder) -> None:
        """Sign the builder's tree if it extends the last signed checkpoint; record it, then publish it."""
        origin = trust.origin
        new = Checkpoint(origin, builder.size, builder.root())
        last = self.last
        if new.size == 0:
            return
        if last is not None and last.checkpoint.origin != origin:
            raise UsageError(
                f"the root's log origin is {origin!r} but this origin signed {last.checkpoint.origin!r}",
                code="log-state",
            )
        if last is not None and (last.checkpoint.size, last.checkpoint.root) == (new.size, new.root):
            if await self.trusted(last.note, trust):
                if self.current is None or Checkpoint.parse(note_text(self.current)) != new:
                    await self.write_checkpoint(last.note)  # signed before a crash, never published
                self._report_ok()
                return
            # Its log key was revoked: the same tree again, signed by a key the root trusts.
            if await self._sign_and_publish(trust, new):
                log.info("transparency log: re-signed size %d with a log key the root trusts", new.size)
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
        await self._sign_and_publish(trust, new)

    async def trusted(self, note: bytes, trust: LogTrust) -> bool:
        """Whether a log key of the newest root signed ``note`` (the last answer is kept per note and trust)."""
        held = self._trusted_seen
        if held is None or held[0] != note or held[1] is not trust:
            held = self._trusted_seen = (note, trust, await asyncio.to_thread(_trusted, note, trust))
        return held[2]

    async def _sign_and_publish(self, trust: LogTrust, new: Checkpoint) -> bool:
        """Sign ``new`` with every log key held (:meth:`Keyring.log_signers`), record it, then publish it."""
        try:
            keys = self.keyring.log_signers(timefmt.now())
        except UsageError as exc:
            self.report(NO_LOG_KEY, exc.message, error=True)
            return False
        note = await asyncio.to_thread(sign_checkpoint, new, [Ed25519Signer(new.origin, k) for k in keys])
        self.last = await asyncio.to_thread(signed.save, self.data.state, note)
        pause_for_tests("tlog-signed")
        await self.write_checkpoint(note)
        self.quorum_met = trust.policy.quorum is None
        self._report_ok()
        return True

    async def write_checkpoint(self, note: bytes) -> None:
        await asyncio.to_thread(atomic_write, self.files.checkpoint, note)
        self.current = note

    def _report_ok(self) -> None:
        if self.state != OK:
            self.report(OK, "signing")
