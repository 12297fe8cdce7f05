"""``tamizdat import-feed``: RSS 2.0 and Atom entries become articles (feedparser).

Idempotent: an entry's article id is ``feed-`` plus the first 24 hex digits
of the SHA-256 of its id (Atom ``id``, RSS ``guid``), else its link, else its
title and date. A guid that is not a URI is qualified by the feed's link, so
two feeds numbering entries 1, 2, 3 do not collide. Importing again sends the
same document; the server makes a new version only if the content changed.

Entry HTML goes as ``body_html`` (the server sanitises it with nh3); plain
text goes as ``body``. Enclosures and remote images are not fetched. A feed URL
is fetched with the bounded client (server.httpclient: size cap, timeouts,
no off-host redirects).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import html
import re
import time
from pathlib import Path
from typing import Any

import feedparser
import nh3

from tamizdat.bundles.manifest import LANG_RE
from tamizdat.errors import FormatError
from tamizdat.keys import timefmt

from .apiclient import ApiClient

MAX_FEED_BYTES = 16 * 1024 * 1024
FETCH_TIMEOUT = 60.0
DEFAULT_LANG = "en"


def _text(value: str, max_len: int) -> str:
    """Plain text from a feed field that may hold HTML."""
    plain = html.unescape(nh3.clean(value, tags=set(), strip_comments=True))
    plain = re.sub(r"\s+", " ", plain).strip()
    return plain[:max_len]


def _lang(value: str | None) -> str | None:
    if not value:
        return None
    tag = value.strip().replace("_", "-")
    parts = tag.split("-")
    tag = "-".join([parts[0].lower(), *parts[1:]])
    return tag if LANG_RE.match(tag) and len(tag) <= 35 else None


def _time(parsed: time.struct_time | None) -> str | None:
    if not parsed:
        return None
    return timefmt.format(dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC))


def entry_key(entry: Any, feed: Any) -> str:
    """What identifies an entry across imports."""
    key = entry.get("id") or entry.get("link") or ""
    if key and ":" not in key:  # a bare guid such as "123": qualify it by its feed
        key = f"{feed.get('link') or feed.get('id') or feed.get('title') or ''}#{key}"
    if not key:
        key = f"{entry.get('title', '')}|{entry.get('published', '') or entry.get('updated', '')}"
    return key


def article_id(key: str) -> str:
    return "feed-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def entry_article(entry: Any, feed: Any, default_lang: str) -> dict[str, Any]:
    """One feed entry as an API article (``published`` may be missing: the caller fills it)."""
    doc: dict[str, Any] = {"id": article_id(entry_key(entry, feed))}
    detail = entry.get("title_detail") or {}
    doc["lang"] = _lang(detail.get("language")) or _lang(feed.get("language")) or _lang(default_lang) or DEFAULT_LANG
    doc["title"] = _text(entry.get("title") or "", 500) or "(untitled)"
    content = entry.get("content") or []
    summary = entry.get("summary") or ""
    main = content[0] if content else {"value": summary, "type": (entry.get("summary_detail") or {}).get("type")}
    value = main.get("value") or ""
    if main.get("type") == "text/plain":
        doc["body"] = value
    else:
        doc["body_html"] = value
    if content and summary:
        short = _text(summary, 2000)
        if short:
            doc["summary"] = short
    author = entry.get("author")
    if author:
        doc["byline"] = _text(author, 500)
    # dict.get: feedparser's own get() maps a missing updated_* to published_* with a warning
    published = _time(dict.get(entry, "published_parsed")) or _time(dict.get(entry, "updated_parsed"))
    if published:
        doc["published"] = published
    updated = _time(dict.get(entry, "updated_parsed"))
    if published and updated and updated > published:
        doc["updated"] = updated
    return doc


async def load_feed(source: str) -> Any:
    if source.startswith(("http://", "https://")):
        from .httpclient import fetch_bytes

        raw = await fetch_bytes(source, max_bytes=MAX_FEED_BYTES, timeout=FETCH_TIMEOUT)
    else:
        path = Path(source)
        if path.stat().st_size > MAX_FEED_BYTES:
            raise FormatError(f"{path.name} is over {MAX_FEED_BYTES} bytes", code="feed-too-large")
        raw = path.read_bytes()
    parsed = feedparser.parse(raw)
    if parsed.get("bozo") and not parsed.get("entries"):
        raise FormatError(f"not an RSS or Atom feed: {parsed.get('bozo_exception')}", code="bad-feed")
    return parsed


async def import_feed(source: str, *, server: str, token: str, default_lang: str | None = None) -> list[dict[str, Any]]:
    """Import every entry; returns (action, id, version, title) per entry."""
    parsed = await load_feed(source)
    feed = parsed.get("feed", {})
    results = []
    async with ApiClient(server, token) as api:
        for entry in parsed.get("entries", []):
            doc = entry_article(entry, feed, default_lang or DEFAULT_LANG)
            if "published" not in doc:  # no date in the entry: keep the first import's
                existing = await api.get_article(doc["id"])
                doc["published"] = existing["article"]["published"] if existing else timefmt.format(timefmt.now())
            action, out = await api.upsert_article(doc)
            results.append(
                {"action": action, "id": out["id"], "version": out["current_version"], "title": doc["title"]}
            )
    return results
