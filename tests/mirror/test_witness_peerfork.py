"""A larger view from a peer or a second upstream is proved from that source's hash tiles.

A mirror fed a split view by its only upstream used to cosign it while a
peer's larger, real view waited to be compared until the mirror's own tree
reached its size. Now the mirror fetches the source's hash tiles for a
consistency proof from its accepted size to the source's, computes both roots
from it and decides:

- the proof rebuilds the source's signed root and gives the accepted root at
  the accepted size: an honest larger view (``ahead``);
- it rebuilds the signed root but gives another root at the accepted size:
  the log key signed two histories (``fork``, sticky, both notes kept);
- it does not rebuild the signed root: the source served bad tiles
  (``peer-bad-tiles``, its status only, no evidence);
- a vanished partial tile falls back to the full tile.

First the table on :class:`mirror.witness.LogWitness` alone, then the same
rows through real syncs: a peer witness over HTTP and a second upstream.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import bundle_leaf
from tamizdat.bundles.tlog.note import Note
from tamizdat.bundles.tlog.tiles import TileId, decode_entry_bundle, tile_layout
from tamizdat.bundles.tlog.witness import origin_hash
from tamizdat.mirror.app import health
from tamizdat.mirror.sync import Mirror
from tamizdat.mirror.witness import LogContents, LogRefusal, LogWitness, WitnessState

from .conftest import MirrorFactory
from .simulator import Simulator, key
from .test_witness_sync import vkey, witness_view
from .test_witness_unit import ORIGIN, Log, _id, _peer_view, make_mirror, trust

Server = Callable[[web.Application], Awaitable[TestServer]]

# -- the table on the witness alone -------------------------------------------------------------------


@dataclass
class View:
    """What a source shows: its signed note and the hash tiles it serves (path -> bytes)."""

    note: bytes
    tiles: dict[str, bytes]


def grow(rounds: list[int], *, forged_at: int | None = None) -> Log:
    """A log after these publishing rounds; ``forged_at``: that round also logs a bundle the other history lacks."""
    lg = Log()
    for i, new in enumerate(rounds):
        lg.round(new, raw=[bundle_leaf(_id(f"forged {i}")).to_bytes()] if i == forged_at else ())
    return lg


def flip(tiles: dict[str, bytes], path: str) -> dict[str, bytes]:
    out = dict(tiles)
    body = bytearray(out[path])
    body[len(body) // 2] ^= 1
    out[path] = bytes(body)
    return out


def without_partials(tiles: dict[str, bytes], size: int) -> dict[str, bytes]:
    """The tiles of a source that grew on and collected the partials of ``size`` whose full tile exists."""
    gone = {t.path() for t in tile_layout(size) if t.is_partial and t.full().path() in tiles}
    return {p: b for p, b in tiles.items() if p not in gone}


def honest(lg: Log, accepted: list[int]) -> View:
    lg.round(5)
    return View(lg.note(), lg.tiles)


def honest_across_tiles(lg: Log, accepted: list[int]) -> View:
    lg.round(600)
    return View(lg.note(), lg.tiles)


def honest_partial_vanished(lg: Log, accepted: list[int]) -> View:
    lg.round(20)
    note, size = lg.note(), lg.tree.size
    lg.round(300)  # the source grew past the next boundary and dropped its old partial tiles
    return View(note, without_partials(lg.tiles, size))


def forked(lg: Log, accepted: list[int]) -> View:
    other = grow([*accepted, 5], forged_at=len(accepted) - 1)
    return View(other.note(), other.tiles)


def forked_across_tiles(lg: Log, accepted: list[int]) -> View:
    other = grow([*accepted, 600], forged_at=0)
    return View(other.note(), other.tiles)


def forked_partial_vanished(lg: Log, accepted: list[int]) -> View:
    other = grow([*accepted, 20], forged_at=len(accepted) - 1)
    note, size = other.note(), other.tree.size
    other.round(300)
    return View(note, without_partials(other.tiles, size))


def bad_tile(lg: Log, accepted: list[int]) -> View:
    size = lg.tree.size
    lg.round(40)
    m = make_mirror()  # only for the tile list: which tiles the proof reads
    m.w.state.size = size
    path = m.w.ahead_tiles(lg.tree.size)[-1].path()
    return View(lg.note(), flip(lg.tiles, path))


def short_tile(lg: Log, accepted: list[int]) -> View:
    lg.round(40)
    tiles = {p: b[:-1] for p, b in lg.tiles.items()}
    return View(lg.note(), tiles)


def fork_tiles_under_the_real_root(lg: Log, accepted: list[int]) -> View:
    """The forked history's tiles under the real log's signed checkpoint: bad tiles, not evidence."""
    lg.round(5)
    other = grow([*accepted, 4], forged_at=len(accepted) - 1)  # the same size: one forged leaf, one fewer later
    assert other.tree.size == lg.tree.size
    return View(lg.note(), other.tiles)


def real_tiles_under_a_forged_root(lg: Log, accepted: list[int]) -> View:
    """A signed root the tiles do not rebuild (a fork the source cannot back): bad tiles, not evidence."""
    lg.round(5)
    return View(lg.note(root=hashlib.sha256(b"unbacked").digest()), lg.tiles)


ACCEPTED = {  # publishing rounds -> accepted sizes: 1, 4 and 256 are powers of two (the proof omits the old tree)
    "1": [0],
    "4": [3],
    "6": [3, 1],
    "256": [255],
    "300": [255, 43],
}

ROWS = [
    (honest, None),
    (honest_across_tiles, None),
    (honest_partial_vanished, None),
    (forked, "fork"),
    (forked_across_tiles, "fork"),
    (forked_partial_vanished, "fork"),
    (bad_tile, "peer-bad-tiles"),
    (short_tile, "peer-bad-tiles"),
    (fork_tiles_under_the_real_root, "peer-bad-tiles"),
    (real_tiles_under_a_forged_root, "peer-bad-tiles"),
]


@pytest.mark.parametrize("accepted", list(ACCEPTED), ids=lambda s: f"n={s}")
@pytest.mark.parametrize(("source", "code"), ROWS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_larger_view_table(accepted: str, source: Callable[[Log, list[int]], View], code: str | None) -> None:
    rounds = ACCEPTED[accepted]
    lg = grow(rounds)
    m = make_mirror()
    m.feed(lg.note(), lg.tiles)
    assert m.w.state.size == int(accepted)
    before = (m.w.state.size, m.w.state.root, m.w.state.checkpoint)
    view = source(lg, rounds)
    offer = m.w.peer_view("b", _peer_view(view.note), root_at=m.root_at)
    assert offer.action == "ahead"
    reads: list[TileId] = []

    def read(tile: TileId) -> bytes:  # as mirror/logsync.py fetches: a vanished partial falls back to the full tile
        reads.append(tile)
        return view.tiles.get(tile.path()) or view.tiles[tile.full().path()]

    tiles = m.w.ahead_tiles(offer.size)
    if code is None:
        m.w.check_ahead("witness b", offer, read)
    else:
        with pytest.raises(LogRefusal) as info:
            m.w.check_ahead("witness b", offer, read)
        err = info.value
        assert err.code == code, err
        if code == "fork":  # both signed notes: ours as accepted, then theirs verbatim
            assert err.sticky and [e.note for e in err.evidence] == [before[2], offer.note]
            assert err.evidence[1].name.startswith(f"fork-{offer.size}-")
        else:
            assert not err.sticky and not err.evidence
    assert set(reads) <= set(tiles)  # only the tiles it asked for
    assert (m.w.state.size, m.w.state.root, m.w.state.checkpoint) == before  # nothing moves


def witness_at(size: int) -> LogWitness:
    contents = LogContents()
    contents.size = size
    return LogWitness(trust(), WitnessState(ORIGIN, size=size), contents, lambda: 0)


def test_tiles_per_larger_view_are_bounded() -> None:
    """At most about 2 log2(m) tiles per source and round, whatever the sizes (up to 2^40 leaves)."""
    rng = random.Random(8)
    cases = [(1, 2), (255, 256), (256, 257), (1 << 20, (1 << 20) + 1), (999_000, 1_000_000)]
    cases += [tuple(sorted(rng.sample(range(1, 1 << rng.randint(2, 40)), 2))) for _ in range(2000)]  # type: ignore[misc]
    worst = 0
    for n, m in cases:
        tiles = witness_at(n).ahead_tiles(m)
        assert 0 < len(tiles) <= 2 * m.bit_length(), (n, m, tiles)
        worst = max(worst, len(tiles))
    assert len(witness_at(999_000).ahead_tiles(1_000_000)) <= 5
    assert witness_at(0).ahead_tiles(10) == [] and witness_at(10).ahead_tiles(10) == []
    assert worst <= 12, worst


# -- the same rows through real syncs -------------------------------------------------------------------


PEER_KEY = CosignatureSigner("b", key(77))


class Peer:
    """A peer witness's public tree over HTTP: its witness view and hash tiles (path -> bytes); 404 otherwise."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            rel = request.match_info["rel"]
            self.requests.append(rel)
            body = self.files.get(rel)
            if body is None:
                raise web.HTTPNotFound()
            return web.Response(body=body)

        app = web.Application()
        app.router.add_get("/{rel:.*}", handle)
        return app

    def tile_requests(self) -> list[str]:
        return [r for r in self.requests if r.startswith("tlog/tile/")]


