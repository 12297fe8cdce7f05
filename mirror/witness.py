"""Every transparency-log decision of a mirror witness, in one class without I/O.

Like :mod:`mirror.trust` (and python-tuf's ``TrustedMetadataSet``):
:class:`LogWitness` holds the largest log view this mirror accepted
(:class:`WitnessState`) and what its leaves say (:class:`LogContents`), is fed
bytes (checkpoint notes, entry bundles, the facts of the served index) and
returns decisions or raises :class:`LogRefusal`. ``mirror.logsync`` fetches,
writes tiles and state, and cosigns when told to.

Rules (docs/transparency.md, "Mirror as witness"):

- A checkpoint must carry a log signature of the root's log keys under the
  root's origin; known witness cosignatures on it must verify.
- From the upstream the index came from: a larger checkpoint is accepted only
  when the entries rebuild its root on top of the accepted tree (``bad-tile``
  otherwise); the same size must have the same root, and a smaller one must
  match the accepted tree at that size; otherwise ``fork``. A smaller one that
  matches is an honest old note replayed: ``rollback`` for this round only.
- Other upstreams and peer witnesses: the same size or smaller must match
  (else ``fork``). A larger view is proved from that source's own hash tiles
  (never trusted): the consistency proof from the accepted size must rebuild
  its signed root (``peer-bad-tiles`` otherwise: ignored, no evidence), and
  the root it then implies at the accepted size must be the accepted one
  (else ``fork``: the log key signed both trees). It is also kept and
  compared again once the accepted tree reaches its size.
- ``fork`` is sticky: both signed notes are kept as evidence and nothing is
  cosigned until an operator clears the alarm.
- The leaves must agree with the served index (checked in this order):
  ``bad-last-leaf``, ``log-behind`` / ``index-unlogged``, ``unlisted-bundle``,
  ``bundle-missing``, ``hidden-retraction``, ``unlogged-bundle``,
  ``unlogged-retraction``. Leaves that break the log's own rules are
  ``bad-log-entry``.
- The leaves' maps (bundles, retractions, indexes by id) are kept between
  rounds and grow with the new leaves; the leaf checks are set comparisons of
  those maps with the served index's sets, in C (about 0.2 s at a million
  bundles), with a Python pass only over what fails.
- Cosign a new checkpoint once; re-cosign an unchanged one when the own
  cosignature is an hour old. Cosignatures older than the root's ``max_age``
  (or dated more than five minutes ahead) never count toward the quorum.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Literal

from tamizdat.bundles.tlog.builder import TileBatch, TreeBuilder
from tamizdat.bundles.tlog.checkpoint import SignedCheckpoint, merge_cosignatures, open_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.errors import LeafError, ProofError, TileError
from tamizdat.bundles.tlog.hashing import EMPTY_ROOT, HASH_SIZE, CompactRange, range_nodes
from tamizdat.bundles.tlog.leaf import LEAF_SIZE, LEAF_VERSION, Leaf, LeafKind
from tamizdat.bundles.tlog.note import Note, Verifier
from tamizdat.bundles.tlog.proofs import (
    nodes_for_consistency,
    prove_consistency,
    roots_from_consistency_proof,
    tree_root,
)
from tamizdat.bundles.tlog.tiles import (
    ENTRIES,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileId,
    TileReader,
    decode_entry_bundle,
    tile_hash_reader,
    tiles_for_nodes,
)
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.bundles.tlog.witness import evidence_name, origin_hash
from tamizdat.errors import RejectedError

STATE_FORMAT = 1
RECOSIGN_AFTER = 3600  # seconds: an unchanged checkpoint is cosigned again once the own cosignature is this old
FUTURE_SKEW = 300  # seconds a cosignature may be dated ahead and still count (as the readers allow)
MAX_PENDING = 16  # larger views from other sources remembered until the accepted tree reaches them
ENTRY_BYTES = 2 + LEAF_SIZE  # every entry of an entry bundle: uint16 length + a 34-byte leaf
_KINDS = frozenset(LeafKind)

# Codes of LogRefusal (also the health "state" values).
FORK = "fork"
ROLLBACK = "rollback"
BAD_TILE = "bad-tile"
BAD_LOG_ENTRY = "bad-log-entry"
BAD_LAST_LEAF = "bad-last-leaf"
LOG_BEHIND = "log-behind"
INDEX_UNLOGGED = "index-unlogged"
UNLISTED_BUNDLE = "unlisted-bundle"
BUNDLE_MISSING = "bundle-missing"
HIDDEN_RETRACTION = "hidden-retraction"
UNLOGGED_BUNDLE = "unlogged-bundle"
UNLOGGED_RETRACTION = "unlogged-retraction"
BAD_PEER = "bad-peer-view"
PEER_BAD_TILES = "peer-bad-tiles"  # a source's hash tiles do not rebuild its own signed root (a source status only)

RootAt = Callable[[int], bytes]
"""The root of the accepted tree at a size up to its own (computed from this mirror's tiles)."""

Action = Literal["same", "extend", "older", "ahead"]


@dataclass(frozen=True)
class Evidence:
    """A signed note kept because it conflicts with another (file name, bytes)."""

    name: str
    note: bytes


class LogRefusal(RejectedError):
    """The witness will not accept or cosign; ``sticky`` ones hold until an operator clears them."""

    code = "log-refused"

    def __init__(self, message: str, *, code: str, evidence: Sequence[Evidence] = (), sticky: bool = False):
        super().__init__(message, code=code)
        self.evidence = tuple(evidence)
        self.sticky = sticky


@dataclass(frozen=True)
class Alarm:
    """A sticky refusal: why, when, and the evidence files."""

    code: str
    message: str
    at: int
    evidence: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "at": self.at, "evidence": list(self.evidence)}


