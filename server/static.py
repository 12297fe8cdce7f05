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
ones go through FileResponse (sendfile). From 64 KiB on, a cached file's body
leaves with ``os.sendfile`` straight after its headers (no copy through Python:
about 40% less CPU per 1 MiB response), on plain-socket transports only; what
the socket does not take at once goes through the transport from memory. ETag,
conditional GET and single byte ranges work on every path. In production nginx
serves this tree itself (deploy/).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import stat
from asyncio import constants as asyncio_constants
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from tamizdat.bundles.tlog.errors import TileError
from tamizdat.bundles.tlog.tiles import TileId

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
PARTIAL_TILE = "public, max-age=60"
LOG_PROOF = "public, max-age=3600"
JSON = "application/json"
NOTE = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
HEX64 = "{name:[0-9a-f]{64}}"
WITNESS = "/tlog/witness/{origin:[0-9a-f]{64}}"
EVIDENCE_NAME = "{evidence:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}}"
TILE_PATH = "{tile:[0-9a-z./]{5,200}}"
DIRECT_MIN = 64 * 1024  # bodies from this size leave through os.sendfile
OPEN_FILES = 64  # descriptors kept open for it


FileKey = tuple[str, int, int, int]  # path, inode, size, mtime


@dataclass(frozen=True)
class _Cached:
    body: bytes
    etag: str


class StaticTree:
    """Serves files under ``public`` with a memory cache for small ones."""

    def __init__(self, public: Path, *, cache_bytes: int = 128 * 1024 * 1024, small_file: int = 2 * 1024 * 1024):
        self.public = public
        self._dir = str(public)  # string paths: pathlib costs more per request than the lstat calls
        self.cache_bytes = cache_bytes
        self.small_file = small_file
        self._cache: OrderedDict[FileKey, _Cached] = OrderedDict()
        self._cached_total = 0
        self._files = _OpenFiles(OPEN_FILES)

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
            web.get(f"/tlog/index/{HEX64}.json", self._index_archive),
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
        disposition = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
        return await self.serve(request, f"bundles/{name}.zip", "application/zip", IMMUTABLE, disposition)

    async def _bundle_proof(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, f"bundles/{request.match_info['name']}.tlog-proof", NOTE, LOG_PROOF)

    async def _checkpoint(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "tlog/checkpoint", NOTE, REVALIDATE)

    async def _index_proof(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, "tlog/index.tlog-proof", NOTE, REVALIDATE)

    async def _index_archive(self, request: web.Request) -> web.StreamResponse:
        """Every logged index envelope, named by its leaf id (SHA-256 of its payload)."""
        return await self.serve(request, f"tlog/index/{request.match_info['name']}.json", JSON, IMMUTABLE)

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

    async def serve(
        self, request: web.Request, rel: str, ctype: str, cache_control: str, extra: dict[str, str] | None = None
    ) -> web.StreamResponse:
        """Serve ``public/rel`` (a regular file; no symlink on the way) or 404; ``extra`` headers on a 200/206."""
        path = f"{self._dir}/{rel}"
        st = _regular_below(self._dir, rel)
        if st is None:
            raise web.HTTPNotFound()
        headers = {
            "Cache-Control": cache_control,
            "Content-Type": ctype,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            **(extra or {}),
        }
        if st.st_size > self.small_file:
            return web.FileResponse(Path(path), headers=headers)
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
        if len(body) >= DIRECT_MIN and request.method == "GET" and _plain_socket(request):
            return await self._send_direct(request, (path, st.st_ino, st.st_size, st.st_mtime_ns), body, headers)
        return web.Response(body=body, headers=headers)

    async def _send_direct(
        self, request: web.Request, key: FileKey, body: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        """The headers through the transport, then the body with ``os.sendfile`` from the page cache.

        The transport's buffer is empty when ``sendfile`` writes to its socket,
        and nothing else writes on the connection meanwhile (one request at a
        time); the bytes the socket does not take go through the transport.
        A reader who goes away ends the answer quietly (aiohttp would log the
        error with the client's address). The socket is corked from the
        headers to the end of ``sendfile`` (nginx's ``tcp_nopush``), so the
        headers leave with the first body bytes instead of in a packet of their
        own: 1 MiB answers per second +13% (bench/serve_bench.py, docs/performance.md).
        """
        resp = web.StreamResponse(headers=headers)
        resp.content_length = len(body)
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        try:
            with _corked(sock):
                await resp.prepare(request)
                sent = self._sendfile_now(request, key)
            if sent < len(body):
                await resp.write(memoryview(body)[sent:])
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    def _sendfile_now(self, request: web.Request, key: FileKey) -> int:
        """Bytes of the file ``key`` written to the request's socket without blocking (0 if none)."""
        transport = request.transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return 0
        fd = self._files.get(key)
        sock = transport.get_extra_info("socket")
        if fd is None or sock is None:
            return 0
        sent, size = 0, key[2]
        try:
            while sent < size:
                n = os.sendfile(sock.fileno(), fd, sent, size - sent)
                if n == 0:
                    break
                sent += n
        except OSError:  # the socket is full (EAGAIN), or gone: the rest goes through the transport
            pass
        return sent

    async def _get(self, path: str, st: os.stat_result) -> _Cached | None:
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
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


class _OpenFiles:
    """A few read-only descriptors of served files, by (path, inode, size, mtime); the oldest is closed."""

    def __init__(self, limit: int):
        self.limit = limit
        self._fds: OrderedDict[FileKey, int] = OrderedDict()

    def get(self, key: FileKey) -> int | None:
        """An open descriptor of exactly that file version, or None (gone, replaced, not a regular file)."""
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        try:
            fd = os.open(key[0], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (key[0], st.st_ino, st.st_size, st.st_mtime_ns) != key:
            os.close(fd)
            return None
        self._fds[key] = fd
        while len(self._fds) > self.limit:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd


@contextlib.contextmanager
def _corked(sock: socket.socket | None) -> Iterator[None]:
    """Hold partial frames on ``sock`` (Linux ``TCP_CORK``) while the block writes; always uncorked after."""
    cork = getattr(socket, "TCP_CORK", None)
    if sock is None or cork is None:
        yield
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    except OSError:  # not TCP, or already closed: write uncorked
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def _plain_socket(request: web.Request) -> bool:
    """Whether the connection writes plain bytes to a socket (asyncio's own test for native sendfile; no TLS)."""
    transport = request.transport
    return (
        transport is not None
        and transport.get_extra_info("ssl_object") is None
        and getattr(transport, "_sendfile_compatible", None) is asyncio_constants._SendfileMode.TRY_NATIVE
    )


def _regular_below(root: str, rel: str) -> os.stat_result | None:
    """``lstat`` of ``root/rel`` if it is a regular file and no directory on the way is a symlink."""
    try:
        st = os.lstat(f"{root}/{rel}")
        if not stat.S_ISREG(st.st_mode):
            return None
        cut = rel.find("/")
        while cut != -1:
            if not stat.S_ISDIR(os.lstat(f"{root}/{rel[:cut]}").st_mode):
                return None
            cut = rel.find("/", cut + 1)
    except (OSError, ValueError):
        return None
    return st


def _load(path: str) -> _Cached:
    with open(path, "rb") as fh:
        body = fh.read()
    return _Cached(body, f'"{hashlib.sha256(body).hexdigest()}"')
