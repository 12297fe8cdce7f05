"""The reader pages, the same on the origin and on every mirror.

Routes (all answers ``no-store``, ``no-referrer``, strict CSP, no cookie)::

    GET  /                        latest articles per language
    GET  /v/<id>                  what a file holds (one article: redirect to it)
    GET  /v/<id>/<n>              article n of a file
    GET  /v/<id>/media/<name>     an image, from the verified file's bytes
    GET  /save/<id>               the notice before saving
    POST /save/<id>/file          confirmed: the ZIP itself (attachment "<id>.zip")
    GET  /share/<id>              the notice before sharing
    POST /share/<id>/code         confirmed: the share link and its QR code
    POST /share/<id>/code.png     confirmed: the QR code as a PNG download
    GET  /b/<id>                  share-link landing page (the same bytes for every link)
    GET  /find?id=<id>            the landing page's no-script form
    GET  /check                   how to check a file (root key id, verifier page)
    GET  /verify.html             the standalone verifier page
    GET  /mirrors                 the signed index's mirror list
    GET  /clear                   Clear-Site-Data and steps to clear history and downloads

Any other method on a confirm URL (GET included) answers 405. The language is
``?lang=`` (en, ru, uk, fa) or Accept-Language; nothing is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from tamizdat.bundles import render as bundle_render
from tamizdat.bundles.manifest import Notice
from tamizdat.bundles.verify import VerifiedBundle
from tamizdat.errors import TamizdatError
from tamizdat.keys import timefmt

from ..datadir import DataDir
from . import i18n, links, qr, views
from .store import ReaderStore, Snapshot, Unavailable

log = logging.getLogger("tamizdat.reader")

ID = "{id:[0-9a-f]{64}}"
HOME_BUNDLES = 200  # at most this many newest bundles are checked for the home page
HOME_PER_LANG = 30
HOME_BATCH = 16
HOME_CACHE = 4  # home lists kept (the current snapshot's, and one a slower request still holds)
SHARE_BUDGET = qr.CAPACITY_V10["M"]
CHUNK = 256 * 1024
NEUTRAL_LEAVE = "https://www.google.com/search?q=weather"
_CSP_META = re.compile(rb'<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"<>]{1,4000})"', re.I)
_INLINE = re.compile(rb"<(script|style)(?:\s[^>]*)?>(.*?)</\1>", re.S | re.I)


@dataclass(frozen=True)
class HomeItem:
    """One article on the home page, before the UI language formats it."""

    path: str
    title: str
    byline: str | None
    when: dt.datetime


class HomeList:
    """The home page's articles per language (newest first), formatted once per UI language."""

    def __init__(self, by_lang: dict[str, list[HomeItem]]):
        self.by_lang = by_lang
        self._views: dict[tuple[str, bool], list[dict[str, Any]]] = {}

    def groups(self, r: Req) -> list[dict[str, Any]]:
        """The template's ``groups`` for this request's language (links keep an explicit ``?lang=``)."""
        key = (r.lang, r.choice.explicit)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = self._format(r)
        return view

    def _format(self, r: Req) -> list[dict[str, Any]]:
        out = []
        for lg in sorted(self.by_lang, key=lambda lg: (lg.split("-")[0] != r.lang, lg)):
            items = [
                {
                    "href": r.url(item.path),
                    "title": item.title,
                    "byline": item.byline,
                    "iso": timefmt.format(item.when),
                    "date": i18n.format_date(item.when, r.lang),
                }
                for item in self.by_lang[lg]
            ]
            name = i18n.NATIVE.get(lg.split("-")[0]) or i18n.language_name(lg, lg)
            out.append({"lang": lg, "dir": i18n.text_dir(lg), "name": name[:1].upper() + name[1:], "articles": items})
        return out


@dataclass
class Req:
    """What one request chose: UI language, and the verified snapshot it renders from."""

    request: web.Request
    choice: i18n.Choice
    snap: Snapshot

    @property
    def lang(self) -> str:
        return self.choice.lang

    def url(self, path: str) -> str:
        return f"{path}?lang={self.lang}" if self.choice.explicit else path

    def _(self, message: str, **params: Any) -> str:
        return views.gettext(self.lang, message, **params)


