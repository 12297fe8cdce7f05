"""The standalone browser verifier: one self-contained HTML page (docs/verifier.md).

The page's sources live in ``bundles/verifier/``: ``verify.html`` (markup and
inline CSS), ``core.js`` (the numbered verification steps of docs/format.md,
no DOM), ``tlog.js`` (log proofs, docs/transparency.md, no DOM), ``ui.js``
(inputs, verdict, reading) and ``frame.css`` (the sandboxed reading frame).
:func:`page_bytes` inlines the scripts and writes the Content-Security-Policy
with the hashes of exactly the script and styles it ships, so the result is
byte-identical for everyone who builds it from the same sources. Origin,
mirrors and the signed index use :func:`page_bytes` and :func:`page_sha256`;
readers compare that hash with the file they hold.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import click

from tamizdat.clikit import emit, guarded, json_option
from tamizdat.fsutil import atomic_write

PAGE_NAME = "verify.html"
SOURCES = ("verify.html", "core.js", "tlog.js", "ui.js", "frame.css")


def _source(name: str) -> str:
    return resources.files("tamizdat.bundles").joinpath("verifier", name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """A CSP source expression ('sha256-...' without quotes) for an inline script or style."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


_IDENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_REGEX_AFTER_WORD = frozenset({"return", "typeof", "case", "in", "of", "void", "delete", "throw", "new", "else", "do"})


def _regex_allowed(out: list[str]) -> bool:
    """Whether a ``/`` after what was emitted so far starts a regular expression literal."""
    text = "".join(out[-40:]).rstrip()
    if not text:
        return True
    last = text[-1]
    if last in ")]":
        return False
    if last in _IDENT:
        word = re.search(r"[A-Za-z0-9_$]+$", text)
        return word is not None and word.group(0) in _REGEX_AFTER_WORD
    return True


def compact_js(src: str) -> str:
    """Drop comments, indentation and the spaces that separate nothing.

    Deliberately small: it understands string, regular expression and comment
    tokens (the sources use no template literals and no block comments) and
    keeps every line break that could end a statement, so automatic semicolon
    insertion reads the result as it reads the sources.
    """
    out: list[str] = []
    i, n, space = 0, len(src), False
    while i < n:
        c = src[i]
        if c in " \t\r":
            space, i = True, i + 1
            continue
        if c == "\n":
            space, i = False, i + 1
            # A line break after these tokens can never end a statement.
            if out and out[-1] != "\n" and out[-1] not in ("{", "(", "[", ",", ";"):
                out.append("\n")
            continue
        if src.startswith("//", i):
            end = src.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "`" or src.startswith("/*", i):
            raise RuntimeError("template literals and block comments are not supported by compact_js")
        j = i + 1
        if c in "'\"":
            while src[j] != c:
                if src[j] == "\n":
                    raise RuntimeError("unterminated string in verifier source")
                j += 2 if src[j] == "\\" else 1
            j += 1
        elif c == "/" and _regex_allowed(out):
            in_class = False
            while src[j] != "/" or in_class:
                if src[j] == "\n":
                    raise RuntimeError("unterminated regular expression in verifier source")
                if src[j] == "\\":
                    j += 1
                elif src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                j += 1
            j += 1
            while j < n and src[j] in _IDENT:
                j += 1
        token = src[i:j]
        if space and out and out[-1] != "\n":
            a, b = out[-1][-1], token[0]
            if (a in _IDENT and b in _IDENT) or (a in "+-" and b in "+-"):
                out.append(" ")
        space = False
        out.append(token)
        i = j
    return "".join(out).strip() + "\n"


def build_page() -> bytes:
    """Assemble the page from its sources (deterministic)."""
    html = _source("verify.html")
    frame_css = _source("frame.css")
    core = _source("core.js")
    core = core[: core.index("// @node-only")]
    js = compact_js(core) + compact_js(_source("tlog.js")) + compact_js(_source("ui.js"))
    js = js.replace('"{{FRAME_CSS}}"', json.dumps(frame_css), 1).replace("{{FRAME_CSS_HASH}}", csp_hash(frame_css), 1)
    if "{{" in js or re.search(r"</script|<!--", js, re.IGNORECASE):
        raise RuntimeError("verifier script cannot be inlined safely")
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    if len(styles) != 1:
        raise RuntimeError("verify.html must hold exactly one <style> element")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src '{csp_hash(js)}'",
            f"style-src '{csp_hash(styles[0])}' '{csp_hash(frame_css)}'",
            "img-src blob:",
            "frame-src 'none'",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    page = html.replace("{{CSP}}", csp, 1).replace("{{SCRIPT}}", js, 1)
    return page.encode("utf-8")


@functools.cache
def page_bytes() -> bytes:
    """The shipped page, byte for byte."""
    return build_page()


def page_sha256() -> str:
    """Lowercase hex SHA-256 of :func:`page_bytes` (the index's ``verifier_sha256``)."""
    return hashlib.sha256(page_bytes()).hexdigest()


@click.command("verifier")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the standalone verifier page (verify.html) here.",
)
@click.option("--hash", "show_hash", is_flag=True, help="Print the page's SHA-256 (lowercase hex) and nothing else.")
@json_option
@guarded
def verifier_cmd(output: Path | None, show_hash: bool, as_json: bool) -> None:
    """Write the offline browser verifier page, or print its SHA-256."""
    if output is None and not show_hash:
        raise click.UsageError("give -o FILE, --hash, or both")
    data = page_bytes()
    digest = page_sha256()
    if output is not None:
        atomic_write(output, data)
    if show_hash and not as_json:
        click.echo(digest)
        return
    info = {"ok": True, "size": len(data), "sha256": digest, **({"path": str(output)} if output else {})}
    emit(as_json, info, f"wrote {output} ({len(data)} bytes)\nsha256: {digest}")


def register(group: click.Group) -> None:
    """Add ``tamizdat verifier`` to the main command group."""
    group.add_command(verifier_cmd)