def entries_of(sim: Simulator) -> list[bytes]:
    out: list[bytes] = []
    for tile in tile_layout(sim.tree.size, entries=True):
        if tile.is_entries:
            out += decode_entry_bundle(sim.files[f"tlog/{tile.path()}"], tile.width)
    return out


def larger_tree(sim: Simulator, *, more: int, fork: bool, grow_to: int = 0) -> tuple[bytes, dict[str, bytes]]:
    """A tree larger than the publisher's by ``more`` leaves (``fork``: its last leaf so far differs), signed
    with the log key; ``grow_to``: the source grew on to this size and dropped the partial tiles of the first.
    Returns the signed note and the hash tiles under ``tlog/``."""
    entries = entries_of(sim)
    if fork:
        entries[-1] = bundle_leaf(_id("split")).to_bytes()
    entries += [bundle_leaf(_id(f"more {i}")).to_bytes() for i in range(more)]
    tree = TreeBuilder()
    tree.extend(entries)
    files = dict(tree.flush().files())
    note = sim.sign_checkpoint(tree.size, tree.root())
    if grow_to:
        size = tree.size
        tree.extend(bundle_leaf(_id(f"later {i}")).to_bytes() for i in range(grow_to - size))
        files = without_partials({**files, **dict(tree.flush().files())}, size)
    return note, {f"tlog/{p}": b for p, b in files.items() if not p.startswith("tile/entries/")}


