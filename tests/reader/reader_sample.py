"""A DATA/public tree for the reader tests and bench, and a small server over it.

Built directly with KeyDir (fixed seeds), build_bundle and the index module:
articles in en, ru, uk and fa (one with an image and sections), an edition, a
superseded and a withdrawn bundle, one whose bytes were tampered with after
signing, and one whose notice names only a region outside a declared audience.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput, ImageInput, NoticeInput, SectionInput
from tamizdat.bundles.index import ArticleInfo, BundleEntry, Index, Retraction, ShardedList, sign_index
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir
from tamizdat.netutil import free_port
from tamizdat.server.accesslog import PrivateAccessLogger
from tamizdat.server.datadir import DataDir
from tamizdat.server.reader import add_reader_routes
from tamizdat.server.settings import SETTINGS
from tamizdat.server.static import StaticTree

PUBLISHER = "Obscura Vesti Newsroom"
SEEDS = [bytes([7]) * 32, bytes([8]) * 32]
HEADLINES = {
    "en": "Court Hearing Postponed Again In Riverside Case",
    "ru": "Суд снова отложил слушание по делу о реке",
    "uk": "Суд знову відклав слухання у справі про річку",
    "fa": "دادگاه دوباره جلسه رسیدگی را به تعویق انداخت",
}
NOTICE_TEXT = {
    "en": "This publisher is banned in Russia and Belarus. Sharing its articles there has led to fines.",
    "ru": "Издание запрещено в России и Беларуси. За распространение его статей там штрафовали.",
    "uk": "Видання заборонене в Росії та Білорусі. За поширення його статей там штрафували.",
    "fa": "این ناشر در روسیه و بلاروس ممنوع است. انتشار مقاله‌هایش در آنجا به جریمه انجامیده است.",
}


def now() -> dt.datetime:
    return timefmt.now()


def _png(color: tuple[int, int, int]) -> bytes:
    img = Image.new("RGB", (64, 40), color)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _body(lang: str, n: int) -> str:
    words = {
        "en": "The court met again today and the case was moved to next month. Lawyers said the delay",
        "ru": "Суд снова собрался сегодня, и дело перенесли на следующий месяц. Адвокаты сказали",
        "uk": "Суд знову зібрався сьогодні, і справу перенесли на наступний місяць. Адвокати сказали",
        "fa": "دادگاه امروز دوباره تشکیل شد و پرونده به ماه آینده موکول شد. وکلا گفتند",
    }[lang]
    return "\n\n".join(f"{words} ({i + 1})." for i in range(n))


@dataclass
class Sample:
    data: DataDir
    keydir: KeyDir
    root_keyid: str
    ids: dict[str, str] = field(default_factory=dict)  # name -> bundle id
    mirrors: list[str] = field(default_factory=list)

    @property
    def public(self) -> Path:
        return self.data.public


def long_body(n_chars: int) -> str:
    """Plain news-like Markdown of about ``n_chars`` characters (paragraphs, a list, a link)."""
    sentences = [
        "The regional court heard the case again on Tuesday, and the judge gave the defence two more weeks.",
        "Residents of the river villages say the water has tasted of metal since the plant reopened in spring.",
        "Officials did not answer questions sent by e-mail, and the ministry's press office declined to comment.",
        "According to documents seen by reporters, the inspection found several breaches that were never fixed.",
        "Lawyers for the families said they would appeal if the court refused to order an independent test.",
    ]
    parts: list[str] = []
    size, i = 0, 0
    while size < n_chars:
        if i % 7 == 6:
            block = "\n".join(f"- {sentences[(i + k) % 5]}" for k in range(3))
        elif i % 5 == 4:
            block = f"{sentences[i % 5]} See [the ruling](https://example.org/ruling/{i})."
        else:
            block = " ".join(sentences[(i + k) % 5] for k in range(3))
        parts.append(block)
        size += len(block) + 2
        i += 1
    return "\n\n".join(parts)


def build_sample(base: Path, *, mirrors: list[str] | None = None, expired: bool = False, long_chars: int = 0) -> Sample:
    """Write keys to ``base/keys`` and a full DATA tree to ``base/data``.

    ``long_chars``: also add bundle ``long``, an English article with a body of
    about that many characters, three sections and two images (for the bench).
    """
    moment = now()
    key_time = moment - dt.timedelta(days=30)
    kd = KeyDir(base / "keys")
    kd.init(PUBLISHER, seeds=SEEDS, now=key_time)
    chain = kd.chain()
    signer = kd.signer("bundle", at=moment)
    data = DataDir(base / "data").create()
    sample = Sample(data, kd, kd.root_keyid(), mirrors=list(mirrors or []))
    notice = NoticeInput("banned", ("BY", "RU"), dict(NOTICE_TEXT))
    out = base / "build"
    out.mkdir(exist_ok=True)
    sl = ShardedList(capacity=4)  # small shards: the reader reads several
    t0 = moment - dt.timedelta(days=5)

    def add(name: str, inp: BundleInput, created: dt.datetime, **entry_extra: Any) -> str:
        path = out / f"{name}.zip"
        built = build_bundle(inp, signer=signer, chain=chain, out=path, created=created, durable=False)
        shutil.copyfile(path, data.bundle_path(built.bundle_id))
        sl.append(
            BundleEntry(
                id=built.bundle_id,
                sha256=built.sha256,
                size=built.size,
                created=created,
                kind=built.manifest.kind,
                articles=tuple(ArticleInfo(a.id, a.version, a.lang, a.title) for a in built.manifest.articles),
                supersedes=tuple(inp.supersedes),
                **entry_extra,
            )
        )
        sample.ids[name] = built.bundle_id
        return built.bundle_id

    def article(
        lang: str,
        *,
        aid: str | None = None,
        version: int = 1,
        images: bool = False,
        title: str | None = None,
        when: dt.datetime = t0,
    ) -> ArticleInput:
        return ArticleInput(
            id=aid or f"court-{lang}",
            lang=lang,
            title=title or HEADLINES[lang],
            body=_body(lang, 4),
            published=when,
            version=version,
            summary={
                "en": "A short summary of the hearing.",
                "ru": "Кратко о слушании.",
                "uk": "Коротко про слухання.",
                "fa": "خلاصه‌ای از جلسه.",
            }[lang],
            byline={"en": "Staff reporter", "ru": "Корреспондент", "uk": "Кореспондент", "fa": "خبرنگار"}[lang],
            sections=(
                SectionInput(
                    {"en": "Background", "ru": "Предыстория", "uk": "Передісторія", "fa": "پیشینه"}[lang],
                    _body(lang, 2),
                ),
            ),
            images=(
                (ImageInput(_png((30, 90, 160)), caption="The courthouse", alt="A blue rectangle", credit="Archive"),)
                if images
                else ()
            ),
        )

    old = add(
        "old",
        BundleInput(articles=(article("en", images=True, title="Hearing set for Monday"),), notices=(notice,)),
        t0,
    )
    add(
        "en",
        BundleInput(
            articles=(article("en", images=True, version=2, when=t0 + dt.timedelta(hours=1)),),
            notices=(notice,),
            supersedes=(old,),
        ),
        t0 + dt.timedelta(hours=1),
    )
    add(
        "ru",
        BundleInput(articles=(article("ru", when=t0 + dt.timedelta(hours=2)),), notices=(notice,)),
        t0 + dt.timedelta(hours=2),
    )
    add(
        "uk",
        BundleInput(articles=(article("uk", when=t0 + dt.timedelta(hours=3)),), notices=(notice,)),
        t0 + dt.timedelta(hours=3),
    )
    add(
        "fa",
        BundleInput(
            articles=(article("fa", when=t0 + dt.timedelta(hours=4)),),
            notices=(NoticeInput("everywhere", ("*",), {"fa": NOTICE_TEXT["fa"], "en": NOTICE_TEXT["en"]}),),
        ),
        t0 + dt.timedelta(hours=4),
    )
    add(
        "edition",
        BundleInput(
            articles=(
                article("en", aid="ed-en", title="Weekly digest: water prices", when=t0 + dt.timedelta(hours=5)),
                article("ru", aid="ed-ru", title="Дайджест недели: цены на воду", when=t0 + dt.timedelta(hours=5)),
            ),
            notices=(notice,),
            title="Weekly digest",
            kind="edition",
        ),
        t0 + dt.timedelta(hours=5),
    )
    add(
        "iran",
        BundleInput(
            articles=(article("en", aid="ir-only", title="Regional note", when=t0 + dt.timedelta(hours=6)),),
            notices=(NoticeInput("ir", ("IR",), {"en": "Only for readers in Iran."}),),
        ),
        t0 + dt.timedelta(hours=6),
    )
    add(
        "withdrawn",
        BundleInput(
            articles=(article("en", aid="gone", title="Withdrawn story", when=t0 + dt.timedelta(hours=7)),),
            notices=(notice,),
        ),
        t0 + dt.timedelta(hours=7),
        retracted=Retraction(t0 + dt.timedelta(hours=8), "Factual error"),
    )
    tampered = add(
        "tampered",
        BundleInput(
            articles=(article("en", aid="bad", title="Tampered story", when=t0 + dt.timedelta(hours=9)),),
            notices=(notice,),
        ),
        t0 + dt.timedelta(hours=9),
    )
    # Flip one byte inside the manifest's notice text region: the signature no longer holds.
    path = data.bundle_path(tampered)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"meta/manifest.dsse.json") + 200
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))

    if long_chars:
        part = max(500, long_chars // 4)
        add(
            "long",
            BundleInput(
                articles=(
                    ArticleInput(
                        id="long-read",
                        lang="en",
                        title="A long read about the river case",
                        body=long_body(part),
                        published=t0 + dt.timedelta(hours=10),
                        summary="What the documents show, and what is next.",
                        byline="Investigations desk",
                        sections=tuple(
                            SectionInput(h, long_body(part)) for h in ("The plant", "The villages", "The court")
                        ),
                        images=(
                            ImageInput(
                                _png((40, 120, 90)), caption="The river", alt="A green rectangle", credit="Archive"
                            ),
                            ImageInput(_png((150, 60, 40)), caption="The plant", alt="A red rectangle"),
                        ),
                    ),
                ),
                notices=(notice,),
            ),
            t0 + dt.timedelta(hours=10),
        )

    created = moment - (dt.timedelta(days=3) if expired else dt.timedelta(hours=1))
    expires = moment - dt.timedelta(days=2) if expired else moment + dt.timedelta(days=1)
    refs = []
    for ref, blob in sl.render():
        data.shard_path(ref.sha256).write_bytes(blob)
        refs.append(ref)
    index = Index(
        version=1,
        created=created,
        expires=expires,
        root_version=chain.newest.version,
        mirrors=tuple(sample.mirrors),
        shards=tuple(refs),
    )
    idx_signer = kd.signer("index", at=created)
    for v, doc in enumerate(chain.envelopes, 1):
        (data.roots / f"{v}.json").write_bytes(doc)
    (data.public / "root.json").write_bytes(chain.envelopes[-1])
    (data.public / "index.json").write_bytes(sign_index(index, idx_signer))
    return sample


@dataclass
class Site:
    sample: Sample
    a: Server
    b: Server
    logs: Path
    b_data: Path

    @property
    def ids(self) -> dict[str, str]:
        return self.sample.ids

    @property
    def keyid(self) -> str:
        return self.sample.root_keyid


def reader_settings(**overrides: Any) -> dict[str, Any]:
    values = {s.name: s.default for s in SETTINGS}
    values.update(overrides)
    return values


def make_app(data: DataDir, **settings: Any) -> web.Application:
    app = web.Application()
    app.add_routes(StaticTree(data.public).routes())
    add_reader_routes(app, data, settings=reader_settings(**settings))
    return app


class Server:
    """An aiohttp app on 127.0.0.1 in a background thread (for sync Playwright tests)."""

    def __init__(self, app: web.Application, port: int | None = None, log_file: Path | None = None):
        self.app = app
        self.port = port or free_port()
        self.log_file = log_file
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self._thread.start()
        kwargs: dict[str, Any] = {"access_log": None}
        if self.log_file is not None:
            logger = logging.getLogger(f"tamizdat.access.test{self.port}")
            logger.setLevel(logging.INFO)
            logger.propagate = False
            logger.addHandler(logging.FileHandler(self.log_file))
            kwargs = {"access_log": logger, "access_log_class": PrivateAccessLogger}

        async def up() -> None:
            self._runner = web.AppRunner(self.app, **kwargs)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(up(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