@dataclass
class WitnessState:
    """The largest consistent log view accepted, and what was done with it (``DATA/state/tlog``)."""

    origin: str
    size: int = 0
    root: bytes = EMPTY_ROOT
    compact: tuple[bytes, ...] = ()  # the compact range of [0, size), largest subtree first
    checkpoint: bytes | None = None  # the accepted note as the upstream served it
    witness_note: bytes | None = None  # log signature + own cosignature of the accepted checkpoint
    cosigned: int | None = None  # time of the own cosignature in witness_note
    alarm: Alarm | None = None
    pending: dict[str, bytes] = field(default_factory=dict)  # source -> a larger note to check later
    garbage: list[tuple[str, int]] = field(default_factory=list)  # (partial tile dir, since)
    index_proof: str | None = None  # hex index-leaf id that public/tlog/index.tlog-proof proves
    last: dict[str, Any] = field(default_factory=dict)  # the last round's outcome (health)

    def to_json(self) -> dict[str, Any]:
        def b64(b: bytes | None) -> str | None:
            return None if b is None else base64.b64encode(b).decode("ascii")

        return {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "size": self.size,
            "root": b64(self.root),
            "compact": [b64(h) for h in self.compact],
            "checkpoint": b64(self.checkpoint),
            "witness_note": b64(self.witness_note),
            "cosigned": self.cosigned,
            "alarm": None if self.alarm is None else self.alarm.to_json(),
            "pending": {k: b64(v) for k, v in sorted(self.pending.items())},
            "garbage": [[d, t] for d, t in self.garbage],
            "index_proof": self.index_proof,
            "last": self.last,
        }

    @classmethod
    def from_json(cls, doc: Any) -> WitnessState:
        """Parse a state file; raises ValueError on anything unexpected."""

        def b64(v: Any) -> bytes:
            if not isinstance(v, str):
                raise ValueError("expected base64 text")
            try:
                return base64.b64decode(v, validate=True)
            except binascii.Error as exc:
                raise ValueError("bad base64") from exc

        def opt(v: Any) -> bytes | None:
            return None if v is None else b64(v)

        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT or not isinstance(doc.get("origin"), str):
            raise ValueError("not a witness state")
        size = doc["size"]
        if type(size) is not int or size < 0:
            raise ValueError("bad size")
        compact = tuple(b64(h) for h in doc["compact"])
        root = b64(doc["root"])
        cr = CompactRange.from_hashes(size, compact)  # raises on a count that does not fit the size
        if cr.root() != root or len(root) != HASH_SIZE:
            raise ValueError("compact range does not give the root")
        alarm = doc.get("alarm")
        cosigned = doc.get("cosigned")
        if cosigned is not None and type(cosigned) is not int:
            raise ValueError("bad cosigned time")
        proof = doc.get("index_proof")
        last = doc.get("last") or {}
        return cls(
            origin=doc["origin"],
            size=size,
            root=root,
            compact=compact,
            checkpoint=opt(doc.get("checkpoint")),
            witness_note=opt(doc.get("witness_note")),
            cosigned=cosigned,
            alarm=None
            if alarm is None
            else Alarm(str(alarm["code"]), str(alarm["message"]), int(alarm["at"]), tuple(map(str, alarm["evidence"]))),
            pending={str(k): b64(v) for k, v in dict(doc.get("pending") or {}).items()},
            garbage=[(str(d), int(t)) for d, t in doc.get("garbage") or []],
            index_proof=proof if isinstance(proof, str) else None,
            last=dict(last) if isinstance(last, dict) else {},
        )


