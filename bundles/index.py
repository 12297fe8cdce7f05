"""The signed index and its content-addressed shards (docs/format.md, "Index").

``index.json`` is a small DSSE envelope (payload type
``application/vnd.tamizdat.index+json``) listing shards by SHA-256 and size;
each shard ``index/<sha256>.json`` lists up to 1,024 bundles in creation order.
A change to one bundle (retraction, re-signing) rewrites only its shard, so a
sync costs what is new, not the size of the archive. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from tamizdat.errors import FormatError, SignatureError
from tamizdat.keys import dsse, strictjson, timefmt
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import Root
from tamizdat.keys.schema import Reader

from .manifest import ID_RE, KINDS, LANG_RE, SHA_RE

INDEX_FORMAT = 1
SHARD_FORMAT = 1
SHARD_CAPACITY = 1024
MAX_INDEX_BYTES = 1024 * 1024
MAX_SHARD_BYTES = 4 * 1024 * 1024
MAX_SHARDS = 10_000
MAX_MIRRORS = 64
CLOCK_SKEW = dt.timedelta(minutes=5)


def _fail(message: str, step: str, code: str = "bad-index") -> FormatError:
    return FormatError(message, code=code, step=step)


@dataclass(frozen=True)
class ArticleInfo:
    id: str
    version: int
    lang: str
    title: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "lang": self.lang, "title": self.title, "version": self.version}


@dataclass(frozen=True)
class Retraction:
    at: dt.datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"at": timefmt.format(self.at), "reason": self.reason}


@dataclass(frozen=True)
class BundleEntry:
    """One bundle as the index lists it. ``sha256``/``size`` are of the ZIP file."""

    id: str
    sha256: str
    size: int
    created: dt.datetime
    kind: str
    articles: tuple[ArticleInfo, ...]
    supersedes: tuple[str, ...] = ()
    retracted: Retraction | None = None

    def __post_init__(self) -> None:
        if not SHA_RE.match(self.id) or not SHA_RE.match(self.sha256):
            raise _fail("bundle id and sha256 must be 64 hex digits", "I8")
        if self.kind not in KINDS or not self.size > 0 or not self.articles:
            raise _fail(f"bundle {self.id[:16]} has a bad kind, size or article list", "I8")
        for a in self.articles:
            if not ID_RE.match(a.id) or not LANG_RE.match(a.lang) or a.version < 1:
                raise _fail(f"bundle {self.id[:16]} lists a bad article", "I8")

    @property
    def langs(self) -> tuple[str, ...]:
        return tuple(sorted({a.lang for a in self.articles}))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "sha256": self.sha256,
            "size": self.size,
            "created": timefmt.format(self.created),
            "kind": self.kind,
            "articles": [a.to_json() for a in self.articles],
            "supersedes": list(self.supersedes),
        }
        if self.retracted is not None:
            out["retracted"] = self.retracted.to_json()
        return out

    @classmethod
    def from_json(cls, doc: Any, step: str = "I8") -> BundleEntry:
        r = Reader(
            doc,
            what="shard entry",
            step=step,
            code="bad-shard",
            required=("id", "sha256", "size", "created", "kind", "articles", "supersedes"),
            optional=("retracted",),
        )
        arts = []
        for item in r.items("articles", min_items=1, max_items=1000):
            a = Reader(
                item, what="shard article", step=step, code="bad-shard", required=("id", "version", "lang", "title")
            )
            arts.append(
                ArticleInfo(
                    a.text("id", max_len=128),
                    a.integer("version", lo=1),
                    a.text("lang", max_len=35),
                    a.text("title", max_len=500),
                )
            )
        retracted = None
        if r.has("retracted"):
            x = Reader(r.obj("retracted"), what="retraction", step=step, code="bad-shard", required=("at", "reason"))
            retracted = Retraction(x.time("at"), x.text("reason", max_len=1000, min_len=0))
        try:
            return cls(
                id=r.text("id", max_len=64),
                sha256=r.text("sha256", max_len=64),
                size=r.integer("size", lo=1),
                created=r.time("created"),
                kind=r.text("kind", max_len=20),
                articles=tuple(arts),
                supersedes=tuple(r.strings("supersedes", max_items=1000, max_len=64)),
                retracted=retracted,
            )
        except FormatError as exc:
            exc.code, exc.step = "bad-shard", step
            raise


@dataclass(frozen=True)
class Shard:
    """A list of bundles; its bytes are addressed by their SHA-256."""

    bundles: tuple[BundleEntry, ...]

    def to_bytes(self) -> bytes:
        return strictjson.dumps({"format": SHARD_FORMAT, "bundles": [b.to_json() for b in self.bundles]})

    @classmethod
    def from_bytes(cls, data: bytes, step: str = "I8") -> Shard:
        if len(data) > MAX_SHARD_BYTES:
            raise _fail("shard is too large", step, "bad-shard")
        doc = strictjson.loads(data, step=step)
        r = Reader(doc, what="shard", step=step, code="bad-shard", required=("format", "bundles"))
        if r.integer("format") != SHARD_FORMAT:
            r.fail(f"format must be {SHARD_FORMAT}")
        entries = tuple(
            BundleEntry.from_json(b, step) for b in r.items("bundles", min_items=1, max_items=SHARD_CAPACITY)
        )
        if len({b.id for b in entries}) != len(entries):
            r.fail("lists a bundle twice")
        return cls(entries)


@dataclass(frozen=True)
class ShardRef:
    sha256: str
    size: int
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Index:
    """The index payload: what a mirror must hold, and until when it is fresh."""

    version: int
    created: dt.datetime
    expires: dt.datetime
    root_version: int
    mirrors: tuple[str, ...]
    shards: tuple[ShardRef, ...]
    verifier_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.expires <= self.created:
            raise _fail("index expires before it is created", "I3")
        for s in self.shards:
            if not SHA_RE.match(s.sha256) or not 0 < s.count <= SHARD_CAPACITY or not 0 < s.size <= MAX_SHARD_BYTES:
                raise _fail("index lists a bad shard", "I3")
        if len({s.sha256 for s in self.shards}) != len(self.shards):
            raise _fail("index lists a shard twice", "I3")
        if self.verifier_sha256 is not None and not SHA_RE.match(self.verifier_sha256):
            raise _fail("verifier_sha256 must be 64 hex digits", "I3")
        for m in self.mirrors:
            if not (m.startswith("https://") or m.startswith("http://")) or len(m) > 500:
                raise _fail("mirror URLs must be http(s)", "I3")

    def to_payload(self) -> bytes:
        doc: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "version": self.version,
            "created": timefmt.format(self.created),
            "expires": timefmt.format(self.expires),
            "root_version": self.root_version,
            "mirrors": list(self.mirrors),
            "shards": [s.to_json() for s in self.shards],
        }
        if self.verifier_sha256 is not None:
            doc["verifier_sha256"] = self.verifier_sha256
        return strictjson.dumps(doc)

    @classmethod
    def from_payload(cls, payload: bytes) -> Index:
        doc = strictjson.loads(payload, step="I3")
        r = Reader(
            doc,
            what="index",
            step="I3",
            code="bad-index",
            required=("format", "version", "created", "expires", "root_version", "mirrors", "shards"),
            optional=("verifier_sha256",),
        )
        if r.integer("format") != INDEX_FORMAT:
            r.fail(f"format must be {INDEX_FORMAT}")
        shards = []
        for item in r.items("shards", max_items=MAX_SHARDS):
            s = Reader(item, what="shard reference", step="I3", code="bad-index", required=("sha256", "size", "count"))
            shards.append(ShardRef(s.text("sha256", max_len=64), s.integer("size"), s.integer("count")))
        try:
            return cls(
                version=r.integer("version", lo=1),
                created=r.time("created"),
                expires=r.time("expires"),
                root_version=r.integer("root_version", lo=1),
                mirrors=tuple(r.strings("mirrors", max_items=MAX_MIRRORS, max_len=500)),
                shards=tuple(shards),
                verifier_sha256=r.opt_text("verifier_sha256", max_len=64),
            )
        except FormatError as exc:
            exc.step = "I3"
            raise


@dataclass(frozen=True)
class SignedIndex:
    """A verified index envelope: its bytes, parsed payload and signer."""

    raw: bytes
    index: Index
    keyid: str


def sign_index(index: Index, signer: SigningKey) -> bytes:
    """Sign an index payload; returns the envelope bytes for ``index.json``."""
    return dsse.sign(dsse.INDEX_TYPE, index.to_payload(), [signer]).to_bytes()


def verify_index(data: bytes, root: Root) -> SignedIndex:
    """Steps I1-I4: envelope, signature by an index key of ``root``, payload, key window.

    Freshness (I5) and rollback (I6) need state; the mirror's trust class
    applies them.
    """
    # Step I1: a strict envelope of the index payload type, within the size cap.
    if len(data) > MAX_INDEX_BYTES:
        raise _fail("index is too large", "I1")
    env = dsse.Envelope.from_bytes(data, expected_type=dsse.INDEX_TYPE, step="I1")
    # Step I2: signed by a delegated key (bytes before parsing).
    signers = sorted(env.signed_by({kid: e.key for kid, e in root.signing_keys.items()}))
    if not signers:
        raise SignatureError("index is not signed by a key of this publisher", code="index-bad-signature", step="I2")
    # Step I3: the payload parses strictly.
    index = Index.from_payload(env.payload)
    # Step I4: the signer is authorised for `index` at `created`, under a root this new.
    if index.root_version > root.version:
        raise SignatureError(
            f"index needs root version {index.root_version}, have {root.version}", code="root-outdated", step="I4"
        )
    first: SignatureError | None = None
    for kid in signers:
        try:
            root.authorize(kid, "index", index.created, step="I4")
            return SignedIndex(data, index, kid)
        except SignatureError as err:
            first = first or err
    assert first is not None
    raise first


def check_fresh(index: Index, now: dt.datetime) -> None:
    """Step I5: not expired, and not created in the future (beyond clock skew)."""
    if index.expires <= now:
        raise FormatError(f"index expired at {timefmt.format(index.expires)}", code="expired", step="I5")
    if index.created > now + CLOCK_SKEW:
        raise FormatError("index is created in the future", code="index-from-future", step="I5")


def shard_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_shard(ref: ShardRef, data: bytes) -> Shard:
    """Step I7: a shard's bytes match the index that lists it, then parse (I8)."""
    if len(data) != ref.size or shard_sha256(data) != ref.sha256:
        raise FormatError("shard does not match the index that lists it", code="shard-mismatch", step="I7")
    shard = Shard.from_bytes(data)
    if len(shard.bundles) != ref.count:
        raise FormatError("shard count differs from the index", code="shard-mismatch", step="I7")
    return shard


@dataclass
class ShardedList:
    """The origin's working list of bundles, cut into shards of ``capacity``.

    Appends go to the last shard; changing a bundle rewrites only its shard.
    """

    shards: list[list[BundleEntry]] = field(default_factory=list)
    capacity: int = SHARD_CAPACITY

    def append(self, entry: BundleEntry) -> None:
        if not self.shards or len(self.shards[-1]) >= self.capacity:
            self.shards.append([])
        self.shards[-1].append(entry)

    def update(self, bundle_id: str, **changes: Any) -> None:
        for shard in self.shards:
            for i, e in enumerate(shard):
                if e.id == bundle_id:
                    shard[i] = replace(e, **changes)
                    return
        raise KeyError(bundle_id)

    def entries(self) -> list[BundleEntry]:
        return [e for shard in self.shards for e in shard]

    def render(self) -> list[tuple[ShardRef, bytes]]:
        out = []
        for shard in self.shards:
            data = Shard(tuple(shard)).to_bytes()
            out.append((ShardRef(shard_sha256(data), len(data), len(shard)), data))
        return out
