"""mirror/witness.py alone: a table of log offers and served indexes, each with its decision.

A :class:`Log` plays the publisher's log (leaves, tiles, checkpoints signed
with a log key); the witness is fed its bytes exactly as ``mirror.logsync``
would feed them, with its own tiles kept in a dict. Hash tiles are never
fetched from upstream (the witness rebuilds them from the entries), so a
tampered hash tile cannot reach it; tampered entry bundles are in the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind, bundle_leaf, retraction_leaf
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.tiles import TileId, root_from_tiles
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import RejectedError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.mirror.witness import (
    RECOSIGN_AFTER,
    LogContents,
    LogRefusal,
    LogWitness,
    Offer,
    ServedIndex,
    WitnessState,
)

ORIGIN = "ab" * 32 + "/log"
T = 1_800_000_000
MAX_AGE = 7 * 24 * 3600


def _key(seed: int) -> SigningKey:
    return SigningKey.from_seed(bytes([seed]) * 32)


LOG_KEY = _key(1)
ME = CosignatureSigner("mirror-a", _key(2))
PEER = CosignatureSigner("mirror-b", _key(3))
OTHER = CosignatureSigner("mirror-c", _key(4))


def _id(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def trust(quorum: str = "quorum g\n") -> LogTrust:
    log_vkey = Ed25519Signer(ORIGIN, LOG_KEY).verifier.vkey()
    text = (
        f"log {log_vkey}\n"
        f"witness a {ME.verifier.vkey()}\n"
        f"witness b {PEER.verifier.vkey()} https://b.example/\n"
        f"witness c {OTHER.verifier.vkey()}\n"
        "group g 2 a b c\n"
    )
    return LogTrust(ORIGIN, Policy.parse(text + quorum), MAX_AGE)


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> int:
        return self.now


@dataclass
class Log:
    """The publisher's log as an origin keeps it: leaves per round, tiles, signed checkpoints."""

    tree: TreeBuilder = field(default_factory=TreeBuilder)
    tiles: dict[str, bytes] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    index_payload: bytes = b""
    rounds: int = 0

    def round(
        self,
        new: int = 2,
        *,
        retract: Sequence[str] = (),
        skip: Sequence[str] = (),
        after: Sequence[Leaf] = (),
        raw: Sequence[bytes] = (),
    ) -> bytes:
        """One publishing round: ``new`` bundles, retractions, the index leaf last; returns the note."""
        self.rounds += 1
        leaves: list[bytes] = []
        for n in range(new):
            bid = _id(f"{self.rounds}-{n}")
            self.listed.append(bid)
            if bid not in skip:
                leaves.append(bundle_leaf(bid).to_bytes())
        for bid in retract:
            self.retracted.append(bid)
            if bid not in skip:
                leaves.append(retraction_leaf(bid).to_bytes())
        leaves.extend(raw)
        self.index_payload = f"index {self.rounds}".encode()
        leaves.append(Leaf(LeafKind.INDEX, hashlib.sha256(self.index_payload).digest()).to_bytes())
        leaves.extend(leaf.to_bytes() for leaf in after)
        self.tree.extend(leaves)
        self.tiles.update(self.tree.flush().files())
        return self.note()

    def note(self, size: int | None = None, root: bytes | None = None) -> bytes:
        cp = Checkpoint(ORIGIN, self.tree.size if size is None else size, root or self.tree.root())
        return sign_checkpoint(cp, [Ed25519Signer(ORIGIN, LOG_KEY)])

    def served(self, **changes: Any) -> ServedIndex:
        listed = frozenset(self.listed)
        retracted = frozenset(self.retracted)
        base = ServedIndex(
            payload_sha256=hashlib.sha256(self.index_payload).hexdigest(),
            listed=listed,
            retracted=retracted,
            wanted=listed - retracted,
            held=listed - retracted,
        )
        return replace(base, **changes)


