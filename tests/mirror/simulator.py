"""An in-memory upstream that tests mutate and re-sign (after python-tuf's RepositorySimulator).

It holds fixed-seed keys (root keys, a bundle key and an index key, each a
:class:`SigningKey`), builds real bundles with ``build_bundle``, keeps a
:class:`ShardedList`, signs index versions, and serves its tree ``files``
(relative path -> bytes) over a real aiohttp server on 127.0.0.1 (in a
background thread, so sync tests and subprocesses can use it alike) or writes
it as a directory. Tests attack by mutating ``files`` (tampered bytes, an old
index) or by putting a hostile behaviour in ``handlers`` (endless bodies,
trickling, lying lengths, gzip, redirects).

With ``log=True`` it also keeps the publisher's transparency log as an origin
does (docs/transparency.md): a log key (purpose ``log``) and a ``tlog`` section
in the root, one round of leaves per :meth:`Simulator.publish` (new bundles,
new retractions, the index leaf last), tiles and entry bundles under ``tlog/``
and a checkpoint signed by the log key. Log attacks: ``publish(log_skip=...,
log_extra=..., log_after=...)``, :meth:`Simulator.fork_checkpoint`, old
checkpoints put back in ``files``, tampered ``tlog/tile/...`` bytes, and
witness cosignatures at chosen times (:meth:`Simulator.cosign`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput
from tamizdat.bundles.index import (
    ArticleInfo,
    BundleEntry,
    Index,
    Retraction,
    ShardedList,
    sign_index,
)
from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind, bundle_leaf, index_leaf, log_origin, retraction_leaf
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.keys import dsse, timefmt
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import KeyEntry, LogSettings, Revocation, Root, RootChain, verify_root_chain

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # key windows start here
KEY_END = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def key(seed: int) -> SigningKey:
    return SigningKey.from_seed(bytes([seed % 256]) * 31 + bytes([seed // 256]))


@dataclass
class Simulator:
    """A publisher and its static tree, in memory."""

    workdir: Path
    publisher: str = "Simulated News"
    seed: int = 1
    shard_capacity: int = 4
    root_keys: list[SigningKey] = field(default_factory=list)
    bundle_key: SigningKey | None = None
    index_key: SigningKey | None = None
    roots: list[bytes] = field(default_factory=list)
    root_objs: list[Root] = field(default_factory=list)
    bundles: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    handlers: dict[str, Handler] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    index_version: int = 0
    articles: int = 0
    bundle_delay: float = 0.0  # seconds before each bundle response (to widen windows in crash tests)
    log: bool = False  # keep a transparency log
    log_policy: str = "quorum none\n"
    log_max_age: int = 7 * 24 * 3600

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.list = ShardedList(capacity=self.shard_capacity)
        base = self.seed * 10
        self.root_keys = [key(base)]
        self.bundle_key = key(base + 1)
        self.index_key = key(base + 2)
        self.log_key = key(base + 3)
        self.origin = log_origin(sorted(k.keyid for k in self.root_keys)[0])
        self.tree = TreeBuilder()
        self.logged: set[str] = set()
        self.logged_retractions: set[str] = set()
        signing = {
            self.bundle_key.keyid: _entry(self.bundle_key, ("bundle",)),
            self.index_key.keyid: _entry(self.index_key, ("index",)),
        }
        if self.log:
            signing[self.log_key.keyid] = _entry(self.log_key, ("log",))
        self._new_root(signing=signing, revoked={})

    # -- roots -----------------------------------------------------------
    @property
    def root_keyid(self) -> str:
        return sorted(self.root_objs[0].root_keys)[0]

    @property
    def root(self) -> Root:
        return self.root_objs[-1]

    def chain(self) -> RootChain:
        return verify_root_chain(self.roots, pinned_keyid=self.root_keyid)

    def _new_root(
        self,
        *,
        signing: dict[str, KeyEntry],
        revoked: dict[str, Revocation],
        new_root_keys: list[SigningKey] | None = None,
    ) -> bytes:
        old_keys = self.root_keys
        keys = new_root_keys or old_keys
        version = len(self.roots) + 1
        root = Root(
            version=version,
            publisher=self.publisher,
            created=T0 + dt.timedelta(days=version),
            expires=KEY_END,
            root_keys={k.keyid: k.public for k in keys},
            threshold=1,
            signing_keys=signing,
            revoked=revoked,
            tlog=LogSettings(self.origin, self.log_policy, self.log_max_age) if self.log else None,
        )
        signers = {k.keyid: k for k in [*old_keys, *keys]}
        env = dsse.sign(dsse.ROOT_TYPE, root.to_payload(), list(signers.values()))
        data = env.to_bytes()
        self.roots.append(data)
        self.root_objs.append(root)
        self.root_keys = keys
        return data

    def rotate(
        self,
        *,
        revoke: Sequence[str] = (),
        add: Sequence[tuple[SigningKey, tuple[str, ...]]] = (),
        new_root_keys: list[SigningKey] | None = None,
    ) -> bytes:
        """Root version N+1: add signing keys, revoke some (a new root key set optional)."""
        signing = dict(self.root.signing_keys)
        for k, purposes in add:
            signing[k.keyid] = _entry(k, purposes)
        revoked = dict(self.root.revoked)
        for kid in revoke:
            revoked[kid] = Revocation(kid, timefmt.now(), "leaked")
        return self._new_root(signing=signing, revoked=revoked, new_root_keys=new_root_keys)

    def set_policy(self, policy: str, *, max_age: int | None = None) -> bytes:
        """Root version N+1 with this witness policy (tlog-policy text without log lines)."""
        self.log_policy = policy
        if max_age is not None:
            self.log_max_age = max_age
        return self.rotate()

    # -- log -------------------------------------------------------------
    def _log_round(
        self, raw_index: bytes, *, skip: Sequence[str], extra: Sequence[Leaf], after: Sequence[Leaf]
    ) -> None:
        """Append one publishing round's leaves, write tiles and sign the checkpoint (as the origin does)."""
        leaves: list[Leaf] = []
        for e in self.list.entries():
            if e.id not in self.logged and e.id not in skip:
                leaves.append(bundle_leaf(e.id))
                self.logged.add(e.id)
        for e in self.list.entries():
            fresh = e.id in self.logged and e.id not in self.logged_retractions and e.id not in skip
            if e.retracted is not None and fresh:
                leaves.append(retraction_leaf(e.id))
                self.logged_retractions.add(e.id)
        for leaf in extra:
            leaves.append(leaf)
            if leaf.kind is LeafKind.BUNDLE:
                self.logged.add(leaf.id_hex)
            elif leaf.kind is LeafKind.RETRACTION:
                self.logged_retractions.add(leaf.id_hex)
        payload = dsse.Envelope.from_bytes(raw_index, expected_type=dsse.INDEX_TYPE).payload
        leaves.append(index_leaf(payload))
        leaves.extend(after)
        self.tree.extend(leaf.to_bytes() for leaf in leaves)
        for rel, data in self.tree.flush().files():
            self.files[f"tlog/{rel}"] = data
        self.files["tlog/checkpoint"] = self.sign_checkpoint(self.tree.size, self.tree.root())

    def sign_checkpoint(self, size: int, root: bytes) -> bytes:
        """A checkpoint note signed by the log key (any size and root: forks are this easy with the key)."""
        return sign_checkpoint(Checkpoint(self.origin, size, root), [Ed25519Signer(self.origin, self.log_key)])

    def fork_checkpoint(self) -> bytes:
        """A properly signed checkpoint of the current size with another root (a split view)."""
        return self.sign_checkpoint(self.tree.size, hashlib.sha256(b"fork" + self.tree.root()).digest())

    def cosign(self, signer: CosignatureSigner, timestamp: int) -> None:
        """Add a witness cosignature (at ``timestamp``) to the served checkpoint."""
        note = Note.parse(self.files["tlog/checkpoint"])
        self.files["tlog/checkpoint"] = note.with_signatures([signer.cosign(note.text, timestamp)]).to_bytes()

    # -- bundles ---------------------------------------------------------
    def build(
        self,
        *,
        title: str | None = None,
        supersedes: Sequence[str] = (),
        signer: SigningKey | None = None,
        body: str | None = None,
    ) -> BundleEntry:
        """Build a real one-article bundle (not yet listed); returns its index entry."""
        self.articles += 1
        n = self.articles
        art = ArticleInput(
            id=f"story-{self.seed}-{n}",
            lang="en" if n % 3 else "ru",
            title=title or f"Story number {n}",
            body=body or f"Paragraph {n}. " + "The council met and said nothing new. " * 20,
            published=T0 + dt.timedelta(days=30, minutes=n),
        )
        out = self.workdir / f"build-{n}.zip"
        built = build_bundle(
            BundleInput(articles=(art,), supersedes=tuple(supersedes)),
            signer=signer or self._bundle_key(),
            chain=self.chain(),
            out=out,
            durable=False,
        )
        self.bundles[built.bundle_id] = out.read_bytes()
        out.unlink()
        return BundleEntry(
            id=built.bundle_id,
            sha256=built.sha256,
            size=built.size,
            created=built.manifest.created,
            kind=built.manifest.kind,
            articles=(ArticleInfo(art.id, art.version, art.lang, art.title),),
            supersedes=tuple(supersedes),
        )

    def _bundle_key(self) -> SigningKey:
        assert self.bundle_key is not None
        return self.bundle_key

    def add(self, count: int = 1, *, supersedes: Sequence[str] = (), signer: SigningKey | None = None) -> list[str]:
        """Build and list ``count`` bundles (published with the next index)."""
        ids = []
        for _ in range(count):
            entry = self.build(supersedes=supersedes, signer=signer)
            self.list.append(entry)
            ids.append(entry.id)
        return ids

    def retract(self, bundle_id: str, reason: str = "legal request") -> None:
        self.list.update(bundle_id, retracted=Retraction(timefmt.now(), reason))

    def supersede(self, old_id: str) -> str:
        """A new version of ``old_id``'s article that supersedes it."""
        return self.add(1, supersedes=(old_id,))[0]

    # -- index -----------------------------------------------------------
    def sign(
        self,
        *,
        version: int | None = None,
        created: dt.datetime | None = None,
        expires: dt.datetime | None = None,
        signer: SigningKey | None = None,
        root_version: int | None = None,
    ) -> tuple[bytes, dict[str, bytes]]:
        """Sign an index over the current list (not published); returns it and its shards."""
        rendered = self.list.render()
        moment = created or timefmt.now()
        index = Index(
            version=version or self.index_version + 1,
            created=moment,
            expires=expires or moment + dt.timedelta(days=1),
            root_version=root_version or self.root.version,
            mirrors=(),
            shards=tuple(ref for ref, _ in rendered),
        )
        assert self.index_key is not None
        raw = sign_index(index, signer or self.index_key)
        return raw, {f"index/{ref.sha256}.json": data for ref, data in rendered}

    def publish(
        self,
        *,
        version: int | None = None,
        created: dt.datetime | None = None,
        expires: dt.datetime | None = None,
        signer: SigningKey | None = None,
        log_skip: Sequence[str] = (),
        log_extra: Sequence[Leaf] = (),
        log_after: Sequence[Leaf] = (),
    ) -> bytes:
        """Sign the next index version and serve the whole tree as an origin would.

        With a log: one round of leaves, except the bundles (and retractions) in
        ``log_skip``; ``log_extra`` goes before the index leaf, ``log_after`` after it.
        """
        raw, shards = self.sign(version=version, created=created, expires=expires, signer=signer)
        self.index_version = max(self.index_version, index_version_of(raw))
        self.files.update(shards)
        self.files["root.json"] = self.roots[-1]
        for v, doc in enumerate(self.roots, 1):
            self.files[f"roots/{v}.json"] = doc
        retracted = {e.id for e in self.list.entries() if e.retracted is not None}
        for bid, data in self.bundles.items():
            path = f"bundles/{bid}.zip"
            if bid in retracted:
                self.files.pop(path, None)
            elif bid in {e.id for e in self.list.entries()}:
                self.files[path] = data
        self.files["index.json"] = raw
        if self.log:
            self._log_round(raw, skip=log_skip, extra=log_extra, after=log_after)
        return raw

    def bundle_path(self, bundle_id: str) -> str:
        return f"bundles/{bundle_id}.zip"

    def listed_ids(self) -> list[str]:
        return [e.id for e in self.list.entries()]

    # -- serving ---------------------------------------------------------
    def write_dir(self, path: Path) -> Path:
        """The tree as plain files (a USB stick); index.json last."""
        for rel, data in sorted(self.files.items(), key=lambda kv: kv[0] == "index.json"):
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["tail"]
        self.requests.append(rel)
        hostile = self.handlers.get(rel)
        if hostile is not None:
            return await hostile(request)
        data = self.files.get(rel)
        if data is None:
            raise web.HTTPNotFound()
        if self.bundle_delay and rel.startswith("bundles/"):
            await asyncio.sleep(self.bundle_delay)
        return web.Response(body=data, content_type="application/octet-stream")

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve ``files`` on 127.0.0.1 from a background thread; yields the base URL."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        holder: dict[str, object] = {}

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            holder["runner"] = runner
            holder["port"] = runner.addresses[0][1]

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=main, name="simulator", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("simulator did not start")
        try:
            yield f"http://127.0.0.1:{holder['port']}/"
        finally:
            runner = holder["runner"]
            assert isinstance(runner, web.AppRunner)
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


