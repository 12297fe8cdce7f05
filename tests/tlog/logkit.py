"""A publisher's log in memory for the reader tests: a root with a ``tlog`` section, proofs, attacks.

The same table of good and bad proofs (:func:`proof_cases`) drives the Python
reader tests, ``tamizdat verify`` and the browser page's differential test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, bundle_leaf, index_leaf, log_origin, retraction_leaf
from tamizdat.bundles.tlog.note import Ed25519Signer, Note, NoteSignature
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.proofs import MemoryTree
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import KeyEntry, LogSettings, Root

WITNESS_NAMES = ("mirror-a", "mirror-b", "mirror-c")
POLICY_TAIL = "group mirrors 2 mirror-a mirror-b mirror-c\nquorum mirrors\n"


def _key(seed: int) -> SigningKey:
    return SigningKey.from_seed(bytes([seed]) * 32)


def fake_id(i: int) -> str:
    return hashlib.sha256(b"bundle %d" % i).hexdigest()


def witness_policy(witnesses: Sequence[CosignatureSigner], tail: str = POLICY_TAIL) -> str:
    lines = [f"witness {name} {w.verifier.vkey()}\n" for name, w in zip(WITNESS_NAMES, witnesses, strict=False)]
    return "".join(lines) + tail


def log_root(origin: str, log_key: SigningKey, policy: str | None, *, max_age: int = 604800) -> Root:
    """A minimal root (schema only) delegating ``log_key`` with purpose log; ``policy`` None: no tlog."""
    root_key = _key(90).public
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    entry = KeyEntry(log_key.public, ("log",), start, end)
    return Root(
        version=1,
        publisher="Log Test",
        created=start,
        expires=end,
        root_keys={root_key.keyid: root_key},
        threshold=1,
        signing_keys={entry.keyid: entry},
        revoked={},
        tlog=None if policy is None else LogSettings(origin, policy, max_age),
    )


@dataclass
class LogKit:
    """A log of ``leaves`` with a log key, three witnesses and a root that trusts them."""

    now: int
    origin: str = field(default_factory=lambda: log_origin(_key(90).public.keyid))
    log_key: SigningKey = field(default_factory=lambda: _key(1))
    witness_keys: tuple[SigningKey, ...] = field(default_factory=lambda: (_key(11), _key(12), _key(13)))
    tree: MemoryTree = field(default_factory=MemoryTree)
    leaves: list[Leaf] = field(default_factory=list)

    @property
    def log(self) -> Ed25519Signer:
        return Ed25519Signer(self.origin, self.log_key)

    @property
    def witnesses(self) -> list[CosignatureSigner]:
        return [CosignatureSigner(f"{n}.example.org", k) for n, k in zip(WITNESS_NAMES, self.witness_keys, strict=True)]

    def policy(self) -> str:
        return witness_policy(self.witnesses)

    def root(self, policy: str | None = "") -> Root:
        return log_root(self.origin, self.log_key, self.policy() if policy == "" else policy)

    def append(self, leaf: Leaf) -> int:
        self.leaves.append(leaf)
        return self.tree.append(leaf.to_bytes())

    def add_round(self, bundle_ids: Sequence[str], retracted: Sequence[str] = (), index_payload: bytes = b"{}") -> int:
        """Bundle leaves, retraction leaves, then the index leaf last; returns the new size."""
        for b in bundle_ids:
            self.append(bundle_leaf(b))
        for r in retracted:
            self.append(retraction_leaf(r))
        self.append(index_leaf(index_payload + b"%d" % self.tree.size))
        return self.tree.size

    def index_of(self, bundle_id: str) -> int:
        return self.leaves.index(bundle_leaf(bundle_id))

    def checkpoint(self, size: int | None = None, *, origin: str | None = None) -> Checkpoint:
        n = self.tree.size if size is None else size
        return Checkpoint(origin or self.origin, n, self.tree.root(n))

    def note(
        self,
        size: int | None = None,
        *,
        cosigners: Sequence[int] = (0, 1),
        times: Sequence[int] | None = None,
        signer: Ed25519Signer | None = None,
        origin: str | None = None,
        extra: Sequence[NoteSignature] = (),
    ) -> bytes:
        cp = self.checkpoint(size, origin=origin)
        signed = sign_checkpoint(cp, [signer or Ed25519Signer(cp.origin, self.log_key)])
        ws = self.witnesses
        stamps = list(times) if times is not None else [self.now - 100 + 50 * k for k in range(len(cosigners))]
        cosigs = [ws[i].cosign(cp.text(), t) for i, t in zip(cosigners, stamps, strict=True)]
        return Note.parse(signed).with_signatures([*cosigs, *extra]).to_bytes()

    def proof(
        self, index: int, *, size: int | None = None, note: bytes | None = None, claim: int | None = None
    ) -> bytes:
        n = self.tree.size if size is None else size
        hashes = tuple(self.tree.inclusion_proof(index, n))
        return ProofFile(index if claim is None else claim, hashes, note or self.note(n)).to_bytes()


def _flip_line(data: bytes, line: int, pos: int = 5) -> bytes:
    lines = data.split(b"\n")
    b = bytearray(lines[line])
    b[pos] = ord("A") if b[pos] != ord("A") else ord("B")
    lines[line] = bytes(b)
    return b"\n".join(lines)


def _corrupt_signature(note: bytes, name_prefix: str) -> bytes:
    """Flip a byte inside the signature (after the key id) of the first line naming ``name_prefix``."""
    out = []
    done = False
    for line in note.split(b"\n"):
        if not done and line.startswith("\u2014 ".encode() + name_prefix.encode()):
            sig = NoteSignature.from_line(line.decode())
            raw = bytearray(sig.signature)
            raw[-1] ^= 1
            line = NoteSignature(sig.name, sig.key_id, bytes(raw)).line().rstrip("\n").encode()
            done = True
        out.append(line)
    assert done
    return b"\n".join(out)


@dataclass(frozen=True)
class ProofCase:
    name: str
    expect: str  # "logged" or a failure code
    make: Callable[[LogKit, str], bytes | None]  # (kit, bundle id) -> proof bytes (None: no proof)


def proof_cases() -> list[ProofCase]:
    """Good and bad proofs for a bundle id already logged in the kit (index leaf after it)."""

    def good(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b))

    def other_bundle(k: LogKit, b: str) -> bytes:
        i = k.index_of(b)
        return k.proof(i + 1 if i + 1 < k.tree.size - 1 else i - 1)

    def wrong_size(k: LogKit, b: str) -> bytes:
        i = k.index_of(b)
        return k.proof(i, size=k.tree.size - 1, note=k.note(k.tree.size))

    def tampered_checkpoint_size(k: LogKit, b: str) -> bytes:
        data = k.proof(k.index_of(b))
        head, sep, note = data.partition(b"\n\n")
        origin, size, rest = note.split(b"\n", 2)
        return head + sep + b"\n".join([origin, str(int(size) + 1).encode(), rest])

    def foreign_log_key(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b), note=k.note(signer=Ed25519Signer(k.origin, _key(66))))

    def wrong_origin(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b), note=k.note(origin="evil.example/log"))

    def unknown_witness(k: LogKit, b: str) -> bytes:
        stranger = CosignatureSigner("mirror-b.example.org", _key(77))
        cp = k.checkpoint()
        return k.proof(k.index_of(b), note=k.note(cosigners=(0,), extra=[stranger.cosign(cp.text(), k.now - 10)]))

    def extra_unknown(k: LogKit, b: str) -> bytes:
        stranger = CosignatureSigner("someone.example", _key(78))
        other = Ed25519Signer("other.example/log", _key(79))
        cp = k.checkpoint()
        extra = [stranger.cosign(cp.text(), k.now - 10), NoteSignature(other.name, other.key_id, other.sign(cp.body()))]
        return k.proof(k.index_of(b), note=k.note(cosigners=(0, 2), extra=extra))

    def rotated_log_key(k: LogKit, b: str, *, unknown_first: bool) -> bytes:
        """Signed by the known log key and by a later log key of the same origin the root does not know."""
        newer = Ed25519Signer(k.origin, _key(81))
        cp = k.checkpoint()
        if unknown_first:
            line = NoteSignature(k.log.name, k.log.key_id, k.log.sign(cp.body()))
            return k.proof(k.index_of(b), note=k.note(signer=newer, extra=[line]))
        line = NoteSignature(newer.name, newer.key_id, newer.sign(cp.body()))
        return k.proof(k.index_of(b), note=k.note(extra=[line]))

    def future(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b), note=k.note(cosigners=(0, 1), times=(k.now - 10, k.now + 3600)))

    def slight_future(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b), note=k.note(cosigners=(0, 1), times=(k.now - 10, k.now + 200)))

    def old_cosignatures(k: LogKit, b: str) -> bytes:
        return k.proof(k.index_of(b), note=k.note(cosigners=(2, 1), times=(1_000_000, 2_000_000)))

    def with_extension(k: LogKit, b: str) -> bytes:
        cp = k.checkpoint()
        cp = Checkpoint(cp.origin, cp.size, cp.root, ("extension line",))
        signed = sign_checkpoint(cp, [k.log])
        cosigs = [w.cosign(cp.text(), k.now - 10) for w in k.witnesses[:2]]
        return k.proof(k.index_of(b), note=Note.parse(signed).with_signatures(cosigs).to_bytes())

    def with_extra(k: LogKit, b: str, extra: bytes) -> bytes:
        pf = ProofFile.parse(good(k, b))
        head, sep, rest = pf.to_bytes().partition(b"\n")
        return head + sep + b"extra " + base64.b64encode(extra) + b"\n" + rest

    def duplicated_lines(k: LogKit, b: str) -> bytes:
        data = good(k, b)
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
        return data + last + b"\n"

    def case(name: str, expect: str, make: Callable[[LogKit, str], bytes | None]) -> ProofCase:
        return ProofCase(name, expect, make)

    return [
        case("good", "logged", good),
        case("good-three-witnesses", "logged", lambda k, b: k.proof(k.index_of(b), note=k.note(cosigners=(0, 1, 2)))),
        case("extra-unknown-signatures", "logged", extra_unknown),
        case("unknown-rotated-log-key-after", "logged", lambda k, b: rotated_log_key(k, b, unknown_first=False)),
        case("unknown-rotated-log-key-first", "logged", lambda k, b: rotated_log_key(k, b, unknown_first=True)),
        case("cosigned-slightly-ahead", "logged", slight_future),
        case("old-cosignatures", "logged", old_cosignatures),
        case("no-proof", "no-proof", lambda k, b: None),
        case("tampered-hash", "bad-proof", lambda k, b: _flip_line(good(k, b), 2)),
        case("wrong-index", "bad-proof", lambda k, b: k.proof(k.index_of(b), claim=k.index_of(b) + 1)),
        case("index-beyond-size", "bad-proof", lambda k, b: k.proof(k.index_of(b), claim=k.tree.size)),
        case("proof-of-another-leaf", "bad-proof", other_bundle),
        case("wrong-size", "bad-proof", wrong_size),
        case("tampered-checkpoint-size", "bad-proof", tampered_checkpoint_size),
        case("forged-log-signature", "bad-proof", lambda k, b: _flip_sig(good(k, b), k.origin)),
        case("foreign-log-key", "bad-proof", foreign_log_key),
        case("forged-cosignature", "bad-proof", lambda k, b: _flip_sig(good(k, b), "mirror-a")),
        case("wrong-origin", "bad-proof", wrong_origin),
        case("truncated", "bad-proof", lambda k, b: good(k, b)[:-30]),
        case("not-a-proof", "bad-proof", lambda k, b: b"hello\n\nworld\n"),
        case("extra-data", "logged", lambda k, b: with_extra(k, b, b"hello")),
        case("duplicated-signature-line", "logged", duplicated_lines),
        case("empty-extra-data", "bad-proof", lambda k, b: with_extra(k, b, b"")),
        case("checkpoint-extension", "bad-proof", with_extension),
        case("too-large", "bad-proof", lambda k, b: good(k, b) + b"\n" * 70_000),
        case("missing-cosignature", "no-quorum", lambda k, b: k.proof(k.index_of(b), note=k.note(cosigners=(1,)))),
        case("no-cosignature", "no-quorum", lambda k, b: k.proof(k.index_of(b), note=k.note(cosigners=()))),
        case("unknown-witness", "no-quorum", unknown_witness),
        case("cosigned-in-the-future", "no-quorum", future),
    ]


def _flip_sig(proof: bytes, name_prefix: str) -> bytes:
    head, sep, note = proof.partition(b"\n\n")
    return head + sep + _corrupt_signature(note, name_prefix)


# -- a real publisher: key directory, signed bundles, and its log ----------------------------------


@dataclass
class Publisher:
    """A key directory (with a log key unless ``log=False``), bundles it signed and a :class:`LogKit`."""

    keydir: KeyDir
    kit: LogKit
    bundles: dict[str, Path]  # bundle id -> file

    @property
    def root_keyid(self) -> str:
        return self.keydir.root_keyid()

    @property
    def ids(self) -> list[str]:
        return list(self.bundles)


def make_publisher(
    base: Path, *, now: int, log: bool = True, count: int = 3, policy: bool = True, label: str = "reader test"
) -> Publisher:
    """``count`` one-article bundles, logged in one round; the root trusts the kit's witnesses."""
    from tamizdat.bundles.build import build_bundle
    from tamizdat.bundles.content import parse_bundle_input

    moment = dt.datetime.fromtimestamp(now, dt.UTC).replace(microsecond=0)
    kd = KeyDir(base / "keys")
    seeds = [hashlib.sha256(f"{label} {i}".encode()).digest() for i in range(3)]
    kd.init("Log Test Newsroom", seeds=seeds, now=moment - dt.timedelta(days=10), log=log)
    origin = kd.chain().newest.tlog.origin if log else log_origin(kd.root_keyid())  # type: ignore[union-attr]
    kit = LogKit(now=now, origin=origin, log_key=kd.signer("log") if log else _key(1))
    if log and policy:
        kd.set_log_policy(kit.policy(), now=moment - dt.timedelta(days=9))
    chain = kd.chain()
    signer = kd.signer("bundle", at=moment)
    bundles: dict[str, Path] = {}
    out = base / "bundles"
    out.mkdir(exist_ok=True)
    for i in range(count):
        published = (moment - dt.timedelta(hours=i + 2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        art = {"id": f"story-{i}", "lang": "en", "title": f"Story {i}", "body": f"Text {i}.", "published": published}
        doc = {"articles": [art]}
        inp = parse_bundle_input(json.dumps(doc).encode())
        path = out / f"story-{i}.zip"
        built = build_bundle(inp, signer=signer, chain=chain, out=path, created=moment - dt.timedelta(hours=i + 1))
        bundles[built.bundle_id] = path
    kit.add_round(list(bundles))
    return Publisher(kd, kit, bundles)