@dataclass
class Mirror:
    """The witness plus the tiles it wrote (what ``mirror.logsync`` keeps on disk)."""

    w: LogWitness
    own: dict[str, bytes] = field(default_factory=dict)

    def read(self, tile: TileId) -> bytes:
        """An own tile; a partial falls back to the full tile or a wider partial (as logsync reads)."""
        for path in (tile.path(), tile.full().path()):
            if path in self.own:
                return self.own[path]
        wider = [TileId.parse(p) for p in self.own if p.startswith(tile.partial_dir() + "/")]
        best = min((t for t in wider if t.width > tile.width), key=lambda t: t.width)
        return self.own[best.path()][: tile.width * 32]

    def root_at(self, size: int) -> bytes:
        return self.w.state.root if size == self.w.state.size else root_from_tiles(size, self.read)

    def feed(self, note: bytes, tiles: dict[str, bytes], *, primary: bool = True) -> Offer:
        offer = self.w.offer(note, root_at=self.root_at, primary=primary)
        if offer.action == "extend":
            fetched = {t: tiles.get(t.path(), tiles.get(t.full().path(), b"")) for t in self.w.entry_tiles(offer.size)}
            builder = TreeBuilder.resume(self.w.state.size, self.read, root=self.w.state.root)
            ext = self.w.extend(offer, fetched, builder)
            self.own.update(ext.batch.files())
            self.w.accept(offer, ext)
        elif offer.action == "same" and primary:
            self.w.accept(offer)
        return offer


def make_mirror(clock: Clock | None = None, quorum: str = "quorum g\n") -> Mirror:
    return Mirror(LogWitness(trust(quorum), WitnessState(ORIGIN), LogContents(), clock or Clock(), ME))


@pytest.fixture
def log() -> Log:
    lg = Log()
    lg.round(3)
    return lg


# -- the table of offers -----------------------------------------------------------------------


