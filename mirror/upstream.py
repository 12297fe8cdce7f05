"""Where a mirror fetches from: an HTTP(S) base URL or a directory (a USB stick).

Both read the same static tree (``root.json``, ``roots/<N>.json``,
``index.json``, ``index/<sha256>.json``, ``bundles/<id>.zip``) under the same
size caps and time limits, and know nothing about trust: they hand bytes or
files to ``mirror.sync``, which asks ``mirror.trust``. HTTP goes through the
one bounded client (``server.httpclient``: no decompression, no off-host
redirects, streamed size caps); each transfer also has a total deadline, so a
server trickling one byte at a time is cut off.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from tamizdat.errors import NetworkError, RejectedError
from tamizdat.server.httpclient import CHUNK, BoundedClient, check_url

T = TypeVar("T")


@dataclass
class Counters:
    requests: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Ranged:
    """A file's bytes from ``offset`` on (0: the whole file, when the source ignores ranges) and its length."""

    data: bytes
    offset: int
    total: int


class Upstream(Protocol):
    """A source of the static tree."""

    spec: str  # as configured: a URL or a directory path
    counters: Counters

    @property
    def public_name(self) -> str:
        """What /healthz may show (a directory path stays private)."""
        ...

    async def fetch(self, rel: str, *, max_bytes: int, timeout: float) -> bytes:
        """The whole file ``rel``, at most ``max_bytes``, within ``timeout`` seconds."""
        ...

    async def fetch_to_file(self, rel: str, dest: Path, *, max_bytes: int, timeout: float) -> tuple[int, str]:
        """Stream ``rel`` into ``dest``; returns (size, SHA-256 hex)."""
        ...

    async def fetch_range(self, rel: str, start: int, *, max_bytes: int, timeout: float) -> Ranged:
        """``rel`` from byte ``start`` on (a file of at most ``max_bytes``); the whole file without range support."""
        ...


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def normalize_spec(spec: str) -> str:
    """A URL gets one trailing slash; a directory becomes an absolute path."""
    if is_url(spec):
        check_url(spec)
        return spec.rstrip("/") + "/"
    return str(Path(spec).expanduser().resolve())


async def _deadline(what: str, timeout: float, work: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError as exc:
        raise NetworkError(f"{what} took longer than {timeout:g} s", code="timeout") from exc


class HttpUpstream:
    """An origin, a mirror or a static host, over HTTP(S)."""

    def __init__(self, spec: str, client: BoundedClient):
        self.spec = normalize_spec(spec)
        self.client = client
        self.counters = Counters()

    @property
    def public_name(self) -> str:
        parts = urlsplit(self.spec)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    async def fetch(self, rel: str, *, max_bytes: int, timeout: float) -> bytes:
        self.counters.requests += 1
        data = await _deadline(rel, timeout, self.client.fetch(self.spec + rel, max_bytes=max_bytes))
        self.counters.bytes += len(data)
        return data

    async def fetch_to_file(self, rel: str, dest: Path, *, max_bytes: int, timeout: float) -> tuple[int, str]:
        self.counters.requests += 1
        url = self.spec + rel
        size, digest = await _deadline(rel, timeout, self.client.fetch_to_file(url, dest, max_bytes=max_bytes))
        self.counters.bytes += size
        return size, digest

    async def fetch_range(self, rel: str, start: int, *, max_bytes: int, timeout: float) -> Ranged:
        self.counters.requests += 1
        fetched = self.client.fetch_range(self.spec + rel, start, max_bytes=max_bytes)
        data, offset, total = await _deadline(rel, timeout, fetched)
        self.counters.bytes += len(data)
        return Ranged(data, offset, total)


class DirectoryUpstream:
    """The same tree on a local disk: a USB stick, an export, a shared folder."""

    def __init__(self, spec: str):
        self.spec = normalize_spec(spec)
        self.base = Path(self.spec)
        self.counters = Counters()

    @property
    def public_name(self) -> str:
        return "directory"

    def _open(self, rel: str, max_bytes: int) -> tuple[int, int]:
        if not self.base.is_dir():
            raise NetworkError(f"{self.base} is not a directory (unplugged?)", code="unreachable")
        try:
            fd = os.open(self.base / rel, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise NetworkError(f"{rel} is missing", code="not-found") from exc
        except OSError as exc:
            raise NetworkError(f"cannot open {rel}: {exc.strerror}", code="unreachable") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise RejectedError(f"{rel} is not a regular file", code="not-a-file")
        if st.st_size > max_bytes:
            os.close(fd)
            raise RejectedError(f"{rel} is {st.st_size} bytes, over {max_bytes}", code="too-large")
        return fd, st.st_size

    def _read(self, rel: str, max_bytes: int) -> bytes:
        fd, _ = self._open(rel, max_bytes)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RejectedError(f"{rel} grew over {max_bytes} bytes", code="too-large")
        return data

    def _read_range(self, rel: str, start: int, max_bytes: int) -> Ranged:
        fd, size = self._open(rel, max_bytes)
        with os.fdopen(fd, "rb") as fh:
            fh.seek(min(start, size))
            data = fh.read(max_bytes + 1)
        return Ranged(data, min(start, size), size)

    def _copy(self, rel: str, dest: Path, max_bytes: int) -> tuple[int, str]:
        fd, _ = self._open(rel, max_bytes)
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "rb") as src, dest.open("wb") as out:
            while chunk := src.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise RejectedError(f"{rel} grew over {max_bytes} bytes", code="too-large")
                digest.update(chunk)
                out.write(chunk)
        return size, digest.hexdigest()

    async def fetch(self, rel: str, *, max_bytes: int, timeout: float) -> bytes:
        self.counters.requests += 1
        data = await _deadline(rel, timeout, asyncio.to_thread(self._read, rel, max_bytes))
        self.counters.bytes += len(data)
        return data

    async def fetch_to_file(self, rel: str, dest: Path, *, max_bytes: int, timeout: float) -> tuple[int, str]:
        self.counters.requests += 1
        size, digest = await _deadline(rel, timeout, asyncio.to_thread(self._copy, rel, dest, max_bytes))
        self.counters.bytes += size
        return size, digest

    async def fetch_range(self, rel: str, start: int, *, max_bytes: int, timeout: float) -> Ranged:
        self.counters.requests += 1
        got = await _deadline(rel, timeout, asyncio.to_thread(self._read_range, rel, start, max_bytes))
        self.counters.bytes += len(got.data)
        return got


def make_upstream(spec: str, client: BoundedClient) -> Upstream:
    """An upstream for a configured spec: a URL, else a directory."""
    if is_url(spec):
        return HttpUpstream(spec, client)
    return DirectoryUpstream(spec)
