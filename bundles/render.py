"""Article text to safe HTML, and the offline reader pages inside a bundle.

Markdown goes through markdown-it (raw HTML off), then nh3 (the Ammonia
sanitiser) with a short allow-list: no scripts, styles, images or embeds in
article text, links get ``rel="noopener noreferrer"``.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

import jinja2
import nh3
from markdown_it import MarkdownIt

RTL_LANGS = frozenset({"ar", "fa", "he", "ur", "ps", "ckb", "yi", "dv", "ug"})
ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "ul",
    "ol",
    "li",
    "em",
    "strong",
    "del",
    "s",
    "code",
    "pre",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
    "abbr",
    "q",
    "cite",
}
ALLOWED_ATTRS = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}

# UI strings of the offline reader. (The reader pages of origin and mirrors use
# gettext catalogs; a bundle is frozen and carries its few strings inline.)
UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "Document",
        "contents": "Contents",
        "updated": "Updated",
        "notice": "Notice from the publisher",
        "notice_hint": "Read the publisher's notice above before you keep this file or pass it on. It says where it applies. The file stays on this device until you delete it.",
        "self_check": "This page cannot check itself. Open the file in the verifier page (verify.html) before you trust the notice or the articles.",
        "read_hint": "The safest way to read this file is without unpacking it: open it in the verifier page (verify.html). It checks the file first, and pictures do not end up in your phone's gallery.",
        "verify": "To check that this file is authentic and unchanged, open it with the verifier page "
        "(verify.html) from any mirror: it reads the file without unpacking it.",
    },
    "ru": {
        "title": "Документ",
        "contents": "Содержание",
        "updated": "Обновлено",
        "notice": "Предупреждение издателя",
        "notice_hint": "Прежде чем хранить этот файл или передавать его другим, прочитайте предупреждение издателя выше. В нём сказано, где оно действует. Файл остаётся на этом устройстве, пока вы его не удалите.",
        "self_check": "Эта страница не может проверить сама себя. Прежде чем доверять предупреждению и статьям, откройте файл на странице проверки (verify.html).",
        "read_hint": "Надёжнее всего читать этот файл, не распаковывая его: откройте его на странице проверки (verify.html). Она сначала проверит файл, а картинки не попадут в галерею телефона.",
        "verify": "Чтобы проверить, что файл подлинный и не изменён, откройте его на странице проверки "
        "(verify.html) любого зеркала: она читает файл, не распаковывая его.",
    },
    "uk": {
        "title": "Документ",
        "contents": "Зміст",
        "updated": "Оновлено",
        "notice": "Попередження видавця",
        "notice_hint": "Перш ніж зберігати цей файл або передавати його іншим, прочитайте попередження видавця вище. У ньому сказано, де воно діє. Файл залишається на цьому пристрої, доки ви його не видалите.",
        "self_check": "Ця сторінка не може перевірити сама себе. Перш ніж довіряти попередженню і статтям, відкрийте файл на сторінці перевірки (verify.html).",
        "read_hint": "Найнадійніше читати цей файл, не розпаковуючи його: відкрийте його на сторінці перевірки (verify.html). Вона спершу перевірить файл, а зображення не потраплять до галереї телефона.",
        "verify": "Щоб перевірити, що файл справжній і не змінений, відкрийте його на сторінці перевірки "
        "(verify.html) будь-якого дзеркала: вона читає файл, не розпаковуючи його.",
    },
    "fa": {
        "title": "سند",
        "contents": "فهرست",
        "updated": "به‌روزرسانی",
        "notice": "هشدار ناشر",
        "notice_hint": "پیش از نگه داشتن این پرونده یا فرستادن آن برای دیگران، هشدار ناشر را در بالا بخوانید. در آن آمده است که کجا اعمال می‌شود. این پرونده تا وقتی پاکش نکنید روی این دستگاه می‌ماند.",
        "self_check": "این صفحه نمی‌تواند خودش را بررسی کند. پیش از اعتماد به هشدار و مقاله‌ها، پرونده را در صفحهٔ بررسی (verify.html) باز کنید.",
        "read_hint": "امن‌ترین راه خواندن این پرونده این است که بدون باز کردن فشرده‌اش آن را در صفحهٔ بررسی (verify.html) باز کنید. این صفحه اول پرونده را بررسی می‌کند و تصویرها به گالری گوشی نمی‌روند.",
        "verify": "برای اطمینان از اصالت و دست‌نخوردگی این پرونده، آن را در صفحهٔ بررسی (verify.html) "
        "هر آینه‌ای باز کنید: این صفحه پرونده را بدون باز کردن فشرده‌اش می‌خواند.",
    },
}


def text_dir(lang: str) -> str:
    """``rtl`` for right-to-left languages, else ``ltr``."""
    return "rtl" if lang.split("-")[0].lower() in RTL_LANGS else "ltr"


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def sanitize_html(html: str) -> str:
    """Clean HTML to the allow-list (the API also accepts HTML bodies)."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRS,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def markdown_to_html(text: str) -> str:
    """Render Markdown to sanitised HTML."""
    return sanitize_html(_markdown().render(text))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tamizdat.bundles", "templates"),
        autoescape=True,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["dir"] = text_dir
    return env


@cache
def _css() -> tuple[str, str]:
    css = _env().loader.get_source(_env(), "style.css")[0].strip()  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return css, digest


def csp() -> str:
    """The offline pages' Content-Security-Policy: no script, no network, inline CSS by hash."""
    return f"default-src 'none'; style-src 'sha256-{_css()[1]}'; img-src 'self'; base-uri 'none'; form-action 'none'"


def ui_strings(lang: str) -> dict[str, str]:
    base = lang.split("-")[0].lower()
    strings = UI.get(base, UI["en"])
    return {**strings, "lang": base if base in UI else "en", "dir": text_dir(base if base in UI else "en")}


def render_page(template: str, *, ui_lang: str, **context: Any) -> bytes:
    """Render one offline page to UTF-8 bytes."""
    css, _ = _css()
    html = _env().get_template(template).render(ui=ui_strings(ui_lang), css=css, csp=csp(), **context)
    return html.encode("utf-8")
