"""The static tree (``DATA/public``) served by origin and mirrors alike.

Paths: ``/root.json``, ``/roots/<N>.json``, ``/index.json``,
``/index/<sha256>.json``, ``/bundles/<bundle id>.zip``. Only these patterns
route, so there is no directory listing and no traversal; symlinks are refused.
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

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HEX64 = "{name:[0-9a-f]{64}}"


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

    async def serve(self, request: web.Request, rel: str, ctype: str, cache_control: str) -> web.StreamResponse:
        """Serve ``public/rel`` (a regular file, never a symlink) or 404."""
        path = self.public / rel
        try:
            st = os.lstat(path)
        except OSError:
            raise web.HTTPNotFound() from None
        if not stat.S_ISREG(st.st_mode):
            raise web.HTTPNotFound()
        headers = {
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if st.st_size > self.small_file:
            resp = web.FileResponse(path, headers=headers)
            resp.content_type = ctype
            return resp
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
            return web.Response(status=206, body=body[start:stop], content_type=ctype, headers=headers)
        return web.Response(body=body, content_type=ctype, headers=headers)

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


def _load(path: Path) -> _Cached:
    body = path.read_bytes()
    return _Cached(body, f'"{hashlib.sha256(body).hexdigest()}"')
