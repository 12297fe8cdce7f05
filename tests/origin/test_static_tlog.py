"""The transparency log's static paths as the app serves them (docs/transparency.md, "Static paths").

One StaticTree (the class origin and mirrors both mount) over a public tree
holding the log's files; every row of the contract's table is asked for, with
its Cache-Control and content type, plus the ways a path could leave the tree.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from static_paths import BID, NOT_SERVED, OH, SERVED, body_of, make_log_tree

from tamizdat.server.static import StaticTree


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return make_log_tree(tmp_path)


@pytest.fixture
async def client(public: Path, aiohttp_client: Any) -> TestClient[Any, Any]:
    app = web.Application()
    app.add_routes(StaticTree(public).routes())
    c: TestClient[Any, Any] = await aiohttp_client(app)
    return c


async def raw_get(client: TestClient[Any, Any], path: str) -> tuple[int, bytes]:
    """Send the path exactly as written (clients normalise '..' away before sending)."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("rel", sorted(SERVED))
async def test_log_paths_are_served_with_the_contract_headers(client: TestClient[Any, Any], rel: str) -> None:
    cache_control, ctype = SERVED[rel]
    resp = await client.get(f"/{rel}")
    assert resp.status == 200, rel
    assert await resp.read() == body_of(rel)
    assert resp.headers["Cache-Control"] == cache_control
    assert resp.headers["Content-Type"] == ctype
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    again = await client.get(f"/{rel}", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304 and again.headers["Cache-Control"] == cache_control


async def test_a_missing_partial_tile_is_404_and_the_full_one_still_served(
    client: TestClient[Any, Any], public: Path
) -> None:
    (public / "tlog/tile/0/x001/234.p/5").unlink()
    assert (await client.get("/tlog/tile/0/x001/234.p/5")).status == 404
    assert (await client.get("/tlog/tile/0/x001/234")).status == 200


async def test_a_tile_range_request(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/tlog/tile/0/000", headers={"Range": "bytes=0-7"})
    assert resp.status == 206 and await resp.read() == body_of("tlog/tile/0/000")[:8]


@pytest.mark.parametrize("path", NOT_SERVED)
async def test_no_path_leaves_the_log_tree(client: TestClient[Any, Any], path: str) -> None:
    status, body = await raw_get(client, path)
    assert status == 404, path
    assert b"secret" not in body and b"contents of" not in body


@pytest.mark.parametrize(
    "link",
    [
        "tlog/tile",  # a directory on the way
        "tlog/tile/0/x001",  # a deeper directory
        "tlog/tile/0/x001/234",  # the file itself
        "tlog/witness",
    ],
)
async def test_a_symlink_anywhere_on_the_way_is_404(
    client: TestClient[Any, Any], public: Path, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "outside"
    (public / link).rename(outside)
    os.symlink(outside, public / link)
    target = {"tlog/witness": f"/tlog/witness/{OH}/checkpoint"}.get(link, "/tlog/tile/0/x001/234")
    assert (await client.get(target)).status == 404
    assert (await client.get("/tlog/checkpoint")).status == 200


async def test_large_files_keep_the_contract_headers(public: Path, aiohttp_client: Any) -> None:
    app = web.Application()
    app.add_routes(StaticTree(public, small_file=4).routes())  # everything takes the large-file path
    client: TestClient[Any, Any] = await aiohttp_client(app)
    for rel in ("tlog/checkpoint", "tlog/tile/0/x001/234.p/5", f"bundles/{BID}.tlog-proof"):
        resp = await client.get(f"/{rel}")
        assert resp.status == 200 and await resp.read() == body_of(rel)
        assert (resp.headers["Cache-Control"], resp.headers["Content-Type"]) == SERVED[rel]
