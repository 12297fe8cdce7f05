"""``tamizdat publish``: JSON (the ``bundle build`` schema) or Markdown with YAML front matter.

JSON: ``{"articles": [...], "notice": {...} | "notices": [...], "kind"?, "title"?}``.
Notices are created or replaced first (PUT), then each article; an article
without ``notices`` carries every notice of its file, as in ``bundle build``.
``kind: "edition"`` also makes an edition of the file's articles. ``version``,
``supersedes`` and ``created`` are the server's to decide and are not sent.

Markdown: a ``---`` fenced YAML block holds the article fields (id, lang,
title, published, ...), the text after it is the body. Images (``images:
[{path, caption, ...}]``) are read relative to the file and uploaded first;
they are sent by media id. Publishing a file again changes nothing unless its
content changed (the server compares).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import yaml

from tamizdat.bundles.content import parse_article, parse_bundle_input, parse_notice
from tamizdat.errors import FormatError, UsageError
from tamizdat.keys import strictjson, timefmt

from .apiclient import ApiCallError, ApiClient

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
SERVER_FIELDS = ("version",)


def _yaml_value(value: Any) -> Any:
    """YAML turns times into datetime objects: back to the strict string form."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return timefmt.format(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _yaml_value(v) for k, v in value.items()}
    return value


def split_front_matter(text: str, name: str) -> tuple[dict[str, Any], str]:
    """``---\\n<yaml>\\n---\\n<markdown>`` -> (fields, body)."""
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise FormatError(f"{name} must start with a '---' line (YAML front matter)", code="bad-input")
    for i, line in enumerate(lines[1:], 1):
        if line.strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("".join(lines[1:i])) or {}
            except yaml.YAMLError as exc:
                raise FormatError(f"{name}: front matter is not valid YAML: {exc}", code="bad-input") from exc
            if not isinstance(meta, dict):
                raise FormatError(f"{name}: front matter must be a mapping of article fields", code="bad-input")
            return _yaml_value(meta), "".join(lines[i + 1 :]).strip("\n") + "\n"
    raise FormatError(f"{name}: the front matter has no closing '---' line", code="bad-input")


def read_markdown(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(articles, notices, extra) from a Markdown file; the body comes after the front matter."""
    meta, body = split_front_matter(path.read_text("utf-8"), path.name)
    if "body" in meta or "body_html" in meta:
        raise FormatError(f"{path.name}: the body is the Markdown after the front matter", code="bad-input")
    doc = {**meta, "body": body}
    parse_article(doc, base=path.parent)  # check locally first: clear errors before any upload
    return [doc], [], {}


def read_json(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(articles, notices, extra) from a ``bundle build`` JSON file."""
    raw = path.read_bytes()
    parse_bundle_input(raw, base=path.parent)  # the same checks as `bundle build`
    doc = strictjson.loads(raw)
    notices = []
    if "notice" in doc:
        notices.append({"id": "notice", **doc["notice"]})
    for i, item in enumerate(doc.get("notices", []), 1):
        notices.append({"id": f"notice-{i}", **item})
    notices = [{**n, "id": parse_notice(n).id} for n in notices]
    ids = [n["id"] for n in notices]
    articles = []
    for a in doc["articles"]:
        a = dict(a)
        a.setdefault("notices", ids)
        articles.append(a)
    extra = {k: doc[k] for k in ("kind", "title") if k in doc}
    return articles, notices, extra


async def _send_images(api: ApiClient, doc: dict[str, Any], base: Path) -> dict[str, Any]:
    images = []
    for im in doc.get("images", []):
        path = Path(im["path"])
        if not path.is_absolute():
            path = base / path
        ctype = IMAGE_TYPES.get(path.suffix.lower())
        if ctype is None:
            raise UsageError(f"image {path.name}: use .jpg, .png or .webp", code="usage")
        media = await api.upload_media(path.read_bytes(), ctype)
        images.append({**{k: v for k, v in im.items() if k != "path"}, "media": media})
    out = {k: v for k, v in doc.items() if k not in SERVER_FIELDS}
    if images:
        out["images"] = images
    return out


async def _edition(
    api: ApiClient, ids: list[str], versions: list[int], title: str | None, path: Path
) -> dict[str, Any]:
    """An edition of the file's articles, named by what it holds: publishing again makes no duplicate."""
    key = strictjson.dumps({"articles": [[i, v] for i, v in zip(ids, versions, strict=True)], "title": title})
    body: dict[str, Any] = {"id": "edition-" + hashlib.sha256(key).hexdigest()[:24], "articles": ids}
    if title:
        body["title"] = title
    action = "edition"
    try:
        out = await api.create_edition(body)
    except ApiCallError as err:
        if err.code != "edition-exists":
            raise
        _, out = await api.call("GET", f"/api/v1/editions/{body['id']}")
        action = "unchanged"
    return {"action": action, "id": out["id"], "version": 1, "bundle_id": out["bundle_id"], "file": str(path)}


async def publish_files(files: list[Path], *, server: str, token: str) -> list[dict[str, Any]]:
    """Publish every file; returns one result per article (action, id, version, bundle id)."""
    loaded = []
    for path in files:  # read and check everything before sending anything
        if path.suffix.lower() in (".md", ".markdown"):
            loaded.append((path, *read_markdown(path)))
        elif path.suffix.lower() == ".json":
            loaded.append((path, *read_json(path)))
        else:
            raise UsageError(f"{path.name}: publish takes .json or .md files", code="usage")
    results: list[dict[str, Any]] = []
    async with ApiClient(server, token) as api:
        for path, articles, notices, extra in loaded:
            for notice in notices:
                await api.put_notice(notice)
            ids, versions = [], []
            for doc in articles:
                body = await _send_images(api, doc, path.parent)
                action, out = await api.upsert_article(body)
                ids.append(out["id"])
                versions.append(out["current_version"])
                results.append(
                    {
                        "action": action,
                        "id": out["id"],
                        "version": out["current_version"],
                        "bundle_id": out["versions"][-1]["bundle_id"],
                        "file": str(path),
                    }
                )
            if extra.get("kind") == "edition":
                results.append(await _edition(api, ids, versions, extra.get("title"), path))
    return results
