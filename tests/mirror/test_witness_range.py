"""What a witness round downloads: only the new entries, by HTTP range, measured on the wire.

A loopback origin serves a log's files with the app's own static serving
(``server.static.StaticTree``, which answers byte ranges) behind a TCP relay
that counts every byte the server sends, headers included. The mirror's log
round (``mirror.logsync.LogSync``) then syncs 1, 10, 100 and 1,000 new leaves
from old sizes at various positions in their entry bundle: each sync moves
the checkpoint plus exactly 36 bytes per new leaf of entries, within the goal
of 3 KB + 36 B per new leaf. Upstreams that ignore ranges, partial bundles
that vanished, directories, and 206 answers that lie are in a table.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind, bundle_leaf
from tamizdat.bundles.tlog.note import Note
from tamizdat.bundles.tlog.tiles import ENTRIES, TileId
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.mirror.logsync import LogSync
from tamizdat.mirror.witness import ServedIndex
from tamizdat.server.datadir import DataDir
from tamizdat.server.httpclient import BoundedClient
from tamizdat.server.static import StaticTree

from .conftest import FAST
from .simulator import Simulator

ENTRY = 36
GOAL_BASE = 3 * 1024
NOW = 1_800_000_000
WITNESSES = [
    CosignatureSigner(f"mirror{i}.example.org/tamizdat", SigningKey.from_seed(bytes([40 + i]) * 32)) for i in range(4)
]


@dataclass
class Origin:
    """A publisher's log on disk (``public/tlog``): rounds of bundle leaves closed by an index leaf."""

    sim: Simulator
    public: Path
    tree: TreeBuilder = field(default_factory=TreeBuilder)
    bundles: list[str] = field(default_factory=list)
    index_id: str = ""
    rounds: int = 0

    def round(self, leaves: int) -> None:
        """``leaves`` new leaves (the last one the index), tiles written, a checkpoint with four cosignatures."""
        self.rounds += 1
        new = [hashlib.sha256(b"bundle %d %d" % (self.rounds, i)).hexdigest() for i in range(leaves - 1)]
        self.bundles += new
        index = hashlib.sha256(b"index %d" % self.rounds).digest()
        self.index_id = index.hex()
        self.tree.extend([*(bundle_leaf(b).to_bytes() for b in new), Leaf(LeafKind.INDEX, index).to_bytes()])
        for rel, body in self.tree.flush().files():
            path = self.public / "tlog" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        self.publish(self.tree.size, self.tree.root())

    def publish(self, size: int, root: bytes) -> None:
        note = Note.parse(self.sim.sign_checkpoint(size, root))
        signed = note.with_signatures([w.cosign(note.text, NOW) for w in WITNESSES]).to_bytes()
        (self.public / "tlog" / "checkpoint").write_bytes(signed)

    @property
    def checkpoint_bytes(self) -> int:
        return (self.public / "tlog" / "checkpoint").stat().st_size

    def served(self) -> ServedIndex:
        """The mirror's served index agreeing with the log (no bundle files: none wanted)."""
        return ServedIndex(self.index_id, frozenset(self.bundles), frozenset(), frozenset(), frozenset())


