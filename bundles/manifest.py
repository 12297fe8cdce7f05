"""The bundle manifest: the signed list of everything in a bundle.

:class:`Manifest` objects are valid by construction: :meth:`Manifest.from_payload`
parses strictly (unknown fields, bad types, dangling references are refused),
and the builder makes them through the same checks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from tamizdat.errors import FormatError
from tamizdat.keys import strictjson, timefmt
from tamizdat.keys.dsse import is_keyid
from tamizdat.keys.schema import Reader
from tamizdat.keys.strictjson import MAX_SAFE_INT

from .limits import DEFAULT_LIMITS
from .zipstrict import check_name

FORMAT = 1
CONTROL_DIR = "meta/"
MANIFEST_NAME = "meta/manifest.dsse.json"
ROOTS_PREFIX = "meta/roots/"
KINDS = ("article", "edition")
MEDIA_TYPES = {
    ".html": "text/html",
    ".json": "application/json",
    ".css": "text/css",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
LANG_RE = re.compile(r"\A[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
REGION_RE = re.compile(r"\A([A-Z]{2}|\*)\Z")
SHA_RE = re.compile(r"\A[0-9a-f]{64}\Z")
STEP = "18"


def bundle_id(payload: bytes) -> str:
    """A bundle's id: lowercase hex SHA-256 of its manifest payload bytes."""
    return hashlib.sha256(payload).hexdigest()


def root_entry_name(version: int) -> str:
    return f"{ROOTS_PREFIX}{version}.json"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    type: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "type": self.type}


@dataclass(frozen=True)
class Notice:
    """A publisher's legal-risk notice: where it applies and its text per language."""

    id: str
    regions: tuple[str, ...]
    text: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "regions": list(self.regions), "text": dict(sorted(self.text.items()))}


@dataclass(frozen=True)
class ArticleRef:
    id: str
    version: int
    lang: str
    title: str
    summary: str | None
    byline: str | None
    published: dt.datetime
    updated: dt.datetime | None
    path: str
    data: str
    notices: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "lang": self.lang,
            "title": self.title,
            "published": timefmt.format(self.published),
            "path": self.path,
            "data": self.data,
            "notices": list(self.notices),
        }
        if self.summary is not None:
            out["summary"] = self.summary
        if self.byline is not None:
            out["byline"] = self.byline
        if self.updated is not None:
            out["updated"] = timefmt.format(self.updated)
        return out


def _fail(message: str) -> FormatError:
    return FormatError(message, code="bad-manifest", step=STEP)


_FILE_FIELDS = ("path", "size", "sha256", "type")
_FILE_KEYS = frozenset(_FILE_FIELDS)


def _file(item: Any) -> FileEntry:
    """One item of ``files``: the usual well-formed case is checked inline, anything else
    goes through :class:`Reader` field by field (which words the error)."""
    if type(item) is dict and item.keys() == _FILE_KEYS:
        path, size, sha, kind = item["path"], item["size"], item["sha256"], item["type"]
        if (
            type(path) is str
            and type(sha) is str
            and type(kind) is str
            and type(size) is int
            and 0 < len(path) <= 255
            and 0 < len(sha) <= 64
            and 0 < len(kind) <= 100
            and 0 <= size <= MAX_SAFE_INT
            and "\x00" not in path
            and "\x00" not in sha
            and "\x00" not in kind
        ):
            return FileEntry(path, size, sha, kind)
    f = Reader(item, what="file", required=_FILE_FIELDS, step=STEP, code="bad-manifest")
    return FileEntry(
        f.text("path", max_len=255),
        f.integer("size"),
        f.text("sha256", max_len=64),
        f.text("type", max_len=100),
    )


