"""`publish` (JSON, Markdown with front matter and images) and `import-feed` (RSS 2.0, Atom) over the API."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from tamizdat.errors import FormatError
from tamizdat.server.feeds import import_feed
from tamizdat.server.ingest import publish_files, split_front_matter

from .support import ASSETS, Api, image_bytes


def base_url(api: Api) -> str:
    return str(api.client.make_url("/")).rstrip("/")


async def test_import_rss_twice_no_duplicates(api: Api, tmp_path: Path) -> None:
    first = await import_feed(str(ASSETS / "feed.rss"), server=base_url(api), token=api.token)
    assert [r["action"] for r in first] == ["created", "created"]
    again = await import_feed(str(ASSETS / "feed.rss"), server=base_url(api), token=api.token)
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    _, listing = await api.call("GET", "/api/v1/articles")
    assert listing["total"] == 2 and all(a["current_version"] == 1 for a in listing["articles"])
    _, court = await api.call("GET", f"/api/v1/articles/{first[0]['id']}")
    assert court["lang"] == "en-us" and court["article"]["published"] == "2026-01-05T10:00:00Z"
    assert "<script" not in court["article"]["body_html"]
    # a changed entry gives a new version of the same article
    changed = tmp_path / "feed.rss"
    changed.write_text((ASSETS / "feed.rss").read_text().replace("Prices rose by a tenth.", "Prices doubled."))
    third = await import_feed(str(changed), server=base_url(api), token=api.token)
    assert [r["action"] for r in third] == ["unchanged", "updated"]
    _, water = await api.call("GET", f"/api/v1/articles/{first[1]['id']}")
    assert water["current_version"] == 2 and "doubled" in water["article"]["body_html"]
    assert (await api.call("GET", "/api/v1/articles"))[1]["total"] == 2


async def test_import_atom(api: Api) -> None:
    first = await import_feed(str(ASSETS / "feed.atom"), server=base_url(api), token=api.token)
    assert [r["action"] for r in first] == ["created", "created"]
    again = await import_feed(str(ASSETS / "feed.atom"), server=base_url(api), token=api.token)
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
    _, sud = await api.call("GET", f"/api/v1/articles/{first[0]['id']}")
    doc = sud["article"]
    assert doc["lang"] == "ru" and doc["title"] == "Суд рассмотрел жалобу"
    assert doc["updated"] == "2026-01-07T11:00:00Z" and doc["byline"] == "Редакция"
    assert "onerror" not in doc["body_html"]
    _, winter = await api.call("GET", f"/api/v1/articles/{first[1]['id']}")
    assert winter["article"]["body"] == "Холодно."


async def test_publish_json_file(api: Api, tmp_path: Path) -> None:
    shutil.copy(ASSETS / "photo.png", tmp_path / "photo.png")
    doc = {
        "notice": {"regions": ["RU"], "text": {"en": "Careful.", "ru": "Осторожно."}},
        "articles": [
            {
                "id": "j1",
                "lang": "en",
                "title": "From JSON",
                "body": "Text.",
                "published": "2026-01-02T00:00:00Z",
                "version": 7,
                "images": [{"path": "photo.png", "caption": "A photo"}],
            },
            {"id": "j2", "lang": "ru", "title": "Второй", "body": "Текст.", "published": "2026-01-02T00:00:00Z"},
        ],
        "kind": "edition",
        "title": "Digest",
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    results = await publish_files([path], server=base_url(api), token=api.token)
    assert [(r["action"], r["id"]) for r in results][:2] == [("created", "j1"), ("created", "j2")]
    assert results[2]["action"] == "edition"
    _, j1 = await api.call("GET", "/api/v1/articles/j1")
    assert j1["current_version"] == 1 and j1["article"]["notices"] == ["notice"]
    assert len(j1["article"]["images"]) == 1 and "media" in j1["article"]["images"][0]
    again = await publish_files([path], server=base_url(api), token=api.token)
    assert [r["action"] for r in again] == ["unchanged", "unchanged", "unchanged"]
    assert again[2]["id"] == results[2]["id"]
    await api.flush()
    resp = await api.client.get(f"/bundles/{results[2]['bundle_id']}.zip")
    zf = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert any(n.startswith("media/") for n in zf.namelist())


async def test_publish_markdown_with_front_matter(api: Api, tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "pic.jpg").write_bytes(image_bytes("JPEG", (16, 16), exif=True))
    md = tmp_path / "story.md"
    md.write_text(
        "---\n"
        "id: md-story\n"
        "lang: en\n"
        "title: 'A story: told in Markdown'\n"
        "published: 2026-01-03T08:00:00Z\n"
        "byline: Desk\n"
        "images:\n"
        "  - path: img/pic.jpg\n"
        "    alt: a square\n"
        "---\n"
        "# Heading\n\nSome *text* here.\n"
    )
    results = await publish_files([md], server=base_url(api), token=api.token)
    assert results[0]["action"] == "created"
    _, got = await api.call("GET", "/api/v1/articles/md-story")
    doc = got["article"]
    assert doc["published"] == "2026-01-03T08:00:00Z" and doc["body"].startswith("# Heading")
    assert doc["images"][0]["alt"] == "a square"
    await api.flush()
    resp = await api.client.get(f"/bundles/{results[0]['bundle_id']}.zip")
    zf = zipfile.ZipFile(io.BytesIO(await resp.read()))
    [name] = [n for n in zf.namelist() if n.startswith("media/")]
    assert b"SecretCam" not in zf.read(name)
    assert Image.open(io.BytesIO(zf.read(name))).size == (16, 16)
    md.write_text(md.read_text().replace("Some *text*", "Other *text*"))
    again = await publish_files([md], server=base_url(api), token=api.token)
    assert again[0]["action"] == "updated" and again[0]["version"] == 2


def test_front_matter_errors() -> None:
    with pytest.raises(FormatError):
        split_front_matter("no front matter", "x.md")
    with pytest.raises(FormatError):
        split_front_matter("---\nid: a\n", "x.md")
    with pytest.raises(FormatError):
        split_front_matter("---\n- a list\n---\nbody", "x.md")
    meta, body = split_front_matter("---\nid: a\npublished: 2026-01-01\n---\nbody\n", "x.md")
    assert meta == {"id": "a", "published": "2026-01-01T00:00:00Z"} and body == "body\n"


async def test_import_feed_from_url(api: Api, aiohttp_server: Any) -> None:
    """A feed URL goes through the bounded HTTP client (here a local server on 127.0.0.1)."""
    body = (ASSETS / "feed.atom").read_bytes()

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/atom+xml")

    app = web.Application()
    app.router.add_get("/feed.atom", feed)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = str(server.make_url("/feed.atom"))
    first = await import_feed(url, server=base_url(api), token=api.token)
    again = await import_feed(url, server=base_url(api), token=api.token)
    assert [r["action"] for r in first] == ["created", "created"]
    assert [r["action"] for r in again] == ["unchanged", "unchanged"]
