"""One mirror sync: the thin I/O layer around :class:`mirror.trust.TrustedState`.

Order of a sync from one upstream (the first that succeeds wins; the others
are tried in turn, a failing one moved to the back):

1. ``index.json``; byte-identical to the served one: done (one request).
2. Roots: ``roots/<N>.json`` for every version up to the one the index names,
   one at a time (plus ``root.json`` at bootstrap, once an hour, or when the
   index fails a signature check). Each accepted root is persisted at once.
3. The index is verified (signature, freshness, rollback).
4. Only the shards not already held; each must match the index.
5. Only the missing bundles (bounded concurrency): fetched into memory (or
   streamed to ``DATA/tmp`` when big) with size and SHA-256 checked, fully
   verified off the event loop (a worker thread, or worker processes for big
   batches: ``mirror.verifier``), written to ``DATA/tmp`` and renamed into
   ``public/bundles/<id>.zip``.
6. Commit: shards and roots renamed into ``public/`` (before the sync, so it
   covers them too); ONE filesystem sync; ``index.json`` switched atomically;
   trusted state saved; then retracted, pruned and unlisted bundle files
   removed.
7. When the newest root keeps a transparency log: the witness round
   (``mirror.logsync``) checks the log against the served index and cosigns;
   its outcome is the summary's ``log`` report and never fails the sync.

The served ``index.json`` therefore only ever lists bundles that are present
and verified, and a failed sync leaves the previous good state served.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamizdat.bundles.index import Index, ShardRef, SignedIndex
from tamizdat.errors import ExpiredError, NetworkError, RejectedError, SignatureError, TamizdatError, UsageError
from tamizdat.fsutil import fsync_dir
from tamizdat.keys import timefmt
from tamizdat.keys.dsse import INDEX_TYPE, ROOT_TYPE, Envelope
from tamizdat.keys.root import Root
from tamizdat.server.datadir import DataDir, sync_filesystem
from tamizdat.server.httpclient import BoundedClient

from .config import DEFAULT_CONFIG, SyncConfig
from .logsync import LogSync
from .served import BundleFiles, IndexSets
from .state import StateStore, SyncSummary, UpstreamRecord
from .trust import Listing, Listings, Plan
from .upstream import Upstream, is_url, make_upstream, normalize_spec
from .verifier import Verifier
from .witness import ServedIndex

log = logging.getLogger("tamizdat.mirror")

Progress = Callable[[int, int, int], None]  # bundles done, bundles to fetch, bytes so far
_HEX_JSON = re.compile(r"\A([0-9a-f]{64})\.json\Z")
PAUSE_SECONDS = 120.0
SMALL_BUNDLE = 1024 * 1024  # bundles up to this size travel in memory (at most 32 at once), bigger ones via tmp


def _test_pause(point: str, count: int | None = None) -> None:
    """Test-only hook: freeze here so a test can SIGKILL the process deterministically.

    ``TAMIZDAT_TEST_PAUSE_AFTER=N`` pauses after the N-th bundle is renamed into
    place; ``TAMIZDAT_TEST_PAUSE_AT=<point>`` pauses at a named commit point.
    """
    after = os.environ.get("TAMIZDAT_TEST_PAUSE_AFTER")
    at = os.environ.get("TAMIZDAT_TEST_PAUSE_AT")
    hit = (count is not None and after is not None and after.isdigit() and count == int(after)) or (
        count is None and at == point
    )
    if hit:
        print(f"TAMIZDAT-PAUSED {point} {count or ''}".rstrip(), file=sys.stderr, flush=True)
        time.sleep(PAUSE_SECONDS)  # blocks the event loop on purpose: nothing moves until the kill


@dataclass
class _Work:
    """What one sync attempt has gathered before committing."""

    signed: SignedIndex
    shards: dict[str, Listings]
    staged_shards: dict[str, Path] = field(default_factory=dict)
    present: frozenset[str] = frozenset()  # bundle files found at the start (one directory listing, or the last)
    replacements: dict[str, Path] = field(default_factory=dict)  # bundle id -> verified file in tmp
    new: int = 0


def index_bundle_count(data: bytes) -> int:
    """The number of bundles an (unverified) index lists; 0 if it does not parse. A hint only."""
    try:
        shards = Index.from_payload(Envelope.from_bytes(data, expected_type=INDEX_TYPE).payload).shards
    except (TamizdatError, ValueError):
        return 0
    return sum(ref.count for ref in shards)


def index_root_version(data: bytes) -> int:
    """The root version an (unverified) index names; 0 if it does not parse. A hint only."""
    try:
        return Index.from_payload(Envelope.from_bytes(data, expected_type=INDEX_TYPE).payload).root_version
    except (TamizdatError, ValueError):
        return 0


def root_version_hint(data: bytes) -> int:
    """The version an (unverified) root document claims; 0 if it does not parse."""
    try:
        return Root.from_payload(Envelope.from_bytes(data, expected_type=ROOT_TYPE).payload).version
    except (TamizdatError, ValueError):
        return 0


class Mirror:
    """A mirror's data directory and its sync engine (one per process)."""

    def __init__(
        self,
        data: DataDir,
        *,
        root_keyid: str,
        upstreams: Iterable[str],
        keep_superseded: bool = True,
        config: SyncConfig = DEFAULT_CONFIG,
        clock: Callable[[], dt.datetime] = timefmt.now,
        witness_name: str | None = None,
    ):
        self.data = data.create()
        self.store = StateStore(data).create()
        self.root_keyid = root_keyid
        self.upstreams = [normalize_spec(u) for u in upstreams]
        self.keep_superseded = keep_superseded
        self.config = config
        self.clock = clock
        self.trust = self.store.load_trust(root_keyid)
        records, last, last_ok = self.store.load_health()
        self.records = records
        self.last_summary: dict[str, object] | None = last
        self.last_ok: str | None = last_ok
        self.logsync = LogSync(
            data, config=config, clock=lambda: int(self.clock().timestamp()), witness_name=witness_name
        )
        self._lock = asyncio.Lock()
        self._bundle_files = BundleFiles(data.bundles)  # listed again only when bundles/ changed
        self._index_sets: IndexSets | None = None  # the served index's sets, per index version

    # -- public ----------------------------------------------------------
    def record(self, spec: str) -> UpstreamRecord:
        """The record of upstream ``spec`` (a directory is shown as ``directory``, never its path)."""
        if spec not in self.records:
            self.records[spec] = UpstreamRecord(spec, spec if is_url(spec) else "directory")
        return self.records[spec]

    def log_health(self) -> dict[str, Any] | None:
        """The witness's last report (this process's last sync, else the saved one)."""
        last = self.last_summary or {}
        report = last.get("log")
        if isinstance(report, dict):
            return report
        return self.logsync.status()

    def bundle_count(self) -> int:
        if self.trust.index is None:
            return 0
        return len(self._bundle_files.ids())

    async def sync(self, progress: Progress | None = None) -> SyncSummary:
        """Sync once from the first upstream that works; never loses the served state."""
        if not self.upstreams:
            raise UsageError("no upstream configured (give --upstream)", code="no-upstream")
        async with self._lock:
            with self.store.lock():
                return await self._sync_locked(progress)

    # -- the sync --------------------------------------------------------
    async def _sync_locked(self, progress: Progress | None) -> SyncSummary:
        started = time.monotonic()
        now = self.clock()
        summary = SyncSummary(started=timefmt.format(now))
        self._clean_tmp()
        self._refresh_trust()
        order = sorted(enumerate(self.upstreams), key=lambda p: (self.record(p[1]).consecutive_failures > 0, p[0]))
        chosen: str | None = None
        async with BoundedClient(self.config.client_config()) as client:
            for _, spec in order:
                upstream = make_upstream(spec, client)
                rec = self.record(spec)
                try:
                    await self._sync_from(upstream, summary, progress, now)
                except TamizdatError as err:
                    kind = "network" if isinstance(err, NetworkError) else "rejected"
                    if isinstance(err, UsageError):
                        raise
                    if kind == "rejected":
                        summary.rejected += 1
                    rec.failure(err, kind, self.clock())
                    entry = {"upstream": upstream.public_name, "kind": kind, **err.to_dict()}
                    summary.errors.append(entry)
                    log.warning("upstream %s %s: %s (%s)", upstream.public_name, kind, err.message, err.code)
                    continue
                except OSError as exc:
                    # Our own disk, not the upstream: stop (every upstream would fail the same way),
                    # keep serving the last good state, say why.
                    code = "disk-full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "local-io"
                    message = f"writing the store failed: {exc.strerror or exc}"
                    summary.errors.append(
                        {"upstream": upstream.public_name, "kind": "local", "code": code, "message": message}
                    )
                    log.error("sync stopped: %s (%s); the last good state is still served", message, code)
                    break
                finally:
                    summary.requests += upstream.counters.requests
                    summary.bytes += upstream.counters.bytes
                    self._clean_tmp()
                rec.success(self.clock())
                summary.ok = True
                summary.upstream = upstream.public_name
                chosen = spec
                break
            if chosen is not None and self.trust.index is not None:
                summary.log = await self._witness_round(client, chosen)
        summary.floor_reset = self.trust.floor_reset
        self.trust.floor_reset = False
        summary.index_version = None if self.trust.index is None else self.trust.index.index.version
        summary.seconds = round(time.monotonic() - started, 4)
        if summary.ok:
            self.last_ok = summary.started
        self.last_summary = summary.to_json()
        try:
            self.store.save_health(self.records, summary, self.last_ok)
        except OSError as exc:  # a full disk must not turn a reported failure into a crash
            log.error("cannot record the sync's health: %s", exc.strerror or exc)
        return summary

    async def _witness_round(self, client: BoundedClient, chosen: str) -> dict[str, Any] | None:
        """The log check after a good sync; a bug in it is logged, never fatal to the sync."""
        others = [spec for spec in self.upstreams if spec != chosen]
        try:
            return await self.logsync.run(client, self.trust.root, chosen, others, self._served_index)
        except Exception as exc:  # the served index is already committed
            log.exception("the log witness round failed")
            return {"state": "internal-error", "message": f"{exc.__class__.__name__}: {exc}"[:300]}

    def _served_index(self) -> ServedIndex:
        """The served index as sets of bundle ids, for the log's leaf checks (disk reads: run in a thread).

        The index's sets are kept per index version (the commit leaves them),
        the bundle files' listing while ``bundles/`` is unchanged.
        """
        signed = self.trust.index
        assert signed is not None
        sets = self._index_sets
        if sets is None or not sets.describes(signed, keep_superseded=self.keep_superseded):
            shards: dict[str, Listings] = {}
            for ref in signed.index.shards:
                shard = self._load_shard(ref)
                if shard is None:
                    raise RejectedError(f"served shard {ref.sha256[:16]} is unreadable", code="local-log")
                shards[ref.sha256] = shard
            plan = self.trust.plan(signed.index, shards, keep_superseded=self.keep_superseded)
            sets = self._index_sets = IndexSets.of(signed, plan, keep_superseded=self.keep_superseded)
        return sets.served(self._bundle_files.ids())

    def _load_shard(self, ref: ShardRef) -> Listings | None:
        """A served shard's listings (cached in the trust state; None when the file is unreadable)."""
        shard = self.trust.shards.get(ref.sha256)
        if shard is None:
            try:
                shard = self.trust.recall_shard(ref, self.data.shard_path(ref.sha256).read_bytes())
            except (OSError, RejectedError):
                return None
            self.trust.shards[ref.sha256] = shard
        return shard

    async def _sync_from(self, up: Upstream, summary: SyncSummary, progress: Progress | None, now: dt.datetime) -> None:
        cfg = self.config
        raw = await up.fetch("index.json", max_bytes=cfg.max_index_bytes, timeout=cfg.document_timeout)
        probe_due = time.time() - self.store.last_root_probe() >= cfg.root_probe_interval
        trusted = self.trust.index
        if trusted is not None and raw == trusted.raw and not probe_due and not self.trust.reverify:
            _still_fresh(trusted, now)
            return
        # Worker processes for a big batch start now: their start-up overlaps the roots and shards.
        async with self._verifier(raw) as verifier:
            probed = await self._update_roots(up, index_root_version(raw), probe=probe_due or self.trust.chain is None)
            try:
                signed = self.trust.check_index(raw, now)
            except SignatureError:
                if probed:
                    raise
                # A newer root may explain it (a key rotated since we last looked).
                await self._update_roots(up, index_root_version(raw), probe=True)
                signed = self.trust.check_index(raw, now)
            if signed is None:  # identical to ours: only a pending re-check can make work
                assert trusted is not None
                if not self.trust.reverify:
                    self.store.save_trust(self.trust)
                    _still_fresh(trusted, now)
                    return
                signed = trusted
            work = _Work(signed, {})
            await self._fetch_shards(up, work)
            plan = self.trust.plan(signed.index, work.shards, keep_superseded=self.keep_superseded)
            await self._fetch_bundles(up, work, plan, progress, verifier)
        await asyncio.to_thread(self._commit, work, plan, summary)  # disk calls off the event loop

    def _verifier(self, raw: bytes) -> Verifier:
        """The verifier for the bundles ``raw`` (an index, not yet verified) will likely ask for."""
        cfg = self.config
        listed = index_bundle_count(raw)
        jobs = listed if self.trust.reverify else max(0, listed - len(self._bundle_files.ids()))
        return Verifier(jobs, workers=cfg.verify_workers, threshold=cfg.process_threshold)

    async def _update_roots(self, up: Upstream, hint: int, *, probe: bool) -> bool:
        """Walk roots up to ``hint`` (and root.json's version when probing). True if probed."""
        cfg = self.config
        target = hint
        if probe:
            newest = await up.fetch("root.json", max_bytes=cfg.max_root_bytes, timeout=cfg.document_timeout)
            target = max(target, root_version_hint(newest))
        current = self.trust.root_version
        if target - current > cfg.max_root_steps:
            raise RejectedError(f"upstream claims root version {target}, too far ahead", code="root-chain-too-long")
        start = current + 1 if self.trust.chain is not None else 1
        first_error: TamizdatError | None = None
        for version in range(start, target + 1):
            doc = await up.fetch(f"roots/{version}.json", max_bytes=cfg.max_root_bytes, timeout=cfg.document_timeout)
            bootstrapping = self.trust.chain is None
            try:
                root = self.trust.add_root(doc)
            except SignatureError as err:
                if bootstrapping and err.code == "root-not-pinned":
                    first_error = first_error or err  # the pinned key may first appear in a later version
                    continue
                raise
            self.store.save_root(root.version, doc)
            log.info("root version %d accepted", root.version)
        if self.trust.chain is None:
            raise first_error or SignatureError("no root signed by the pinned key", code="root-not-pinned", step="R2")
        if probe:
            self.store.save_trust(self.trust, last_root_probe=time.time())
        else:
            self.store.save_trust(self.trust)
        return probe

    async def _fetch_shards(self, up: Upstream, work: _Work) -> None:
        cfg = self.config
        sem = asyncio.Semaphore(cfg.concurrency)

        async def one(ref: ShardRef) -> None:
            held = self.trust.shards.get(ref.sha256)
            if held is not None:
                work.shards[ref.sha256] = held
                return
            local = self.data.shard_path(ref.sha256)
            with contextlib.suppress(OSError, RejectedError):
                if local.is_file() and local.stat().st_size == ref.size:
                    work.shards[ref.sha256] = self.trust.recall_shard(ref, local.read_bytes())
                    return
            async with sem:
                data = await up.fetch(f"index/{ref.sha256}.json", max_bytes=ref.size, timeout=cfg.document_timeout)
            work.shards[ref.sha256] = self.trust.check_shard(ref, data)
            staged = self.data.tmp / f"shard-{ref.sha256}.json"
            await asyncio.to_thread(staged.write_bytes, data)
            work.staged_shards[ref.sha256] = staged

        await _all(one(ref) for ref in work.signed.index.shards)

    def _committed_sha(self) -> dict[str, str]:
        """Bundle id -> file SHA-256 as the served index lists them (shards loaded on demand)."""
        index = self.trust.index
        if index is None:
            return {}
        out: dict[str, str] = {}
        for ref in index.index.shards:
            shard = self._load_shard(ref)
            if shard is None:
                continue  # unknown: the files it lists get re-checked
            out.update((e.id, e.sha256) for e in shard)
        return out

    async def _fetch_bundles(
        self, up: Upstream, work: _Work, plan: Plan, progress: Progress | None, verifier: Verifier
    ) -> None:
        committed = self._committed_sha()
        present = work.present = self._bundle_files.ids()
        todo: list[tuple[Listing, bool]] = []  # (entry, present on disk)
        for entry in plan.wanted.values():
            if entry.id in present and committed.get(entry.id) == entry.sha256 and not self.trust.reverify:
                continue
            todo.append((entry, entry.id in present))
        if not todo:
            return
        total = len(todo)
        done = 0
        placed = 0
        sem = asyncio.Semaphore(self.config.concurrency)  # transfers at once
        lanes = min(total, self.config.concurrency * 4)  # bundles fetched or being verified at once, at most
        root_bytes = self.trust.root_bytes
        # Plain strings, not pathlib: this runs once per bundle on the event loop.
        bundles_dir, tmp_dir, pid = str(self.data.bundles), str(self.data.tmp), os.getpid()

        async def lane(queue: Iterator[tuple[Listing, bool]], verifier: Verifier) -> None:
            for entry, on_disk in queue:  # the lanes share one iterator: each bundle is taken once
                await place(entry, on_disk, verifier)

        async def place(entry: Listing, on_disk: bool, verifier: Verifier) -> None:
            nonlocal done, placed
            final = f"{bundles_dir}/{entry.id}.zip"
            if on_disk and await verifier.check(final, root_bytes, entry.id, size=entry.size, sha256=entry.sha256):
                done += 1
                if progress:
                    progress(done, total, up.counters.bytes)
                return
            tmp = f"{tmp_dir}/bundle-{entry.id}.{pid}.part"  # never shared with a killed run's workers
            target = None if on_disk else final  # same id, new bytes: swapped in at commit
            try:
                if entry.size <= SMALL_BUNDLE:
                    # Fetched into memory, checked, then verified and written by the worker in one go.
                    async with sem:
                        body = await up.fetch(
                            f"bundles/{entry.id}.zip",
                            max_bytes=entry.size,
                            timeout=self.config.bundle_deadline(entry.size),
                        )
                    self.trust.check_transfer(entry, len(body), hashlib.sha256(body).hexdigest())
                    await verifier.write(body, tmp, target, root_bytes, entry.id)
                else:
                    async with sem:
                        size, sha = await up.fetch_to_file(
                            f"bundles/{entry.id}.zip",
                            Path(tmp),
                            max_bytes=entry.size,
                            timeout=self.config.bundle_deadline(entry.size),
                        )
                    self.trust.check_transfer(entry, size, sha)
                    await verifier.check(tmp, root_bytes, entry.id)
                    if target is not None:
                        os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if on_disk:
                work.replacements[entry.id] = Path(tmp)
            else:
                placed += 1
                _test_pause("bundle", placed)
            work.new += 1
            done += 1
            if progress:
                progress(done, total, up.counters.bytes)

        if progress:
            progress(0, total, up.counters.bytes)
        queue = iter(todo)
        if verifier.jobs < verifier.threshold <= total:  # more work than the index hinted: workers now
            cfg = self.config
            async with Verifier(total, workers=cfg.verify_workers, threshold=cfg.process_threshold) as late:
                await _all(lane(queue, late) for _ in range(lanes))
        else:
            await _all(lane(queue, verifier) for _ in range(lanes))

    # -- commit ----------------------------------------------------------
    def _commit(self, work: _Work, plan: Plan, summary: SyncSummary) -> None:
        data = self.data
        previous = self.trust.index
        for sha, staged in work.staged_shards.items():
            os.replace(staged, data.shard_path(sha))
        _test_pause("shards")
        assert self.trust.chain is not None
        for root, doc in zip(self.trust.chain.roots, self.trust.chain.envelopes, strict=True):
            target = data.roots / f"{root.version}.json"
            if not target.exists():
                self._write_public(target, doc)
        newest_root = self.trust.chain.envelopes[-1]
        root_json = data.public / "root.json"
        if not root_json.exists() or root_json.read_bytes() != newest_root:
            self._write_public(root_json, newest_root)
        for bundle_id, staged in work.replacements.items():
            os.replace(staged, data.bundle_path(bundle_id))
        sync_filesystem(data.root)  # everything the new index points to is durable
        _test_pause("synced")
        self._write_public(data.public / "index.json", work.signed.raw, durable=True)
        _test_pause("index")
        self.trust.commit(work.signed, work.shards)
        self.store.save_trust(self.trust)
        self._index_sets = IndexSets.of(work.signed, plan, keep_superseded=self.keep_superseded)
        # Only now that the new index is served: drop what it no longer asks for.
        for bundle_id in sorted(work.present):  # what this sync placed is wanted; a leftover goes next time
            if bundle_id in plan.wanted:
                continue
            with contextlib.suppress(FileNotFoundError):
                data.bundle_path(bundle_id).unlink()
            if bundle_id in plan.retracted:
                summary.retracted += 1
            else:
                summary.pruned += 1
        keep = {ref.sha256 for ref in work.signed.index.shards}
        if previous is not None:
            keep |= {ref.sha256 for ref in previous.index.shards}  # a downstream sync may be mid-way
        for name in os.listdir(data.shards):
            m = _HEX_JSON.match(name)
            if m and m.group(1) not in keep:
                with contextlib.suppress(FileNotFoundError):
                    (data.shards / name).unlink()
        summary.changed = True
        summary.new += work.new
        log.info(
            "index version %d served: %d new, %d retracted, %d pruned",
            work.signed.index.version,
            work.new,
            summary.retracted,
            summary.pruned,
        )

    def _write_public(self, target: Path, data: bytes, *, durable: bool = False) -> None:
        staged = self.data.tmp / f"public-{target.name}"
        with staged.open("wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(staged, 0o644)
        os.replace(staged, target)
        if durable:
            fsync_dir(target.parent)

    # -- housekeeping ----------------------------------------------------
    def _clean_tmp(self) -> None:
        """Remove work files a killed sync left behind (tmp is never served)."""
        for entry in os.scandir(self.data.tmp):
            if entry.is_file(follow_symlinks=False) and entry.name.startswith(("bundle-", "shard-", "public-")):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        for entry in os.scandir(self.store.dir):
            if entry.name.startswith(".tmp-"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _refresh_trust(self) -> None:
        """Another process (cron, `mirror import`) may have synced: reload if the state moved."""
        path = self.store.dir / "index.json"
        on_disk = path.read_bytes() if path.exists() else None
        ours = None if self.trust.index is None else self.trust.index.raw
        roots = len(list((self.store.dir / "roots").glob("*.json")))
        held = 0 if self.trust.chain is None else len(self.trust.chain.roots)
        if on_disk != ours or roots != held:
            self.trust = self.store.load_trust(self.root_keyid)


def _still_fresh(index: SignedIndex, now: dt.datetime) -> None:
    """Being offered the index we already serve is a success only while it has not expired."""
    if index.index.expires <= now:
        raise ExpiredError("the upstream offers only the expired index we hold", code="expired", step="I5")


async def _all(coros: Iterable[object]) -> None:
    """Run coroutines together; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as tg:
            for coro in coros:
                tg.create_task(coro)  # type: ignore[arg-type]
    except BaseExceptionGroup as group:
        raise _first(group) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                flat.append(exc)

    walk(group)
    for kind in (RejectedError, TamizdatError):
        for exc in flat:
            if isinstance(exc, kind):
                return exc
    return flat[0]
