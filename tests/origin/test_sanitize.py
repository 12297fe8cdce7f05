"""Article text is sanitised: no script, no event handler attributes, no javascript: links."""

from __future__ import annotations

import io
import json
import zipfile
from html.parser import HTMLParser

from .support import Api, article

EVIL_MD = """Hello <script>alert(1)</script> world.

[click](javascript:alert(2)) and <img src=x onerror=alert(3)>

<a href="javascript:alert(4)" onclick="alert(5)">raw</a>
"""
EVIL_HTML = (
    '<p onclick="alert(1)">Hi<script>alert(2)</script></p>'
    '<a href="javascript:alert(3)">x</a><img src="x" onerror="alert(4)">'
    '<a href="https://example.org/" onmouseover="alert(5)">ok</a>'
    "<style>body{display:none}</style><iframe src='https://evil.example/'></iframe>"
)


class Audit(HTMLParser):
    """Collects what must never survive sanitising."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "style") and tag != "style":
            self.bad.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.bad.append(f"{tag}@{name}")
            if name in ("href", "src") and value and value.strip().lower().startswith("javascript:"):
                self.bad.append(f"{tag}@{name}=javascript")


def audit(html: str) -> list[str]:
    p = Audit()
    p.feed(html)
    return p.bad


async def _bundle(api: Api, doc: dict[str, object]) -> zipfile.ZipFile:
    status, out = await api.call("POST", "/api/v1/articles", doc)
    assert status == 201, out
    await api.flush()
    resp = await api.client.get(f"/bundles/{out['versions'][0]['bundle_id']}.zip")
    return zipfile.ZipFile(io.BytesIO(await resp.read()))


async def test_markdown_is_sanitised(api: Api) -> None:
    zf = await _bundle(api, article("md", body=EVIL_MD, sections=[{"heading": "S", "body": EVIL_MD}]))
    page = zf.read("articles/1.html").decode()
    data = json.loads(zf.read("articles/1.json"))
    for html in (page, data["body_html"], data["sections"][0]["html"]):
        assert audit(html) == [], html
    assert "<script" not in data["body_html"]


async def test_body_html_is_sanitised(api: Api) -> None:
    zf = await _bundle(api, {k: v for k, v in article("h", body_html=EVIL_HTML).items() if k != "body"})
    page = zf.read("articles/1.html").decode()
    data = json.loads(zf.read("articles/1.json"))
    for html in (page, data["body_html"]):
        assert audit(html) == [], html
    body = data["body_html"]
    assert "<script" not in body and "<iframe" not in body and "<style" not in body and "onerror" not in body
    assert 'href="https://example.org/"' in body
    _, stored = await api.call("GET", "/api/v1/articles/h")
    assert "<script" not in stored["article"]["body_html"]
