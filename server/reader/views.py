"""Rendering of the reader pages: templates per UI language, inline CSS/JS by hash, headers.

Every response of the reader routes carries :data:`BASE_HEADERS` and a
Content-Security-Policy with ``default-src 'none'`` plus exactly what the page
needs (its one stylesheet and scripts by SHA-256 hash, images from this host,
forms posting to this host).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup

from . import i18n

BASE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
# For bytes that are not pages (images, the ZIP, the PNG): nothing may run or load.
NONE_CSP = "default-src 'none'; sandbox"


def _asset(name: str) -> str:
    return files("tamizdat.server.reader").joinpath("templates", name).read_text("utf-8").strip()


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@cache
def assets() -> dict[str, str]:
    return {"css": _asset("style.css"), "leave_js": _asset("leave.js"), "landing_js": _asset("landing.js")}


@cache
def csp(page_js: bool = False) -> str:
    a = assets()
    scripts = [_sha(a["leave_js"])] + ([_sha(a["landing_js"])] if page_js else [])
    return (
        f"default-src 'none'; style-src {_sha(a['css'])}; script-src {' '.join(scripts)}; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


@cache
def environment(lang: str) -> jinja2.Environment:
    """One Jinja environment per UI language, its catalog installed (thread-safe, no per-request state)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tamizdat.server.reader", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # package files: no stat of every template on every render
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["dir"] = i18n.text_dir
    return env


def render(template: str, lang: str, **context: Any) -> str:
    a = assets()
    page_js = Markup(a["landing_js"]) if context.pop("landing", False) else ""
    return (
        environment(lang)
        .get_template(template)
        .render(css=Markup(a["css"]), leave_js=Markup(a["leave_js"]), page_js=page_js, **context)
    )


def gettext(lang: str, message: str, **params: Any) -> str:
    text = i18n.translations(lang).gettext(message)
    return text % params if params else text
