"""Build a signed bundle: render articles, clean images, sign the manifest, write the ZIP."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.errors import UsageError
from tamizdat.keys import dsse, strictjson, timefmt
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import RootChain

from . import render
from .content import ArticleInput, BundleInput
from .manifest import (
    MANIFEST_NAME,
    MEDIA_TYPES,
    ArticleRef,
    FileEntry,
    Manifest,
    Notice,
    bundle_id,
    root_entry_name,
)
from .media import CleanImage, clean_image
from .zipwrite import Content, write_zip


@dataclass(frozen=True)
class BuiltBundle:
    bundle_id: str
    path: Path
    size: int
    sha256: str
    manifest: Manifest


def default_created(inp: BundleInput, signer_not_before: dt.datetime) -> dt.datetime:
    """Reproducible default: the newest article time, but not before the key's window."""
    if inp.created is not None:
        return inp.created
    newest = max((a.updated or a.published) for a in inp.articles)
    return max(newest, signer_not_before)


def _day(moment: dt.datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d") if moment else None


def _article_files(
    n: int, a: ArticleInput, notices: list[Notice], images: list[CleanImage]
) -> tuple[dict[str, Any], dict[str, Any]]:
    body_html = render.sanitize_html(a.body_html) if a.body_html is not None else render.markdown_to_html(a.body)
    sections = [{"heading": s.heading, "html": render.markdown_to_html(s.body)} for s in a.sections]
    image_docs = [
        {
            "path": im.name,
            "type": im.media_type,
            "width": im.width,
            "height": im.height,
            **{k: v for k, v in (("caption", src.caption), ("alt", src.alt), ("credit", src.credit)) if v},
        }
        for im, src in zip(images, a.images, strict=True)
    ]
    data: dict[str, Any] = {
        "id": a.id,
        "version": a.version,
        "lang": a.lang,
        "dir": render.text_dir(a.lang),
        "title": a.title,
        "published": timefmt.format(a.published),
        "body_html": body_html,
        "sections": sections,
        "images": image_docs,
        "notices": [x.id for x in notices],
    }
    for key, value in (("summary", a.summary), ("byline", a.byline)):
        if value is not None:
            data[key] = value
    if a.updated is not None:
        data["updated"] = timefmt.format(a.updated)
    view = {
        **data,
        "path": f"articles/{n}.html",
        "published_iso": data["published"],
        "published_day": _day(a.published),
        "updated_iso": data.get("updated"),
        "updated_day": _day(a.updated),
    }
    return data, view


def _notice_view(notices: list[Notice], lang: str) -> list[dict[str, Any]]:
    out = []
    for n in notices:
        texts = [(lang, n.text[lang])] if lang in n.text else sorted(n.text.items())
        out.append({"id": n.id, "texts": texts})
    return out


def build_bundle(
    inp: BundleInput,
    *,
    signer: SigningKey,
    chain: RootChain,
    out: Path,
    created: dt.datetime | None = None,
    durable: bool = True,
    extra_files: dict[str, Content] | None = None,
    index_lang: str | None = None,
) -> BuiltBundle:
    """Build and sign a bundle from ``inp`` with ``signer`` under ``chain``; write it to ``out``.

    The chain must start at root version 1 (the bundle carries every version).
    ``index_lang`` sets the language of ``index.html`` (default: the articles' most common).
    """
    if chain.first.version != 1:
        raise UsageError("a bundle must carry the root chain from version 1", code="usage")
    root = chain.newest
    entry = root.signing_keys.get(signer.keyid)
    if entry is None:
        raise UsageError("the signing key is not delegated by the current root", code="no-signing-key")
    moment = created or default_created(inp, entry.not_before)
    root.authorize(signer.keyid, "bundle", moment, step="19")

    notices = [Notice(n.id, n.regions, dict(n.text)) for n in inp.notices]
    files: dict[str, Content] = {}
    refs: list[ArticleRef] = []
    views: list[dict[str, Any]] = []
    for n, a in enumerate(inp.articles, 1):
        images = [clean_image(im.source, label=f"image {i} of article {a.id}") for i, im in enumerate(a.images, 1)]
        for im in images:
            files[im.name] = im.data
        applies = notices if a.notices is None else [x for x in notices if x.id in a.notices]
        data, view = _article_files(n, a, applies, images)
        files[f"articles/{n}.json"] = strictjson.dumps_pretty(data)
        files[f"articles/{n}.html"] = render.render_page(
            "article.html", ui_lang=a.lang, a=view, notices=_notice_view(applies, a.lang)
        )
        views.append(view)
        refs.append(
            ArticleRef(
                id=a.id,
                version=a.version,
                lang=a.lang,
                title=a.title,
                summary=a.summary,
                byline=a.byline,
                published=a.published,
                updated=a.updated,
                path=f"articles/{n}.html",
                data=f"articles/{n}.json",
                notices=tuple(x.id for x in applies),
            )
        )
    main_lang = index_lang or Counter(a.lang for a in inp.articles).most_common(1)[0][0]
    files["index.html"] = render.render_page(
        "index.html",
        ui_lang=main_lang,
        articles=views,
        title=inp.title,
        title_lang=main_lang,
        notices=_notice_view(notices, main_lang),
    )
    files.update(extra_files or {})

    entries = []
    for path in sorted(files):
        content = files[path]
        if isinstance(content, bytes):
            size, digest = len(content), hashlib.sha256(content).hexdigest()
        else:
            size, digest = _hash_file(content)
        ext = path[path.rfind(".") :]
        entries.append(FileEntry(path, size, digest, MEDIA_TYPES[ext]))

    kind = inp.kind or ("article" if len(inp.articles) == 1 else "edition")
    manifest = Manifest(
        publisher=root.publisher,
        root_keyid=sorted(chain.first.root_keys)[0],
        created=moment,
        kind=kind,
        title=inp.title,
        articles=tuple(refs),
        notices=tuple(notices),
        supersedes=tuple(inp.supersedes),
        files=tuple(entries),
    )
    payload = manifest.to_payload()
    env = dsse.sign(dsse.BUNDLE_TYPE, payload, [signer])
    files[MANIFEST_NAME] = env.to_bytes()
    for version, doc in enumerate(chain.envelopes, 1):
        files[root_entry_name(version)] = doc
    write_zip(out, files, durable=durable)
    size, file_hash = _hash_file(out)
    return BuiltBundle(bundle_id(payload), out, size, file_hash, manifest)


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