@dataclass(frozen=True)
class Manifest:
    publisher: str
    root_keyid: str
    created: dt.datetime
    kind: str
    title: str | None
    articles: tuple[ArticleRef, ...]
    notices: tuple[Notice, ...]
    supersedes: tuple[str, ...]
    files: tuple[FileEntry, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise _fail(f"kind must be one of {KINDS}")
        if not is_keyid(self.root_keyid):
            raise _fail("root_keyid is not a key id")
        if not self.articles or len(self.articles) > DEFAULT_LIMITS.max_articles:
            raise _fail("a bundle holds 1 to 1000 articles")
        if self.kind == "article" and len(self.articles) != 1:
            raise _fail("an article bundle holds exactly one article")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths) or paths != sorted(paths):
            raise _fail("files must be listed once each, sorted by path")
        listed = set(paths)
        for f in self.files:
            why = check_name(f.path)
            if why or f.path.startswith(CONTROL_DIR):
                raise _fail(f"file path {f.path[:60]!r} is not allowed")
            dot = f.path.rfind(".")
            ext = f.path[dot:] if dot > f.path.rfind("/") else ""  # the last segment's extension
            if MEDIA_TYPES.get(ext) != f.type:
                raise _fail(f"file {f.path[:60]!r} has type {f.type!r}, not the one its name gives")
            if not SHA_RE.match(f.sha256) or not 0 <= f.size <= DEFAULT_LIMITS.max_entry_bytes:
                raise _fail(f"file {f.path[:60]!r} has a bad size or sha256")
        notice_ids = [n.id for n in self.notices]
        if len(set(notice_ids)) != len(notice_ids):
            raise _fail("notice ids must be unique")
        for n in self.notices:
            if not ID_RE.match(n.id) or not n.text:
                raise _fail("a notice needs an id and text")
            if any(not REGION_RE.match(r) for r in n.regions) or list(n.regions) != sorted(set(n.regions)):
                raise _fail("notice regions must be sorted, unique ISO 3166 codes or '*'")
            if any(not LANG_RE.match(lang) or not text for lang, text in n.text.items()):
                raise _fail("notice text must be keyed by language tags")
        seen: set[tuple[str, int]] = set()
        for a in self.articles:
            if not ID_RE.match(a.id) or not LANG_RE.match(a.lang) or a.version < 1:
                raise _fail(f"article {a.id[:40]!r} has a bad id, version or language")
            if (a.id, a.version) in seen:
                raise _fail(f"article {a.id[:40]!r} version {a.version} appears twice")
            seen.add((a.id, a.version))
            if a.path not in listed or not a.path.endswith(".html"):
                raise _fail(f"article {a.id[:40]!r} points to a missing page")
            if a.data not in listed or not a.data.endswith(".json"):
                raise _fail(f"article {a.id[:40]!r} points to missing data")
            if any(n not in notice_ids for n in a.notices) or len(set(a.notices)) != len(a.notices):
                raise _fail(f"article {a.id[:40]!r} refers to an unknown notice")
            if a.updated is not None and a.updated < a.published:
                raise _fail(f"article {a.id[:40]!r} was updated before it was published")
        if len(set(self.supersedes)) != len(self.supersedes) or any(not SHA_RE.match(s) for s in self.supersedes):
            raise _fail("supersedes must list bundle ids once each")
        if "index.html" not in listed:
            raise _fail("the bundle lacks index.html")

    # -- (de)serialising ------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "publisher": self.publisher,
            "root_keyid": self.root_keyid,
            "created": timefmt.format(self.created),
            "kind": self.kind,
            "articles": [a.to_json() for a in self.articles],
            "notices": [n.to_json() for n in self.notices],
            "supersedes": list(self.supersedes),
            "files": [f.to_json() for f in self.files],
        }
        if self.title is not None:
            out["title"] = self.title
        return out

    def to_payload(self) -> bytes:
        return strictjson.dumps(self.to_json())

    @classmethod
    def from_payload(cls, payload: bytes) -> Manifest:
        doc = strictjson.loads(payload, step=STEP)
        r = Reader(
            doc,
            what="manifest",
            step=STEP,
            code="bad-manifest",
            required=(
                "format",
                "publisher",
                "root_keyid",
                "created",
                "kind",
                "articles",
                "notices",
                "supersedes",
                "files",
            ),
            optional=("title",),
        )
        if r.integer("format") != FORMAT:
            r.fail(f"format must be {FORMAT} (this verifier is too old or the file is damaged)")
        files = [_file(item) for item in r.items("files", min_items=1, max_items=DEFAULT_LIMITS.max_entries)]
        notices = []
        for item in r.items("notices", max_items=64):
            n = Reader(item, what="notice", required=("id", "regions", "text"), step=STEP, code="bad-manifest")
            text = n.obj("text")
            if not isinstance(text, dict) or not all(
                isinstance(v, str) and 0 < len(v) <= 20_000 for v in text.values()
            ):
                n.fail("text must map language tags to strings")
            notices.append(
                Notice(n.text("id", max_len=128), tuple(n.strings("regions", max_items=300, max_len=2)), text)
            )
        articles = []
        for item in r.items("articles", min_items=1, max_items=DEFAULT_LIMITS.max_articles):
            a = Reader(
                item,
                what="article",
                step=STEP,
                code="bad-manifest",
                required=("id", "version", "lang", "title", "published", "path", "data", "notices"),
                optional=("summary", "byline", "updated"),
            )
            articles.append(
                ArticleRef(
                    id=a.text("id", max_len=128),
                    version=a.integer("version", lo=1),
                    lang=a.text("lang", max_len=35),
                    title=a.text("title", max_len=500),
                    summary=a.opt_text("summary", max_len=2000),
                    byline=a.opt_text("byline", max_len=500),
                    published=a.time("published"),
                    updated=a.opt_time("updated"),
                    path=a.text("path", max_len=255),
                    data=a.text("data", max_len=255),
                    notices=tuple(a.strings("notices", max_items=64, max_len=128)),
                )
            )
        return cls(
            publisher=r.text("publisher", max_len=200),
            root_keyid=r.text("root_keyid", max_len=64),
            created=r.time("created"),
            kind=r.text("kind", max_len=20),
            title=r.opt_text("title", max_len=500),
            articles=tuple(articles),
            notices=tuple(notices),
            supersedes=tuple(r.strings("supersedes", max_items=1000, max_len=64)),
            files=tuple(files),
        )
