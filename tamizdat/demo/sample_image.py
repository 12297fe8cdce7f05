"""Draw the demo article's illustration (a sketch map) so no binary sits in the repository."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def draw_sampling_map(path: Path) -> Path:
    """Write a small PNG sketch map of a river bend with sampling points."""
    im = Image.new("RGB", (640, 360), (244, 241, 232))
    d = ImageDraw.Draw(im)
    river = [(0, 250), (120, 230), (240, 180), (330, 170), (420, 200), (520, 260), (640, 280)]
    d.line(river, fill=(96, 150, 200), width=38, joint="curve")
    d.rectangle((300, 40, 420, 110), outline=(80, 80, 80), width=3, fill=(210, 205, 195))
    d.line([(360, 110), (350, 165)], fill=(120, 60, 40), width=6)
    for n, (x, y) in enumerate([(380, 190), (430, 210), (480, 235), (540, 262), (600, 276)], 1):
        d.ellipse((x - 11, y - 11, x + 11, y + 11), fill=(200, 40, 40), outline=(255, 255, 255), width=2)
        d.text((x - 3, y - 7), str(n), fill=(255, 255, 255))
    im.save(path, "PNG")
    return path
