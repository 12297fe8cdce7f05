"""The witness round of a sync: the thin I/O layer around :class:`mirror.witness.LogWitness`.

After a sync has committed (and served) its index, when the newest root keeps
a log (``tlog``):

1. ``tlog/checkpoint`` from the upstream the index came from and from every
   other configured upstream; each policy witness's view
   (``<url>/tlog/witness/<hex sha256(origin)>/checkpoint``) except this one.
   A view larger than the accepted one is proved from that source's hash
   tiles (``tlog/tile/<L>/...``: a consistency proof's tiles, a vanished
   partial falling back to the full tile; once per source, view and
   accepted size): a proof that rebuilds its signed root but another root
   at the accepted size is a ``fork``; one that does not rebuild it is the
   source's ``peer-bad-tiles`` (its status, not this mirror's state).
2. A larger checkpoint from the first: only the entry bundles from the
   accepted size's tile on (``tlog/tile/entries/...``; a vanished partial falls
   back to the full bundle), and of the first one only the new entries (every
   entry is 36 bytes: ``Range: bytes=<36 k>-`` when ``k`` of its entries are
   accepted; a server without ranges sends it whole); the witness rebuilds the
   root; this mirror's own tiles are written under ``public/tlog/tile``, one
   filesystem sync, then the state (``DATA/state/tlog/witness.json``) is saved.
3. The leaves are checked against the served index; when they agree and a
   cosignature is due, the witness view is written to
   ``public/tlog/witness/<oh>/checkpoint``.
4. ``public/tlog/checkpoint``: the accepted note with the newest cosignature of
   each witness merged in. Once the counted cosignatures meet the policy's
   quorum: ``tlog/index.tlog-proof`` and ``bundles/<id>.tlog-proof`` for held
   bundles that lack one (never rewritten; at most ``max_proofs`` a round, the
   rest in later rounds: ``mirror.logproofs``), all from the mirror's own tiles.
   After a trust change that may void written proofs (a log key revoked, the
   witness policy changed: ``server.tlog.stale``), the held proofs are checked
   (within the same time budget, over several rounds if need be) and those the
   newest root no longer accepts are written again.

A sticky refusal (``fork``) writes both signed notes to
``DATA/state/tlog-evidence/`` and ``public/tlog/witness/<oh>/evidence/`` and
freezes the log view until ``tamizdat mirror witness-clear``. Nothing here can
fail the index sync: every problem becomes the ``log`` report's state.
Requests for ``tlog/`` are counted apart from the sync's request budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamizdat.bundles.tlog.builder import TileBatch, TreeBuilder
from tamizdat.bundles.tlog.errors import TileError
from tamizdat.bundles.tlog.hashing import EMPTY_ROOT, HASH_SIZE, CompactRange, leaf_hash
from tamizdat.bundles.tlog.leaf import LEAF_SIZE
from tamizdat.bundles.tlog.tiles import (
    FULL_TILE_BYTES,
    TILE_WIDTH,
    TileId,
    decode_entry_bundle,
    root_from_tiles,
    tile_layout,
)
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import NetworkError, RejectedError, TamizdatError
from tamizdat.fsutil import atomic_write, remove_stale_temp
from tamizdat.keys import dsse, timefmt
from tamizdat.keys.root import Root
from tamizdat.server.datadir import DataDir, sync_filesystem
from tamizdat.server.httpclient import BoundedClient
from tamizdat.server.tlog import stale

from .config import SyncConfig
from .logproofs import ProofBacklog, ProofMaker, proof_bytes
from .upstream import HttpUpstream, Ranged, Upstream, make_upstream
from .witness import (
    BAD_TILE,
    ENTRY_BYTES,
    PEER_BAD_TILES,
    EntryTail,
    LogContents,
    LogRefusal,
    LogWitness,
    Offer,
    ServedIndex,
    WitnessState,
)
from .witnesskey import ensure_witness_key

log = logging.getLogger("tamizdat.mirror")

STATE_FILE = "witness.json"
MAX_CHECKPOINT_BYTES = 64 * 1024  # a checkpoint with 64 signatures is under 10 KB
MAX_ENTRY_BUNDLE_BYTES = TILE_WIDTH * (2 + LEAF_SIZE)  # every tamizdat leaf is 34 bytes
PARTIAL_GRACE = 7 * 24 * 3600  # seconds partial tiles stay after their full tile exists (tlog_partial_grace)
MAX_PROOFS = 100_000  # bundle proofs written per round at most (the first quorum over a big log: many rounds)
PROOF_SECONDS = 30.0  # and for at most this long per round
NOT_FOUND = ("http-404", "not-found")
OK, STALE, NO_CHECKPOINT = "ok", "stale", "no-checkpoint"
AHEAD, TILES_UNAVAILABLE = "ahead", "tiles-unavailable"  # a larger view proved consistent; or not provable now


def _iso(seconds: int | None) -> str | None:
    return None if seconds is None else timefmt.format(dt.datetime.fromtimestamp(seconds, dt.UTC))


@dataclass
class Round:
    """What one witness round saw and did (the ``log`` object of the sync summary and /healthz)."""

    problems: list[tuple[str, str]] = field(default_factory=list)  # (code, message), worst first by rank
    sources: list[dict[str, Any]] = field(default_factory=list)
    cosigned: bool = False
    requests: int = 0
    bytes: int = 0
    proofs: int = 0  # bundle proofs written this round

    def problem(self, code: str, message: str) -> None:
        self.problems.append((code, message))


_RANK = {"fork": 0, "local-log": 1, "origin-mismatch": 1, "bad-log-policy": 1}


class LogSync:
    """The witness's disk and network side for one data directory."""

    def __init__(
        self,
        data: DataDir,
        *,
        config: SyncConfig,
        clock: Callable[[], int] = lambda: int(time.time()),
        witness_name: str | None = None,
        partial_grace: int = PARTIAL_GRACE,
        max_proofs: int = MAX_PROOFS,
        proof_seconds: float = PROOF_SECONDS,
    ):
        self.data = data
        self.config = config
        self.clock = clock
        self.witness_name = witness_name or None
        self.partial_grace = partial_grace
        self.max_proofs = max_proofs
        self.proof_seconds = proof_seconds
        self.tlog = data.public / "tlog"
        self.dir = data.state / "tlog"
        self.evidence_dir = data.state / "tlog-evidence"
        self._contents: tuple[str, LogContents] | None = None  # (origin, contents) cached between rounds
        self._backlog: tuple[LogContents, ProofBacklog] | None = None  # bundle proofs still to write
        # Larger views from other sources: source -> ((its size, its root, accepted size, accepted root), status),
        # and source -> ((its size, its root), its hash tiles fetched so far); one entry per source.
        self._proved: dict[str, tuple[tuple[int, bytes, int, bytes], str]] = {}
        self._source_tiles: dict[str, tuple[tuple[int, bytes], dict[TileId, bytes]]] = {}
        self._agreed: tuple[LogContents, int, ServedIndex] | None = None  # the last leaf check that passed
        self._mark: tuple[stale.TrustMark | None] | None = None  # the trust held proofs were last checked against
        self._stale_scan: tuple[stale.TrustMark, list[str]] | None = None  # proofs still to check
        self._swept = False

    # -- state -----------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    def load_state(self, origin: str | None = None) -> WitnessState | None:
        """The saved state (None when there is none, or it belongs to another origin than given)."""
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = WitnessState.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, RejectedError) as exc:
            raise LogRefusal(f"{STATE_FILE} is damaged: {exc}", code="local-log") from None
        if origin is not None and state.origin != origin:
            raise LogRefusal(
                f"the accepted log is {state.origin!r} but the root names {origin!r} "
                "(`tamizdat mirror witness-clear --forget` starts over)",
                code="origin-mismatch",
            )
        return state

    def save_state(self, state: WitnessState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.state_path, json.dumps(state.to_json(), sort_keys=True).encode(), mode=0o600)

    def status(self) -> dict[str, Any] | None:
        """The last round's report as saved (for /healthz before this process ran a round)."""
        try:
            state = self.load_state()
        except LogRefusal as exc:
            return {"state": exc.code, "message": exc.message}
        return None if state is None or not state.last else dict(state.last)

    # -- own tiles ---------------------------------------------------------
    def read_tile(self, tile: TileId) -> bytes:
        """A tile this mirror wrote; a partial falls back to the full tile or a wider partial."""
        for candidate in self._candidates(tile):
            with contextlib.suppress(FileNotFoundError):
                data = (self.tlog / candidate.path()).read_bytes()
                if candidate.is_partial and candidate.width > tile.width:
                    return _first_entries(data, tile.width) if tile.is_entries else data[: tile.width * HASH_SIZE]
                return data
        raise FileNotFoundError(tile.path())

    def _candidates(self, tile: TileId) -> list[TileId]:
        out = [tile]
        if tile.is_partial:
            out.append(tile.full())
            folder = self.tlog / tile.partial_dir()
            with contextlib.suppress(FileNotFoundError):
                widths = sorted(int(n) for n in os.listdir(folder) if n.isdigit())
                out += [TileId(tile.level, tile.index, w) for w in widths if w > tile.width]
        return out

    def root_at(self, state: WitnessState) -> Callable[[int], bytes]:
        def root(size: int) -> bytes:
            if size == state.size:
                return state.root
            if size == 0:
                return EMPTY_ROOT
            try:
                return root_from_tiles(size, self.read_tile)
            except (FileNotFoundError, RejectedError) as exc:
                raise LogRefusal(f"own tiles for size {size} are unreadable: {exc}", code="local-log") from None

        return root

    def _contents_for(self, state: WitnessState) -> LogContents:
        cached = self._contents
        if cached is not None and cached[0] == state.origin and cached[1].size == state.size:
            return cached[1]
        entries: list[bytes] = []
        try:
            for tile in tile_layout(state.size, entries=True):
                if tile.is_entries:
                    entries += decode_entry_bundle(self.read_tile(tile), tile.width)
        except (FileNotFoundError, RejectedError) as exc:
            raise LogRefusal(f"own entry bundles are unreadable: {exc}", code="local-log") from None
        cr = CompactRange()
        cr.extend(leaf_hash(e) for e in entries)
        if cr.size != state.size or cr.root() != state.root:
            raise LogRefusal("own entry bundles do not match the saved log state", code="local-log")
        contents = LogContents.rebuild(entries)
        self._contents = (state.origin, contents)
        return contents

    def _builder(self, state: WitnessState) -> TreeBuilder:
        try:
            builder = TreeBuilder.resume(state.size, self.read_tile, root=state.root)
        except (FileNotFoundError, RejectedError) as exc:
            raise LogRefusal(f"own tiles do not resume the saved log: {exc}", code="local-log") from None
        if state.compact and builder.compact_range().hashes != state.compact:
            raise LogRefusal("own tiles do not match the saved compact range", code="local-log")
        return builder

    def _write_batch(self, batch: TileBatch) -> None:
        for rel, body in batch.files():
            atomic_write(self.tlog / rel, body, durable=False)
        sync_filesystem(self.data.root)

    def _collect_garbage(self, state: WitnessState) -> None:
        now = self.clock()
        keep: list[tuple[str, int]] = []
        for rel, since in state.garbage:
            if now - since < self.partial_grace:
                keep.append((rel, since))
                continue
            shutil.rmtree(self.tlog / rel, ignore_errors=True)
        state.garbage = keep

    # -- the round ---------------------------------------------------------
    async def run(
        self,
        client: BoundedClient,
        root: Root | None,
        primary: str,
        others: Iterable[str],
        served: Callable[[], ServedIndex],
    ) -> dict[str, Any] | None:
        """One witness round; returns the ``log`` report (None when the root keeps no log)."""
        if root is None:
            return None
        rnd = Round()
        try:
            trust = LogTrust.from_root(root)
        except RejectedError as exc:
            rnd.problem("bad-log-policy", exc.message)
            return self._report(rnd, None, None)
        if trust is None:
            return None
        try:
            witness = await asyncio.to_thread(self._witness, trust)
        except LogRefusal as exc:
            rnd.problem(exc.code, exc.message)
            return self._report(rnd, None, None)
        except OSError as exc:
            rnd.problem("local-io", f"the witness key or state cannot be written: {exc.strerror or exc}")
            return self._report(rnd, None, None)
        try:
            await self._round(client, witness, primary, list(others), served, rnd)
        except TamizdatError as exc:
            rnd.problem(exc.code, exc.message)
        except OSError as exc:
            rnd.problem("local-io", f"writing the log failed: {exc.strerror or exc}")
        report = self._report(rnd, witness, trust)
        witness.state.last = report
        try:
            await asyncio.to_thread(self.save_state, witness.state)
        except OSError as exc:
            log.error("cannot save the witness state: %s", exc.strerror or exc)
        return report

    def _witness(self, trust: LogTrust) -> LogWitness:
        if not self._swept:  # temp files only a killed process leaves: once per process, not a walk per round
            remove_stale_temp(self.tlog)
            self._swept = True
        state = self.load_state(trust.origin) or WitnessState(trust.origin)
        contents = self._contents_for(state)
        wkey = ensure_witness_key(self.data, name=self.witness_name)
        if wkey.created:
            log.warning("witness key created: %s (send this vkey to the publisher)", wkey.vkey())
        return LogWitness(trust, state, contents, self.clock, wkey.signer(self.clock))

    async def _round(
        self,
        client: BoundedClient,
        w: LogWitness,
        primary: str,
        others: list[str],
        served: Callable[[], ServedIndex],
        rnd: Round,
    ) -> None:
        st = w.state
        if st.alarm is not None:
            rnd.problem(st.alarm.code, st.alarm.message)
            return  # frozen: the last good view stays served until an operator clears the alarm
        root_at = self.root_at(st)
        refused: LogRefusal | None = None
        merge: list[bytes] = []

        # 1. The upstream the index came from drives the accepted view.
        up = make_upstream(primary, client)
        source: dict[str, Any] = {"source": up.public_name}
        rnd.sources.append(source)
        try:
            note = await self._fetch(up, "tlog/checkpoint", MAX_CHECKPOINT_BYTES, rnd)
            offer = await asyncio.to_thread(w.offer, note, root_at=root_at, primary=True)
            source.update(size=offer.size, status=offer.action)
            if offer.action == "extend":
                await self._extend(up, w, offer, rnd)
                source["status"] = "extended"
            else:
                w.accept(offer)
                if w.stale(offer):
                    rnd.problem(STALE, f"{up.public_name}: every cosignature on its checkpoint is beyond max_age")
        except NetworkError as exc:
            source["status"] = code = NO_CHECKPOINT if exc.code in NOT_FOUND else exc.code
            rnd.problem(code, f"{up.public_name}: {exc.message}")
        except LogRefusal as exc:
            source["status"] = exc.code
            if exc.sticky:
                return await self._alarm(w, exc, rnd)
            await asyncio.to_thread(self._keep_evidence, w, exc)
            refused = exc
        except RejectedError as exc:
            source["status"] = exc.code
            refused = LogRefusal(f"{up.public_name}: {exc.message}", code=exc.code)
        root_at = self.root_at(st)  # the accepted size may have moved

        # 2. Other upstreams and peer witnesses: compare, merge, remember larger views.
        views: list[tuple[Upstream, str, str | None]] = [
            (make_upstream(spec, client), "tlog/checkpoint", None) for spec in others
        ]
        views += self._peers(w, client)
        results = await asyncio.gather(*(self._view(u, rel, rnd) for u, rel, _ in views))
        for (u, _, peer), got in zip(views, results, strict=True):
            if got is None:
                continue
            name = u.public_name if peer is None else f"witness {peer}"
            try:
                if peer is None:
                    seen = await asyncio.to_thread(w.offer, got, root_at=root_at, primary=False)
                else:
                    seen = await asyncio.to_thread(w.peer_view, peer, got, root_at=root_at)
            except LogRefusal as exc:
                rnd.sources.append({"source": name, "status": exc.code})
                if exc.sticky:
                    return await self._alarm(w, exc, rnd)
                rnd.problem(exc.code, f"{name}: {exc.message}")
                continue
            except RejectedError as exc:
                rnd.sources.append({"source": name, "status": exc.code})
                continue
            status: str = seen.action
            if seen.action == "same":
                merge.append(seen.note)
            elif seen.action == "ahead":
                try:
                    status = await self._prove_ahead(u, name, w, seen, rnd)
                except LogRefusal as exc:  # only a fork gets here
                    rnd.sources.append({"source": name, "size": seen.size, "status": exc.code})
                    return await self._alarm(w, exc, rnd)
                w.remember(name, seen)
            rnd.sources.append({"source": name, "size": seen.size, "status": status})
        try:
            await asyncio.to_thread(w.check_pending, root_at)
        except LogRefusal as exc:
            if exc.sticky:
                return await self._alarm(w, exc, rnd)
            raise

        # 3. The leaves against the served index; cosign when they agree.
        if st.checkpoint is None:
            if refused:
                rnd.problem(refused.code, refused.message)
            return
        view = await asyncio.to_thread(served)
        disagree: LogRefusal | None = None
        try:
            await asyncio.to_thread(self._check_leaves, w, view)
        except LogRefusal as exc:
            disagree = exc
        for problem in (refused, disagree):
            if problem is not None:
                rnd.problem(problem.code, problem.message)
        if refused is None and disagree is None and w.cosign_due():
            note = w.cosign()
            await asyncio.to_thread(self._write_public, f"tlog/witness/{w.origin_hash}/checkpoint", note)
            rnd.cosigned = True
            log.info("cosigned log size %d", st.size)

        # 4. The merged checkpoint, then proofs once the quorum is met.
        st.checkpoint = w.merged(merge)
        rnd.proofs = await asyncio.to_thread(self._publish, w, view)
        await asyncio.to_thread(self._collect_garbage, st)  # only once tlog/checkpoint names the new size

    def _check_leaves(self, w: LogWitness, view: ServedIndex) -> None:
        """The leaf checks, skipped when neither the leaves nor the served sets changed since they last passed."""
        last = self._agreed
        if last is not None and last[0] is w.contents and last[1] == w.contents.size and _same_sets(last[2], view):
            return
        w.check_leaves(view)
        self._agreed = (w.contents, w.contents.size, view)

    async def _extend(self, up: Upstream, w: LogWitness, offer: Offer, rnd: Round) -> None:
        tiles = w.entry_tiles(offer.size)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(tile: TileId) -> bytes | EntryTail:
            async with gate:
                return await self._entry_bundle(up, tile, max(0, w.state.size - tile.start), rnd)

        got = await asyncio.gather(*(one(t) for t in tiles), return_exceptions=True)
        fetched: dict[TileId, bytes | EntryTail] = {}
        for tile, result in zip(tiles, got, strict=True):
            if isinstance(result, NetworkError):
                if result.code == "http-416":
                    raise LogRefusal(
                        f"entry bundle {tile.path()} is shorter than the entries already accepted", code=BAD_TILE
                    )
                raise LogRefusal(f"entry bundle {tile.path()}: {result.message}", code="entries-unavailable")
            if isinstance(result, RejectedError) and result.code == "bad-range":
                raise LogRefusal(f"entry bundle {tile.path()}: {result.message}", code=BAD_TILE)
            if isinstance(result, BaseException):
                raise result
            fetched[tile] = result
        builder = await asyncio.to_thread(self._builder, w.state)
        ext = await asyncio.to_thread(w.extend, offer, fetched, builder)
        await asyncio.to_thread(self._write_batch, ext.batch)
        w.accept(offer, ext)
        self._contents = (w.state.origin, w.contents)
        await asyncio.to_thread(self.save_state, w.state)  # tiles are durable first, then the state names them
        log.info("log extended to size %d", offer.size)

    async def _prove_ahead(self, up: Upstream, name: str, w: LogWitness, offer: Offer, rnd: Round) -> str:
        """Prove a larger view from ``up``'s own hash tiles; returns its status (a fork raises, sticky).

        Done once per (source, its view, the accepted view); the tiles are kept
        per (source, its view) for when only the accepted size moves.
        """
        cp = offer.signed.checkpoint
        key = (cp.size, cp.root, w.state.size, w.state.root)
        done = self._proved.get(name)
        if done is not None and done[0] == key:
            return done[1]
        held = self._source_tiles.get(name)
        tiles = held[1] if held is not None and held[0] == (cp.size, cp.root) else {}
        self._source_tiles[name] = ((cp.size, cp.root), tiles)
        missing = [t for t in w.ahead_tiles(cp.size) if t not in tiles]
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(tile: TileId) -> bytes:
            async with gate:
                return await self._hash_tile(up, tile, rnd)

        got = await asyncio.gather(*(one(t) for t in missing), return_exceptions=True)
        status = AHEAD
        for tile, result in zip(missing, got, strict=True):
            if isinstance(result, bytes):
                tiles[tile] = result
            elif isinstance(result, RejectedError):
                status = PEER_BAD_TILES  # oversized, encoded, malformed: the source's fault
            elif not isinstance(result, NetworkError):
                raise result
        unavailable = [r for r in got if isinstance(r, NetworkError)]
        if unavailable and status == AHEAD:
            log.info("%s: hash tiles unavailable (%s): its larger view waits", name, unavailable[0].code)
            return TILES_UNAVAILABLE  # not cached: tried again next round

        def read(tile: TileId) -> bytes:
            try:
                return tiles[tile]
            except KeyError:
                raise TileError(f"tile {tile.path()} was not fetched", code="bad-tile") from None

        if status == AHEAD:
            try:
                await asyncio.to_thread(w.check_ahead, name, offer, read)
            except LogRefusal as exc:
                if exc.sticky:
                    raise
                status = exc.code
        if status != AHEAD:
            del self._source_tiles[name]  # bad bytes are not kept
            log.warning("%s served hash tiles that do not rebuild its checkpoint of size %d", name, cp.size)
        self._proved[name] = (key, status)
        return status

    async def _hash_tile(self, up: Upstream, tile: TileId, rnd: Round) -> bytes:
        """A hash tile; a partial one that vanished falls back to the full tile."""
        for t in (tile, tile.full()) if tile.is_partial else (tile,):
            try:
                return await self._fetch(up, "tlog/" + t.path(), FULL_TILE_BYTES, rnd)
            except NetworkError as exc:
                if t == tile.full() or exc.code not in NOT_FOUND:
                    raise
        raise AssertionError("unreachable")

    def _peers(self, w: LogWitness, client: BoundedClient) -> list[tuple[Upstream, str, str | None]]:
        out: list[tuple[Upstream, str, str | None]] = []
        me = None if w.signer is None else w.signer.verifier
        for peer in w.trust.policy.witnesses:
            if peer.url is None or peer.verifier == me:
                continue
            try:
                out.append((HttpUpstream(peer.url, client), f"tlog/witness/{w.origin_hash}/checkpoint", peer.name))
            except RejectedError:
                continue  # not an http(s) URL: nothing to fetch
        return out

    async def _view(self, up: Upstream, rel: str, rnd: Round) -> bytes | None:
        try:
            return await self._fetch(up, rel, MAX_CHECKPOINT_BYTES, rnd)
        except TamizdatError as exc:
            rnd.sources.append({"source": up.public_name, "status": exc.code})
            return None

    async def _fetch(self, up: Upstream, rel: str, max_bytes: int, rnd: Round) -> bytes:
        rnd.requests += 1  # counted here, not from the upstream's counters: fetches run concurrently
        data = await up.fetch(rel, max_bytes=max_bytes, timeout=self.config.document_timeout)
        rnd.bytes += len(data)
        return data

    async def _fetch_range(self, up: Upstream, rel: str, start: int, rnd: Round) -> Ranged:
        rnd.requests += 1
        timeout = self.config.document_timeout
        got = await up.fetch_range(rel, start, max_bytes=MAX_ENTRY_BUNDLE_BYTES, timeout=timeout)
        rnd.bytes += len(got.data)
        return got

    async def _entry_bundle(self, up: Upstream, tile: TileId, skip: int, rnd: Round) -> bytes | EntryTail:
        """An entry bundle; with ``skip`` entries already accepted, only the bytes after them (a range).

        A partial bundle vanishes once the full one exists: then the full one, from the same byte.
        """
        for t in (tile, tile.full()) if tile.is_partial else (tile,):
            rel = "tlog/" + t.path()
            try:
                if not skip:
                    return await self._fetch(up, rel, MAX_ENTRY_BUNDLE_BYTES, rnd)
                got = await self._fetch_range(up, rel, skip * ENTRY_BYTES, rnd)
                return EntryTail(got.data, got.offset, got.total, whole=t != tile)
            except NetworkError as exc:
                if t == tile.full() or exc.code not in NOT_FOUND:
                    raise
        raise AssertionError("unreachable")

    # -- writing -----------------------------------------------------------
    def _archive_index(self, leaf_id: str) -> None:
        """Keep the served (logged) index envelope as ``tlog/index/<leaf id>.json``, once."""
        target = self.data.public / "tlog" / "index" / f"{leaf_id}.json"
        if target.exists():
            return
        try:
            raw = (self.data.public / "index.json").read_bytes()
            payload = dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE).payload
        except (OSError, TamizdatError):
            return
        if hashlib.sha256(payload).hexdigest() != leaf_id:
            return  # index.json moved on meanwhile: archived at the next sync
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, raw, mode=0o644, durable=False)

    def _write_public(self, rel: str, body: bytes) -> None:
        path = self.data.public / rel
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == body:
                return
        atomic_write(path, body, mode=0o644, durable=False)

    def _keep_evidence(self, w: LogWitness, refusal: LogRefusal) -> None:
        for ev in refusal.evidence:
            atomic_write(self.evidence_dir / ev.name, ev.note, mode=0o600)
            atomic_write(self.tlog / "witness" / w.origin_hash / "evidence" / ev.name, ev.note, mode=0o644)

    async def _alarm(self, w: LogWitness, refusal: LogRefusal, rnd: Round) -> None:
        await asyncio.to_thread(self._keep_evidence, w, refusal)
        alarm = w.raise_alarm(refusal)
        rnd.problem(alarm.code, alarm.message)
        log.error("log witness stopped cosigning: %s (%s); evidence kept", refusal.message, refusal.code)

    def _publish(self, w: LogWitness, view: ServedIndex) -> int:
        """``tlog/checkpoint``; with the quorum, the index proof and a batch of missing bundle proofs.

        Returns how many bundle proofs were written.
        """
        st = w.state
        assert st.checkpoint is not None
        self._write_public("tlog/checkpoint", st.checkpoint)
        index_at = w.index_leaf(view)
        if index_at is not None:
            self._archive_index(view.payload_sha256)
        quorum = w.quorum(st.checkpoint)
        if (index_at is None or not quorum) and st.index_proof not in (None, view.payload_sha256):
            with contextlib.suppress(FileNotFoundError):  # it proves an index this mirror no longer serves
                (self.tlog / "index.tlog-proof").unlink()
            st.index_proof = None
        backlog = self.backlog(w.contents)
        backlog.update(w.contents.bundles, w.contents.bundle_order, view.held)  # also drops proofs of gone bundles
        if not quorum:
            return 0
        deadline = time.monotonic() + self.proof_seconds
        proof = proof_bytes(ProofMaker(st.size, self.read_tile), st.checkpoint)
        if index_at is not None:
            self._write_public("tlog/index.tlog-proof", proof(index_at))
            st.index_proof = view.payload_sha256
        scanned = self._find_stale(w, backlog, deadline)
        written = backlog.write(proof, limit=self.max_proofs, deadline=deadline)
        if scanned is not None and not backlog.pending:  # every stale proof written again: remember the trust
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            stale.save_mark(self.dir / stale.MARK_NAME, scanned)
            self._mark, self._stale_scan = (scanned,), None
        if backlog.pending:
            log.info("wrote %d bundle proofs; %d wait for the next rounds", written, backlog.pending)
        return written

    def _find_stale(self, w: LogWitness, backlog: ProofBacklog, deadline: float) -> stale.TrustMark | None:
        """After a trust change that may void proofs: check the held ones (until ``deadline``), requeue the stale.

        Returns the new trust mark once every held proof was checked (to be
        saved when the requeued ones are written), else None.
        """
        if self._mark is None:
            self._mark = (stale.load_mark(self.dir / stale.MARK_NAME),)
        mark, checked = stale.TrustMark.of(w.trust), self._mark[0]
        if mark == checked:
            return None
        scan = self._stale_scan
        if scan is None or scan[0] != mark:
            if mark.keeps(checked):
                scan = (mark, [])
            else:
                scan = self._stale_scan = (mark, backlog.proved())
        judge = stale.ProofJudge(w.trust, self.clock())
        todo, found = scan[1], 0
        while todo and time.monotonic() < deadline:
            batch = todo[-1024:]
            del todo[-1024:]
            bad = stale.stale_files(judge, [(bid, self.data.bundles / f"{bid}.tlog-proof") for bid in batch])
            found += backlog.requeue(bad, w.contents.bundles)
        if found:
            log.warning("%d bundle proof(s) no longer verify under the newest root: written again", found)
        return None if todo else mark

    def backlog(self, contents: LogContents) -> ProofBacklog:
        """The bundle proofs still to write for these log contents (built on first use)."""
        if self._backlog is None or self._backlog[0] is not contents:
            self._backlog = (contents, ProofBacklog(self.data.bundles))
        return self._backlog[1]

    # -- reporting ---------------------------------------------------------
    def _report(self, rnd: Round, w: LogWitness | None, trust: LogTrust | None) -> dict[str, Any]:
        problems = sorted(rnd.problems, key=lambda p: _RANK.get(p[0], 2 if p[0] != STALE else 3))
        code, message = problems[0] if problems else (OK, None)
        st = None if w is None else w.state
        quorum = False
        if w is not None and st is not None and st.checkpoint is not None:
            with contextlib.suppress(RejectedError):
                quorum = w.quorum(st.checkpoint)
        try:
            evidence = len(os.listdir(self.evidence_dir))
        except FileNotFoundError:
            evidence = 0
        return {
            "state": code,
            "message": message,
            "problems": [{"code": c, "message": m} for c, m in problems[1:]],
            "size": None if st is None else st.size,
            "cosigned": rnd.cosigned,
            "last_cosigned": None if st is None else _iso(st.cosigned),
            "quorum": quorum,
            "witness": None if w is None else w.policy_name(),
            "evidence": evidence,
            "proofs": rnd.proofs,
            "proofs_pending": self._pending(w),
            "sources": rnd.sources,
            "requests": rnd.requests,
            "bytes": rnd.bytes,
            "at": _iso(self.clock()),
        }

    def _pending(self, w: LogWitness | None) -> int | None:
        held = self._backlog
        return held[1].pending if w is not None and held is not None and held[0] is w.contents else None

    # -- operator ------------------------------------------------------------
    def clear(self, *, forget: bool) -> dict[str, Any]:
        """Clear a sticky alarm (evidence stays); ``forget`` also drops the accepted log and its tiles."""
        state = None
        with contextlib.suppress(LogRefusal):
            state = self.load_state()
        cleared = None if state is None or state.alarm is None else state.alarm.code
        if forget:
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            shutil.rmtree(self.tlog / "tile", ignore_errors=True)
            for rel in ("checkpoint", "index.tlog-proof"):
                with contextlib.suppress(FileNotFoundError):
                    (self.tlog / rel).unlink()
            witness = self.tlog / "witness"
            if witness.is_dir():
                for folder in witness.iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        (folder / "checkpoint").unlink()
            self._contents = None
            self._backlog = None
            self._proved.clear()
            self._source_tiles.clear()
            self._agreed = None
        elif state is not None and state.alarm is not None:
            state.alarm = None
            state.last = {}
            self.save_state(state)
        return {"cleared": cleared, "forgot": forget, "size": 0 if forget or state is None else state.size}


def _same_sets(a: ServedIndex, b: ServedIndex) -> bool:
    """The same index and the very same set objects (kept per index version and folder listing)."""
    return (
        a.payload_sha256 == b.payload_sha256
        and a.listed is b.listed
        and a.retracted is b.retracted
        and a.wanted is b.wanted
        and a.held is b.held
    )


def _first_entries(data: bytes, count: int) -> bytes:
    """The first ``count`` entries of an entry bundle, re-encoded (a wider partial read for a narrower one)."""
    entries = decode_entry_bundle(data)[:count]
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


__all__ = ["LogSync", "ProofMaker"]
