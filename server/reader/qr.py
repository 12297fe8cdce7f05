"""QR codes of share links: inline SVG for the page, PNG for download, text for a terminal.

Error correction (docs/reader-safety.md, "QR codes"): a phone camera reads a
code easily when its modules are large, so the symbol should stay small
(version 10, 57 x 57 modules, at most); within that, more error correction
helps against glare, a cracked screen or a crumpled print. The rule: the
highest level (H, Q, M) whose symbol fits in version 10; if none fits, M (the
common default, 15 % recovery) at the smallest version that holds the link.
Level L is never used. A share link is at least 160 bytes (two 64-digit ids),
so Q (151 bytes at version 10) never fits and real links get M: the web pages
keep fallback mirrors in the link only while it stays within 213 bytes, the
version-10 capacity at M.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import qrcode
from markupsafe import Markup, escape
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_M, ERROR_CORRECT_Q

MAX_VERSION = 10
LEVELS = (("H", ERROR_CORRECT_H), ("Q", ERROR_CORRECT_Q), ("M", ERROR_CORRECT_M))
# Byte-mode capacity at version 10 (ISO/IEC 18004 table 7).
CAPACITY_V10 = {"L": 271, "M": 213, "Q": 151, "H": 119}
BORDER = 4


@dataclass(frozen=True)
class Code:
    payload: str
    level: str
    version: int
    matrix: tuple[tuple[bool, ...], ...]  # with the quiet zone

    @property
    def modules(self) -> int:
        return len(self.matrix) - 2 * BORDER

    def svg(self, label: str = "") -> Markup:
        """A compact inline SVG (one path of horizontal runs; black on white, whatever the page theme)."""
        n = len(self.matrix)
        d = []
        for y, row in enumerate(self.matrix):
            x = 0
            while x < n:
                if row[x]:
                    start = x
                    while x < n and row[x]:
                        x += 1
                    d.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
                else:
                    x += 1
        aria = f' role="img" aria-label="{escape(label)}"' if label else ' aria-hidden="true"'
        return Markup(
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" class="qr"{aria} '
            f'shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(d)}"/></svg>'
        )

    def png(self, box: int = 8) -> bytes:
        qr = _qr(self.payload, dict(LEVELS)[self.level], self.version)
        qr.box_size = box
        img = qr.make_image(fill_color="black", back_color="white")
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()

    def text(self) -> str:
        """Two rows per line in half blocks; light modules are drawn, so it suits light-on-dark terminals."""
        lines = []
        m = self.matrix
        for y in range(0, len(m), 2):
            top, bottom = m[y], m[y + 1] if y + 1 < len(m) else tuple(False for _ in m[y])
            line = ""
            for a, b in zip(top, bottom, strict=True):
                line += {(False, False): "\u2588", (True, False): "\u2584", (False, True): "\u2580", (True, True): " "}[
                    (a, b)
                ]
            lines.append(line)
        return "\n".join(lines)


def _qr(payload: str, level: int, version: int | None) -> qrcode.QRCode:
    qr = qrcode.QRCode(version=version, error_correction=level, border=BORDER, box_size=1)
    qr.add_data(payload.encode("utf-8"), optimize=0)
    qr.make(fit=version is None)
    return qr


def choose_level(payload: str) -> tuple[str, int]:
    """(level, version) by the rule in the module docstring."""
    for name, level in LEVELS:
        qr = _qr(payload, level, None)
        if qr.version <= MAX_VERSION:
            return name, qr.version
    return "M", _qr(payload, ERROR_CORRECT_M, None).version


def make(payload: str) -> Code:
    level, version = choose_level(payload)
    qr = _qr(payload, dict(LEVELS)[level], version)
    matrix = tuple(tuple(bool(c) for c in row) for row in qr.get_matrix())
    return Code(payload, level, version, matrix)
