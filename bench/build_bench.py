"""``build_bundle`` against a raw ``zipfile`` write of the same files, in the same run.

For each fixture the bundle is built once to learn its entries; then
``build_bundle`` (Markdown rendered to HTML and JSON, images kept, hashed,
manifest signed, canonical ZIP written) and the baseline alternate round by
round. The baseline is what any ZIP writer must do at least: ``zipfile``
writes the very same entry bytes, DEFLATE (level 6, as the bundle) for text
and STORED for images (as the bundle; deflating random image bytes would only
slow the baseline down). Both write to the page cache (``durable=False``): no
fsync on either side.

- 10 KB: one article (bench.common.build_small's input);
- text edition: 50 articles of about 20 KB of Markdown each (about 3 MB of
  HTML and JSON, all deflated);
- mixed 100 MB (10 MB in quick mode): 90% stored media, 10% text (as the
  verify benchmark's big bundle).

Ratio = baseline time / build time (1.00x: as fast as a bare ZIP write).
No goal is set in DESIGN for building; the figures say where the time goes.
"""

from __future__ import annotations

import hashlib
import random
import zipfile
from pathlib import Path

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import BundleInput
from tamizdat.bundles.zipwrite import DEFLATE_LEVEL, STORED_EXTENSIONS

from .common import _NOTICE, MB, Context, Publisher, Result, _article, compare, make_publisher


def raw_write(out: Path, entries: list[tuple[str, bytes]]) -> None:
    """The baseline: the same bytes through zipfile, text deflated, images stored."""
    with zipfile.ZipFile(out, "w", compresslevel=DEFLATE_LEVEL) as zf:
        for name, body in entries:
            stored = name.endswith(STORED_EXTENSIONS)
            zf.writestr(name, body, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


def _entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _inputs(ctx: Context) -> list[tuple[str, BundleInput, dict[str, bytes | Path], float]]:
    """(label, input, extra files, min seconds per sample)."""
    small = BundleInput(articles=(_article(random.Random(10), 1, 9_000, 1),), notices=(_NOTICE,))
    rng = random.Random(30)
    text = BundleInput(
        articles=tuple(_article(rng, n, 20_000, 3) for n in range(1, 51)), notices=(_NOTICE,), title="Bench text"
    )
    total = 10 * MB if ctx.quick else 100 * MB
    rng = random.Random(20)
    n_articles = max(1, (total // 10) // 100_000)
    mixed = BundleInput(
        articles=tuple(_article(rng, n, int(100_000 / 2.85), 3) for n in range(1, n_articles + 1)),
        notices=(_NOTICE,),
        title="Bench edition",
    )
    media_dir = ctx.workdir / "media"
    media_dir.mkdir(exist_ok=True)
    extra: dict[str, bytes | Path] = {}
    left, i = total * 9 // 10, 0
    while left > 0:
        data = rng.randbytes(min(3 * MB, left))
        src = media_dir / f"{i}.bin"
        src.write_bytes(data)
        extra[f"media/{hashlib.sha256(data).hexdigest()[:16]}.jpg"] = src
        left -= len(data)
        i += 1
    sample = 0.05 if ctx.quick else 0.2
    label = f"mixed {total // MB} MB"
    return [("10 KB", small, {}, sample), ("text edition, 50 articles", text, {}, 0.0), (label, mixed, extra, 0.0)]


def bench_one(
    ctx: Context, pub: Publisher, label: str, inp: BundleInput, extra: dict[str, bytes | Path], min_s: float
) -> Result:
    out = ctx.workdir / "built.zip"
    raw = ctx.workdir / "raw.zip"

    def build() -> object:
        return build_bundle(
            inp, signer=pub.signer, chain=pub.chain, out=out, created=pub.now, durable=False, extra_files=extra
        )

    build()
    entries = _entries(out)
    size = out.stat().st_size
    content = sum(len(b) for _, b in entries)
    ctx.log(f"build {label}: timing")
    build_s, raw_s = compare(build, lambda: raw_write(raw, entries), repeats=ctx.repeats, min_sample_s=min_s)
    ratio = raw_s / build_s
    ctx.note(
        f"build {label}: {len(entries)} entries, {content:,} bytes of content, {size:,} bytes on disk "
        f"(raw zipfile write: {raw.stat().st_size:,})"
    )
    return Result(
        name=f"build {label}: vs raw zipfile write",
        value=build_s * 1e3,
        unit="ms",
        baseline=raw_s * 1e3,
        ratio=f"{ratio:.2f}x",
        extra={"entries": len(entries), "content_bytes": content, "file_bytes": size, "mb_s": content / build_s / MB},
    )


def run(ctx: Context) -> list[Result]:
    pub = make_publisher(ctx.workdir / "keys")
    return [bench_one(ctx, pub, *args) for args in _inputs(ctx)]