def cosigned(note: bytes) -> bytes:
    n = Note.parse(note)
    return n.with_signatures([PEER_KEY.cosign(n.text, int(time.time()))]).to_bytes()


async def mirror_with_peer(
    sim: Simulator, url: str, make_mirror: MirrorFactory, aiohttp_server: Server
) -> tuple[Mirror, Peer]:
    """Mirror ``a`` syncs from ``url``, witness ``b`` has a URL (quorum 2); ``a`` accepted the log."""
    peer = Peer()
    server = await aiohttp_server(peer.app())
    m = make_mirror(sim.root_keyid, [url])
    policy = f"witness a {vkey(m)}\nwitness b {PEER_KEY.verifier.vkey()} {server.make_url('/')}\n"
    sim.set_policy(policy + "group both 2 a b\nquorum both\n")
    sim.publish()
    s = await m.sync()
    assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["size"] == sim.tree.size, s.log
    return m, peer


@pytest.fixture
def logsim(tmp_path: Path) -> Simulator:
    s = Simulator(tmp_path / "sim", log=True)
    s.add(3)
    s.publish()
    return s


def peer_source(report: dict[str, object]) -> dict[str, object]:
    sources = report["sources"]
    assert isinstance(sources, list)
    return next(s for s in sources if s["source"] == "witness b")