def tamper_entries(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    note = lg.round(2)
    tiles = dict(lg.tiles)
    path = TileId(-1, 0, lg.tree.size).path()
    body = bytearray(tiles[path])
    body[-1] ^= 1
    tiles[path] = bytes(body)
    return note, tiles


def rewrite_accepted_prefix(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    """The upstream's entry bundle changes an entry the mirror already accepted (root still signed)."""
    note = lg.round(1)
    tiles = dict(lg.tiles)
    path = TileId(-1, 0, lg.tree.size).path()
    body = bytearray(tiles[path])
    body[5] ^= 1
    tiles[path] = bytes(body)
    return note, tiles


def fork_same_size(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    return lg.note(root=hashlib.sha256(b"other tree").digest()), lg.tiles


def fork_smaller(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    return lg.note(size=2, root=hashlib.sha256(b"other tree").digest()), lg.tiles


def rollback(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    old = lg.note()
    lg.round(1)
    m.feed(lg.note(), lg.tiles)
    return old, lg.tiles


def unparseable_leaf(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    return lg.round(1, raw=[b"\x09" * 34]), lg.tiles


def bundle_logged_twice(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    return lg.round(1, raw=[bundle_leaf(lg.listed[0]).to_bytes()]), lg.tiles


def retraction_of_unlogged(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    return lg.round(1, raw=[retraction_leaf(_id("never")).to_bytes()]), lg.tiles


def unknown_log_key(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    cp = Checkpoint(ORIGIN, lg.tree.size, lg.tree.root())
    return sign_checkpoint(cp, [Ed25519Signer(ORIGIN, _key(9))]), lg.tiles


def other_origin(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    cp = Checkpoint("cd" * 32 + "/log", lg.tree.size, lg.tree.root())
    return sign_checkpoint(cp, [Ed25519Signer(cp.origin, LOG_KEY)]), lg.tiles


def forged_cosignature(lg: Log, m: Mirror) -> tuple[bytes, dict[str, bytes]]:
    note = Note.parse(lg.round(1))
    sig = PEER.cosign(note.text, T)
    bad = type(sig)(sig.name, sig.key_id, sig.signature[:-1] + bytes([sig.signature[-1] ^ 1]))
    return note.with_signatures([bad]).to_bytes(), lg.tiles


Attack = Callable[[Log, Mirror], tuple[bytes, dict[str, bytes]]]


@pytest.mark.parametrize(
    ("attack", "code", "sticky"),
    [
        (tamper_entries, "bad-tile", False),
        (rewrite_accepted_prefix, "bad-tile", False),
        (fork_same_size, "fork", True),
        (fork_smaller, "fork", True),
        (rollback, "rollback", False),
        (unparseable_leaf, "bad-log-entry", False),
        (bundle_logged_twice, "bad-log-entry", False),
        (retraction_of_unlogged, "bad-log-entry", False),
        (unknown_log_key, "unverified-note", False),
        (other_origin, "origin-mismatch", False),
        (forged_cosignature, "bad-note-signature", False),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_offer_table(log: Log, attack: Attack, code: str, sticky: bool) -> None:
    m = make_mirror()
    m.feed(log.note(), log.tiles)
    before = (m.w.state.size, m.w.state.root, m.w.state.checkpoint)
    note, tiles = attack(log, m)
    accepted = (m.w.state.size, m.w.state.root, m.w.state.checkpoint)
    with pytest.raises(Exception) as info:
        m.feed(note, tiles)
    err = info.value
    assert getattr(err, "code", None) == code, err
    if isinstance(err, LogRefusal):
        assert err.sticky is sticky
        if code in ("fork", "rollback"):
            assert len(err.evidence) == 2 and err.evidence[0].note == accepted[2] and err.evidence[1].note == note
    # The accepted view does not move on a refusal.
    assert (m.w.state.size, m.w.state.root, m.w.state.checkpoint) == accepted
    assert accepted[0] >= before[0]


def test_good_extensions_across_tile_boundaries() -> None:
    lg = Log()
    m = make_mirror()
    sizes = []
    for n in (3, 250, 1, 300, 0, 600):
        note = lg.round(n)
        offer = m.feed(note, lg.tiles)
        assert offer.action == "extend"
        sizes.append(m.w.state.size)
        m.w.check_leaves(lg.served())
        # The mirror's own tiles are byte-identical to the origin's (built, never fetched).
        for path, body in m.own.items():
            assert lg.tiles[path] == body, path
    assert sizes[-1] == lg.tree.size > 1024
    assert m.w.state.compact == lg.tree.compact_range().hashes
    assert m.feed(lg.note(), lg.tiles).action == "same"


def test_vanished_partial_falls_back_to_the_full_entry_bundle() -> None:
    lg = Log()
    m = make_mirror()
    m.feed(lg.round(10), lg.tiles)
    note = lg.round(300)
    tiles = {k: v for k, v in lg.tiles.items() if ".p/" not in k or not k.startswith("tile/entries/000")}
    m.feed(note, tiles)  # the feed helper falls back like logsync does
    assert m.w.state.size == lg.tree.size


def test_other_sources_compare_but_do_not_move_the_view(log: Log) -> None:
    m = make_mirror()
    m.feed(log.note(), log.tiles)
    old = log.note()
    log.round(1)
    assert m.w.offer(old, root_at=m.root_at, primary=False).action == "same"
    ahead = m.w.offer(log.note(), root_at=m.root_at, primary=False)
    assert ahead.action == "ahead" and m.w.state.size == 4
    m.w.remember("upstream 2", ahead)
    m.feed(log.note(), log.tiles)
    m.w.check_pending(m.root_at)
    assert m.w.state.pending == {}
    # A remembered larger view that turns out to contradict the log is a fork once reached.
    lying = log.note(size=log.tree.size + 1, root=hashlib.sha256(b"x").digest())
    m.w.remember("upstream 2", m.w.offer(lying, root_at=m.root_at, primary=False))
    m.feed(log.round(1), log.tiles)
    with pytest.raises(LogRefusal) as info:
        m.w.check_pending(m.root_at)
    assert info.value.code == "fork" and info.value.sticky


# -- leaves against the served index --------------------------------------------------------------


def _hide_retraction(lg: Log) -> ServedIndex:
    lg.round(1, retract=[lg.listed[0]])
    return lg.served(retracted=frozenset())


def _last_leaf_not_index(lg: Log) -> ServedIndex:
    lg.round(1, after=[bundle_leaf(_id("late"))])
    return lg.served(listed=frozenset([*lg.listed, _id("late")]))


def _unlogged_bundle(lg: Log) -> ServedIndex:
    lg.round(2, skip=[_id(f"{lg.rounds + 1}-1")])  # a bundle signed with a stolen key, listed, never logged
    return lg.served()


def _log_ahead(lg: Log) -> ServedIndex:
    served = lg.served()
    lg.round(1)
    return served  # the mirror's index is the previous one: the log already holds a newer index


def _index_not_logged(lg: Log) -> ServedIndex:
    lg.round(1)
    return lg.served(payload_sha256=hashlib.sha256(b"an index never logged").hexdigest())


def _unlisted(lg: Log) -> ServedIndex:
    lg.round(1)
    return lg.served(listed=frozenset(lg.listed[1:]), wanted=frozenset(lg.listed[1:]), held=frozenset(lg.listed[1:]))


def _not_held(lg: Log) -> ServedIndex:
    lg.round(1)
    return lg.served(held=frozenset(lg.listed[1:]))


def _retraction_not_logged(lg: Log) -> ServedIndex:
    lg.round(1, retract=[lg.listed[0]], skip=[lg.listed[0]])
    return lg.served()


def _retracted_and_superseded_are_not_held(lg: Log) -> ServedIndex:
    lg.round(1, retract=[lg.listed[0]])
    wanted = frozenset(lg.listed[2:])  # listed[1] superseded, not kept
    return lg.served(wanted=wanted, held=wanted)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_hide_retraction, "hidden-retraction"),
        (_last_leaf_not_index, "bad-last-leaf"),
        (_unlogged_bundle, "unlogged-bundle"),
        (_log_ahead, "log-behind"),
        (_index_not_logged, "index-unlogged"),
        (_unlisted, "unlisted-bundle"),
        (_not_held, "bundle-missing"),
        (_retraction_not_logged, "unlogged-retraction"),
        (_retracted_and_superseded_are_not_held, None),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)).strip("_"),
)
def test_leaves_table(log: Log, change: Callable[[Log], ServedIndex], code: str | None) -> None:
    m = make_mirror()
    served = change(log)
    m.feed(log.note(), log.tiles)
    if code is None:
        m.w.check_leaves(served)
        return
    with pytest.raises(LogRefusal) as info:
        m.w.check_leaves(served)
    assert info.value.code == code and not info.value.sticky


# -- cosigning, freshness, quorum -----------------------------------------------------------------


def test_cosign_and_recosign_after_an_hour(log: Log) -> None:
    clock = Clock()
    m = make_mirror(clock)
    assert not m.w.cosign_due()  # nothing accepted yet
    m.feed(log.note(), log.tiles)
    assert m.w.cosign_due()
    view = m.w.cosign()
    signed = open_checkpoint(view, trust().policy.log_verifiers(ORIGIN), [ME.verifier], origin=ORIGIN)
    assert signed.cosigned_at() == {ME.verifier: T}
    clock.now += RECOSIGN_AFTER - 1
    assert not m.w.cosign_due()
    m.feed(log.note(), log.tiles)  # unchanged checkpoint
    assert not m.w.cosign_due()
    clock.now += 1
    assert m.w.cosign_due()
    again = m.w.cosign()
    assert open_checkpoint(again, trust().policy.log_verifiers(ORIGIN), [ME.verifier]).cosigned_at()[ME.verifier] == (
        T + RECOSIGN_AFTER
    )
    m.feed(log.round(1), log.tiles)  # a new checkpoint is cosigned at once
    assert m.w.cosign_due()


def test_quorum_counts_only_fresh_cosignatures(log: Log) -> None:
    clock = Clock()
    m = make_mirror(clock)
    m.feed(log.note(), log.tiles)
    m.w.cosign()
    assert not m.w.quorum(m.w.merged([]))  # 1 of the 2 the group needs
    peer = Note.parse(log.note())
    stale_peer = peer.with_signatures([PEER.cosign(peer.text, T - MAX_AGE - 1)]).to_bytes()
    future_peer = peer.with_signatures([PEER.cosign(peer.text, T + 3600)]).to_bytes()
    fresh_peer = peer.with_signatures([PEER.cosign(peer.text, T - 60)]).to_bytes()
    assert not m.w.quorum(m.w.merged([stale_peer]))
    assert not m.w.quorum(m.w.merged([future_peer]))
    merged = m.w.merged([fresh_peer, stale_peer])
    assert m.w.quorum(merged)
    assert m.w.counted(m.w.open(merged)) == {"a": T, "b": T - 60}
    # Time passes: the same note stops meeting the quorum.
    clock.now += MAX_AGE
    assert not m.w.quorum(merged)


def test_stale_upstream_is_reported(log: Log) -> None:
    clock = Clock()
    m = make_mirror(clock)
    m.feed(log.note(), log.tiles)
    peer = Note.parse(log.note())
    old = peer.with_signatures([PEER.cosign(peer.text, T - MAX_AGE - 10)]).to_bytes()
    offer = m.feed(old, log.tiles)
    assert offer.action == "same" and m.w.stale(offer)
    fresh = peer.with_signatures([PEER.cosign(peer.text, T)]).to_bytes()
    assert not m.w.stale(m.feed(fresh, log.tiles))
    assert not m.w.stale(m.feed(log.round(1), log.tiles))  # moved on: not stale


def test_alarm_is_sticky_and_first_one_stays(log: Log) -> None:
    m = make_mirror()
    m.feed(log.note(), log.tiles)
    with pytest.raises(LogRefusal) as info:
        m.feed(*fork_same_size(log, m))
    alarm = m.w.raise_alarm(info.value)
    assert alarm.code == "fork" and len(alarm.evidence) == 2
    assert not m.w.cosign_due()
    later = LogRefusal("something else", code="fork", sticky=True)
    assert m.w.raise_alarm(later) is alarm


# -- peers ------------------------------------------------------------------------------------------


def _peer_view(note: bytes, signer: CosignatureSigner = PEER, at: int = T) -> bytes:
    n = Note.parse(note)
    return n.with_signatures([signer.cosign(n.text, at)]).to_bytes()


def test_peer_views(log: Log) -> None:
    m = make_mirror()
    m.feed(log.note(), log.tiles)
    m.w.cosign()
    same = m.w.peer_view("b", _peer_view(log.note()), root_at=m.root_at)
    assert same.action == "same"
    assert m.w.quorum(m.w.merged([same.note]))
    with pytest.raises(LogRefusal) as info:  # the view must carry the peer's own cosignature
        m.w.peer_view("b", _peer_view(log.note(), OTHER), root_at=m.root_at)
    assert info.value.code == "bad-peer-view"
    fork = log.note(root=hashlib.sha256(b"split").digest())
    with pytest.raises(LogRefusal) as info:
        m.w.peer_view("b", _peer_view(fork), root_at=m.root_at)
    assert info.value.code == "fork" and info.value.sticky
    assert [e.note for e in info.value.evidence][1] == _peer_view(fork)
    log.round(1)
    assert m.w.peer_view("b", _peer_view(log.note()), root_at=m.root_at).action == "ahead"


# -- state file -------------------------------------------------------------------------------------


def test_state_round_trip_and_damage(log: Log) -> None:
    m = make_mirror()
    m.feed(log.note(), log.tiles)
    m.w.cosign()
    doc = m.w.state.to_json()
    again = WitnessState.from_json(doc)
    assert again == m.w.state
    for bad in (
        {**doc, "format": 2},
        {**doc, "size": -1},
        {**doc, "root": "AAAA"},
        {**doc, "compact": doc["compact"][:-1]},
        {**doc, "cosigned": "yesterday"},
    ):
        with pytest.raises((ValueError, RejectedError)):
            WitnessState.from_json(bad)


def test_cached_proofs_equal_proofs_from_tiles() -> None:
    from tamizdat.bundles.tlog.tiles import inclusion_proof_from_tiles
    from tamizdat.mirror.logsync import ProofMaker

    lg = Log()
    m = make_mirror()
    for n in (700, 0, 90):
        m.feed(lg.round(n), lg.tiles)
        size = m.w.state.size
        prove = ProofMaker(size, m.read)
        for i in [*range(size), 3, 600, 5]:  # in order, then jumping back
            assert prove(i) == inclusion_proof_from_tiles(i, size, m.read), i
