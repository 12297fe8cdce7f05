"""The static tree as the origin serves it: ranges, conditional GET, no symlink or traversal escapes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tamizdat.server.datadir import DataDir

from .support import Api, article


async def _bundle(api: Api) -> tuple[str, bytes]:
    _, out = await api.call("POST", "/api/v1/articles", article("s1", body="word " * 400))
    await api.flush()
    bid = out["versions"][0]["bundle_id"]
    resp = await api.client.get(f"/bundles/{bid}.zip")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Type"] == "application/zip"
    return bid, await resp.read()


async def test_range_requests(api: Api) -> None:
    bid, body = await _bundle(api)
    resp = await api.client.get(f"/bundles/{bid}.zip", headers={"Range": "bytes=10-19"})
    assert resp.status == 206
    assert await resp.read() == body[10:20]
    assert resp.headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    resp = await api.client.get(f"/bundles/{bid}.zip", headers={"Range": "bytes=-5"})
    assert resp.status == 206 and await resp.read() == body[-5:]
    resp = await api.client.get(f"/bundles/{bid}.zip", headers={"Range": f"bytes={len(body) + 10}-"})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(body)}"


async def test_if_none_match(api: Api) -> None:
    bid, _ = await _bundle(api)
    for path in (f"/bundles/{bid}.zip", "/index.json", "/root.json", "/roots/1.json"):
        resp = await api.client.get(path)
        etag = resp.headers["ETag"]
        again = await api.client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304, path
        assert await again.read() == b""
    index = await api.client.get("/index.json")
    assert index.headers["Cache-Control"] == "no-cache"


async def test_symlink_in_bundles_is_404(api: Api, data_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.zip"
    secret.write_bytes(b"PK secret")
    name = "ab" * 32
    os.symlink(secret, DataDir(data_dir).bundles / f"{name}.zip")
    resp = await api.client.get(f"/bundles/{name}.zip")
    assert resp.status == 404


async def raw_get(api: Api, path: str) -> tuple[int, bytes]:
    """Send the path exactly as written (clients normalise '..' away before sending)."""
    assert api.client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", api.client.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_traversal_is_404(api: Api) -> None:
    await _bundle(api)
    for path in (
        "/bundles/../root.json",
        "/bundles/..%2F..%2Fstate%2Forigin.sqlite3",
        "/index/../../state/origin.sqlite3",
        "/roots/../../settings.toml",
        "/state/origin.sqlite3",
        "/tmp/",
        "/bundles/",
        "/index/",
        "/bundles/%2e%2e/root.json",
        "/./root.json",
        "//root.json",
    ):
        status, body = await raw_get(api, path)
        assert status == 404, path
        assert b"CREATE TABLE" not in body and b"payload" not in body