class Relay:
    """A TCP relay on 127.0.0.1 counting the bytes the server sends (status lines and headers included)."""

    def __init__(self, port: int):
        self.port = port
        self.down = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        self.down += len(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


Handler = Callable[[web.Request, bytes], web.StreamResponse]


async def serve(public: Path, entries: Handler | None = None) -> tuple[web.AppRunner, int]:
    """The static tree on 127.0.0.1; ``entries`` (if given) answers for entry bundles instead."""
    app = web.Application()
    if entries is not None:

        async def entry_bundle(request: web.Request) -> web.StreamResponse:
            path = public / "tlog" / "tile" / "entries" / request.match_info["tail"]
            if not path.is_file():
                raise web.HTTPNotFound()
            return entries(request, path.read_bytes())

        app.router.add_get("/tlog/tile/entries/{tail:.+}", entry_bundle)
    app.add_routes(StaticTree(public).routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(Simulator(tmp_path / "sim", log=True), tmp_path / "origin")


def new_logsync(tmp_path: Path, name: str = "m") -> LogSync:
    return LogSync(DataDir(tmp_path / name).create(), config=FAST, clock=lambda: NOW)


async def witness_round(ls: LogSync, origin: Origin, upstream: str) -> dict[str, Any]:
    async with BoundedClient(FAST.client_config()) as client:
        report = await ls.run(client, origin.sim.root, upstream, [], origin.served)
    assert report is not None
    return report


# -- bytes on the wire ----------------------------------------------------------------------------


async def test_bytes_per_sync_on_the_wire(origin: Origin, tmp_path: Path) -> None:
    origin.round(1000)  # old size 1000: 232 entries into bundle 3
    runner, port = await serve(origin.public)
    relay = Relay(port)
    url = await relay.start()
    try:
        ls = new_logsync(tmp_path)
        first = await witness_round(ls, origin, url)
        assert first["state"] == "ok" and first["size"] == 1000, first
        worst: dict[int, int] = {}
        for k in (1, 10, 100, 1000, 1, 10, 100, 1000, 24, 1, 255, 1000):
            old = origin.tree.size
            origin.round(k)
            before = relay.down
            report = await witness_round(ls, origin, url)
            wire = relay.down - before
            assert report["state"] == "ok" and report["size"] == old + k, report
            # Bodies: the checkpoint and exactly the new entries (the first bundle as a byte range).
            assert report["bytes"] == origin.checkpoint_bytes + ENTRY * k, (old, k, report["bytes"])
            tiles = range(old >> 8, ((old + k - 1) >> 8) + 1)
            assert report["requests"] == 1 + len(tiles)
            assert wire <= GOAL_BASE + ENTRY * k, (old, k, wire)
            worst[k] = max(worst.get(k, 0), wire)
        print("\nwire bytes per log sync (worst over old sizes):", worst, "checkpoint", origin.checkpoint_bytes)
        # The tiles the mirror built are the origin's, byte for byte.
        for path in (origin.public / "tlog" / "tile").rglob("*"):
            if path.is_file():
                rel = path.relative_to(origin.public)
                assert (ls.data.public / rel).read_bytes() == path.read_bytes(), rel
    finally:
        await relay.close()
        await runner.cleanup()


async def test_directory_upstream_reads_only_the_new_bytes(origin: Origin, tmp_path: Path) -> None:
    origin.round(300)
    ls = new_logsync(tmp_path)
    assert (await witness_round(ls, origin, str(origin.public)))["state"] == "ok"
    origin.round(5)
    report = await witness_round(ls, origin, str(origin.public))
    assert report["state"] == "ok" and report["size"] == 305
    assert report["bytes"] == origin.checkpoint_bytes + 5 * ENTRY


# -- upstreams that ignore ranges, vanished partials, and lies ---------------------------------------


def whole(request: web.Request, body: bytes) -> web.StreamResponse:
    """No range support: always the whole file."""
    return web.Response(body=body)


def ranged(shift: int = 0, total: int = 0, flip: bool = False, extra: bytes = b"") -> Handler:
    """A 206 for ``bytes=<start>-``, bent: the range shifted, the file length misstated, a byte flipped, or
    the file served with an extra entry (headers consistent with it)."""

    def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        body += extra
        start = (request.http_range.start or 0) + shift
        part = bytearray(body[start:])
        if flip and part:
            part[-1] ^= 1
        length = len(body) + total
        headers = {"Content-Range": f"bytes {start}-{start + len(part) - 1}/{length}"}
        return web.Response(status=206, body=bytes(part), headers=headers)

    return handler


@pytest.mark.parametrize(
    ("handler", "state"),
    [
        (whole, "ok"),
        (ranged(), "ok"),
        (ranged(shift=ENTRY), "bad-tile"),  # starts one entry late
        (ranged(shift=-ENTRY), "bad-tile"),  # starts one entry early
        (ranged(total=ENTRY), "bad-tile"),  # claims a longer file than it sent
        (ranged(flip=True), "bad-tile"),  # a tampered new entry: the root does not match
        (ranged(extra=bytes(2) + bytes(34)), "bad-tile"),  # the partial holds one entry more than its width
    ],
    ids=["no-ranges", "good-206", "shifted-late", "shifted-early", "wrong-length", "tampered", "longer-file"],
)
async def test_range_answers(origin: Origin, tmp_path: Path, handler: Handler, state: str) -> None:
    origin.round(100)
    good_runner, good_port = await serve(origin.public)
    bad_runner, bad_port = await serve(origin.public, handler)
    try:
        ls = new_logsync(tmp_path)
        assert (await witness_round(ls, origin, f"http://127.0.0.1:{good_port}/"))["state"] == "ok"
        accepted = (ls.data.public / "tlog" / "checkpoint").read_bytes()
        origin.round(50)
        report = await witness_round(ls, origin, f"http://127.0.0.1:{bad_port}/")
        assert report["state"] == state, report
        if state == "ok":
            assert report["size"] == 150
            expected = 150 * ENTRY if handler is whole else 50 * ENTRY
            assert report["bytes"] == origin.checkpoint_bytes + expected
        else:
            assert report["size"] == 100  # the accepted view did not move; nothing new is served
            assert (ls.data.public / "tlog" / "checkpoint").read_bytes() == accepted
            assert not (ls.data.public / "tlog" / "tile" / "entries" / "000.p" / "150").exists()
            again = await witness_round(ls, origin, f"http://127.0.0.1:{good_port}/")
            assert again["state"] == "ok" and again["size"] == 150  # an honest upstream next time
    finally:
        await bad_runner.cleanup()
        await good_runner.cleanup()


async def test_vanished_partial_falls_back_to_the_full_bundle_from_the_same_byte(
    origin: Origin, tmp_path: Path
) -> None:
    origin.round(100)
    runner, port = await serve(origin.public)
    url = f"http://127.0.0.1:{port}/"
    try:
        ls = new_logsync(tmp_path)
        assert (await witness_round(ls, origin, url))["state"] == "ok"
        # The origin grew past 256 and collected the partials, but the checkpoint served is of size 200
        # (a cache lagging behind): entries/000.p/200 is gone, entries/000 holds them.
        origin.round(100)
        size200, served200 = (origin.tree.size, origin.tree.root()), origin.served()
        origin.round(100)
        origin.publish(*size200)
        origin.served = lambda: served200  # type: ignore[method-assign]
        for path in sorted((origin.public / "tlog" / "tile").rglob("*.p"), reverse=True):
            for f in path.iterdir():
                f.unlink()
            path.rmdir()
        report = await witness_round(ls, origin, url)
        assert report["state"] == "ok" and report["size"] == 200, report
        full = TileId(ENTRIES, 0).path()
        assert report["requests"] == 3  # checkpoint, the vanished partial (404), the full bundle's range
        assert report["bytes"] == origin.checkpoint_bytes + 156 * ENTRY  # from entry 100 to the full bundle's end
        assert (ls.data.public / "tlog" / "tile" / "entries" / "000.p" / "200").is_file()
        assert (origin.public / "tlog" / full).is_file()
    finally:
        await runner.cleanup()
