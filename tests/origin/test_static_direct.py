"""Large cached files leave through os.sendfile after their headers: same bytes and headers as the other paths.

The app's StaticTree over a tree with one 1 MiB bundle, on a real loopback
socket (the path needs a plain socket transport). os.sendfile is wrapped to
count calls, take only part of the body, fail, or close the connection, and
every time the reader must get the whole file or a cleanly ended connection,
never a logged error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientError, web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

from tamizdat.server import static

BID = "ef" * 32
SIZE = 1024 * 1024


@pytest.fixture
def public(tmp_path: Path) -> Path:
    pub = tmp_path / "public"
    (pub / "bundles").mkdir(parents=True)
    (pub / "bundles" / f"{BID}.zip").write_bytes(os.urandom(SIZE))
    return pub


@pytest.fixture
async def client(public: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    app = web.Application()
    app.add_routes(static.StaticTree(public).routes())
    c: TestClient[Any, Any] = await aiohttp_client(app)
    return c


def wrap_sendfile(monkeypatch: pytest.MonkeyPatch, behave: Callable[..., int]) -> list[int]:
    """Replace os.sendfile (as static.py sees it) by ``behave(real, *args)``; returns the list of sizes asked."""
    asked: list[int] = []
    real = os.sendfile

    def fake(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        asked.append(count)
        return behave(real, out_fd, in_fd, offset, count)

    monkeypatch.setattr(static.os, "sendfile", fake)
    return asked


async def get(client: TestClient[Any, Any], **headers: str) -> tuple[int, CIMultiDictProxy[str], bytes]:
    resp = await client.get(f"/bundles/{BID}.zip", headers=headers)
    return resp.status, resp.headers, await resp.read()


async def test_the_body_goes_through_sendfile_with_the_usual_headers(
    client: TestClient[Any, Any], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = wrap_sendfile(monkeypatch, lambda real, *a: real(*a))
    want = (public / "bundles" / f"{BID}.zip").read_bytes()
    for _ in range(3):
        status, headers, body = await get(client)
        assert status == 200 and body == want
        assert headers["Content-Length"] == str(SIZE) and headers["Content-Type"] == "application/zip"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["ETag"] == f'"{hashlib.sha256(want).hexdigest()}"'
        assert headers["Content-Disposition"] == f'attachment; filename="{BID}.zip"'
    assert asked and asked[0] == SIZE


async def test_head_range_and_conditional_requests_keep_their_answers(
    client: TestClient[Any, Any], public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = wrap_sendfile(monkeypatch, lambda real, *a: real(*a))
    want = (public / "bundles" / f"{BID}.zip").read_bytes()
    head = await client.head(f"/bundles/{BID}.zip")
    assert head.status == 200 and head.headers["Content-Length"] == str(SIZE) and await head.read() == b""
    status, headers, body = await get(client, Range="bytes=100-199")
    assert status == 206 and body == want[100:200]
    status, _, body = await get(client, **{"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    assert asked == []  # none of these sends the whole file


@pytest.mark.parametrize(
    "behave",
    [
        pytest.param(lambda real, out, inp, off, count: real(out, inp, off, min(count, 10_000)), id="short-writes"),
        pytest.param(lambda real, *a: (_ for _ in ()).throw(BlockingIOError()), id="socket-full"),
        pytest.param(lambda real, *a: (_ for _ in ()).throw(OSError(22, "Invalid argument")), id="no-sendfile-here"),
    ],
)
async def test_what_sendfile_does_not_take_goes_through_the_transport(
    client: TestClient[Any, Any], public: Path, monkeypatch: pytest.MonkeyPatch, behave: Callable[..., int]
) -> None:
    wrap_sendfile(monkeypatch, behave)
    status, _, body = await get(client)
    assert status == 200 and body == (public / "bundles" / f"{BID}.zip").read_bytes()


def server_sockets(client: TestClient[Any, Any]) -> list[socket.socket]:
    """The server side's open connection sockets."""
    runner = client.server.runner
    assert runner is not None and runner.server is not None
    found = []
    for handler in runner.server.connections:
        transport = handler.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            found.append(sock)
    return found


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")
@pytest.mark.parametrize(
    "behave",
    [
        pytest.param(lambda real, *a: real(*a), id="whole-body"),
        pytest.param(lambda real, out, inp, off, count: real(out, inp, off, min(count, 10_000)), id="short-writes"),
        pytest.param(lambda real, *a: (_ for _ in ()).throw(BlockingIOError()), id="socket-full"),
        pytest.param(lambda real, *a: (_ for _ in ()).throw(RuntimeError("boom")), id="sendfile-raises"),
    ],
)
async def test_the_socket_is_corked_only_while_headers_and_sendfile_go_out(
    client: TestClient[Any, Any], public: Path, monkeypatch: pytest.MonkeyPatch, behave: Callable[..., int]
) -> None:
    """Headers wait for the body's first bytes (TCP_CORK, nginx's tcp_nopush), and the connection is
    uncorked afterwards whatever happened: a corked keep-alive socket would hold the next small answer."""
    seen: list[int] = []

    def during(real: Callable[..., int], out: int, *args: int) -> int:
        sock = socket.socket(fileno=os.dup(out))
        try:
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))
        finally:
            sock.close()
        return behave(real, out, *args)

    wrap_sendfile(monkeypatch, during)
    want = (public / "bundles" / f"{BID}.zip").read_bytes()
    for _ in range(2):
        try:
            status, _, body = await get(client)
        except ClientError:
            continue  # sendfile-raises: the answer is cut; the socket must still be uncorked
        assert status == 200 and body == want
        socks = server_sockets(client)
        assert socks and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0 for s in socks)
    assert seen and all(v == 1 for v in seen)
    assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0 for s in server_sockets(client))


async def test_a_replaced_file_is_sent_anew(client: TestClient[Any, Any], public: Path) -> None:
    path = public / "bundles" / f"{BID}.zip"
    assert (await get(client))[2] == path.read_bytes()
    new = os.urandom(SIZE)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(new)
    tmp.replace(path)
    assert (await get(client))[2] == new


async def test_a_reader_who_leaves_mid_answer_is_not_logged(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def hang_up(self: static.StaticTree, request: web.Request, key: static.FileKey) -> int:
        assert request.transport is not None
        request.transport.close()  # the reader is gone after the headers
        return 0

    monkeypatch.setattr(static.StaticTree, "_sendfile_now", hang_up)
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        with pytest.raises(ClientError):
            await get(client)
    monkeypatch.undo()
    status, _, body = await get(client)  # the server is fine
    assert status == 200 and len(body) == SIZE
    # Nothing logged about it (aiohttp's own error line would carry the reader's address).
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.name == "aiohttp.server"]


async def test_descriptors_stay_bounded(public: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "OPEN_FILES", 2)
    names = [f"{i:02x}" * 32 for i in range(5)]
    for name in names:
        (public / "bundles" / f"{name}.zip").write_bytes(name.encode() * (SIZE // 64))
    app = web.Application()
    tree = static.StaticTree(public)
    app.add_routes(tree.routes())
    client: TestClient[Any, Any] = await aiohttp_client(app)
    for name in names * 2:
        resp = await client.get(f"/bundles/{name}.zip")
        assert await resp.read() == name.encode() * (SIZE // 64)
    assert len(tree._files._fds) == 2  # the others were closed