@dataclass(frozen=True)
class ServedIndex:
    """What the index this mirror serves says, as sets of bundle ids (lowercase hex)."""

    payload_sha256: str  # the index leaf id: SHA-256 of the index.json payload
    listed: frozenset[str]
    retracted: frozenset[str]
    wanted: frozenset[str]  # must be held: not retracted, and not superseded unless superseded are kept
    held: frozenset[str]  # bundle files present (and verified by the sync) in public/bundles


class LogContents:
    """What the accepted leaves say: bundle, retraction and index leaves by id, with their positions."""

    def __init__(self) -> None:
        self.size = 0
        self.bundles: dict[str, int] = {}
        self.retractions: dict[str, int] = {}
        self.indexes: dict[str, int] = {}
        self.bundle_order: list[str] = []  # bundle ids in log order
        self.last: Leaf | None = None

    def _check(self, i: int, entry: bytes, bundles: AbstractSet[str], retractions: AbstractSet[str]) -> tuple[int, str]:
        """Entry ``i`` by the log's rules, given the bundles and retractions logged before it but not yet added."""
        if len(entry) != LEAF_SIZE or entry[0] != LEAF_VERSION or entry[1] not in _KINDS:
            try:
                Leaf.parse(entry)  # for its message
            except LeafError as exc:
                raise LogRefusal(f"log entry {i}: {exc.message}", code=BAD_LOG_ENTRY) from None
        kind, hid = entry[1], entry[2:].hex()
        if kind == LeafKind.BUNDLE:
            if hid in self.bundles or hid in bundles:
                raise LogRefusal(f"log entry {i} logs bundle {hid[:16]} a second time", code=BAD_LOG_ENTRY)
        elif kind == LeafKind.RETRACTION:
            if hid not in self.bundles and hid not in bundles:
                raise LogRefusal(f"log entry {i} retracts bundle {hid[:16]} never logged", code=BAD_LOG_ENTRY)
            if hid in self.retractions or hid in retractions:
                raise LogRefusal(f"log entry {i} retracts bundle {hid[:16]} a second time", code=BAD_LOG_ENTRY)
        return kind, hid

    def _add(self, kind: int, hid: str) -> None:
        if kind == LeafKind.BUNDLE:
            self.bundles[hid] = self.size
            self.bundle_order.append(hid)
        elif kind == LeafKind.RETRACTION:
            self.retractions[hid] = self.size
        else:
            self.indexes[hid] = self.size
        self.size += 1

    def parse_new(self, entries: Sequence[bytes]) -> list[Leaf]:
        """Parse entries that would follow the current ones; refuse what breaks the log's rules."""
        leaves: list[Leaf] = []
        bundles: set[str] = set()
        retractions: set[str] = set()
        for i, entry in enumerate(entries, self.size):
            kind, hid = self._check(i, entry, bundles, retractions)
            if kind == LeafKind.BUNDLE:
                bundles.add(hid)
            elif kind == LeafKind.RETRACTION:
                retractions.add(hid)
            leaves.append(Leaf(LeafKind(kind), bytes(entry[2:])))
        return leaves

    def apply(self, leaves: Iterable[Leaf]) -> None:
        """Add leaves already checked by :meth:`parse_new`."""
        for leaf in leaves:
            self._add(leaf.kind, leaf.id_hex)
            self.last = leaf

    @classmethod
    def rebuild(cls, entries: Iterable[bytes]) -> LogContents:
        """From this mirror's own entry bundles (already accepted; rules re-checked, one pass, no leaf objects)."""
        out = cls()
        none: frozenset[str] = frozenset()
        entry = b""
        for entry in entries:
            out._add(*out._check(out.size, entry, none, none))
        if out.size:
            out.last = Leaf.parse(entry)
        return out