def index_version_of(raw: bytes) -> int:
    env = dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE)
    return Index.from_payload(env.payload).version


def _entry(k: SigningKey, purposes: tuple[str, ...]) -> KeyEntry:
    return KeyEntry(k.public, tuple(sorted(purposes)), T0, KEY_END)


def with_entry(entry: BundleEntry, **changes: object) -> BundleEntry:
    return replace(entry, **changes)  # type: ignore[arg-type]


# -- hostile behaviours (values for Simulator.handlers) -----------------------------------------


def endless(chunk: int = 64 * 1024, limit: int = 1 << 30) -> Handler:
    """A body that never ends (stops at ``limit`` bytes so the test stays bounded)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        sent = 0
        block = b"x" * chunk
        while sent < limit:
            await resp.write(block)
            sent += chunk
        return resp

    return handler


def trickle(data: bytes, delay: float = 0.1) -> Handler:
    """One byte every ``delay`` seconds."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = len(data)
        await resp.prepare(request)
        for i in range(len(data)):
            await resp.write(data[i : i + 1])
            await asyncio.sleep(delay)
        return resp

    return handler


def gzip_bomb(size: int = 64 * 1024 * 1024) -> Handler:
    """A small gzip body that inflates to ``size`` zero bytes."""
    body = gzip.compress(b"\0" * size, compresslevel=9)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    return handler


def redirect(location: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handler


def lying_length(data: bytes, claimed: int) -> Handler:
    """Raw bytes on the wire: a Content-Length of ``claimed`` with ``data`` as the body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {claimed}\r\n\r\n"
        transport.write(head.encode() + data)
        await asyncio.sleep(0.05)
        transport.close()
        return web.Response()

    return handler
