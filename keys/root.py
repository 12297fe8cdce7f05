"""The trust root: root.json documents and the chain from a pinned key id.

Everything here is pure (no I/O): it takes bytes, returns checked objects or
raises. Step ids refer to docs/format.md (bundle steps 12-15: the root chain).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tamizdat.errors import FormatError, SignatureError

from . import strictjson, timefmt
from .dsse import ROOT_TYPE, Envelope, is_keyid
from .ed25519 import PublicKey
from .schema import Reader

ROOT_FORMAT = 1
PURPOSES = ("bundle", "index", "log")
MAX_KEYS = 64
MAX_ROOT_CHAIN = 1000
MAX_ROOT_BYTES = 256 * 1024
MAX_LOG_POLICY_BYTES = 64 * 1024
MAX_LOG_ORIGIN = 255
MIN_LOG_MAX_AGE = 3600
MAX_LOG_MAX_AGE = 31_622_400  # 366 days

# The checkpoint origin rule of bundles/tlog/checkpoint.valid_origin, restricted to
# printable ASCII (keys/ must not import bundles/).
_ORIGIN = re.compile(r"[!-*,-~]+")
_POLICY_TEXT = re.compile(r"[ -~\t\n]*\n")
_WS = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class KeyEntry:
    """An online signing key delegated by a root."""

    key: PublicKey
    purposes: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def keyid(self) -> str:
        return self.key.keyid

    def to_json(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "public": self.key.b64(),
            "purposes": list(self.purposes),
            "not_before": timefmt.format(self.not_before),
            "not_after": timefmt.format(self.not_after),
        }


@dataclass(frozen=True)
class Revocation:
    keyid: str
    revoked_at: dt.datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "revoked_at": timefmt.format(self.revoked_at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class LogSettings:
    """The root's ``tlog`` section (docs/transparency.md "Trust"): the log the publisher keeps.

    ``policy`` is tlog-policy text without ``log`` lines (the log keys are the
    root's signing keys with purpose ``log``); it is parsed in full by
    ``tamizdat.bundles.tlog.trust.LogTrust``, here only its shape is checked.
    """

    origin: str
    policy: str
    max_age: int

    def __post_init__(self) -> None:
        problem = log_settings_problem(self.origin, self.policy, self.max_age)
        if problem:
            raise FormatError(f"root tlog {problem}", code="bad-root")

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "policy": self.policy, "max_age": self.max_age}

    @classmethod
    def from_json(cls, doc: Any, *, step: str | None = None) -> LogSettings:
        r = Reader(doc, what="root tlog", required=("origin", "policy", "max_age"), step=step, code="bad-root")
        origin, policy, max_age = r.doc["origin"], r.doc["policy"], r.doc["max_age"]
        if not isinstance(origin, str) or not isinstance(policy, str) or type(max_age) is not int:
            r.fail("fields are origin (string), policy (string) and max_age (integer)")
        problem = log_settings_problem(origin, policy, max_age)
        if problem:
            r.fail(problem)
        return cls(origin, policy, max_age)


def log_settings_problem(origin: str, policy: str, max_age: int) -> str | None:
    """Why a ``tlog`` section is malformed (None when it is fine)."""
    if len(origin) > MAX_LOG_ORIGIN or not _ORIGIN.fullmatch(origin):
        return f"origin must be 1 to {MAX_LOG_ORIGIN} printable ASCII characters without spaces or '+'"
    if len(policy) > MAX_LOG_POLICY_BYTES or not _POLICY_TEXT.fullmatch(policy):
        return "policy must be at most 64 KiB of printable ASCII, tabs and newlines, ending with a newline"
    for number, line in enumerate(policy.split("\n"), 1):
        items = [t for t in _WS.split(line) if t]
        if items and items[0] == "log":
            return f"policy line {number} is a log line (log keys are the root's keys with purpose log)"
    if type(max_age) is not int or not MIN_LOG_MAX_AGE <= max_age <= MAX_LOG_MAX_AGE:
        return f"max_age must be an integer from {MIN_LOG_MAX_AGE} to {MAX_LOG_MAX_AGE} seconds"
    return None


def _public(doc: Any, what: str, step: str | None) -> PublicKey:
    r = Reader(doc, what=what, required=("keyid", "public"), step=step, code="bad-root")
    return _key_matching(r, r.doc["public"], r.doc["keyid"], step)


def _key_matching(r: Reader, public: object, keyid: object, step: str | None) -> PublicKey:
    """The key ``public`` encodes, which must have the id ``keyid`` (errors worded by ``r``)."""
    key = PublicKey.from_b64(public, step=step)
    if keyid != key.keyid:
        r.fail("keyid does not match its public key")
    return key


@dataclass(frozen=True)
class Root:
    """A checked root document (schema only; signatures are checked by the chain)."""

    version: int
    publisher: str
    created: dt.datetime
    expires: dt.datetime
    root_keys: Mapping[str, PublicKey]
    threshold: int
    signing_keys: Mapping[str, KeyEntry]
    revoked: Mapping[str, Revocation]
    tlog: LogSettings | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= len(self.root_keys):
            raise FormatError("root threshold must be 1..number of root keys", code="bad-root")
        if set(self.root_keys) & set(self.signing_keys):
            raise FormatError("a key cannot be both a root and a signing key", code="bad-root")
        for entry in self.signing_keys.values():
            if entry.not_before >= entry.not_after:
                raise FormatError("signing key window is empty", code="bad-root")
        if self.created >= self.expires:
            raise FormatError("root expires before it is created", code="bad-root")

    # -- parsing ---------------------------------------------------------
    @classmethod
    def from_payload(cls, payload: bytes, *, step: str | None = None) -> Root:
        doc = strictjson.loads(payload, step=step)
        r = Reader(
            doc,
            what="root",
            required=(
                "format",
                "version",
                "publisher",
                "created",
                "expires",
                "root_keys",
                "threshold",
                "signing_keys",
                "revoked",
            ),
            optional=("tlog",),
            step=step,
            code="bad-root",
        )
        if r.integer("format") != ROOT_FORMAT:
            r.fail(f"format must be {ROOT_FORMAT}")
        root_keys: dict[str, PublicKey] = {}
        for item in r.items("root_keys", min_items=1, max_items=MAX_KEYS):
            key = _public(item, "root key", step)
            if key.keyid in root_keys:
                r.fail("lists a root key twice")
            root_keys[key.keyid] = key
        signing: dict[str, KeyEntry] = {}
        for item in r.items("signing_keys", max_items=MAX_KEYS):
            k = Reader(
                item,
                what="signing key",
                required=("keyid", "public", "purposes", "not_before", "not_after"),
                step=step,
                code="bad-root",
            )
            key = _key_matching(k, item["public"], item["keyid"], step)
            purposes = k.strings("purposes", min_items=1, max_items=len(PURPOSES))
            if any(p not in PURPOSES for p in purposes) or purposes != sorted(purposes):
                k.fail(f"purposes must be a sorted subset of {list(PURPOSES)}")
            if key.keyid in signing:
                r.fail("lists a signing key twice")
            signing[key.keyid] = KeyEntry(key, tuple(purposes), k.time("not_before"), k.time("not_after"))
        revoked: dict[str, Revocation] = {}
        for item in r.items("revoked", max_items=10 * MAX_KEYS):
            v = Reader(
                item,
                what="revocation",
                required=("keyid", "revoked_at", "reason"),
                step=step,
                code="bad-root",
            )
            if not is_keyid(v.doc["keyid"]) or v.doc["keyid"] in revoked:
                v.fail("keyid must be a key id listed once")
            revoked[v.doc["keyid"]] = Revocation(v.doc["keyid"], v.time("revoked_at"), v.text("reason", max_len=1000))
        tlog = LogSettings.from_json(r.doc["tlog"], step=step) if r.has("tlog") else None
        try:
            return cls(
                version=r.integer("version", lo=1),
                publisher=r.text("publisher", max_len=200),
                created=r.time("created"),
                expires=r.time("expires"),
                root_keys=root_keys,
                threshold=r.integer("threshold", lo=1, hi=MAX_KEYS),
                signing_keys=signing,
                revoked=revoked,
                tlog=tlog,
            )
        except FormatError as exc:
            exc.step = step
            raise

    def to_payload(self) -> bytes:
        doc: dict[str, Any] = {
            "format": ROOT_FORMAT,
            "version": self.version,
            "publisher": self.publisher,
            "created": timefmt.format(self.created),
            "expires": timefmt.format(self.expires),
            "root_keys": [{"keyid": kid, "public": key.b64()} for kid, key in sorted(self.root_keys.items())],
            "threshold": self.threshold,
            "signing_keys": [e.to_json() for _, e in sorted(self.signing_keys.items())],
            "revoked": [v.to_json() for _, v in sorted(self.revoked.items())],
        }
        if self.tlog is not None:
            doc["tlog"] = self.tlog.to_json()
        return strictjson.dumps(doc)

    # -- decisions -------------------------------------------------------
    def authorize(self, keyid: str, purpose: str, at: dt.datetime, *, step: str) -> KeyEntry:
        """Check that ``keyid`` may sign for ``purpose`` at time ``at``."""
        if keyid in self.revoked:
            rev = self.revoked[keyid]
            raise SignatureError(
                f"signing key {keyid[:16]} was revoked on {timefmt.format(rev.revoked_at)}: {rev.reason}",
                code="key-revoked",
                step=step,
            )
        entry = self.signing_keys.get(keyid)
        if entry is None:
            raise SignatureError(
                f"signing key {keyid[:16]} is not delegated by root version {self.version}",
                code="key-unknown",
                step=step,
            )
        if purpose not in entry.purposes:
            raise SignatureError(
                f"signing key {keyid[:16]} may not sign {purpose} documents",
                code="key-purpose",
                step=step,
            )
        if not entry.not_before <= at <= entry.not_after:
            raise SignatureError(
                f"signing key {keyid[:16]} is valid from {timefmt.format(entry.not_before)} "
                f"to {timefmt.format(entry.not_after)}, not at {timefmt.format(at)}",
                code="key-outside-window",
                step=step,
            )
        return entry

    def signing_keys_for(self, purpose: str) -> dict[str, PublicKey]:
        """Public keys with ``purpose`` that are not revoked (for envelope checks)."""
        return {kid: e.key for kid, e in self.signing_keys.items() if purpose in e.purposes and kid not in self.revoked}

    def log_keys(self) -> dict[str, PublicKey]:
        """The log's keys: non-revoked signing keys with purpose ``log``, by key id."""
        return dict(sorted(self.signing_keys_for("log").items()))


def _link_back(env: Envelope, root: Root, later_env: Envelope, later: Root, s_gap: str, s_sig: str) -> None:
    """Root ``root`` is the version before ``later`` and both carry its keys' threshold."""
    if root.version != later.version - 1:
        raise SignatureError(
            f"root chain jumps from version {root.version} to {later.version}", code="root-chain-gap", step=s_gap
        )
    for signed, what in ((later_env, f"root version {later.version}"), (env, f"root version {root.version} itself")):
        count = len(signed.signed_by(root.root_keys))
        if count < root.threshold:
            raise SignatureError(
                f"{what} has {count} valid signature(s) of version {root.version}'s keys, {root.threshold} needed",
                code="root-chain-signature",
                step=s_sig,
            )


@dataclass(frozen=True)
class RootChain:
    """A verified run of roots; ``newest`` governs every signing-key decision."""

    roots: tuple[Root, ...]
    envelopes: tuple[bytes, ...]

    @property
    def newest(self) -> Root:
        return self.roots[-1]

    @property
    def first(self) -> Root:
        return self.roots[0]


def parse_root_envelope(data: bytes, *, step: str | None = None) -> tuple[Envelope, Root]:
    """Parse a root envelope and its payload (signatures not yet checked)."""
    if len(data) > MAX_ROOT_BYTES:
        raise FormatError("root document is too large", code="bad-root", step=step)
    env = Envelope.from_bytes(data, expected_type=ROOT_TYPE, step=step)
    return env, Root.from_payload(env.payload, step=step)


def verify_self_signed(env: Envelope, root: Root, *, step: str | None = None) -> None:
    """A root must carry a threshold of signatures from its own root keys."""
    env.verify_threshold(
        root.root_keys,
        root.threshold,
        what=f"root version {root.version}",
        step=step,
        code="root-bad-signature",
    )


def verify_root_chain(
    documents: Sequence[bytes],
    *,
    pinned_keyid: str | None = None,
    trusted: bytes | None = None,
    steps: tuple[str, str, str, str] = ("12", "13", "14", "15"),
) -> RootChain:
    """Walk root versions from a trust anchor to the newest one (cached; see :func:`_walk`).

    Verifying many bundles that carry the same roots (a mirror, the reader
    pages) checks the chain once: results are cached by the exact bytes, and
    failures are never cached.
    """
    return _walk_cached(tuple(documents), pinned_keyid, trusted, steps)


@functools.lru_cache(maxsize=64)
def _walk_cached(
    documents: tuple[bytes, ...], pinned_keyid: str | None, trusted: bytes | None, steps: tuple[str, str, str, str]
) -> RootChain:
    return _walk(documents, pinned_keyid=pinned_keyid, trusted=trusted, steps=steps)


def _walk(
    documents: Sequence[bytes],
    *,
    pinned_keyid: str | None = None,
    trusted: bytes | None = None,
    steps: tuple[str, str, str, str] = ("12", "13", "14", "15"),
) -> RootChain:
    """Walk root versions from a trust anchor to the newest one; every carried root must verify.

    The anchor is either ``pinned_keyid`` (the lowest version that lists that
    root key and is signed by it starts the chain) or ``trusted`` (a root
    envelope the caller already trusts, e.g. a newer ``root.json`` given on the
    command line). ``documents`` are the root envelopes carried with the data,
    in version order. ``steps`` names the four checks in docs/format.md
    (bundle steps 12-15 by default): parse, anchor, consecutive versions,
    signatures of both versions.

    Carried roots older than the anchor are authenticated backwards, right
    after the anchor is found: root V-1 belongs to the chain if root V carries a
    threshold of valid signatures from V-1's keys and V-1 is signed by its own,
    and so on down; one that does not is an error (``root-chain-gap``,
    ``root-chain-signature``), so a bundle carries no byte the publisher did not
    sign. They only extend ``RootChain.roots`` (so the publisher's first root key
    id stays known); the newest root still governs every decision. With a
    ``trusted`` anchor, a carried copy of its version must hold the same
    payload, and carried roots that end more than one version below it cannot
    be linked to it: they decide nothing.
    """
    s_parse, s_anchor, s_gap, s_sig = steps
    if (pinned_keyid is None) == (trusted is None):
        raise ValueError("give exactly one of pinned_keyid and trusted")
    if len(documents) > MAX_ROOT_CHAIN:
        raise FormatError("root chain is too long", code="root-chain", step=s_parse)
    # Every carried root parses strictly.
    parsed = [parse_root_envelope(d, step=s_parse) for d in documents]
    carried = [(e, r, b) for (e, r), b in zip(parsed, documents, strict=True)]

    # The anchor, and the carried roots below it (newest first).
    if trusted is not None:
        env, root = parse_root_envelope(trusted, step=s_anchor)
        verify_self_signed(env, root, step=s_anchor)
        anchor: tuple[Envelope, Root, bytes] = (env, root, trusted)
        for e, r, _ in carried:
            if r.version == root.version and e.payload != env.payload:
                raise SignatureError(
                    f"the carried root version {r.version} differs from the trusted one",
                    code="root-chain-signature",
                    step=s_sig,
                )
        rest = [c for c in carried if c[1].version > root.version]
        older = [c for c in carried if c[1].version < root.version]
        below = older[::-1] if older and older[-1][1].version == root.version - 1 else []
    else:
        assert pinned_keyid is not None
        start = None
        good: set[str] = set()
        for i, (env, root) in enumerate(parsed):
            if pinned_keyid in root.root_keys:
                good = env.signed_by(root.root_keys)  # each signature is checked once
                if pinned_keyid in good:
                    start = i
                    break
        if start is None:
            raise SignatureError(
                f"no root here is signed by the pinned root key {pinned_keyid[:16]}",
                code="root-not-pinned",
                step=s_anchor,
            )
        env, root = parsed[start]
        if len(good) < root.threshold:  # what verify_self_signed checks, without verifying again
            raise SignatureError(
                f"root version {root.version} has {len(good)} valid signature(s) of {root.threshold} needed",
                code="root-bad-signature",
                step=s_anchor,
            )
        anchor = carried[start]
        rest = carried[start + 1 :]
        below = carried[:start][::-1]

    chain: list[Root] = [anchor[1]]
    chain_raw: list[bytes] = [anchor[2]]
    later_env = anchor[0]
    for prev_env, prev, prev_raw in below:
        _link_back(prev_env, prev, later_env, chain[0], s_gap, s_sig)
        chain.insert(0, prev)
        chain_raw.insert(0, prev_raw)
        later_env = prev_env

    # Each next version is exactly N+1, signed by N's and its own root keys.
    for env, root, data in rest:
        prev = chain[-1]
        if root.version != prev.version + 1:
            raise SignatureError(
                f"root chain jumps from version {prev.version} to {root.version}",
                code="root-chain-gap",
                step=s_gap,
            )
        # One pass over both key sets: a key in both (the usual case) is checked once.
        good = env.signed_by({**prev.root_keys, **root.root_keys})
        for keys, threshold, by in (
            (prev.root_keys, prev.threshold, f"version {prev.version}'s keys"),
            (root.root_keys, root.threshold, "its own keys"),
        ):
            count = len(good & keys.keys())
            if count < threshold:
                raise SignatureError(
                    f"root version {root.version} (by {by}) has {count} valid signature(s) of {threshold} needed",
                    code="root-chain-signature",
                    step=s_sig,
                )
        chain.append(root)
        chain_raw.append(data)
    return RootChain(tuple(chain), tuple(chain_raw))