@dataclass(frozen=True)
class EntryTail:
    """An entry bundle's bytes from ``offset`` on, as a ranged request got them (``total``: the file's length).

    ``whole`` says the full bundle answered for a vanished partial one.
    """

    data: bytes
    offset: int
    total: int
    whole: bool = False


@dataclass(frozen=True)
class Offer:
    """A verified checkpoint and what to do with it."""

    signed: SignedCheckpoint
    note: bytes
    action: Action

    @property
    def size(self) -> int:
        return self.signed.checkpoint.size


@dataclass(frozen=True)
class Extension:
    """A checked extension of the accepted tree: the tiles to write, the leaves to add."""

    offer: Offer
    batch: TileBatch
    leaves: tuple[Leaf, ...]
    compact: tuple[bytes, ...]


class LogWitness:
    """The log trust decisions of one mirror (no I/O)."""

    def __init__(
        self,
        trust: LogTrust,
        state: WitnessState,
        contents: LogContents,
        clock: Callable[[], int],
        signer: CosignatureSigner | None = None,
    ):
        if state.origin != trust.origin:
            raise LogRefusal(
                f"the accepted log is {state.origin!r} but the root names {trust.origin!r}", code="origin-mismatch"
            )
        if contents.size != state.size:
            raise ValueError("log contents do not match the state's size")
        self.trust = trust
        self.state = state
        self.contents = contents
        self.clock = clock
        self.signer = signer

    # -- keys ------------------------------------------------------------
    @property
    def origin_hash(self) -> str:
        return origin_hash(self.trust.origin)

    def _logs(self) -> list[Verifier]:
        return self.trust.policy.log_verifiers(self.trust.origin)

    def _witnesses(self) -> list[Verifier]:
        out = self.trust.policy.witness_verifiers()
        if self.signer is not None and self.signer.verifier not in out:
            out.append(self.signer.verifier)
        return out

    def policy_name(self) -> str | None:
        """This mirror's name in the root's witness policy (None when the publisher has not added it)."""
        if self.signer is None:
            return None
        for w in self.trust.policy.witnesses:
            if w.verifier == self.signer.verifier:
                return w.name
        return None

    def open(self, note: bytes) -> SignedCheckpoint:
        """Verify a checkpoint note: origin, a log signature, every known cosignature on it."""
        return open_checkpoint(note, self._logs(), self._witnesses(), origin=self.trust.origin)

    # -- checkpoints -----------------------------------------------------
    def offer(self, note: bytes, *, root_at: RootAt, primary: bool) -> Offer:
        """Decide about a checkpoint from an upstream (``primary``: the one the served index came from)."""
        signed = self.open(note)
        cp = signed.checkpoint
        st = self.state
        if cp.size == st.size:
            if cp.root != st.root:
                raise self._fork(note, cp.size, "the upstream's checkpoint has another root at the accepted size")
            return Offer(signed, note, "same")
        if cp.size < st.size:
            if root_at(cp.size) != cp.root:
                raise self._fork(note, cp.size, f"the upstream's checkpoint of size {cp.size} contradicts the log")
            if primary:
                raise LogRefusal(
                    f"the upstream went back from log size {st.size} to {cp.size} (an old checkpoint)",
                    code=ROLLBACK,
                    evidence=self._pair(ROLLBACK, note, cp.size),
                )
            return Offer(signed, note, "older")
        return Offer(signed, note, "extend" if primary else "ahead")

    def peer_view(self, name: str, note: bytes, *, root_at: RootAt) -> Offer:
        """Decide about a peer witness's view (it must carry that witness's cosignature)."""
        signed = self.open(note)
        mine = next((w.verifier for w in self.trust.policy.witnesses if w.name == name), None)
        if mine is None or mine not in signed.cosigned_at():
            raise LogRefusal(f"witness {name}'s view lacks its own cosignature", code=BAD_PEER)
        cp = signed.checkpoint
        if cp.size == self.state.size:
            if cp.root != self.state.root:
                raise self._fork(note, cp.size, f"witness {name} cosigned another root at the accepted size")
            return Offer(signed, note, "same")
        if cp.size < self.state.size:
            if root_at(cp.size) != cp.root:
                raise self._fork(note, cp.size, f"witness {name} cosigned a tree of size {cp.size} contradicting ours")
            return Offer(signed, note, "older")
        return Offer(signed, note, "ahead")

    def remember(self, source: str, offer: Offer) -> None:
        """Keep a larger view from another source; checked when the accepted tree reaches its size."""
        held = self.state.pending.get(source)
        if held is not None and Note.parse(held).text == offer.signed.note.text:
            return
        self.state.pending[source] = offer.note
        if len(self.state.pending) > MAX_PENDING:
            smallest = min(self.state.pending, key=lambda k: self._size_of(self.state.pending[k]))
            del self.state.pending[smallest]

    def check_pending(self, root_at: RootAt) -> None:
        """Compare remembered larger views the accepted tree has now reached (fork if one differs)."""
        for source, note in sorted(self.state.pending.items()):
            try:
                cp = self.open(note).checkpoint
            except RejectedError:
                del self.state.pending[source]  # keys rotated since: no longer a log note
                continue
            if cp.size > self.state.size:
                continue
            del self.state.pending[source]
            if root_at(cp.size) != cp.root:
                raise self._fork(note, cp.size, f"a checkpoint of size {cp.size} seen earlier contradicts the log")

    def ahead_tiles(self, size: int) -> list[TileId]:
        """The hash tiles of the tree of ``size`` that prove it from the accepted tree (none from an empty one).

        The nodes of a consistency proof, plus the accepted tree itself when its
        size is a power of two (a node of the larger tree, which the proof
        leaves out): at most about ``2 log2(size)`` nodes, so fewer tiles.
        """
        n = self.state.size
        if not 0 < n < size:
            return []
        nodes = nodes_for_consistency(n, size)
        if n & (n - 1) == 0:
            nodes = [*range_nodes(0, n), *nodes]
        return tiles_for_nodes(nodes, size)

    def check_ahead(self, source: str, offer: Offer, read_tile: TileReader) -> None:
        """Prove a larger view from another source against the accepted tree, from that source's hash tiles.

        ``read_tile`` returns the tiles of :meth:`ahead_tiles` as the source
        served them (a full tile for a vanished partial is fine). The proof must
        rebuild the view's signed root, else the source served bad tiles
        (``peer-bad-tiles``, not sticky, no evidence). Then the root it gives at
        the accepted size must be the accepted root, else both signed notes
        are a fork (sticky).
        """
        n, m = self.state.size, offer.size
        if offer.action != "ahead" or not 0 < n < m:
            raise ValueError("check_ahead needs an 'ahead' offer larger than a non-empty accepted tree")
        read = tile_hash_reader(m, read_tile)
        try:
            proof = prove_consistency(n, m, read)
            node = tree_root(n, read) if n & (n - 1) == 0 else None
            old, new = roots_from_consistency_proof(n, m, proof, node)
        except (TileError, ProofError) as exc:
            raise LogRefusal(f"{source}: its hash tiles are unusable: {exc.message}", code=PEER_BAD_TILES) from None
        if new != offer.signed.checkpoint.root:
            raise LogRefusal(f"{source}: its hash tiles do not rebuild its checkpoint of size {m}", code=PEER_BAD_TILES)
        if old != self.state.root:
            raise self._fork(
                offer.note,
                m,
                f"{source}'s checkpoint of size {m} holds another tree at the accepted size {n} "
                "(a consistency proof from its tiles rebuilds its signed root)",
            )

    def _size_of(self, note: bytes) -> int:
        try:
            return self.open(note).checkpoint.size
        except RejectedError:
            return -1

    def _pair(self, code: str, theirs: bytes, size: int) -> list[Evidence]:
        out = [Evidence(evidence_name(code, size, theirs), theirs)]
        ours = self.state.checkpoint
        if ours is not None:
            out.insert(0, Evidence(evidence_name(code, self.state.size, ours), ours))
        return out

    def _fork(self, theirs: bytes, size: int, message: str) -> LogRefusal:
        return LogRefusal(message, code=FORK, evidence=self._pair(FORK, theirs, size), sticky=True)

    def raise_alarm(self, refusal: LogRefusal) -> Alarm:
        """Record a sticky refusal (the first one stays: it is the one that explains)."""
        if self.state.alarm is None:
            names = tuple(e.name for e in refusal.evidence)
            self.state.alarm = Alarm(refusal.code, refusal.message, self.clock(), names)
        return self.state.alarm

    # -- extending -------------------------------------------------------
    def entry_tiles(self, size: int) -> list[TileId]:
        """Entry bundles to fetch to go from the accepted size to ``size`` (from the partial one on)."""
        out: list[TileId] = []
        for n in range(self.state.size >> TILE_HEIGHT, (size + TILE_WIDTH - 1) >> TILE_HEIGHT):
            width = min(TILE_WIDTH, size - (n << TILE_HEIGHT))
            out.append(TileId(ENTRIES, n, width))
        return out

    def extend(self, offer: Offer, fetched: Mapping[TileId, bytes | EntryTail], builder: TreeBuilder) -> Extension:
        """Append the fetched entries to ``builder`` (resumed at the accepted size); the root must match.

        ``fetched`` holds each of :meth:`entry_tiles`: the whole bundle, or for
        the first one (which starts with entries already accepted) the byte
        range of the new entries. ``builder`` is spoiled when this raises:
        resume a new one.
        """
        if offer.action != "extend" or builder.size != self.state.size:
            raise ValueError("extend needs an 'extend' offer and a builder at the accepted size")
        own_partial = builder.partial_entries()
        new: list[bytes] = []
        for tile in self.entry_tiles(offer.size):
            data = fetched.get(tile)
            if data is None:
                raise LogRefusal(f"entry bundle {tile.path()} was not fetched", code=BAD_TILE)
            skip = max(0, self.state.size - tile.start)
            if isinstance(data, EntryTail) and data.offset:
                new.extend(_tail_entries(tile, skip, data))
                continue
            body = data.data if isinstance(data, EntryTail) else data
            try:
                entries = decode_entry_bundle(body, tile.width)
            except TileError as exc:
                raise LogRefusal(f"entry bundle {tile.path()}: {exc.message}", code=BAD_TILE) from None
            if skip and entries[:skip] != own_partial[:skip]:
                raise LogRefusal(f"entry bundle {tile.path()} differs from the accepted entries", code=BAD_TILE)
            new.extend(entries[skip:])
        leaves = self.contents.parse_new(new)
        try:
            builder.extend(new)
        except TileError as exc:
            raise LogRefusal(f"log entries: {exc.message}", code=BAD_TILE) from None
        if builder.root() != offer.signed.checkpoint.root:
            raise LogRefusal(
                f"the entries up to size {offer.size} do not rebuild the checkpoint's root "
                "(tampered entries, or a log that contradicts the accepted one)",
                code=BAD_TILE,
            )
        return Extension(offer, builder.flush(), tuple(leaves), builder.compact_range().hashes)

    def accept(self, offer: Offer, extension: Extension | None = None) -> None:
        """The offer is the new accepted view (after its tiles are written; save the state next)."""
        st = self.state
        cp = offer.signed.checkpoint
        if extension is not None:
            self.contents.apply(extension.leaves)
            now = self.clock()
            st.garbage.extend((d, now) for d in extension.batch.garbage_dirs())
        if self.contents.size != cp.size:
            raise ValueError("accepting a checkpoint whose leaves were not added")
        if cp.size != st.size or cp.root != st.root:
            st.cosigned = None
            st.witness_note = None
        st.size, st.root = cp.size, cp.root
        if extension is not None:
            st.compact = extension.compact
        old = st.checkpoint
        st.checkpoint = offer.note
        if offer.action == "same" and old is not None:
            with contextlib.suppress(RejectedError):  # keep the cosignatures gathered so far
                st.checkpoint = merge_cosignatures(offer.note, [old], self._logs(), self._witnesses())

    # -- the served index -------------------------------------------------
    def check_leaves(self, served: ServedIndex) -> None:
        """The accepted leaves against the served index; raises :class:`LogRefusal` (not sticky)."""
        c = self.contents
        last = c.last
        if last is None:
            raise LogRefusal("the log is empty", code=INDEX_UNLOGGED)
        if last.kind is not LeafKind.INDEX:
            raise LogRefusal(f"the log's last leaf ({c.size - 1}) is not an index leaf", code=BAD_LAST_LEAF)
        if last.id_hex != served.payload_sha256:
            if served.payload_sha256 in c.indexes:
                raise LogRefusal("the log already holds a newer index than the one served", code=LOG_BEHIND)
            raise LogRefusal("the served index is not the log's last leaf", code=INDEX_UNLOGGED)
        _check_sets(c, served)

    # -- cosigning -------------------------------------------------------
    def cosign_due(self) -> bool:
        """Whether to cosign the accepted checkpoint now.

        New, own cosignature an hour old, or the witness view no longer opens
        under the newest root (its log key was revoked since: the upstream's
        re-signed note of the same tree is cosigned at once).
        """
        st = self.state
        if self.signer is None or st.alarm is not None or st.checkpoint is None or st.size == 0:
            return False
        if st.cosigned is None or self.clock() - st.cosigned >= RECOSIGN_AFTER or st.witness_note is None:
            return True
        try:
            self.open(st.witness_note)
        except RejectedError:
            return True
        return False

    def cosign(self) -> bytes:
        """The witness view: the accepted checkpoint's log signatures and a new own cosignature."""
        st = self.state
        if self.signer is None or st.checkpoint is None or st.alarm is not None:
            raise ValueError("nothing to cosign")
        signed = self.open(st.checkpoint)
        now = self.clock()
        cosig = self.signer.cosign(signed.note.text, now)
        note = Note(signed.note.text, (*(v.signature for v in signed.log_signatures), cosig)).to_bytes()
        st.witness_note, st.cosigned = note, now
        return note

    def merged(self, others: Iterable[bytes]) -> bytes:
        """The accepted checkpoint with the newest cosignature of each witness merged in.

        ``others`` may hold notes of other checkpoints: only those with the same body count.
        """
        st = self.state
        if st.checkpoint is None:
            raise ValueError("no accepted checkpoint")
        text = Note.parse(st.checkpoint).text
        same = [n for n in [*([st.witness_note] if st.witness_note else []), *others] if Note.parse(n).text == text]
        return merge_cosignatures(st.checkpoint, same, self._logs(), self._witnesses())

    def counted(self, signed: SignedCheckpoint) -> dict[str, int]:
        """Policy witnesses whose cosignature counts now (not older than max_age, not far ahead)."""
        now = self.clock()
        fresh = self.trust.policy.witnesses_of(signed, not_before=now - self.trust.max_age)
        return {name: t for name, t in fresh.items() if t <= now + FUTURE_SKEW}

    def quorum(self, note: bytes) -> bool:
        """Whether ``note``'s counted cosignatures meet the root's policy."""
        return self.trust.policy.satisfied(self.counted(self.open(note)))

    def stale(self, offer: Offer) -> bool:
        """The upstream's note is the accepted one again and every cosignature on it is beyond max_age."""
        times = offer.signed.cosigned_at()
        if offer.action != "same" or not times:
            return False
        return max(times.values()) < self.clock() - self.trust.max_age

    # -- proofs ------------------------------------------------------------
    def bundle_leaves(self) -> Mapping[str, int]:
        """Bundle id -> leaf index of every logged bundle."""
        return self.contents.bundles

    def index_leaf(self, served: ServedIndex) -> int | None:
        """The position of the served index's leaf when it is the accepted tree's last leaf."""
        last = self.contents.last
        if last is None or last.kind is not LeafKind.INDEX or last.id_hex != served.payload_sha256:
            return None
        return self.contents.size - 1


