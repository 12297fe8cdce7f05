"""A tiny HTTP client for the header tests (no redirects followed, no cookies kept)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlencode, urlsplit


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(
    url: str,
    method: str = "GET",
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    body = None
    h = dict(headers or {})
    h.setdefault("User-Agent", "reader-tests")
    if form is not None:
        body = urlencode(form).encode()
        h["Content-Type"] = "application/x-www-form-urlencoded"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def get(url: str, **kw: object) -> Reply:
    return request(url, "GET", **kw)  # type: ignore[arg-type]


def post(url: str, form: dict[str, str] | None = None, **kw: object) -> Reply:
    return request(url, "POST", form=form if form is not None else {}, **kw)  # type: ignore[arg-type]