class Reader:
    """Handlers over one data directory's public tree."""

    def __init__(self, datadir: DataDir, settings: dict[str, Any]):
        self.datadir = datadir
        self.settings = settings
        pinned = str(settings.get("root_keyid") or "") or None
        self.store = ReaderStore(datadir, pinned_keyid=pinned)
        self.audience = frozenset(str(r).upper() for r in settings.get("audience") or [])
        self.descriptive_titles = bool(settings.get("descriptive_titles", False))
        leave = str(settings.get("leave_url") or NEUTRAL_LEAVE)
        self.leave_url = leave if leave.startswith(("https://", "http://")) else NEUTRAL_LEAVE
        self.public_url = str(settings.get("public_url") or "")
        self._verifier_cache: tuple[Any, bytes | None, str] | None = None
        self._homes: OrderedDict[tuple[int, Any], tuple[Snapshot, asyncio.Future[HomeList]]] = OrderedDict()
        self._home_seq = 0
        self._home_last: tuple[int, HomeList] | None = None  # the newest list computed (sequence, list)

    def routes(self) -> list[web.RouteDef]:
        return [_guarded(route) for route in self._routes()]

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.home),
            web.get(f"/v/{ID}", self.bundle),
            web.get(f"/v/{ID}/{{n:[1-9][0-9]{{0,3}}}}", self.article),
            web.get(f"/v/{ID}/media/{{name:[0-9a-f]{{16}}\\.(jpg|png|webp)}}", self.media),
            web.get(f"/save/{ID}", self.save_notice),
            web.post(f"/save/{ID}/file", self.save_confirm),
            web.route("*", f"/save/{ID}/file", self.not_allowed),
            web.get(f"/share/{ID}", self.share_notice),
            web.post(f"/share/{ID}/code", self.share_confirm),
            web.route("*", f"/share/{ID}/code", self.not_allowed),
            web.post(f"/share/{ID}/code.png", self.share_png),
            web.route("*", f"/share/{ID}/code.png", self.not_allowed),
            web.get(f"/b/{ID}", self.landing),
            web.get("/find", self.find),
            web.get("/check", self.check),
            web.get("/verify.html", self.verifier),
            web.get("/mirrors", self.mirrors),
            web.get("/clear", self.clear),
            web.get("/favicon.ico", self.favicon),
        ]

    # -- plumbing ----------------------------------------------------------------------------
    async def _req(self, request: web.Request) -> Req:
        choice = i18n.choose(request.query.get("lang"), request.headers.get("Accept-Language"))
        return Req(request, choice, await self.store.snapshot())

    def _page(
        self,
        r: Req,
        template: str,
        title: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        lang_path: str | None = None,
        noindex: bool = False,
        landing: bool = False,
        **context: Any,
    ) -> web.Response:
        now = timefmt.now()
        path = lang_path or r.request.path
        langs = [
            # The landing page links to "?lang=xx" alone: its bytes must not name the file.
            {"code": c, "name": i18n.NATIVE[c], "href": f"{'' if landing else path}?lang={c}", "current": c == r.lang}
            for c in i18n.LANGS
        ]
        stale = None
        if r.snap.index is not None and r.snap.stale(now):
            stale = i18n.format_datetime(r.snap.index.created, r.lang)
        html = views.render(
            template,
            r.lang,
            ui={"lang": r.lang, "dir": r.choice.dir},
            title=title,
            url=r.url,
            langs=langs,
            leave_url=self.leave_url,
            stale_since=stale,
            noindex=noindex,
            landing=landing,
            **context,
        )
        h = {**views.BASE_HEADERS, "Content-Security-Policy": views.csp(landing), "Vary": "Accept-Language"}
        h.update(headers or {})
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=h)

    def _problem(self, r: Req, code: str, *, status: int = 404, reason: str | None = None) -> web.Response:
        return self._page(r, "problem.html", r._("Not available"), status=status, code=code, reason=reason)

    def _unavailable(self, r: Req, exc: Unavailable, bundle_id: str | None = None) -> web.Response:
        status = {"withdrawn": 410, "rejected": 502, "missing": 404, "not-found": 404}.get(exc.code, 404)
        reason = None
        if exc.code == "withdrawn" and bundle_id:
            entry = r.snap.by_id.get(bundle_id)
            reason = entry.retracted.reason if entry and entry.retracted else None
        return self._page(r, "problem.html", r._("Not available"), status=status, code=exc.code, reason=reason)

    def _redirect(self, location: str, status: int = 303) -> web.Response:
        return web.Response(
            status=status,
            headers={**views.BASE_HEADERS, "Location": location, "Content-Security-Policy": views.NONE_CSP},
        )

    async def not_allowed(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        notice_page = "/".join(request.path.split("/")[:3])  # /save/<id> or /share/<id>
        return self._page(
            r,
            "problem.html",
            r._("Not available"),
            status=405,
            code="method",
            headers={"Allow": "POST"},
            lang_path=notice_page,
        )

    async def _notices(self, vb: VerifiedBundle, lang: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """The notices that apply to this node's audience, in the UI language where the publisher gave one."""
        shown, others = [], []
        hidden = False
        for n in vb.manifest.notices:
            if not self._applies(n):
                hidden = True
                continue
            text_lang = lang if lang in n.text else sorted(n.text)[0]
            everywhere = "*" in n.regions or not n.regions
            regions = i18n.region_list([c for c in n.regions if c != "*"], lang)
            shown.append(
                {
                    "lang": text_lang,
                    "dir": i18n.text_dir(text_lang),
                    "text": n.text[text_lang],
                    "everywhere": everywhere,
                    "regions": regions,
                }
            )
            for tl in sorted(n.text):
                if tl != text_lang:
                    others.append({"lang": tl, "dir": i18n.text_dir(tl), "text": n.text[tl]})
        return shown, others, hidden and not shown

    def _applies(self, notice: Notice) -> bool:
        if not self.audience or "*" in notice.regions or not notice.regions:
            return True
        return bool(self.audience & set(notice.regions))

    # -- pages -------------------------------------------------------------------------------
    async def home(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        home = await self._home_list(r.snap)
        return self._page(r, "home.html", r._("Latest articles"), groups=home.groups(r), problem=r.snap.problem)

    async def _home_list(self, snap: Snapshot) -> HomeList:
        """The home page's articles for this snapshot and this state of ``bundles/``, computed once.

        ``bundles/`` changes its mtime with every file renamed in or out, so one
        ``stat`` tells whether a listed file may have come, gone or changed. The
        request that notices a change waits for the new list (so one client never
        goes back in time); requests arriving while it is computed get the
        previous list at once: on a busy event loop every step of the
        computation waits a full round of other requests.
        """
        key = (id(snap), _stat(self.datadir.public / "bundles"))
        hit = self._homes.get(key)
        if hit is not None and hit[0] is snap:
            self._homes.move_to_end(key)
            if not hit[1].done() and self._home_last is not None:
                return self._home_last[1]
            return await asyncio.shield(hit[1])
        self._home_seq += 1
        hit = (snap, asyncio.ensure_future(self._compute_home(snap, self._home_seq)))
        self._homes[key] = hit
        while len(self._homes) > HOME_CACHE:
            self._homes.popitem(last=False)
        hit[1].add_done_callback(lambda fut: self._forget_failed(key, fut))
        return await asyncio.shield(hit[1])

    def _forget_failed(self, key: tuple[int, Any], fut: asyncio.Future[HomeList]) -> None:
        if (fut.cancelled() or fut.exception() is not None) and self._homes.get(key, (None, None))[1] is fut:
            del self._homes[key]

    async def _compute_home(self, snap: Snapshot, seq: int) -> HomeList:
        verified = await self.store.verified_many(snap, [e.id for e in snap.newest[:HOME_BUNDLES]], HOME_BATCH)
        groups: dict[str, list[HomeItem]] = {}
        for vb in verified:
            if vb is None:
                continue
            for n, a in enumerate(vb.manifest.articles, 1):
                items = groups.setdefault(a.lang, [])
                if len(items) < HOME_PER_LANG:
                    items.append(HomeItem(f"/v/{vb.bundle_id}/{n}", a.title, a.byline, a.updated or a.published))
        home = HomeList({lg: sorted(items, key=lambda x: x.when, reverse=True) for lg, items in groups.items()})
        if self._home_last is None or self._home_last[0] < seq:
            self._home_last = (seq, home)
        return home

    async def _open(self, r: Req, bundle_id: str) -> VerifiedBundle | web.Response:
        try:
            return await self.store.verified(r.snap, bundle_id)
        except Unavailable as exc:
            return self._unavailable(r, exc, bundle_id)

    def _newer(self, r: Req, bundle_id: str) -> str | None:
        newer = r.snap.newer.get(bundle_id)
        return r.url(f"/v/{newer}") if newer else None

    async def bundle(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        bid = request.match_info["id"]
        vb = await self._open(r, bid)
        if isinstance(vb, web.Response):
            return vb
        m = vb.manifest
        if len(m.articles) == 1:
            return self._redirect(r.url(f"/v/{bid}/1"), status=302)
        articles = [
            {
                "href": r.url(f"/v/{bid}/{n}"),
                "title": a.title,
                "lang": a.lang,
                "dir": i18n.text_dir(a.lang),
                "iso": timefmt.format(a.published),
                "date": i18n.format_date(a.published, r.lang),
            }
            for n, a in enumerate(m.articles, 1)
        ]
        main_lang = m.articles[0].lang
        title = m.title if (self.descriptive_titles and m.title) else r._("Contents of this file")
        return self._page(
            r,
            "bundle.html",
            title,
            articles=articles,
            heading=m.title,
            heading_lang=main_lang,
            bundle_id=bid,
            newer=self._newer(r, bid),
        )

    async def article(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        bid, n = request.match_info["id"], int(request.match_info["n"])
        vb = await self._open(r, bid)
        if isinstance(vb, web.Response):
            return vb
        if n > len(vb.manifest.articles):
            return self._problem(r, "page")
        ref = vb.manifest.articles[n - 1]
        try:
            data = await self.store.article_data(r.snap, bid, ref.data)
            view = _article_view(r, bid, vb, ref, data)
        except Unavailable as exc:
            return self._unavailable(r, exc, bid)
        except (TamizdatError, ValueError, TypeError, KeyError):
            log.warning("article data of %s does not fit the format", bid[:16])
            return self._problem(r, "rejected", status=502)
        title = ref.title if self.descriptive_titles else r._("Article")
        return self._page(
            r,
            "article.html",
            title,
            a=view,
            bundle_id=bid,
            others=len(vb.manifest.articles) > 1,
            newer=self._newer(r, bid),
        )

    async def media(self, request: web.Request) -> web.StreamResponse:
        r = await self._req(request)
        bid, name = request.match_info["id"], request.match_info["name"]
        try:
            data, ctype = await self.store.media(r.snap, bid, f"media/{name}")
        except Unavailable:
            return web.Response(status=404, headers={**views.BASE_HEADERS, "Content-Security-Policy": views.NONE_CSP})
        return web.Response(
            body=data,
            content_type=ctype,
            headers={**views.BASE_HEADERS, "Content-Security-Policy": views.NONE_CSP},
        )

    # -- save --------------------------------------------------------------------------------
    async def _gate(self, r: Req, act: str, status: int = 200) -> web.Response:
        bid = r.request.match_info["id"]
        vb = await self._open(r, bid)
        if isinstance(vb, web.Response):
            return vb
        notices, others, hidden = await self._notices(vb, r.lang)
        confirm = r.url(f"/save/{bid}/file" if act == "save" else f"/share/{bid}/code")
        title = r._("Before you save this file") if act == "save" else r._("Before you share this file")
        return self._page(
            r,
            "gate.html",
            title,
            status=status,
            act=act,
            notices=notices,
            other_texts=others,
            hidden_by_audience=hidden,
            publisher=Markup("<bdi>{}</bdi>").format(vb.manifest.publisher),
            signed=Markup('<time datetime="{}">{}</time>').format(
                timefmt.format(vb.manifest.created), i18n.format_date(vb.manifest.created, r.lang)
            ),
            back=r.url(f"/v/{bid}"),
            confirm=confirm,
            noindex=True,
            lang_path=f"/{act}/{bid}",
        )

    async def save_notice(self, request: web.Request) -> web.Response:
        return await self._gate(await self._req(request), "save")

    async def _confirmed(self, request: web.Request, act: str) -> bool:
        try:
            form = await request.post()
        except (ValueError, web.HTTPException):
            return False
        return form.get("confirm") == act

    async def save_confirm(self, request: web.Request) -> web.StreamResponse:
        r = await self._req(request)
        bid = request.match_info["id"]
        if not await self._confirmed(request, "save"):
            return await self._gate(r, "save", status=400)
        try:
            fh, _key, vb = await self.store.open_verified(r.snap, bid)
        except Unavailable as exc:
            return self._unavailable(r, exc, bid)
        try:
            resp = web.StreamResponse(
                headers={
                    **views.BASE_HEADERS,
                    "Content-Security-Policy": views.NONE_CSP,
                    "Content-Type": "application/zip",
                    "Content-Disposition": f'attachment; filename="{bid}.zip"',
                }
            )
            resp.content_length = vb.size
            await resp.prepare(request)
            fh.seek(0)
            left = vb.size
            while left > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            fh.close()

    # -- share -------------------------------------------------------------------------------
    async def share_notice(self, request: web.Request) -> web.Response:
        return await self._gate(await self._req(request), "share")

    def _base_url(self, request: web.Request) -> str:
        if self.public_url:
            try:
                return links.normalize_base(self.public_url)
            except TamizdatError:
                pass
        return links.normalize_base(str(request.url.origin()))

    def share_link(self, r: Req, vb: VerifiedBundle) -> links.ShareLink:
        """This node first; then the index's mirrors while the link stays within the QR budget."""
        own = self._base_url(r.request)
        keyid = r.snap.keyid or vb.manifest.root_keyid
        mirrors: list[str] = []
        for m in r.snap.index.mirrors if r.snap.index else ():
            try:
                if links.normalize_base(m) == own:
                    continue
                trial = links.build_link(own, vb.bundle_id, keyid, [*mirrors, m])
            except TamizdatError:
                continue
            if mirrors and len(str(trial).encode()) > SHARE_BUDGET:
                break
            mirrors = list(trial.mirrors)
            if len(str(trial).encode()) > SHARE_BUDGET:
                break
        return links.build_link(own, vb.bundle_id, keyid, mirrors)

    async def share_confirm(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        bid = request.match_info["id"]
        if not await self._confirmed(request, "share"):
            return await self._gate(r, "share", status=400)
        vb = await self._open(r, bid)
        if isinstance(vb, web.Response):
            return vb
        link = str(self.share_link(r, vb))
        code = await asyncio.to_thread(qr.make, link)
        return self._page(
            r,
            "shared.html",
            r._("Link and QR code"),
            link=link,
            svg=code.svg(r._("QR code of the link")),
            payload_bytes=len(link.encode()),
            level=code.level,
            back=r.url(f"/v/{bid}"),
            png=r.url(f"/share/{bid}/code.png"),
            noindex=True,
            lang_path=f"/share/{bid}",
        )

    async def share_png(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        bid = request.match_info["id"]
        if not await self._confirmed(request, "share"):
            return await self._gate(r, "share", status=400)
        vb = await self._open(r, bid)
        if isinstance(vb, web.Response):
            return vb
        link = str(self.share_link(r, vb))
        png = await asyncio.to_thread(lambda: qr.make(link).png())
        return web.Response(
            body=png,
            content_type="image/png",
            headers={
                **views.BASE_HEADERS,
                "Content-Security-Policy": views.NONE_CSP,
                "Content-Disposition": f'attachment; filename="{bid}.png"',
            },
        )

    # -- landing -----------------------------------------------------------------------------
    async def landing(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        return self._page(
            r,
            "landing.html",
            r._("A shared file"),
            noindex=True,
            landing=True,
            keyid=r.snap.keyid or "",
            lang_param=r.lang if r.choice.explicit else "",
        )

    async def find(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        fid = request.query.get("id", "").strip().lower()
        m = re.search(r"(?:/b/)?([0-9a-f]{64})", fid)
        if not m:
            return self._problem(r, "not-found")
        return self._redirect(r.url(f"/v/{m.group(1)}"))

    # -- help pages --------------------------------------------------------------------------
    def _verifier_source(self, snap: Snapshot) -> tuple[bytes, str] | None:
        """The verifier page's bytes: DATA/public/verify.html or the installed one, matching the index."""
        want = snap.index.verifier_sha256 if snap.index else None
        candidates: list[Path | None] = [self.datadir.public / "verify.html", None]
        for cand in candidates:
            try:
                if cand is not None:
                    if not cand.is_file() or cand.is_symlink():
                        continue
                    data = cand.read_bytes()
                else:
                    from tamizdat.bundles import verifier

                    data = verifier.page_bytes()
            except (ImportError, AttributeError, OSError):
                continue
            sha = hashlib.sha256(data).hexdigest()
            if want is None or sha == want:
                return data, sha
        return None

    async def _verifier(self, snap: Snapshot) -> tuple[bytes, str] | None:
        key = (snap.index.verifier_sha256 if snap.index else None, _stat(self.datadir.public / "verify.html"))
        cached = self._verifier_cache
        if cached is not None and cached[0] == key:
            return (cached[1], cached[2]) if cached[1] is not None else None
        found = await asyncio.to_thread(self._verifier_source, snap)
        self._verifier_cache = (key, found[0] if found else None, found[1] if found else "")
        return found

    async def check(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        found = await self._verifier(r.snap)
        return self._page(
            r, "check.html", r._("How to check a file"), keyid=r.snap.keyid, verifier_sha=found[1] if found else None
        )

    async def verifier(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        found = await self._verifier(r.snap)
        if found is None:
            return self._problem(r, "page")
        data, _ = found
        return web.Response(
            body=data,
            content_type="text/html",
            charset="utf-8",
            headers={**views.BASE_HEADERS, "Content-Security-Policy": _page_csp(data)},
        )

    async def mirrors(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        ms = []
        for m in r.snap.index.mirrors if r.snap.index else ():
            try:
                ms.append(links.normalize_base(m))
            except TamizdatError:
                continue
        return self._page(r, "mirrors.html", r._("Other mirrors"), mirrors=ms)

    async def favicon(self, request: web.Request) -> web.Response:
        """Browsers ask for it on every site; answer without a body, and without a trail."""
        return web.Response(status=204, headers={**views.BASE_HEADERS, "Content-Security-Policy": views.NONE_CSP})

    async def clear(self, request: web.Request) -> web.Response:
        r = await self._req(request)
        # "cookies" is left out on purpose: this site sets none, and the directive would also
        # clear cookies of every other site under the same registrable domain.
        return self._page(r, "clear.html", r._("Clear this device"), headers={"Clear-Site-Data": '"cache", "storage"'})


def _guarded(route: web.RouteDef) -> web.RouteDef:
    """Answer an unexpected error with a plain 500 page of our own.

    Left to aiohttp, the error would be logged with the client's address.
    """
    handler = route.handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPException, asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("reader: internal error on %s %s", request.method, route.path)
            return web.Response(
                status=500,
                text="Internal error\n",
                headers={**views.BASE_HEADERS, "Content-Security-Policy": views.NONE_CSP},
            )

    return web.RouteDef(route.method, route.path, guarded, route.kwargs)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _page_csp(data: bytes) -> str:
    """The verifier page's own policy (its meta tag), else one allowing exactly its inline code."""
    m = _CSP_META.search(data)
    if m:
        return m.group(1).decode("ascii", "replace").replace("&#39;", "'").replace("&quot;", '"')
    import base64

    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(data):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        hashes[kind.decode().lower()].append(f"'sha256-{digest}'")
    parts = ["default-src 'none'"]
    if hashes["script"]:
        parts.append("script-src " + " ".join(hashes["script"]))
    if hashes["style"]:
        parts.append("style-src " + " ".join(hashes["style"]))
    parts += ["img-src blob: data:", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"]
    return "; ".join(parts)


def _article_view(r: Req, bid: str, vb: VerifiedBundle, ref: Any, data: Any) -> dict[str, Any]:
    """The article page's data, from the verified JSON; HTML cleaned again with the allow-list."""
    if not isinstance(data, dict):
        raise ValueError("article data is not an object")
    listed = {f.path: f for f in vb.manifest.files}
    images = []
    for im in data.get("images", []):
        path = im["path"]
        f = listed.get(path)
        if f is None or not path.startswith("media/") or not f.type.startswith("image/"):
            continue
        images.append(
            {
                "src": f"/v/{bid}/{path}",
                "alt": str(im.get("alt") or ""),
                "caption": str(im.get("caption") or ""),
                "credit": str(im.get("credit") or ""),
                "width": int(im["width"]),
                "height": int(im["height"]),
            }
        )
    sections = [
        {"heading": str(s["heading"]), "html": Markup(bundle_render.sanitize_html(str(s["html"])))}
        for s in data.get("sections", [])
    ]
    return {
        "lang": ref.lang,
        "dir": i18n.text_dir(ref.lang),
        "title": ref.title,
        "summary": ref.summary,
        "byline": ref.byline,
        "published": i18n.format_date(ref.published, r.lang),
        "published_iso": timefmt.format(ref.published),
        "updated": i18n.format_date(ref.updated, r.lang) if ref.updated else None,
        "updated_iso": timefmt.format(ref.updated) if ref.updated else None,
        "body_html": Markup(bundle_render.sanitize_html(str(data.get("body_html", "")))),
        "sections": sections,
        "images": images,
    }


READER = web.AppKey("tamizdat_reader", Reader)


def add_reader_routes(app: web.Application, datadir: DataDir, *, settings: dict[str, Any]) -> None:
    """Add the reader pages to ``app`` (origin or mirror). Reads only ``datadir.public``."""
    reader = Reader(datadir, settings)
    app[READER] = reader
    app.router.add_routes(reader.routes())
