"""The origin service: articles, versions, editions, media and notices over the store.

Handlers in server.api stay thin: they parse a request and call one method
here. A write builds its bundle off the event loop (server.packager) into
``DATA/tmp``, records it, and wakes the publisher; the next round lists it in
a new index version. Per-article locks keep versions of one article in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tamizdat.bundles.content import BundleInput, NoticeInput
from tamizdat.bundles.media import MAX_IMAGE_BYTES
from tamizdat.keys import timefmt

from . import packager
from .api_errors import ApiError
from .api_schema import ApiArticle, EditionRequest, article_input, content_hash
from .datadir import DataDir
from .keyring import Keyring
from .packpool import PackPool, worker_count
from .rounds import Publisher, insert_bundle
from .store import Store, Tx

MEDIA_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def _not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "not-found", f"no {what} {ident!r}")


@dataclass(frozen=True)
class MediaInfo:
    id: str
    type: str
    width: int
    height: int
    size: int
    created: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "width": self.width,
            "height": self.height,
            "size": self.size,
            "created": self.created,
        }


def _version_state(row: Any, current: int) -> str:
    if row["retracted_at"]:
        return "retracted"
    if row["index_version"] is None:
        return "pending"
    return "superseded" if row["version"] < current else "published"


class Origin:
    """Everything a request handler needs, in one object (the app's ``ORIGIN`` key)."""

    def __init__(self, data: DataDir, settings: dict[str, Any], store: Store, keyring: Keyring, publisher: Publisher):
        self.data = data
        self.settings = settings
        self.store = store
        self.keyring = keyring
        self.publisher = publisher
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.pool = PackPool(worker_count(int(settings.get("pack_workers", 0))))

    def close(self) -> None:
        """Stop the packaging processes (after the app stopped taking requests)."""
        self.pool.close()

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        async with lock:
            yield

    # -- building ---------------------------------------------------------
    async def _pack(self, inp: BundleInput, *, index_lang: str | None = None) -> packager.Packed:
        now = timefmt.now()
        keys = await asyncio.to_thread(self.keyring.snapshot)
        signer = self.keyring.signer("bundle", now)
        return await self.pool.pack(
            inp,
            keys_dir=self.keyring.path,
            signer_keyid=signer.keyid,
            documents=keys.documents,
            root_keyid=keys.root_keyid,
            tmp=self.data.tmp,
            created=now,
            index_lang=index_lang,
        )

    def _discard(self, packed: packager.Packed) -> None:
        packed.path.unlink(missing_ok=True)

    async def _bundle_known(self, bundle_id: str) -> bool:
        async with self.store.tx(write=False) as tx:
            return await tx.one("SELECT 1 FROM bundles WHERE id = ?", (bundle_id,)) is not None

    async def _notices(self, tx: Tx, ids: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for nid in ids:
            row = await tx.one("SELECT * FROM notices WHERE id = ?", (nid,))
            if row is None:
                raise ApiError(422, "unknown-notice", f"the article refers to notice {nid!r}, which does not exist")
            out.append({"id": nid, "regions": json.loads(row["regions"]), "text": json.loads(row["text"])})
        return out

    async def _media(self, tx: Tx, ids: tuple[str, ...]) -> dict[str, bytes]:
        out = {}
        for mid in ids:
            row = await tx.one("SELECT data FROM media WHERE id = ?", (mid,))
            if row is None:
                raise ApiError(422, "unknown-media", f"media {mid[:16]}... was not uploaded (POST /api/v1/media)")
            out[mid] = bytes(row["data"])
        return out

    @staticmethod
    def _notice_inputs(notices: list[dict[str, Any]]) -> tuple[NoticeInput, ...]:
        return tuple(NoticeInput(n["id"], tuple(n["regions"]), dict(n["text"])) for n in notices)

    # -- articles ---------------------------------------------------------
    async def create_article(self, art: ApiArticle) -> dict[str, Any]:
        aid = art.doc["id"]
        if art.version not in (None, 1):
            raise ApiError(409, "version-conflict", "a new article starts at version 1")
        async with self._locked(aid):
            async with self.store.tx(write=False) as tx:
                if await tx.one("SELECT 1 FROM articles WHERE id = ?", (aid,)):
                    raise ApiError(409, "article-exists", f"article {aid!r} exists: update it with PUT")
                notices = await self._notices(tx, art.notices)
                media = await self._media(tx, art.media)
            inp = BundleInput((article_input(art.doc, 1, media),), self._notice_inputs(notices), kind="article")
            packed = await self._pack(inp)
            now = timefmt.format(timefmt.now())
            try:
                async with self.store.tx() as tx:
                    await tx.run(
                        "INSERT INTO articles (id, created, updated, current_version) VALUES (?, ?, ?, 1)",
                        (aid, now, now),
                    )
                    await self._insert_version(tx, aid, 1, art.doc, content_hash(art.doc, notices), packed, now)
            except BaseException:
                self._discard(packed)
                raise
        self.publisher.changed()
        return await self.get_article(aid)

    async def _insert_version(
        self, tx: Tx, aid: str, version: int, doc: dict[str, Any], digest: str, packed: packager.Packed, now: str
    ) -> None:
        await insert_bundle(tx, packed)
        await tx.run(
            "INSERT INTO bundle_articles (bundle_id, article_id, version) VALUES (?, ?, ?)",
            (packed.bundle_id, aid, version),
        )
        await tx.run(
            "INSERT INTO article_versions (article_id, version, created, doc, content_sha256, bundle_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (aid, version, now, json.dumps(doc, ensure_ascii=False, sort_keys=True), digest, packed.bundle_id),
        )

    async def update_article(self, art: ApiArticle) -> tuple[dict[str, Any], bool]:
        """A new version if the content (or a notice it carries) changed; returns (article, changed)."""
        aid = art.doc["id"]
        async with self._locked(aid):
            async with self.store.tx(write=False) as tx:
                row = await tx.one("SELECT * FROM articles WHERE id = ?", (aid,))
                if row is None:
                    raise _not_found("article", aid)
                if row["retracted_at"]:
                    raise ApiError(409, "article-retracted", f"article {aid!r} was retracted")
                current = int(row["current_version"])
                cur = await tx.one(
                    "SELECT * FROM article_versions WHERE article_id = ? AND version = ?", (aid, current)
                )
                assert cur is not None
                notices = await self._notices(tx, art.notices)
                media = await self._media(tx, art.media)
            digest = content_hash(art.doc, notices)
            if digest == cur["content_sha256"] and art.version in (None, current):
                return await self.get_article(aid), False
            if art.version not in (None, current + 1):
                raise ApiError(
                    409, "version-conflict", f"article {aid!r} is at version {current}; this would be {current + 1}"
                )
            version = current + 1
            inp = BundleInput(
                (article_input(art.doc, version, media),),
                self._notice_inputs(notices),
                kind="article",
                supersedes=(cur["bundle_id"],),
            )
            packed = await self._pack(inp)
            now = timefmt.format(timefmt.now())
            try:
                async with self.store.tx() as tx:
                    if await tx.value("SELECT retracted_at FROM articles WHERE id = ?", (aid,)):
                        raise ApiError(409, "article-retracted", f"article {aid!r} was retracted")
                    await self._insert_version(tx, aid, version, art.doc, digest, packed, now)
                    await tx.run(
                        "UPDATE articles SET current_version = ?, updated = ? WHERE id = ?", (version, now, aid)
                    )
            except BaseException:
                self._discard(packed)
                raise
        self.publisher.changed()
        return await self.get_article(aid), True

    async def retract_article(self, aid: str, reason: str) -> dict[str, Any]:
        """Retract every bundle carrying any version of the article (editions too)."""
        async with self._locked(aid):
            now = timefmt.format(timefmt.now())
            async with self.store.tx() as tx:
                row = await tx.one("SELECT retracted_at FROM articles WHERE id = ?", (aid,))
                if row is None:
                    raise _not_found("article", aid)
                if row["retracted_at"]:
                    raise ApiError(409, "already-retracted", f"article {aid!r} is already retracted")
                await tx.run(
                    "UPDATE articles SET retracted_at = ?, retract_reason = ?, updated = ? WHERE id = ?",
                    (now, reason, now, aid),
                )
                bundle_ids = [
                    r["bundle_id"]
                    for r in await tx.all("SELECT bundle_id FROM bundle_articles WHERE article_id = ?", (aid,))
                ]
                await self._retract_bundles(tx, bundle_ids, now, reason)
        self.publisher.changed()
        return await self.get_article(aid)

    async def _retract_bundles(self, tx: Tx, bundle_ids: list[str], now: str, reason: str) -> None:
        for bid in bundle_ids:
            await tx.run(
                "UPDATE bundles SET retracted_at = ?, retract_reason = ?, dirty = dirty + 1 "
                "WHERE id = ? AND retracted_at IS NULL",
                (now, reason, bid),
            )
            await tx.run(
                "UPDATE editions SET retracted_at = ?, retract_reason = ? WHERE bundle_id = ? AND retracted_at IS NULL",
                (now, reason, bid),
            )

    async def _article_json(self, tx: Tx, row: Any, *, with_doc: bool = True) -> dict[str, Any]:
        current = int(row["current_version"])
        versions = await tx.all(
            "SELECT v.version, v.created, v.bundle_id, v.content_sha256, v.doc, b.retracted_at, b.index_version "
            "FROM article_versions v JOIN bundles b ON b.id = v.bundle_id "
            "WHERE v.article_id = ? ORDER BY v.version",
            (row["id"],),
        )
        vlist = [
            {
                "version": v["version"],
                "created": v["created"],
                "bundle_id": v["bundle_id"],
                "content_sha256": v["content_sha256"],
                "state": _version_state(v, current),
            }
            for v in versions
        ]
        doc = json.loads(versions[-1]["doc"])
        state = "retracted" if row["retracted_at"] else vlist[-1]["state"]
        out: dict[str, Any] = {
            "id": row["id"],
            "state": state,
            "created": row["created"],
            "updated": row["updated"],
            "current_version": current,
            "title": doc["title"],
            "lang": doc["lang"],
            "retracted": {"at": row["retracted_at"], "reason": row["retract_reason"]} if row["retracted_at"] else None,
            "versions": vlist,
        }
        if with_doc:
            out["article"] = {**doc, "version": current}
        return out

    async def get_article(self, aid: str) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            row = await tx.one("SELECT * FROM articles WHERE id = ?", (aid,))
            if row is None:
                raise _not_found("article", aid)
            return await self._article_json(tx, row)

    async def list_articles(self, *, limit: int, offset: int, state: str | None) -> dict[str, Any]:
        where = ""
        if state == "retracted":
            where = "WHERE retracted_at IS NOT NULL"
        elif state == "active":
            where = "WHERE retracted_at IS NULL"
        async with self.store.tx(write=False) as tx:
            total = int(await tx.value(f"SELECT COUNT(*) FROM articles {where}"))
            rows = await tx.all(
                f"SELECT * FROM articles {where} ORDER BY created, id LIMIT ? OFFSET ?", (limit, offset)
            )
            items = [await self._article_json(tx, r, with_doc=False) for r in rows]
        return {"articles": items, "total": total, "limit": limit, "offset": offset}

    # -- editions ---------------------------------------------------------
    async def create_edition(self, req: EditionRequest) -> dict[str, Any]:
        if len(set(req.articles)) != len(req.articles):
            raise ApiError(422, "bad-input", "an edition lists each article once")
        eid = req.id or f"edition-{timefmt.now():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        async with self.store.tx(write=False) as tx:
            if await tx.one("SELECT 1 FROM editions WHERE id = ?", (eid,)):
                raise ApiError(409, "edition-exists", f"edition {eid!r} exists")
            articles = []
            picked: list[tuple[str, int]] = []
            notice_ids: dict[str, None] = {}
            docs = []
            for aid in req.articles:
                row = await tx.one("SELECT * FROM articles WHERE id = ?", (aid,))
                if row is None:
                    raise ApiError(422, "unknown-article", f"no article {aid!r}")
                if row["retracted_at"]:
                    raise ApiError(409, "article-retracted", f"article {aid!r} was retracted")
                version = int(row["current_version"])
                v = await tx.one(
                    "SELECT doc FROM article_versions WHERE article_id = ? AND version = ?", (aid, version)
                )
                assert v is not None
                doc = json.loads(v["doc"])
                docs.append((doc, version))
                picked.append((aid, version))
                notice_ids.update(dict.fromkeys(doc.get("notices", [])))
            notices = await self._notices(tx, tuple(sorted(notice_ids)))
            media_ids = tuple(dict.fromkeys(im["media"] for doc, _ in docs for im in doc.get("images", [])))
            media = await self._media(tx, media_ids)
        for doc, version in docs:
            articles.append(article_input(doc, version, media))
        inp = BundleInput(tuple(articles), self._notice_inputs(notices), kind="edition", title=req.title)
        packed = await self._pack(inp, index_lang=req.lang)
        now = timefmt.format(timefmt.now())
        try:
            async with self.store.tx() as tx:
                if await tx.one("SELECT 1 FROM editions WHERE id = ?", (eid,)):
                    raise ApiError(409, "edition-exists", f"edition {eid!r} exists")
                if await tx.one("SELECT 1 FROM bundles WHERE id = ?", (packed.bundle_id,)):
                    raise ApiError(409, "duplicate-bundle", "an identical edition was made this second")
                for aid, _ in picked:
                    if await tx.value("SELECT retracted_at FROM articles WHERE id = ?", (aid,)):
                        raise ApiError(409, "article-retracted", f"article {aid!r} was retracted")
                await insert_bundle(tx, packed)
                await tx.many(
                    "INSERT INTO bundle_articles (bundle_id, article_id, version) VALUES (?, ?, ?)",
                    [(packed.bundle_id, aid, version) for aid, version in picked],
                )
                await tx.run(
                    "INSERT INTO editions (id, created, title, lang, articles, bundle_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (eid, now, req.title, req.lang, json.dumps(picked), packed.bundle_id),
                )
        except BaseException:
            if not await self._bundle_known(packed.bundle_id):
                self._discard(packed)
            raise
        self.publisher.changed()
        return await self.get_edition(eid)

    async def _edition_json(self, tx: Tx, row: Any) -> dict[str, Any]:
        b = await tx.one("SELECT retracted_at, index_version FROM bundles WHERE id = ?", (row["bundle_id"],))
        state = (
            "retracted"
            if row["retracted_at"]
            else ("pending" if b is None or b["index_version"] is None else "published")
        )
        return {
            "id": row["id"],
            "created": row["created"],
            "title": row["title"],
            "lang": row["lang"],
            "articles": [{"id": a, "version": v} for a, v in json.loads(row["articles"])],
            "bundle_id": row["bundle_id"],
            "state": state,
            "retracted": {"at": row["retracted_at"], "reason": row["retract_reason"]} if row["retracted_at"] else None,
        }

    async def get_edition(self, eid: str) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            row = await tx.one("SELECT * FROM editions WHERE id = ?", (eid,))
            if row is None:
                raise _not_found("edition", eid)
            return await self._edition_json(tx, row)

    async def list_editions(self, *, limit: int, offset: int) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            total = int(await tx.value("SELECT COUNT(*) FROM editions"))
            rows = await tx.all("SELECT * FROM editions ORDER BY created, id LIMIT ? OFFSET ?", (limit, offset))
            items = [await self._edition_json(tx, r) for r in rows]
        return {"editions": items, "total": total, "limit": limit, "offset": offset}

    async def retract_edition(self, eid: str, reason: str) -> dict[str, Any]:
        now = timefmt.format(timefmt.now())
        async with self.store.tx() as tx:
            row = await tx.one("SELECT * FROM editions WHERE id = ?", (eid,))
            if row is None:
                raise _not_found("edition", eid)
            if row["retracted_at"]:
                raise ApiError(409, "already-retracted", f"edition {eid!r} is already retracted")
            await self._retract_bundles(tx, [row["bundle_id"]], now, reason)
        self.publisher.changed()
        return await self.get_edition(eid)

    # -- media ------------------------------------------------------------
    async def add_media(self, declared: str, raw: bytes) -> tuple[MediaInfo, bool]:
        """Clean and store an image; returns (info, created). The id is the SHA-256 of the clean bytes."""
        if len(raw) > MAX_IMAGE_BYTES:
            raise ApiError(413, "image-too-large", f"an image may be at most {MAX_IMAGE_BYTES} bytes")
        clean = await self.pool.clean_image(raw)
        if clean.media_type != declared:
            raise ApiError(415, "media-type-mismatch", f"the body is {clean.media_type}, not {declared}")
        mid = hashlib.sha256(clean.data).hexdigest()
        now = timefmt.format(timefmt.now())
        async with self.store.tx() as tx:
            changed = await tx.run(
                "INSERT OR IGNORE INTO media (id, type, width, height, size, data, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mid, clean.media_type, clean.width, clean.height, len(clean.data), clean.data, now),
            )
            row = await tx.one("SELECT id, type, width, height, size, created FROM media WHERE id = ?", (mid,))
        assert row is not None
        return MediaInfo(**dict(row)), changed > 0

    async def get_media(self, mid: str) -> MediaInfo:
        async with self.store.tx(write=False) as tx:
            row = await tx.one("SELECT id, type, width, height, size, created FROM media WHERE id = ?", (mid,))
        if row is None:
            raise _not_found("media", mid)
        return MediaInfo(**dict(row))

    # -- notices ----------------------------------------------------------
    @staticmethod
    def _notice_json(row: Any) -> dict[str, Any]:
        return {
            "id": row["id"],
            "regions": json.loads(row["regions"]),
            "text": json.loads(row["text"]),
            "created": row["created"],
            "updated": row["updated"],
        }

    async def put_notice(self, notice: dict[str, Any], *, create_only: bool) -> tuple[dict[str, Any], bool]:
        """Create (or, unless ``create_only``, replace) a notice; returns (notice, created)."""
        now = timefmt.format(timefmt.now())
        regions, text = json.dumps(notice["regions"]), json.dumps(notice["text"], ensure_ascii=False, sort_keys=True)
        async with self.store.tx() as tx:
            exists = await tx.one("SELECT 1 FROM notices WHERE id = ?", (notice["id"],))
            if exists and create_only:
                raise ApiError(409, "notice-exists", f"notice {notice['id']!r} exists: replace it with PUT")
            if exists:
                await tx.run(
                    "UPDATE notices SET regions = ?, text = ?, updated = ? WHERE id = ?",
                    (regions, text, now, notice["id"]),
                )
            else:
                await tx.run(
                    "INSERT INTO notices (id, regions, text, created, updated) VALUES (?, ?, ?, ?, ?)",
                    (notice["id"], regions, text, now, now),
                )
            row = await tx.one("SELECT * FROM notices WHERE id = ?", (notice["id"],))
        return self._notice_json(row), not exists

    async def get_notice(self, nid: str) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            row = await tx.one("SELECT * FROM notices WHERE id = ?", (nid,))
        if row is None:
            raise _not_found("notice", nid)
        return self._notice_json(row)

    async def list_notices(self) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            rows = await tx.all("SELECT * FROM notices ORDER BY id")
        return {"notices": [self._notice_json(r) for r in rows]}

    async def delete_notice(self, nid: str) -> None:
        async with self.store.tx() as tx:
            if not await tx.one("SELECT 1 FROM notices WHERE id = ?", (nid,)):
                raise _not_found("notice", nid)
            user = await tx.value(
                "SELECT a.id FROM articles a JOIN article_versions v "
                "ON v.article_id = a.id AND v.version = a.current_version, json_each(v.doc, '$.notices') n "
                "WHERE a.retracted_at IS NULL AND n.value = ? LIMIT 1",
                (nid,),
            )
            if user is not None:
                raise ApiError(409, "notice-in-use", f"article {user!r} carries notice {nid!r}: update it first")
            await tx.run("DELETE FROM notices WHERE id = ?", (nid,))

    # -- status -----------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        async with self.store.tx(write=False) as tx:
            last = await tx.one("SELECT version, created, expires FROM index_versions ORDER BY version DESC LIMIT 1")
            bundles = int(await tx.value("SELECT COUNT(*) FROM bundles WHERE index_version IS NOT NULL"))
            pending = int(await tx.value("SELECT COUNT(*) FROM bundles WHERE dirty > 0"))
            articles = int(await tx.value("SELECT COUNT(*) FROM articles"))
        return {
            "index_version": int(last["version"]) if last else 0,
            "index_created": last["created"] if last else None,
            "index_expires": last["expires"] if last else None,
            "bundles": bundles,
            "articles": articles,
            "pending_changes": pending,
            "round_seconds": self.publisher.config.round_seconds,
            "last_round_error": self.publisher.last_error,
        }
