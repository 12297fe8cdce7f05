"""Rebuild the verifier page's script, ``bundles/verifier/verify.min.js``, from its sources.

    python -m tamizdat.bundles.verifier_build [--check]

Run it from a checkout after ``npm ci`` (package.json pins the minifier, terser).
The page build (:mod:`tamizdat.bundles.verifier`) only reads the committed
output, so installing or serving tamizdat never needs Node.js. The input is
``core.js`` (up to its ``// @node-only`` part), ``tlog.js`` and ``ui.js`` in one
function scope, with the reading frame's ``frame.css`` and its CSP hash and the interface strings
of ``strings.json`` filled in: English as an object, the other languages as
base64 of raw DEFLATE (the page inflates them with its own ``DecompressionStream``) plus, inline,
their language names and "this browser cannot check" message. Same sources and same
terser, same bytes; the output's header names both.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zlib
from importlib import resources
from pathlib import Path

from tamizdat.fsutil import atomic_write

from .verifier import DIST_NAME, HEADER, csp_hash

SOURCES = ("core.js", "tlog.js", "ui.js", "strings.json", "frame.css")
TERSER_OPTIONS = ("--compress", "passes=2", "--mangle", "--ecma", "2020", "--comments", "false")
CHECKOUT = Path(__file__).resolve().parent.parent


class BuildError(Exception):
    """The build cannot run or its output is stale (one line for the user)."""


def _source(name: str) -> str:
    return resources.files("tamizdat.bundles").joinpath("verifier", name).read_text(encoding="utf-8")


def sources_sha256() -> str:
    """SHA-256 over the script sources' names and bytes: the digest the output's header records."""
    h = hashlib.sha256()
    for name in SOURCES:
        data = _source(name).encode("utf-8")
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def recorded_sha256(dist: str) -> str | None:
    """The sources digest named in a built file's header, if any."""
    for line in dist.splitlines():
        if not line.startswith(HEADER):
            break
        found = re.search(r"sources sha256 ([0-9a-f]{64})\b", line)
        if found:
            return found.group(1)
    return None


def pack_strings(strings: dict[str, dict[str, str]]) -> str:
    """Base64 of raw DEFLATE (level 9) of compact UTF-8 JSON."""
    raw = json.dumps(strings, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return base64.b64encode(deflate.compress(raw) + deflate.flush()).decode("ascii")


FALLBACK_KEYS = ("langName", "unsupported")


def fallback_strings(others: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The few strings kept inline for every language: an engine that cannot inflate the packed
    ones cannot check bundles either, and must still say so in the reader's language."""
    return {lang: {key: texts[key] for key in FALLBACK_KEYS} for lang, texts in others.items()}


def script_input() -> str:
    """The one script terser reads: the three sources in one function scope, strings filled in."""
    strings = json.loads(_source("strings.json"))
    if not isinstance(strings, dict) or "en" not in strings:
        raise BuildError("strings.json must be an object with an 'en' entry")
    others = {lang: texts for lang, texts in strings.items() if lang != "en"}
    core = _source("core.js")
    core = core[: core.index("// @node-only")]
    ui = _source("ui.js")
    frame_css = _source("frame.css")
    for placeholder, value in (
        ("{{FRAME_CSS}}", frame_css),
        ("{{FRAME_CSS_HASH}}", csp_hash(frame_css)),
        ("{{STRINGS_EN}}", strings["en"]),
        ("{{STRINGS_PACKED}}", pack_strings(others)),
        ("{{STRINGS_FALLBACK}}", fallback_strings(others)),
    ):
        if ui.count(f'"{placeholder}"') != 1:
            raise BuildError(f"ui.js must hold the placeholder {placeholder!r} exactly once")
        ui = ui.replace(f'"{placeholder}"', json.dumps(value, ensure_ascii=False), 1)
    return "(function () {\n" + core + _source("tlog.js") + ui + "})();\n"


def terser_version(root: Path = CHECKOUT) -> str:
    """The installed terser's version (from ``npm ci`` in ``root``)."""
    manifest = root / "node_modules" / "terser" / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError) as err:
        raise BuildError(f"terser is not installed in {root.name}/node_modules: run 'npm ci' first") from err


def build_dist(root: Path = CHECKOUT) -> str:
    """Minify :func:`script_input` with the pinned terser; the text of ``verify.min.js``."""
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed (Node.js 20 or later is needed to rebuild the script)")
    version = terser_version(root)
    cli = root / "node_modules" / "terser" / "bin" / "terser"
    proc = subprocess.run(
        [node, str(cli), *TERSER_OPTIONS], input=script_input().encode("utf-8"), capture_output=True, check=False
    )
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BuildError(f"terser failed: {reason[0] if reason else proc.returncode}")
    header = (
        f"{HEADER}Built from {', '.join(SOURCES)} (sources sha256 {sources_sha256()}) by terser {version}\n"
        f"{HEADER}({' '.join(TERSER_OPTIONS)}) with python -m tamizdat.bundles.verifier_build: edit the sources.\n"
    )
    return header + proc.stdout.decode("utf-8").strip() + "\n"


def dist_path(root: Path = CHECKOUT) -> Path:
    """Where the built script lives in a checkout."""
    return root / "bundles" / "verifier" / DIST_NAME


def main(argv: list[str] | None = None) -> int:
    """Rebuild (or with ``--check`` compare) ``verify.min.js``; 0 ok, 1 failed or stale."""
    parser = argparse.ArgumentParser(prog="python -m tamizdat.bundles.verifier_build", description=DIST_NAME)
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    try:
        text = build_dist()
        path = dist_path()
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                raise BuildError(f"{DIST_NAME} is stale: run python -m tamizdat.bundles.verifier_build")
            print(f"{DIST_NAME} is up to date")
            return 0
        atomic_write(path, text.encode("utf-8"))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path.name} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
