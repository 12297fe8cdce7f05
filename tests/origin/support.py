"""Helpers for the origin tests: an API client wrapper, sample articles and images, bounded waits."""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from tamizdat.bundles.index import Index, Shard, check_fresh, check_shard, verify_index
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir
from tamizdat.server.appkeys import ORIGIN

ROUND = 0.05
ASSETS = Path(__file__).parent / "assets"
TAMIZDAT = str(Path(sys.executable).parent / "tamizdat")  # the console script of this environment


class Api:
    """A thin client for the API in tests: JSON in, (status, JSON) out."""

    def __init__(self, client: TestClient[Any, Any], token: str):
        self.client = client
        self.token = token

    @property
    def app(self) -> web.Application:
        return self.client.app  # type: ignore[return-value]

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, headers=self.headers(kw.pop("headers", None)), **kw)
        data = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, data

    async def upload(self, data: bytes, ctype: str) -> tuple[int, Any]:
        resp = await self.client.post("/api/v1/media", data=data, headers=self.headers({"Content-Type": ctype}))
        return resp.status, await resp.json()

    async def flush(self) -> None:
        """Run a publishing round now (instead of waiting for the next one)."""
        await self.app[ORIGIN].publisher.flush()

    async def index_version(self) -> int:
        return int((await self.call("GET", "/api/v1/status"))[1]["index_version"])


def article(aid: str = "a1", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": aid,
        "lang": "en",
        "title": f"Title of {aid}",
        "body": f"Body of **{aid}**.",
        "published": "2026-01-01T10:00:00Z",
    }
    doc.update(fields)
    return doc


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 6), exif: bool = False) -> bytes:
    im = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if exif:
        info = Image.Exif()
        info[0x010F] = "SecretCam"  # Make
        im.save(out, fmt, exif=info.tobytes())
    else:
        im.save(out, fmt)
    return out.getvalue()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not reached in time")


async def read_index(client: TestClient[Any, Any], keys_dir: Path) -> tuple[Index, list[Shard]]:
    """Fetch /index.json and its shards over HTTP and check them as a mirror would (steps I1-I8)."""
    root = KeyDir(keys_dir).chain().newest
    resp = await client.get("/index.json")
    assert resp.status == 200
    signed = verify_index(await resp.read(), root)
    check_fresh(signed.index, timefmt.now())
    shards = []
    for ref in signed.index.shards:
        r = await client.get(f"/index/{ref.sha256}.json")
        assert r.status == 200, ref
        shards.append(check_shard(ref, await r.read()))
    return signed.index, shards