def _check_sets(c: LogContents, served: ServedIndex) -> None:
    """Checks 2 to 4: set comparisons in C, no set built unless one fails; raises the first failure."""
    logged = c.bundles.keys()
    if not logged <= served.listed:
        bid = min(logged - served.listed)
        raise LogRefusal(f"logged bundle {bid[:16]} is not in the served index", code=UNLISTED_BUNDLE)
    missing = (served.wanted - served.held) & logged
    if missing:
        raise LogRefusal(f"logged bundle {min(missing)[:16]} is not held", code=BUNDLE_MISSING)
    retractions = c.retractions.keys()
    if not retractions <= served.retracted:
        bid = min(retractions - served.retracted)
        raise LogRefusal(f"the served index hides the logged retraction of {bid[:16]}", code=HIDDEN_RETRACTION)
    if len(served.listed) != len(logged):  # logged <= listed already: equal sizes mean equal sets
        bid = min(served.listed - logged)
        raise LogRefusal(f"bundle {bid[:16]} is listed but was never logged", code=UNLOGGED_BUNDLE)
    if not served.retracted <= retractions:
        bid = min(served.retracted - retractions)
        raise LogRefusal(f"the retraction of {bid[:16]} was never logged", code=UNLOGGED_RETRACTION)


def _tail_entries(tile: TileId, skip: int, got: EntryTail) -> list[bytes]:
    """The new entries of a ranged entry bundle: the range must start at entry ``skip`` and run to its end."""
    width = TILE_WIDTH if got.whole else tile.width
    if got.offset != skip * ENTRY_BYTES or got.total != width * ENTRY_BYTES or len(got.data) != got.total - got.offset:
        raise LogRefusal(
            f"entry bundle {tile.path()}: the upstream sent bytes {got.offset}-{got.offset + len(got.data) - 1}"
            f"/{got.total}, want {skip * ENTRY_BYTES}-{width * ENTRY_BYTES - 1}/{width * ENTRY_BYTES}",
            code=BAD_TILE,
        )
    try:
        entries = decode_entry_bundle(got.data)
    except TileError as exc:
        raise LogRefusal(f"entry bundle {tile.path()}: {exc.message}", code=BAD_TILE) from None
    if len(entries) != width - skip:
        raise LogRefusal(
            f"entry bundle {tile.path()}: the byte range does not hold {width - skip} entries", code=BAD_TILE
        )
    return entries[: tile.width - skip]


__all__ = [
    "Alarm",
    "EntryTail",
    "Evidence",
    "Extension",
    "LogContents",
    "LogRefusal",
    "LogWitness",
    "Offer",
    "ServedIndex",
    "WitnessState",
]
