"""Request bodies of the publishing API, checked with the bundle input schema.

An API article is the ``bundle build`` article (bundles/content.py) with two
differences: an image names an uploaded media id (``{"media": "<id>", ...}``)
instead of a ``path``, and ``body_html`` (sanitised here with nh3) may replace
``body`` (Markdown). ``version`` is assigned by the server; if given it must be
the version the request would create.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from tamizdat.bundles import render
from tamizdat.bundles.content import MAX_BODY, ArticleInput, ImageInput, parse_article, parse_notice
from tamizdat.bundles.manifest import ID_RE, LANG_RE, SHA_RE
from tamizdat.errors import FormatError
from tamizdat.keys import strictjson
from tamizdat.keys.schema import Reader

MAX_EDITION_ARTICLES = 1000
ARTICLE_FIELDS = (
    "id",
    "lang",
    "title",
    "body",
    "body_html",
    "published",
    "version",
    "summary",
    "byline",
    "updated",
    "sections",
    "images",
    "notices",
)


def _fail(message: str, code: str = "bad-input") -> FormatError:
    return FormatError(message, code=code)


@dataclass(frozen=True)
class ApiArticle:
    """A checked API article: ``doc`` is what is stored (and hashed) for the version."""

    doc: dict[str, Any]
    version: int | None  # the version the client expects to create, if it said
    media: tuple[str, ...]
    notices: tuple[str, ...]


def parse_api_article(doc: Any, *, path_id: str | None = None) -> ApiArticle:
    """Check an article request body; ``path_id`` is the id in the URL (PUT)."""
    if not isinstance(doc, dict):
        raise _fail("the body must be a JSON object holding one article")
    unknown = sorted(set(doc) - set(ARTICLE_FIELDS))
    if unknown:
        raise _fail(f"article has unknown field {unknown[0][:40]!r}")
    doc = dict(doc)
    if path_id is not None and doc.setdefault("id", path_id) != path_id:
        raise _fail("the article id in the body differs from the one in the URL", code="id-mismatch")
    has_md, has_html = "body" in doc, "body_html" in doc
    if has_md == has_html:
        raise _fail("give the article text as body (Markdown) or body_html, exactly one")
    if has_html:
        html = doc["body_html"]
        if not isinstance(html, str) or len(html) > MAX_BODY:
            raise _fail(f"body_html must be a string of at most {MAX_BODY} characters")
        doc["body_html"] = render.sanitize_html(html)
    media: list[str] = []
    images = doc.get("images", [])
    if not isinstance(images, list):
        raise _fail("images must be a list")
    for item in images:
        im = Reader(item, what="image", required=("media",), optional=("caption", "alt", "credit"), code="bad-input")
        mid = im.text("media", max_len=64)
        if not SHA_RE.match(mid):
            im.fail("media must be the id of an uploaded image (64 hex digits)")
        media.append(mid)
    # The shared schema checks every other field (lengths, times, ids, languages).
    probe = {k: v for k, v in doc.items() if k != "body_html"}
    if has_html:
        probe["body"] = ""
    probe["images"] = [{**{k: v for k, v in im.items() if k != "media"}, "path": "upload"} for im in images]
    if not probe["images"]:
        del probe["images"]
    checked = parse_article(probe)
    expected = checked.version if doc.pop("version", None) is not None else None
    return ApiArticle(doc, expected, tuple(media), tuple(checked.notices or ()))


def content_hash(doc: dict[str, Any], notices: list[dict[str, Any]]) -> str:
    """What decides whether an update is a change: the article and the notices it carries."""
    return hashlib.sha256(strictjson.dumps({"article": doc, "notices": notices})).hexdigest()


def article_input(doc: dict[str, Any], version: int, media: dict[str, bytes]) -> ArticleInput:
    """The stored API document as build input (images as their cleaned bytes)."""
    probe = {k: v for k, v in doc.items() if k != "body_html"}
    if "body_html" in doc:
        probe["body"] = ""
    images = doc.get("images", [])
    probe["images"] = [{**{k: v for k, v in im.items() if k != "media"}, "path": "upload"} for im in images]
    if not images:
        del probe["images"]
    probe["version"] = version
    parsed = parse_article(probe, base=None)
    image_inputs = tuple(
        ImageInput(media[im["media"]], p.caption, p.alt, p.credit) for im, p in zip(images, parsed.images, strict=True)
    )
    # An API article without notices carries none (in bundle input, absent means "all").
    return dataclasses.replace(
        parsed, images=image_inputs, body_html=doc.get("body_html"), notices=tuple(parsed.notices or ())
    )


@dataclass(frozen=True)
class EditionRequest:
    id: str | None
    articles: tuple[str, ...]
    title: str | None
    lang: str | None


def parse_edition(doc: Any) -> EditionRequest:
    r = Reader(doc, what="edition", required=("articles",), optional=("id", "title", "lang"), code="bad-input")
    ids = r.strings("articles", min_items=1, max_items=MAX_EDITION_ARTICLES, max_len=128)
    eid = r.opt_text("id", max_len=128)
    if eid is not None and not ID_RE.match(eid):
        r.fail("id must be 1-128 letters, digits, '.', '_' or '-'")
    lang = r.opt_text("lang", max_len=35)
    if lang is not None and not LANG_RE.match(lang):
        r.fail("lang must be a language tag such as 'en' or 'pt-BR'")
    return EditionRequest(eid, tuple(ids), r.opt_text("title", max_len=500), lang)


def parse_notice_body(doc: Any, *, path_id: str | None = None) -> dict[str, Any]:
    """A notice: ``{"id", "regions", "text"}``; returns it normalised (regions sorted, upper case)."""
    if isinstance(doc, dict) and path_id is not None and doc.setdefault("id", path_id) != path_id:
        raise _fail("the notice id in the body differs from the one in the URL", code="id-mismatch")
    if not isinstance(doc, dict) or "id" not in doc:
        raise _fail("notice lacks field 'id'")
    n = parse_notice(doc)
    return {"id": n.id, "regions": list(n.regions), "text": dict(sorted(n.text.items()))}


def parse_reason(doc: Any) -> str:
    r = Reader(doc, what="retraction", required=("reason",), code="bad-input")
    return r.text("reason", max_len=1000).strip() or r.fail("reason must not be blank")
