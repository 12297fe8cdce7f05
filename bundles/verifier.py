"""The standalone browser verifier: one self-contained HTML page (docs/verifier.md).

The page's sources live in ``bundles/verifier/``: ``verify.html`` (markup and
inline CSS), ``core.js`` (the numbered verification steps of docs/format.md,
no DOM), ``tlog.js`` (log proofs, docs/transparency.md, no DOM), ``ui.js``
(inputs, verdict, reading), ``strings.json`` (the interface in every language)
and ``frame.css`` (the sandboxed reading frame). The scripts and strings ship
minified as ``verify.min.js``, committed and rebuilt with
``python -m tamizdat.bundles.verifier_build`` (:mod:`.verifier_build`).
:func:`page_bytes` inlines that script and writes the Content-Security-Policy
with the hashes of exactly the script and styles it ships, so the result is
byte-identical for everyone who builds it from the same sources. Origin,
mirrors and the signed index use :func:`page_bytes` and :func:`page_sha256`;
readers compare that hash with the file they hold.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources
from pathlib import Path

import click

from tamizdat.clikit import emit, guarded, json_option
from tamizdat.fsutil import atomic_write

PAGE_NAME = "verify.html"
SOURCES = ("verify.html", "core.js", "tlog.js", "ui.js", "strings.json", "frame.css")
DIST_NAME = "verify.min.js"
HEADER = "// "


def _source(name: str) -> str:
    return resources.files("tamizdat.bundles").joinpath("verifier", name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    """A CSP source expression ('sha256-...' without quotes) for an inline script or style."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def strip_header(dist: str) -> str:
    """The built script without its leading ``//`` header lines."""
    lines = dist.split("\n")
    while lines and lines[0].startswith(HEADER):
        lines.pop(0)
    return "\n".join(lines)


def build_page() -> bytes:
    """Assemble the page from its sources (deterministic)."""
    html = _source("verify.html")
    frame_css = _source("frame.css")
    js = strip_header(_source(DIST_NAME))
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
