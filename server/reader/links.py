"""Share links: ``https://<mirror>/b/<bundle-id>#k=<root-key-id>&m=<mirror>,<mirror>``.

The path names only the bundle; the publisher's root key id (``k``) and the
fallback mirrors (``m``) ride in the fragment, which a browser never sends to
a server. A mirror in ``m`` is written as its host (``mirror.example.org``,
meaning ``https://``), or as a full URL when it is not plain https at the root
(``http://127.0.0.1:8081``, ``https://host/sub``); ``,``, ``&`` and ``#`` in
an entry are percent-encoded. The same rules are implemented by the landing
page's script (templates/landing.js) and ``tamizdat fetch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from tamizdat.errors import UsageError

HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
MAX_LINK = 2000
MAX_MIRRORS = 16


def normalize_base(url: str) -> str:
    """``https://Host:443/x/`` -> ``https://host/x``; refuse anything but plain http(s) URLs."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"not an http(s) mirror URL: {url[:100]}", code="bad-url")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"a mirror URL has no user, query or fragment: {url[:100]}", code="bad-url")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{host}{path}"


def mirror_token(base: str) -> str:
    """How one mirror is written in ``m=``: the bare host for https at the root, else the full URL."""
    base = normalize_base(base)
    short = base[len("https://") :] if base.startswith("https://") else base
    return quote(short, safe=":/[]@!$'()*+;=.-_~")


def token_base(token: str) -> str:
    """The base URL a ``m=`` entry stands for (inverse of :func:`mirror_token`)."""
    text = unquote(token)
    if "://" not in text:
        text = "https://" + text
    return normalize_base(text)


@dataclass(frozen=True)
class ShareLink:
    base: str
    bundle_id: str
    root_keyid: str
    mirrors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not HEX64.match(self.bundle_id) or not HEX64.match(self.root_keyid):
            raise UsageError("bundle and root key ids are 64 lowercase hex digits", code="bad-link")

    def __str__(self) -> str:
        frag = f"k={self.root_keyid}"
        if self.mirrors:
            frag += "&m=" + ",".join(mirror_token(m) for m in self.mirrors)
        return f"{normalize_base(self.base)}/b/{self.bundle_id}#{frag}"

    @property
    def candidates(self) -> list[str]:
        """Where to look for the bundle, in order: the link's own site, then ``m``; no repeats."""
        out: list[str] = []
        for b in (self.base, *self.mirrors):
            n = normalize_base(b)
            if n not in out:
                out.append(n)
        return out


def build_link(base: str, bundle_id: str, root_keyid: str, mirrors: list[str] | tuple[str, ...] = ()) -> ShareLink:
    own = normalize_base(base)
    seen = {own}
    rest: list[str] = []
    for m in mirrors:
        n = normalize_base(m)
        if n not in seen:
            seen.add(n)
            rest.append(n)
    return ShareLink(own, bundle_id, root_keyid, tuple(rest))


def parse_link(text: str) -> ShareLink:
    """Parse a share link; refuse anything that is not exactly the documented form."""
    text = text.strip()
    if len(text) > MAX_LINK:
        raise UsageError("the link is too long", code="bad-link")
    before, sep, frag = text.partition("#")
    parts = urlsplit(before)
    m = re.fullmatch(r"(.*)/b/([0-9a-f]{64})", parts.path)
    if parts.scheme not in ("http", "https") or not parts.hostname or not m or parts.query:
        raise UsageError("not a share link (https://<mirror>/b/<bundle id>#k=...)", code="bad-link")
    base = normalize_base(f"{parts.scheme}://{parts.netloc}{m.group(1)}")
    fields: dict[str, str] = {}
    for item in frag.split("&") if sep else []:
        key, eq, value = item.partition("=")
        if not eq or key in fields:
            raise UsageError("the link's fragment is malformed", code="bad-link")
        fields[key] = value
    keyid = fields.get("k", "")
    if not HEX64.match(keyid):
        raise UsageError("the link carries no root key id (k=...)", code="bad-link")
    mirrors = [token_base(t) for t in fields.get("m", "").split(",") if t][:MAX_MIRRORS]
    return ShareLink(base, m.group(2), keyid, tuple(mirrors))
