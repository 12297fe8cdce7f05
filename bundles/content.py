"""Article input: the JSON schema shared by ``bundle build``, ``publish`` and the API.

An input document::

    {"articles": [{"id", "lang", "title", "body", "published", ...}, ...],
     "notice": {"regions": [...], "text": {"en": ..., "ru": ...}}}

Optional per article: version, summary, byline, updated, sections
([{"heading", "body"}]), images ([{"path", "caption", "alt", "credit"}]),
notices (ids). Optional at the top: kind, title, notices (a list with ids),
supersedes, created. docs/format.md lists every field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.errors import FormatError
from tamizdat.keys import strictjson
from tamizdat.keys.schema import Reader

from .manifest import ID_RE, KINDS, LANG_RE, REGION_RE, SHA_RE

MAX_BODY = 1_000_000
MAX_IMAGES = 50


@dataclass(frozen=True)
class ImageInput:
    """An image: ``source`` is a path (CLI) or bytes (API upload), re-encoded on build."""

    source: Path | bytes
    caption: str | None = None
    alt: str | None = None
    credit: str | None = None


@dataclass(frozen=True)
class SectionInput:
    heading: str
    body: str


@dataclass(frozen=True)
class NoticeInput:
    id: str
    regions: tuple[str, ...]
    text: dict[str, str]


@dataclass(frozen=True)
class ArticleInput:
    id: str
    lang: str
    title: str
    body: str
    published: dt.datetime
    version: int = 1
    summary: str | None = None
    byline: str | None = None
    updated: dt.datetime | None = None
    sections: tuple[SectionInput, ...] = ()
    images: tuple[ImageInput, ...] = ()
    notices: tuple[str, ...] | None = None
    # Already-sanitised HTML used instead of rendering ``body`` (the origin API's
    # ``body_html``; bundle build input never sets it). Sanitised again on build.
    body_html: str | None = None


@dataclass(frozen=True)
class BundleInput:
    articles: tuple[ArticleInput, ...]
    notices: tuple[NoticeInput, ...] = ()
    kind: str | None = None
    title: str | None = None
    supersedes: tuple[str, ...] = ()
    created: dt.datetime | None = None


def _reader(doc: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Reader:
    return Reader(doc, what=what, required=required, optional=optional, code="bad-input")


def parse_notice(doc: Any, default_id: str = "notice") -> NoticeInput:
    """Parse one notice: ``{"id"?, "regions": [...], "text": {lang: text}}``."""
    r = _reader(doc, "notice", ("regions", "text"), ("id",))
    nid = r.text("id", max_len=128) if r.has("id") else default_id
    regions = r.strings("regions", max_items=300, max_len=2)
    text = r.obj("text")
    if not isinstance(text, dict) or not text:
        r.fail("text must map language tags to the notice text")
    for lang, value in text.items():
        if not LANG_RE.match(lang) or not isinstance(value, str) or not 0 < len(value) <= 20_000:
            r.fail(f"text for {lang[:20]!r} must be 1 to 20000 characters under a language tag")
    if not ID_RE.match(nid):
        r.fail("id must be letters, digits, '.', '_' or '-'")
    regions_up = sorted({x.upper() if x != "*" else x for x in regions})
    if any(not REGION_RE.match(x) for x in regions_up):
        r.fail("regions must be ISO 3166 two-letter codes or '*'")
    return NoticeInput(nid, tuple(regions_up), dict(text))


def parse_article(doc: Any, base: Path | None = None) -> ArticleInput:
    """Parse one article; image paths resolve against ``base`` (the input file's folder)."""
    r = _reader(
        doc,
        "article",
        ("id", "lang", "title", "body", "published"),
        ("version", "summary", "byline", "updated", "sections", "images", "notices"),
    )
    aid = r.text("id", max_len=128)
    if not ID_RE.match(aid):
        r.fail("id must be 1-128 letters, digits, '.', '_' or '-'")
    lang = r.text("lang", max_len=35)
    if not LANG_RE.match(lang):
        r.fail("lang must be a language tag such as 'en' or 'pt-BR'")
    sections = []
    for item in r.items("sections", max_items=100) if r.has("sections") else []:
        s = _reader(item, "section", ("heading", "body"))
        sections.append(SectionInput(s.text("heading", max_len=500), s.text("body", max_len=MAX_BODY, min_len=0)))
    images = []
    for item in r.items("images", max_items=MAX_IMAGES) if r.has("images") else []:
        im = _reader(item, "image", ("path",), ("caption", "alt", "credit"))
        p = Path(im.text("path", max_len=4096))
        if base is not None and not p.is_absolute():
            p = base / p
        images.append(
            ImageInput(
                p,
                im.opt_text("caption", max_len=2000),
                im.opt_text("alt", max_len=1000),
                im.opt_text("credit", max_len=500),
            )
        )
    published = r.time("published")
    updated = r.opt_time("updated")
    if updated is not None and updated < published:
        r.fail("updated is before published")
    return ArticleInput(
        id=aid,
        lang=lang,
        title=r.text("title", max_len=500),
        body=r.text("body", max_len=MAX_BODY, min_len=0),
        published=published,
        version=r.integer("version", lo=1) if r.has("version") else 1,
        summary=r.opt_text("summary", max_len=2000),
        byline=r.opt_text("byline", max_len=500),
        updated=updated,
        sections=tuple(sections),
        images=tuple(images),
        notices=tuple(r.strings("notices", max_items=64, max_len=128)) if r.has("notices") else None,
    )


def parse_bundle_input(data: bytes, base: Path | None = None) -> BundleInput:
    """Parse the ``bundle build`` input document."""
    doc = strictjson.loads(data)
    r = _reader(doc, "input", ("articles",), ("notice", "notices", "kind", "title", "supersedes", "created"))
    if r.has("notice") and r.has("notices"):
        r.fail("give notice or notices, not both")
    notices: list[NoticeInput] = []
    if r.has("notice"):
        notices.append(parse_notice(r.obj("notice")))
    for i, item in enumerate(r.items("notices", max_items=64) if r.has("notices") else [], 1):
        notices.append(parse_notice(item, default_id=f"notice-{i}"))
    if len({n.id for n in notices}) != len(notices):
        r.fail("notice ids must be unique")
    articles = tuple(parse_article(a, base) for a in r.items("articles", min_items=1, max_items=1000))
    kind = r.text("kind", max_len=20) if r.has("kind") else None
    if kind is not None and kind not in KINDS:
        r.fail(f"kind must be one of {', '.join(KINDS)}")
    supersedes = tuple(r.strings("supersedes", max_items=1000, max_len=64)) if r.has("supersedes") else ()
    if any(not SHA_RE.match(s) for s in supersedes):
        r.fail("supersedes must list bundle ids (64 hex digits)")
    known = {n.id for n in notices}
    for a in articles:
        if a.notices is not None and not set(a.notices) <= known:
            raise FormatError(f"article {a.id!r} refers to an unknown notice", code="bad-input")
    return BundleInput(
        articles=articles,
        notices=tuple(notices),
        kind=kind,
        title=r.opt_text("title", max_len=500),
        supersedes=supersedes,
        created=r.opt_time("created"),
    )
