"""What the reader pages may show: the signed index and the bundles that verify.

Everything comes from ``DATA/public`` (the same tree on origin and mirrors):

- ``root.json`` is the trust anchor (self-signed to its threshold; on a
  mirror it was verified from the pinned root key id before it was switched
  in, on the origin it is the publisher's own);
- ``index.json`` is verified against it (steps I1-I4), its shards against the
  index (I7-I8); an expired index is still used, marked stale;
- a bundle is shown only after :func:`verify_bundle` accepted it with
  ``trusted_root`` = the bytes of ``root.json``. Results are cached by (path,
  inode, size, mtime, root) and computed in a worker thread. Every later read
  (an article's data, an image, the download) goes through a file handle
  whose inode, size and mtime equal the verified ones, and entry bytes are
  checked against the manifest's SHA-256 again before use.

A :class:`Snapshot` is immutable and swapped whole: a request keeps the one it
started with, and while a changed index is being verified (in a thread) the
other requests go on with the previous snapshot instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import stat
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, TypeVar

from tamizdat.bundles import zipstrict
from tamizdat.bundles.index import BundleEntry, Index, check_shard, verify_index
from tamizdat.bundles.manifest import SHA_RE
from tamizdat.bundles.verify import VerifiedBundle, verify_bundle
from tamizdat.errors import RejectedError, TamizdatError
from tamizdat.keys import strictjson
from tamizdat.keys.dsse import is_keyid
from tamizdat.keys.root import Root, parse_root_envelope, verify_root_chain, verify_self_signed

from ..datadir import DataDir

T = TypeVar("T")
MAX_ROOT_FILE = 1024 * 1024
MAX_INDEX_FILE = 1024 * 1024
MAX_SHARD_FILE = 4 * 1024 * 1024
MAX_JSON_ENTRY = 8 * 1024 * 1024
VERIFY_CACHE = 4096
ARTICLE_CACHE = 256
MEDIA_CACHE_BYTES = 32 * 1024 * 1024
MEDIA_CACHE_ONE = 2 * 1024 * 1024

FileKey = tuple[str, int, int, int]
SnapKey = tuple[FileKey | None, FileKey | None]


class Unavailable(TamizdatError):
    """The thing asked for cannot be shown (not listed, withdrawn, missing, or not verifying)."""

    code = "unavailable"


def _stat_key(path: Path) -> FileKey | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _read_capped(path: Path, cap: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise RejectedError(f"{path.name} is too large", code="too-large")
    return data


@dataclass(frozen=True)
class Snapshot:
    """One consistent, immutable view of root.json + index.json + shards, and what derives from them."""

    root: Root | None = None
    root_bytes: bytes | None = None
    root_sha: str = ""
    keyid: str | None = None  # the publisher's root key id readers pin
    index: Index | None = None
    entries: tuple[BundleEntry, ...] = ()
    by_id: Mapping[str, BundleEntry] = field(default_factory=lambda: MappingProxyType({}))
    superseded: frozenset[str] = frozenset()
    newest: tuple[BundleEntry, ...] = ()  # listed, not withdrawn, not superseded; newest first
    # superseded id -> its newest live successor
    newer: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    problem: str | None = None  # why there is nothing (or less) to show

    def stale(self, now: dt.datetime) -> bool:
        return self.index is not None and self.index.expires <= now

    def newest_first(self) -> list[BundleEntry]:
        """Listed bundles, newest first; withdrawn and superseded ones left out."""
        return list(self.newest)


def _derived(entries: tuple[BundleEntry, ...]) -> dict[str, Any]:
    """The lookups every request would otherwise rebuild, computed once per snapshot."""
    superseded = frozenset(s for e in entries if e.retracted is None for s in e.supersedes if s != e.id)
    by_age = sorted(entries, key=lambda e: (e.created, e.id), reverse=True)
    newer: dict[str, str] = {}
    for e in by_age:
        if e.retracted is None:
            for old in e.supersedes:
                if old in superseded:
                    newer.setdefault(old, e.id)
    return {
        "by_id": MappingProxyType({e.id: e for e in entries}),
        "superseded": superseded,
        "newest": tuple(e for e in by_age if e.retracted is None and e.id not in superseded),
        "newer": MappingProxyType(newer),
    }


def _publisher_keyid(public: Path, root: Root, root_bytes: bytes, pinned: str | None) -> str | None:
    """The first root key id of version 1, if roots/1..N chain to this root.json."""
    if pinned and is_keyid(pinned):
        return pinned
    docs = []
    for v in range(1, root.version + 1):
        try:
            docs.append(_read_capped(public / "roots" / f"{v}.json", MAX_ROOT_FILE))
        except (OSError, RejectedError):
            return None
    try:
        _, first = parse_root_envelope(docs[0])
        candidate = sorted(first.root_keys)[0]
        chain = verify_root_chain(docs, pinned_keyid=candidate)
    except TamizdatError:
        return None
    if chain.envelopes[-1] != root_bytes:
        return None
    return candidate


def load_snapshot(public: Path, pinned: str | None = None) -> Snapshot:
    """Read and verify root.json, index.json and the shards (blocking: run in a thread)."""
    try:
        root_bytes = _read_capped(public / "root.json", MAX_ROOT_FILE)
        env, root = parse_root_envelope(root_bytes)
        verify_self_signed(env, root)
    except (OSError, TamizdatError) as exc:
        return Snapshot(problem=f"root: {getattr(exc, 'code', 'io')}")
    keyid = _publisher_keyid(public, root, root_bytes, pinned)
    base = Snapshot(root=root, root_bytes=root_bytes, root_sha=hashlib.sha256(root_bytes).hexdigest(), keyid=keyid)
    try:
        signed = verify_index(_read_capped(public / "index.json", MAX_INDEX_FILE), root)
    except (OSError, TamizdatError) as exc:
        return replace(base, problem=f"index: {getattr(exc, 'code', 'io')}")
    entries: list[BundleEntry] = []
    problem = None
    for ref in signed.index.shards:
        try:
            shard = check_shard(ref, _read_capped(public / "index" / f"{ref.sha256}.json", MAX_SHARD_FILE))
        except (OSError, TamizdatError) as exc:
            problem = f"shard: {getattr(exc, 'code', 'io')}"
            continue
        entries.extend(shard.bundles)
    return replace(base, index=signed.index, entries=tuple(entries), problem=problem, **_derived(tuple(entries)))


@dataclass(frozen=True)
class Verdict:
    bundle: VerifiedBundle | None
    error: RejectedError | None
    cacheable: bool = True


class ReaderStore:
    """Verified state of ``DATA/public`` for the reader pages (one per app)."""

    def __init__(self, datadir: DataDir, *, pinned_keyid: str | None = None, workers: int = 2):
        self.public = datadir.public
        self.datadir = datadir
        self.pinned = pinned_keyid
        self._snapshot = Snapshot(problem="not loaded")
        self._snap_key: SnapKey | None = None
        self._reload: asyncio.Future[Snapshot] | None = None
        self._verdicts: OrderedDict[tuple[FileKey, str], Verdict] = OrderedDict()
        self._inflight: dict[tuple[FileKey, str], asyncio.Future[Verdict]] = {}
        self._articles: OrderedDict[tuple[FileKey, str, str], Any] = OrderedDict()
        self._media: OrderedDict[tuple[FileKey, str, str], bytes] = OrderedDict()
        self._media_total = 0
        self._sem = asyncio.Semaphore(workers)

    # -- index -------------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        """The current snapshot; reloaded (in a thread) when root.json or index.json changed.

        The request that notices the change waits for the new snapshot (so one
        client's requests never go back in time); requests arriving while it
        loads get the previous one at once. Only the very first load makes
        everyone wait.
        """
        key = (_stat_key(self.public / "root.json"), _stat_key(self.public / "index.json"))
        if key == self._snap_key:
            return self._snapshot
        if self._reload is not None:
            if self._snap_key is not None:
                return self._snapshot
            return await asyncio.shield(self._reload)
        self._reload = asyncio.ensure_future(self._load(key))
        return await asyncio.shield(self._reload)

    async def _load(self, key: SnapKey) -> Snapshot:
        try:
            snap = await asyncio.to_thread(load_snapshot, self.public, self.pinned)
            self._snapshot, self._snap_key = snap, key  # one swap: readers see the old or the new
            return snap
        finally:
            self._reload = None

    # -- bundles -----------------------------------------------------------------------------
    def bundle_path(self, bundle_id: str) -> Path:
        if not SHA_RE.match(bundle_id):
            raise Unavailable("not a bundle id", code="not-found")
        return self.public / "bundles" / f"{bundle_id}.zip"

    def listed(self, snap: Snapshot, bundle_id: str) -> BundleEntry:
        entry = snap.by_id.get(bundle_id)
        if entry is None:
            raise Unavailable("this file is not listed here", code="not-found")
        if entry.retracted is not None:
            raise Unavailable("the publisher withdrew this file", code="withdrawn")
        return entry

    async def _verdict(self, key: FileKey, snap: Snapshot, bundle_id: str) -> Verdict:
        ckey = (key, snap.root_sha)
        hit = self._verdicts.get(ckey)
        if hit is not None:
            self._verdicts.move_to_end(ckey)
            return hit
        task = self._inflight.get(ckey)
        if task is None:
            assert snap.root_bytes is not None
            task = asyncio.ensure_future(self._run_verify(ckey, snap.root_bytes, bundle_id))
            self._inflight[ckey] = task
        # A reader who goes away does not cancel a verification others may wait for.
        return await asyncio.shield(task)

    async def _run_verify(self, ckey: tuple[FileKey, str], root_bytes: bytes, bundle_id: str) -> Verdict:
        try:
            async with self._sem:
                verdict = await asyncio.to_thread(_verify_one, ckey[0], root_bytes, bundle_id)
            if verdict.cacheable:
                self._verdicts[ckey] = verdict
                while len(self._verdicts) > VERIFY_CACHE:
                    self._verdicts.popitem(last=False)
            return verdict
        finally:
            self._inflight.pop(ckey, None)

    async def open_verified(self, snap: Snapshot, bundle_id: str) -> tuple[BinaryIO, FileKey, VerifiedBundle]:
        """Open the listed bundle and return (file, key, verified bundle); the caller closes the file.

        Raises :class:`Unavailable` if it is not listed, withdrawn, missing or does not verify.
        """
        self.listed(snap, bundle_id)
        if snap.root_bytes is None:
            raise Unavailable("no trusted root here", code="no-root")
        path = self.bundle_path(bundle_id)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            raise Unavailable("this mirror does not hold the file yet", code="missing") from None
        fh = os.fdopen(fd, "rb")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Unavailable("this mirror does not hold the file", code="missing")
            key: FileKey = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
            verdict = await self._verdict(key, snap, bundle_id)
            if verdict.bundle is None:
                assert verdict.error is not None
                raise Unavailable(
                    f"the file failed verification: {verdict.error.code}", code="rejected", step=verdict.error.step
                )
            return fh, key, verdict.bundle
        except BaseException:
            fh.close()
            raise

    async def verified(self, snap: Snapshot, bundle_id: str) -> VerifiedBundle:
        fh, _, vb = await self.open_verified(snap, bundle_id)
        fh.close()
        return vb

    async def verified_many(
        self, snap: Snapshot, bundle_ids: Sequence[str], batch: int = 16
    ) -> list[VerifiedBundle | None]:
        """The verified bundle, or None where unavailable, for each id.

        Known verdicts are answered from one ``lstat`` each, without a yield to
        the event loop (a busy loop makes every yield cost a full round of other
        requests); only files never verified are opened, ``batch`` at a time.
        """
        out: list[VerifiedBundle | None] = []
        unknown: list[int] = []
        for bundle_id in bundle_ids:
            entry = snap.by_id.get(bundle_id)
            key = _stat_key(self.bundle_path(bundle_id)) if entry and entry.retracted is None else None
            hit = self._verdicts.get((key, snap.root_sha)) if key and snap.root_bytes is not None else None
            if hit is None and key is not None and snap.root_bytes is not None:
                unknown.append(len(out))
            out.append(hit.bundle if hit is not None else None)
        for start in range(0, len(unknown), batch):
            chunk = unknown[start : start + batch]
            found = await asyncio.gather(*(self.try_verified(snap, bundle_ids[i]) for i in chunk))
            for i, vb in zip(chunk, found, strict=True):
                out[i] = vb
        return out

    async def try_verified(self, snap: Snapshot, bundle_id: str) -> VerifiedBundle | None:
        try:
            return await self.verified(snap, bundle_id)
        except Unavailable:
            return None

    async def _with_entry(self, snap: Snapshot, bundle_id: str, name: str, cap: int) -> tuple[FileKey, bytes]:
        fh, key, vb = await self.open_verified(snap, bundle_id)
        try:
            return key, await asyncio.to_thread(_read_entry, fh, vb, name, cap)
        finally:
            fh.close()

    async def article_data(self, snap: Snapshot, bundle_id: str, path: str) -> Any:
        """The parsed ``articles/<n>.json`` of a verified bundle (cached by file identity)."""
        self.listed(snap, bundle_id)
        vb_key = (await self._peek_key(bundle_id), snap.root_sha, path)
        if vb_key[0] is not None and vb_key in self._articles:
            self._articles.move_to_end(vb_key)  # type: ignore[arg-type]
            return self._articles[vb_key]  # type: ignore[index]
        key, data = await self._with_entry(snap, bundle_id, path, MAX_JSON_ENTRY)
        doc = await asyncio.to_thread(strictjson.loads, data)
        self._articles[(key, snap.root_sha, path)] = doc
        while len(self._articles) > ARTICLE_CACHE:
            self._articles.popitem(last=False)
        return doc

    async def media(self, snap: Snapshot, bundle_id: str, name: str) -> tuple[bytes, str]:
        """An image's verified bytes and media type."""
        vb = await self.verified(snap, bundle_id)
        listed = {f.path: f for f in vb.manifest.files}
        f = listed.get(name)
        if f is None or not name.startswith("media/") or not f.type.startswith("image/"):
            raise Unavailable("no such image in this file", code="not-found")
        ckey = (await self._peek_key(bundle_id), snap.root_sha, name)
        hit = self._media.get(ckey) if ckey[0] is not None else None  # type: ignore[arg-type]
        if hit is not None:
            return hit, f.type
        key, data = await self._with_entry(snap, bundle_id, name, f.size)
        if len(data) <= MEDIA_CACHE_ONE:
            self._media[(key, snap.root_sha, name)] = data
            self._media_total += len(data)
            while self._media_total > MEDIA_CACHE_BYTES:
                _, old = self._media.popitem(last=False)
                self._media_total -= len(old)
        return data, f.type

    async def _peek_key(self, bundle_id: str) -> FileKey | None:
        return _stat_key(self.bundle_path(bundle_id))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)


