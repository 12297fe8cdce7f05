"""A small client of the publishing API, used by ``tamizdat publish`` and ``import-feed``.

Errors come back as :class:`ApiCallError` with the server's stable code; a
connection problem is a :class:`~tamizdat.errors.NetworkError`.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from tamizdat import __version__
from tamizdat.errors import NetworkError, RejectedError, UsageError

MAX_RESPONSE = 16 * 1024 * 1024


class ApiCallError(RejectedError):
    """The server refused a request (its JSON error code and message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{message} (HTTP {status})", code=code)
        self.status = status


class ApiClient:
    """``async with ApiClient(server, token) as api: await api.upsert_article(doc)``."""

    def __init__(self, server: str, token: str, *, timeout: float = 300.0):
        if not server.startswith(("http://", "https://")):
            raise UsageError(f"--server wants an http(s) URL, not {server!r}", code="usage")
        self.base = server.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=30)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {self.token}", "User-Agent": f"tamizdat/{__version__}"},
            auto_decompress=False,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self, method: str, path: str, *, body: Any = None, data: bytes | None = None, ctype: str | None = None
    ) -> tuple[int, Any]:
        """One request; returns (status, JSON) for 2xx, raises ApiCallError otherwise."""
        assert self._session is not None, "use ApiClient as an async context manager"
        headers = {}
        payload = data
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif ctype is not None:
            headers["Content-Type"] = ctype
        try:
            async with self._session.request(
                method, self.base + path, data=payload, headers=headers, allow_redirects=False
            ) as resp:
                raw = await resp.content.read(MAX_RESPONSE + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NetworkError(f"cannot reach {self.base}: {exc}", code="network") from exc
        if len(raw) > MAX_RESPONSE:
            raise NetworkError("the server's answer is too large", code="response-too-large")
        doc: Any = None
        if raw:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
        if 200 <= status < 300:
            return status, doc
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            raise ApiCallError(status, str(err.get("code", "error")), str(err.get("message", "")))
        raise ApiCallError(status, "http-error", f"{method} {path} answered without a JSON error")

    # -- operations -------------------------------------------------------
    async def get_article(self, aid: str) -> dict[str, Any] | None:
        try:
            return (await self.call("GET", f"/api/v1/articles/{quote(aid)}"))[1]  # type: ignore[no-any-return]
        except ApiCallError as err:
            if err.status == 404:
                return None
            raise

    async def upsert_article(self, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Update (PUT) or, if new, create (POST) an article. Returns (action, article)."""
        aid = doc["id"]
        try:
            _, out = await self.call("PUT", f"/api/v1/articles/{quote(aid)}", body=doc)
            return ("updated" if out.get("changed") else "unchanged"), out
        except ApiCallError as err:
            if err.status != 404:
                raise
        try:
            _, out = await self.call("POST", "/api/v1/articles", body=doc)
            return "created", out
        except ApiCallError as err:
            if err.code != "article-exists":  # created meanwhile by someone else: update it
                raise
        _, out = await self.call("PUT", f"/api/v1/articles/{quote(aid)}", body=doc)
        return ("updated" if out.get("changed") else "unchanged"), out

    async def put_notice(self, notice: dict[str, Any]) -> dict[str, Any]:
        _, out = await self.call("PUT", f"/api/v1/notices/{quote(notice['id'])}", body=notice)
        return out  # type: ignore[no-any-return]

    async def upload_media(self, data: bytes, ctype: str) -> str:
        _, out = await self.call("POST", "/api/v1/media", data=data, ctype=ctype)
        return str(out["id"])

    async def create_edition(self, body: dict[str, Any]) -> dict[str, Any]:
        _, out = await self.call("POST", "/api/v1/editions", body=body)
        return out  # type: ignore[no-any-return]
