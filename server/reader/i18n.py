"""UI languages of the reader pages: gettext catalogs, choice per request, names and dates.

Catalogs live in ``locale/<lang>/LC_MESSAGES/messages.po`` (checked in) and
are compiled to ``.mo`` at build time (``setup.py``); a regular install ships
only the ``.mo``. In a source checkout the ``.po`` is compiled in memory on
first use, so the two never disagree. The language comes from an explicit
``?lang=`` in the URL, else from Accept-Language, never from a cookie; nothing
about it is stored.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import babel.dates
import babel.lists
from babel import Locale

from . import msgfmt

LANGS = ("en", "ru", "uk", "fa")
DEFAULT = "en"
RTL = frozenset({"fa", "ar", "he", "ur", "ps", "ckb", "yi", "dv", "ug"})
DOMAIN = "messages"
LOCALE_DIR = Path(__file__).with_name("locale")
# Each language's own name, shown in the switch with its own lang attribute.
NATIVE = {"en": "English", "ru": "Русский", "uk": "Українська", "fa": "فارسی"}


def text_dir(lang: str) -> str:
    return "rtl" if lang.split("-")[0].lower() in RTL else "ltr"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English is the source language: no catalog)."""
    if lang == DEFAULT:
        return gettext.NullTranslations()
    if lang not in LANGS:
        raise KeyError(lang)
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    data = msgfmt.compile_file(po) if po.exists() else mo.read_bytes()
    return gettext.GNUTranslations(io.BytesIO(data))


def gettext_for(lang: str):  # type: ignore[no-untyped-def]
    return translations(lang).gettext


@dataclass(frozen=True)
class Choice:
    lang: str
    explicit: bool  # chosen by ?lang= (links keep it), or negotiated from Accept-Language

    @property
    def dir(self) -> str:
        return text_dir(self.lang)


def parse_accept_language(header: str) -> list[str]:
    """Language tags by preference (q=0 dropped, stable for equal q)."""
    items = []
    for i, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            items.append((-q, i, tag))
    return [t for _, _, t in sorted(items)]


def choose(query_lang: str | None, accept_language: str | None) -> Choice:
    if query_lang in LANGS:
        assert query_lang is not None
        return Choice(query_lang, True)
    for tag in parse_accept_language(accept_language or ""):
        base = tag.split("-")[0]
        if base in LANGS:
            return Choice(base, False)
    return Choice(DEFAULT, False)


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(lang)


def region_name(code: str, lang: str) -> str:
    name = _locale(lang).territories.get(code)
    return str(name) if name else code


def region_list(codes: list[str], lang: str) -> str:
    """Region names joined as the language joins a list ("Belarus and Russia")."""
    return str(babel.lists.format_list([region_name(c, lang) for c in codes], locale=_locale(lang)))


def language_name(tag: str, lang: str) -> str:
    try:
        name = Locale.parse(tag.replace("-", "_")).get_display_name(_locale(lang))
    except (ValueError, TypeError, LookupError):
        name = None
    return str(name) if name else tag


def format_date(moment: dt.datetime, lang: str) -> str:
    return str(babel.dates.format_date(moment.date(), "long", locale=_locale(lang)))


def format_datetime(moment: dt.datetime, lang: str) -> str:
    return str(babel.dates.format_datetime(moment, "medium", tzinfo=dt.UTC, locale=_locale(lang))) + " UTC"