def _verify_one(key: FileKey, root_bytes: bytes, bundle_id: str) -> Verdict:
    """Verify the file at ``key[0]`` if it still is the file ``key`` names."""
    try:
        fd = os.open(key[0], os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return Verdict(None, RejectedError("the file went away", code="changed"), cacheable=False)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if (key[0], st.st_ino, st.st_size, st.st_mtime_ns) != key:
            return Verdict(None, RejectedError("the file changed", code="changed"), cacheable=False)
        try:
            vb = verify_bundle(fh, trusted_root=root_bytes)
        except RejectedError as exc:
            return Verdict(None, exc)
    if vb.bundle_id != bundle_id:
        return Verdict(None, RejectedError("the file holds another bundle than its name says", code="wrong-id"))
    return Verdict(vb, None)


def _read_entry(fh: BinaryIO, vb: VerifiedBundle, name: str, cap: int) -> bytes:
    listed = {f.path: f for f in vb.manifest.files}
    entries = {e.name: e for e in vb.entries}
    f, e = listed.get(name), entries.get(name)
    if f is None or e is None or e.size > cap:
        raise Unavailable(f"{name} is not in this file", code="not-found")
    data = zipstrict.read_all(fh, e, step=22)
    if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
        raise Unavailable(f"{name} changed since it was verified", code="rejected")
    return data
