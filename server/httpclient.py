"""The one bounded HTTP client (feed import, mirror sync, cosignature gathering).

Hard limits, as python-tuf's ngclient keeps them in a typed config: a size cap
on every body (counted while streaming, checked against Content-Length first),
connect / read / total timeouts, no transparent decompression (no gzip bombs),
and redirects followed only to the same scheme, host and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import aiohttp

from tamizdat import __version__
from tamizdat.errors import NetworkError, RejectedError

CHUNK = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,15})-([0-9]{1,15})/([0-9]{1,15})")


@dataclass(frozen=True)
class ClientConfig:
    """Limits of one client. Times in seconds, sizes in bytes."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0
    max_redirects: int = 3
    max_document_bytes: int = 4 * 1024 * 1024
    user_agent: str = f"tamizdat/{__version__}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def check_url(url: str) -> str:
    """Accept only absolute http(s) URLs without credentials."""
    _checked_origin(url)
    return url


def _checked_origin(url: str) -> tuple[str, str, int | None]:
    """``check_url``, returning the URL's (scheme, host, port) from the same parse."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise RejectedError(f"not an http(s) URL: {url[:100]}", code="bad-url")
    return parts.scheme, parts.hostname.lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class BoundedClient:
    """An aiohttp session with hard limits. Use as ``async with BoundedClient() as c``."""

    def __init__(self, config: ClientConfig | None = None):
        self.config = config or ClientConfig()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BoundedClient:
        c = self.config
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=c.total_timeout, connect=c.connect_timeout, sock_read=c.read_timeout),
            auto_decompress=False,
            headers={"User-Agent": c.user_agent, "Accept-Encoding": "identity"},
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def _get(
        self, url: str, max_bytes: int, headers: dict[str, str] | None, *, partial: bool = False
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self._session is not None, "use BoundedClient as an async context manager"
        start = _checked_origin(url)
        current = url
        for _ in range(self.config.max_redirects + 1):
            try:
                resp = await self._session.get(current, allow_redirects=False, headers=headers)
            except TimeoutError as exc:
                raise NetworkError(f"timed out connecting to {_host(current)}", code="timeout") from exc
            except aiohttp.ClientResponseError as exc:
                # A malformed response (bad status line, data beyond Content-Length): bad data, not bad luck.
                raise RejectedError(f"{_host(current)} sent a malformed HTTP response", code="bad-response") from exc
            except aiohttp.ClientError as exc:
                raise NetworkError(
                    f"cannot reach {_host(current)}: {exc.__class__.__name__}", code="unreachable"
                ) from exc
            try:
                if resp.status in (301, 302, 303, 307, 308):
                    target = urljoin(current, resp.headers.get("Location", ""))
                    if _origin(target) != start:
                        raise RejectedError(f"{_host(url)} redirects to another host or scheme", code="bad-redirect")
                    current = target
                    continue
                if resp.status != 200 and not (partial and resp.status == 206):
                    raise NetworkError(f"{_host(current)} answered HTTP {resp.status}", code=f"http-{resp.status}")
                if resp.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
                    raise RejectedError(f"{_host(current)} sent an encoded body", code="content-encoding")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise RejectedError(
                        f"{_host(current)} announced {resp.content_length} bytes, over {max_bytes}", code="too-large"
                    )
                yield resp
                return
            finally:
                resp.release()
        raise RejectedError(f"{_host(url)} redirects too often", code="bad-redirect")

    async def _chunks(self, resp: aiohttp.ClientResponse, max_bytes: int) -> AsyncIterator[bytes]:
        total = 0
        with _transfer_errors(resp):
            async for chunk in resp.content.iter_chunked(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise RejectedError(f"{_host(str(resp.url))} sent more than {max_bytes} bytes", code="too-large")
                yield chunk

    async def fetch(self, url: str, *, max_bytes: int | None = None, headers: dict[str, str] | None = None) -> bytes:
        """GET ``url`` into memory, at most ``max_bytes`` (default: the document cap)."""
        cap = max_bytes or self.config.max_document_bytes
        parts: list[bytes] = []
        async with self._get(url, cap, headers) as resp:
            if resp.content_length is not None and "Transfer-Encoding" not in resp.headers:
                return await self._whole(resp)  # within the cap (checked in _get); the parser reads no further
            async for chunk in self._chunks(resp, cap):
                parts.append(chunk)
        return b"".join(parts)

    async def _whole(self, resp: aiohttp.ClientResponse) -> bytes:
        """A body of announced length in one read (a small bundle: no per-chunk Python)."""
        with _transfer_errors(resp):
            body = await resp.read()
        return body

    async def fetch_range(self, url: str, start: int, *, max_bytes: int) -> tuple[bytes, int, int]:
        """GET ``url`` from byte ``start`` on (``Range: bytes=<start>-``): (body, its first byte, file length).

        A server without range support answers 200 with the whole file (first
        byte 0). A 206 must carry a ``Content-Range`` that starts at ``start``,
        runs to the end of the file and matches the body; anything else is
        refused (``bad-range``), never trusted. ``max_bytes`` caps the body.
        """
        parts: list[bytes] = []
        async with self._get(url, max_bytes, {"Range": f"bytes={start}-"}, partial=True) as resp:
            async for chunk in self._chunks(resp, max_bytes):
                parts.append(chunk)
            body = b"".join(parts)
            if resp.status == 200:
                return body, 0, len(body)
            m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
            if m is None:
                raise RejectedError(f"{_host(url)} sent a partial response without a byte range", code="bad-range")
            first, last, total = (int(g) for g in m.groups())
            if first != start or last != total - 1 or len(body) != last - first + 1:
                raise RejectedError(
                    f"{_host(url)} sent bytes {first}-{last}/{total} ({len(body)} bytes) for bytes={start}-",
                    code="bad-range",
                )
            return body, first, total

    async def fetch_to_file(self, url: str, dest: Path, *, max_bytes: int) -> tuple[int, str]:
        """Stream ``url`` into ``dest`` (created/truncated); returns (size, sha256 hex).

        The file is written in a worker thread chunk by chunk; the caller
        decides what to do with it (verify, rename) and removes it on error.
        """
        digest = hashlib.sha256()
        size = 0
        with dest.open("wb") as fh:
            async with self._get(url, max_bytes, None) as resp:
                async for chunk in self._chunks(resp, max_bytes):
                    digest.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(fh.write, chunk)
        return size, digest.hexdigest()


@contextlib.contextmanager
def _transfer_errors(resp: aiohttp.ClientResponse) -> Iterator[None]:
    """A body transfer that times out or breaks is a one-line NetworkError naming only the host."""
    try:
        yield
    except TimeoutError as exc:
        raise NetworkError(f"{_host(str(resp.url))} is too slow", code="timeout") from exc
    except aiohttp.ClientError as exc:
        raise NetworkError(
            f"transfer from {_host(str(resp.url))} failed: {exc.__class__.__name__}", code="transfer"
        ) from exc


def _host(url: str) -> str:
    return urlsplit(url).netloc or url[:60]


async def fetch_bytes(url: str, *, max_bytes: int, timeout: float = 60.0) -> bytes:
    """One bounded GET (for a feed URL and similar one-off documents)."""
    config = ClientConfig(total_timeout=timeout, max_document_bytes=max_bytes)
    async with BoundedClient(config) as client:
        return await client.fetch(url, max_bytes=max_bytes)
