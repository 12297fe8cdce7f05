"""The static tree (``DATA/public``) served by origin and mirrors alike.

Paths: ``/root.json``, ``/roots/<N>.json``, ``/index.json``,
``/index/<sha256>.json``, ``/bundles/<bundle id>.zip``, and the transparency
log's (docs/transparency.md, "Static paths"): ``/tlog/checkpoint``,
``/tlog/index.tlog-proof``, ``/tlog/tile/...`` (canonical tile paths only),
``/tlog/witness/<sha256>/checkpoint`` and ``.../evidence/<name>``,
``/bundles/<bundle id>.tlog-proof``. Only these patterns route, so there is no
directory listing and no traversal; a symlink anywhere below ``public`` is refused.
Small files are served from a bounded in-memory cache keyed by inode, size and
mtime (aiohttp's FileResponse is ~20x slower than nginx on small files); large
ones go through FileResponse (sendfile). ETag, conditional GET and single
byte ranges work on both paths. In production nginx serves this tree itself
(deploy/).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from tamizdat.bundles.tlog.errors import TileError
from tamizdat.bundles.tlog.tiles import TileId

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
PARTIAL_TILE = "public, max-age=60"
LOG_PROOF = "public, max-age=86400"
JSON = "application/json"
NOTE = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
HEX64 = "{name:[0-9a-f]{64}}"
WITNESS = "/tlog/witness/{origin:[0-9a-f]{64}}"
EVIDENCE_NAME = "{evidence:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}}"
TILE_PATH = "{tile:[0-9a-z./]{5,200}}"


@dataclass(frozen=True)
class _Cached:
    body: bytes
    etag: str


class StaticTree:
    """Serves files under ``public`` with a memory cache for small ones."""

    def __init__(self, public: Path, *, cache_bytes: int = 128 * 1024 * 1024, small_file: int = 2 * 1024 * 1024):
        self.public = public
        self.cache_bytes = cache_bytes
        self.small_file = small_file
        self._cache: OrderedDict[tuple[str, int, int, int], _Cached] = OrderedDict()
        self._cached_total = 0

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/root.json", self._root),
            web.get("/roots/{n:[1-9][0-9]{0,5}}.json", self._roots),
            web.get("/index.json", self._index),
            web.get(f"/index/{HEX64}.json", self._shard),
            web.get(f"/bundles/{HEX64}.zip", self._bundle),
            web.get(f"/bundles/{HEX64}.tlog-proof", self._bundle_proof),
            web.get("/tlog/checkpoint", self._checkpoint),
            web.get("/tlog/index.tlog-proof", self._index_proof),
            web.get(f"/tlog/tile/{TILE_PATH}", self._tile),
            web.get(f"{WITNESS}/checkpoint", self._witness),
            web.get(f"{WITNESS}/evidence/{EVIDENCE_NAME}", self._evidence),
        ]

    async def _root(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "root.json", "application/json", REVALIDATE)

    async def _roots(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, f"roots/{int(request.match_info['n'])}.json", "application/json", IMMUTABLE)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "index.json", "application/json", REVALIDATE)

    async def _shard(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, f"index/{request.match_info['name']}.json", "application/json", IMMUTABLE)

    async def _bundle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        resp = await self.serve(request, f"bundles/{name}.zip", "application/zip", IMMUTABLE)
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}.zip"'
        return resp

    async def _bundle_proof(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, f"bundles/{request.match_info['name']}.tlog-proof", NOTE, LOG_PROOF)

    async def _checkpoint(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "tlog/checkpoint", NOTE, REVALIDATE)

    async def _index_proof(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "tlog/index.tlog-proof", NOTE, REVALIDATE)

    async def _tile(self, request: web.Request) -> web.StreamResponse:
        rel = "tile/" + request.match_info["tile"]
        try:
            tile = TileId.parse(rel)  # canonical spellings only: no "..", no "//", no stray names
        except TileError:
            raise web.HTTPNotFound() from None
        return await self.serve(request, f"tlog/{rel}", OCTETS, PARTIAL_TILE if tile.is_partial else IMMUTABLE)

    async def _witness(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, f"tlog/witness/{request.match_info['origin']}/checkpoint", NOTE, REVALIDATE)

    async def _evidence(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        if m["evidence"] in (".", ".."):
            raise web.HTTPNotFound()
        return await self.serve(request, f"tlog/witness/{m['origin']}/evidence/{m['evidence']}", NOTE, REVALIDATE)

    async def serve(self, request: web.Request, rel: str, ctype: str, cache_control: str) -> web.StreamResponse:
        """Serve ``public/rel`` (a regular file; no symlink on the way) or 404."""
        path = self.public / rel
        st = _regular_below(self.public, rel)
        if st is None:
            raise web.HTTPNotFound()
        headers = {
            "Cache-Control": cache_control,
            "Content-Type": ctype,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if st.st_size > self.small_file:
            return web.FileResponse(path, headers=headers)
        cached = await self._get(path, st)
        if cached is None:
            raise web.HTTPNotFound()
        headers["ETag"] = cached.etag
        inm = request.headers.get("If-None-Match")
        if inm and cached.etag in {t.strip() for t in inm.split(",")}:
            return web.Response(status=304, headers=headers)
        body = cached.body
        headers["Accept-Ranges"] = "bytes"
        if "Range" in request.headers and request.headers.get("If-Range", cached.etag) == cached.etag:
            try:
                start, stop, _ = request.http_range.indices(len(body))
            except ValueError:
                start = stop = 0
            if not 0 <= start < stop <= len(body):
                headers["Content-Range"] = f"bytes */{len(body)}"
                return web.Response(status=416, headers=headers)
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(body)}"
            return web.Response(status=206, body=body[start:stop], headers=headers)
        return web.Response(body=body, headers=headers)

    async def _get(self, path: Path, st: os.stat_result) -> _Cached | None:
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        try:
            entry = await asyncio.to_thread(_load, path)
        except OSError:
            return None
        body = entry.body
        if len(body) == st.st_size:
            self._cache[key] = entry
            self._cached_total += len(body)
            while self._cached_total > self.cache_bytes and self._cache:
                _, old = self._cache.popitem(last=False)
                self._cached_total -= len(old.body)
        return entry


def _regular_below(public: Path, rel: str) -> os.stat_result | None:
    """``lstat`` of ``public/rel`` if it is a regular file and no directory on the way is a symlink."""
    try:
        st = os.lstat(public / rel)
        if not stat.S_ISREG(st.st_mode):
            return None
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if not stat.S_ISDIR(os.lstat(public.joinpath(*parts[:depth])).st_mode):
                return None
    except (OSError, ValueError):
        return None
    return st


def _load(path: Path) -> _Cached:
    body = path.read_bytes()
    return _Cached(body, f'"{hashlib.sha256(body).hexdigest()}"')