@pytest.mark.parametrize(
    ("kind", "state", "status"),
    [
        ("honest", "ok", "ahead"),
        ("honest-partial-vanished", "ok", "ahead"),
        ("forked", "fork", "fork"),
        ("bad-tiles", "ok", "peer-bad-tiles"),
        ("no-tiles", "ok", "tiles-unavailable"),
    ],
)
async def test_peer_with_a_larger_view(
    logsim: Simulator, make_mirror: MirrorFactory, aiohttp_server: Server, kind: str, state: str, status: str
) -> None:
    sim = logsim
    with sim.serve() as url:
        m, peer = await mirror_with_peer(sim, url, make_mirror, aiohttp_server)
        accepted = sim.files["tlog/checkpoint"]
        own_view = witness_view(m, sim).read_bytes()
        vanished = kind == "honest-partial-vanished"
        note, tiles = larger_tree(sim, more=300 if vanished else 7, fork=kind == "forked", grow_to=1000 * vanished)
        if kind == "bad-tiles":
            tiles = {p: b[:-32] + bytes(32) for p, b in tiles.items()}  # the last hash of every tile zeroed
        if kind != "no-tiles":
            peer.files.update(tiles)
        view = cosigned(note)
        peer.files[f"tlog/witness/{origin_hash(sim.origin)}/checkpoint"] = view
        size = int(Note.parse(note).text.split("\n")[1])

        s = await m.sync()
        assert s.log is not None and s.log["state"] == state, s.log
        assert peer_source(s.log) == {"source": "witness b", "size": size, "status": status}
        fetched = peer.tile_requests()
        assert 0 < len(fetched) <= 2 * size.bit_length(), fetched
        if vanished:  # a partial asked for, gone (404), then its full tile
            partials = [r for r in fetched if ".p/" in r]
            assert partials and all(r.split(".p/")[0] in fetched for r in partials), fetched
        if state == "fork":  # both signed notes: ours as accepted (with our cosignature), the peer's verbatim
            kept = [p.read_bytes() for p in (m.data.state / "tlog-evidence").iterdir()]
            assert view in kept and len(kept) == 2, kept
            assert sorted(Note.parse(n).text for n in kept) == sorted(Note.parse(n).text for n in (accepted, view))
            assert witness_view(m, sim).read_bytes() == own_view  # nothing more was cosigned
            assert health(m, 300)["log"]["state"] == "fork"
            peer.files.clear()  # sticky: gone from the peer, the alarm stays
            s = await m.sync()
            assert s.log is not None and s.log["state"] == "fork", s.log
            return
        assert s.log is not None and s.log["evidence"] == 0 and not s.log["problems"], s.log
        # Once per (source, its view, our view): the next round fetches no tile.
        peer.requests.clear()
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok", s.log
        if status == "tiles-unavailable":  # not remembered as a verdict: asked again
            assert peer.tile_requests()
        else:
            assert peer.tile_requests() == [] and peer_source(s.log)["status"] == status


async def test_second_upstream_with_a_larger_forked_log(
    logsim: Simulator, make_mirror: MirrorFactory, tmp_path: Path
) -> None:
    """A larger checkpoint from a second upstream (a directory) is proved from that upstream's tiles too."""
    sim = logsim
    with sim.serve() as url:
        m0 = make_mirror(sim.root_keyid, [url])
        sim.set_policy(f"witness a {vkey(m0)}\nquorum a\n")
        sim.publish()
        assert (await m0.sync()).log["state"] == "ok"  # type: ignore[index]
        stick = tmp_path / "stick"
        for kind in ("honest", "forked"):
            note, tiles = larger_tree(sim, more=9, fork=kind == "forked")
            for rel, body in {**tiles, "tlog/checkpoint": note}.items():
                (stick / rel).parent.mkdir(parents=True, exist_ok=True)
                (stick / rel).write_bytes(body)
            m = Mirror(m0.data, root_keyid=sim.root_keyid, upstreams=[url, str(stick)], config=m0.config)
            s = await m.sync()
            assert s.ok and s.upstream == url
            assert s.log is not None, s
            second = next(x for x in s.log["sources"] if x["source"] == "directory")
            if kind == "honest":
                assert s.log["state"] == "ok" and second["status"] == "ahead", s.log
            else:
                assert s.log["state"] == "fork" and second["status"] == "fork", s.log
                names = sorted(p.name for p in (m.data.state / "tlog-evidence").iterdir())
                assert len(names) == 2 and all(n.startswith("fork-") for n in names), names
