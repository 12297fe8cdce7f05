"""Regenerate every checked-in fixture under tests/assets/ from fixed seeds.

    python tests/make_assets.py            # rewrite tests/assets/
    python tests/make_assets.py OUT_DIR    # write a copy elsewhere

- ``golden/``: bundles built by tamizdat itself from fixed keys
  (``KeyDir.init(seeds=...)``), fixed times and fixed inputs, plus the key
  directory's public root documents and the pinned root key id.
- ``bad/``: one bundle per rejection rule, made from ``golden/article-en.zip``
  by byte surgery with the hand-rolled ZIP writer in ``helpers.py``; each
  breaks exactly one rule. ``bad/expected.json`` is the one table of expected
  rejections (step and code, and a pinned id where a row needs another).

Everything is deterministic: the same script gives the same bytes. The bytes
depend on zlib's deflate output and on Pillow's PNG encoder; if an upgrade of
either changes them, the byte-identity tests fail: rerun this script and
review the diff.
"""

from __future__ import annotations

import base64
import bz2
import dataclasses
import datetime as dt
import hashlib
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (
    ASSETS,
    BUNDLE_TYPE,
    GOLDEN_ROOT_KEY,
    GOLDEN_SIGNING_KEY,
    LOC,
    MANIFEST,
    OTHER_ROOT_KEY,
    ROOT_TYPE,
    T_CREATED,
    T_REVOKE,
    T_ROTATE_ROOT,
    T_ROTATE_SIGNING,
    T_ROTATED_CREATED,
    ZEntry,
    canonical_zip,
    compact_json,
    contents,
    entry,
    envelope_bytes,
    find,
    fixed_key_generation,
    flip,
    golden_keydir,
    read_zip,
    seed,
    signed_envelope,
    with_entry,
    write_zip,
)

from tamizdat.bundles import build_bundle, parse_bundle_input
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir

MiB = 1024 * 1024

# -- golden inputs ------------------------------------------------------------

ARTICLE_INPUT = {
    "articles": [
        {
            "id": "court-2026",
            "lang": "en",
            "title": "Court hears appeal of jailed reporters",
            "summary": "Three journalists held since March ask judges to review their case.",
            "byline": "Staff reporter",
            "published": "2026-02-01T09:00:00Z",
            "updated": "2026-02-01T11:30:00Z",
            "body": (
                "The appeal hearing opened on Monday before a panel of three judges.\n\n"
                "Lawyers for the reporters said the charges rest on *a single* anonymous "
                "statement. Read the [ruling](https://example.org/ruling).\n\n"
                "- Hearing: 1 February\n- Verdict: expected in March\n"
            ),
            "sections": [{"heading": "What comes next", "body": "The court adjourned until **9 February**."}],
            "images": [
                {
                    "path": "courthouse.png",
                    "caption": "The courthouse on Monday",
                    "alt": "A grey stone building",
                    "credit": "Staff photo",
                }
            ],
        }
    ],
    "notice": {"regions": ["BY", "RU"], "text": {"en": "This publisher is banned in some countries."}},
}

EDITION_INPUT = {
    "kind": "edition",
    "title": "Weekly edition 5/2026",
    "notices": [
        {
            "id": "risk",
            "regions": ["BY", "IR", "RU"],
            "text": {
                "en": "Keeping this file may carry a risk where you are.",
                "ru": "Хранение этого файла может быть опасным там, где вы находитесь.",
                "fa": "نگه داشتن این پرونده ممکن است در جایی که هستید خطرناک باشد.",
            },
        },
        {"id": "share", "regions": ["*"], "text": {"en": "Pass it on.", "ru": "Передайте дальше."}},
    ],
    "articles": [
        {
            "id": "budget-2026",
            "lang": "en",
            "title": "Parliament passes emergency budget",
            "published": "2026-02-01T08:00:00Z",
            "body": "The vote was 212 to 190.\n\nOpposition members walked out before the count.",
            "notices": ["risk", "share"],
        },
        {
            "id": "budget-2026-ru",
            "lang": "ru",
            "title": "Парламент принял чрезвычайный бюджет",
            "byline": "Редакция",
            "published": "2026-02-01T08:30:00Z",
            "body": "Голосование завершилось со счётом 212 против 190.",
            "images": [{"path": "chart.png", "caption": "Итоги голосования"}],
            "notices": ["risk"],
        },
        {
            "id": "budget-2026-fa",
            "lang": "fa",
            "title": "مجلس بودجهٔ اضطراری را تصویب کرد",
            "published": "2026-02-01T09:00:00Z",
            "body": "رأی‌گیری با ۲۱۲ رأی موافق در برابر ۱۹۰ رأی مخالف پایان یافت.",
            "sections": [{"heading": "واکنش‌ها", "body": "نمایندگان مخالف پیش از شمارش آرا جلسه را ترک کردند."}],
            "notices": ["risk", "share"],
        },
    ],
}

T_EDITION_CREATED = dt.datetime(2026, 2, 1, 18, 0, 0, tzinfo=dt.UTC)


def rotated_input(supersedes: str) -> dict[str, object]:
    doc = json.loads(json.dumps(ARTICLE_INPUT))
    art = doc["articles"][0]
    art["version"] = 2
    art["updated"] = "2026-04-15T08:00:00Z"
    art["body"] += "\nUpdate: the court released one of the three reporters on bail.\n"
    art["images"] = []
    doc["supersedes"] = [supersedes]
    return doc


def tiny_png(variant: int) -> bytes:
    """A small gradient PNG (a few hundred bytes), made by Pillow."""
    im = Image.new("RGB", (16, 12))
    for x in range(16):
        for y in range(12):
            im.putpixel((x, y), ((x * 16 + variant * 70) % 256, (y * 21) % 256, (128 + x * y) % 256))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write the article and edition input documents and their images to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "courthouse.png").write_bytes(tiny_png(1))
    (folder / "chart.png").write_bytes(tiny_png(2))
    out = {}
    for name, doc in (("article-en", ARTICLE_INPUT), ("edition-multilang", EDITION_INPUT)):
        out[name] = folder / f"{name}.json"
        out[name].write_text(json.dumps(doc, ensure_ascii=False, indent=2))
    return out


def _build(keydir: KeyDir, source: Path, out: Path, created: dt.datetime) -> str:
    inp = parse_bundle_input(source.read_bytes(), base=source.parent)
    built = build_bundle(
        inp, signer=keydir.signer("bundle", at=created), chain=keydir.chain(), out=out, created=created, durable=False
    )
    return built.bundle_id


def build_goldens(work: Path, out: Path) -> dict[str, str]:
    """Build the golden bundles and copy the public root documents to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = write_inputs(work / "inputs")
    keydir = golden_keydir(work / "keys")
    ids = {
        "article-en.zip": _build(keydir, inputs["article-en"], out / "article-en.zip", T_CREATED),
        "edition-multilang.zip": _build(
            keydir, inputs["edition-multilang"], out / "edition-multilang.zip", T_EDITION_CREATED
        ),
    }
    with fixed_key_generation("golden"):
        keydir.rotate_signing(now=T_ROTATE_SIGNING)
        keydir.rotate_root(now=T_ROTATE_ROOT)
    rotated = inputs["article-en"].with_name("rotated.json")
    rotated.write_text(json.dumps(rotated_input(ids["article-en.zip"]), ensure_ascii=False, indent=2))
    ids["rotated.zip"] = _build(keydir, rotated, out / "rotated.zip", T_ROTATED_CREATED)

    keys_out = out / "keys"
    shutil.rmtree(keys_out, ignore_errors=True)
    (keys_out / "roots").mkdir(parents=True)
    for doc in sorted((work / "keys" / "roots").glob("*.json")):
        shutil.copyfile(doc, keys_out / "roots" / doc.name)
    shutil.copyfile(work / "keys" / "root.json", keys_out / "root.json")
    (out / "root_keyid.txt").write_text(keydir.root_keyid() + "\n")
    (out / "bundle_ids.json").write_text(json.dumps(ids, indent=2, sort_keys=True) + "\n")
    return ids


# -- bad bundles ----------------------------------------------------------------


@dataclass
class Ctx:
    """The golden article bundle, taken apart, and a scratch folder."""

    golden: bytes
    work: Path

    @property
    def files(self) -> dict[str, bytes]:
        return contents(self.golden)

    @property
    def entries(self) -> list[ZEntry]:
        return read_zip(self.golden)

    def keydir(self, label: str) -> KeyDir:
        """A fresh key directory with the golden keys (same root version 1)."""
        return golden_keydir(self.work / label)

    def name(self, prefix: str) -> str:
        return next(n for n in self.files if n.startswith(prefix))


@dataclass(frozen=True)
class Bad:
    step: str
    code: str
    hazard: str
    make: Callable[[Ctx], bytes]
    root_keyid: str | None = None


BAD: dict[str, Bad] = {}


def bad(
    name: str, step: int, code: str, hazard: str, root_keyid: str | None = None
) -> Callable[[Callable[[Ctx], bytes]], Callable[[Ctx], bytes]]:
    """Register a bad bundle: its file name, expected step and code, and what is wrong with it."""

    def register(make: Callable[[Ctx], bytes]) -> Callable[[Ctx], bytes]:
        assert name not in BAD, name
        BAD[name] = Bad(str(step), code, hazard, make, root_keyid)
        return make

    return register


def insert_sorted(entries: list[ZEntry], new: ZEntry) -> list[ZEntry]:
    out = [*entries, new]
    out.sort(key=lambda e: e.name)
    return out


def repack(files: dict[str, bytes], **changes: bytes | None) -> bytes:
    """The canonical archive of ``files`` with entries replaced (bytes) or removed (None)."""
    out = dict(files)
    for name, value in changes.items():
        if value is None:
            out.pop(name)
        else:
            out[name] = value
    return canonical_zip(out)


def with_manifest(
    ctx: Ctx, payload: bytes, signers: list[SigningKey] | None = None, extra: dict[str, bytes] | None = None
) -> bytes:
    """The golden files with a manifest over ``payload`` signed by ``signers`` (and ``extra`` entries)."""
    env = signed_envelope(BUNDLE_TYPE, payload, signers or [GOLDEN_SIGNING_KEY])
    return canonical_zip({**ctx.files, MANIFEST: envelope_bytes(env), **(extra or {})})


def manifest_doc(ctx: Ctx) -> dict[str, object]:
    return json.loads(base64.b64decode(json.loads(ctx.files[MANIFEST])["payload"]))


def root_doc(ctx: Ctx, version: int = 1) -> dict[str, object]:
    return json.loads(base64.b64decode(json.loads(ctx.files[f"meta/roots/{version}.json"])["payload"]))


def resigned_manifest(ctx: Ctx, change: Callable[[dict[str, object]], None], **kw: object) -> bytes:
    doc = manifest_doc(ctx)
    change(doc)
    return with_manifest(ctx, compact_json(doc), **kw)  # type: ignore[arg-type]


# Step 1-3: the end record and the central directory.


@bad("truncated.zip", 1, "zip-truncated", "the first 21 bytes of a bundle")
def _truncated(ctx: Ctx) -> bytes:
    return ctx.golden[:21]


@bad("no-end-record.zip", 2, "zip-no-end-record", "the end-of-central-directory record cut off")
def _no_end(ctx: Ctx) -> bytes:
    return ctx.golden[:-22]


@bad("trailing-data.zip", 2, "zip-trailing-data", "bytes appended after the end record")
def _trailing(ctx: Ctx) -> bytes:
    return ctx.golden + b"appended after the end record\n"


@bad("archive-comment.zip", 2, "zip-comment", "an archive comment")
def _comment(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, comment=b"an archive comment")


@bad("zip64-end-record.zip", 2, "zip64-unsupported", "ZIP64 marker 0xFFFF as the entry counts")
def _zip64(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, eocd={"n_disk": 0xFFFF, "n_total": 0xFFFF})


@bad("multi-disk.zip", 2, "zip-bad-end-record", "end record claims disk 1 of a spanned archive")
def _multi_disk(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, eocd={"disk": 1, "cd_disk": 1})


@bad("empty-archive.zip", 2, "zip-entry-count", "a valid empty archive (end record only)")
def _empty(ctx: Ctx) -> bytes:
    return write_zip([])


@bad("central-bad-signature.zip", 3, "zip-bad-central", "the second central header's signature damaged")
def _central_sig(ctx: Ctx) -> bytes:
    data = bytearray(write_zip(ctx.entries))
    first = data.index(b"PK\x01\x02")
    second = data.index(b"PK\x01\x02", first + 4)
    data[second + 3] = 0x09
    return bytes(data)


@bad(
    "prepended-data-unadjusted.zip",
    3,
    "zip-trailing-data",
    "a shell stub prepended without adjusting offsets (cat stub bundle.zip)",
)
def _prepended_raw(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, prepend=b"#!/bin/sh\nexit 0\n", adjust_offsets=False)


# Steps 4-7: each header on its own.


@bad("encrypted.zip", 4, "zip-encrypted", "articles/1.json has the encrypted flag (bit 0)")
def _encrypted(ctx: Ctx) -> bytes:
    return write_zip(with_entry(ctx.entries, "articles/1.json", flags=0x01))


@bad("method-bzip2.zip", 5, "zip-method", "articles/1.json compressed with bzip2 (method 12)")
def _bzip2(ctx: Ctx) -> bytes:
    data = bz2.compress(ctx.files["articles/1.json"])
    return write_zip(with_entry(ctx.entries, "articles/1.json", method=12, data=data, csize=len(data)))


@bad("symlink.zip", 6, "zip-symlink", "articles/2.html is a symbolic link to ../../../../etc/passwd")
def _symlink(ctx: Ctx) -> bytes:
    link = dataclasses.replace(entry("articles/2.html", b"../../../../etc/passwd"), ext_attr=0o120777 << 16)
    return write_zip(insert_sorted(ctx.entries, link))


@bad("directory-entry.zip", 6, "zip-not-file", "a directory entry media/ (mode 040755, DOS directory bit)")
def _directory(ctx: Ctx) -> bytes:
    folder = dataclasses.replace(entry("media/", b"", method=0), ext_attr=(0o40755 << 16) | 0x10)
    return write_zip(insert_sorted(ctx.entries, folder))


@bad("dos-timestamp.zip", 7, "zip-not-canonical", "every entry carries a real DOS time and date (2026-02-01 12:00)")
def _timestamp(ctx: Ctx) -> bytes:
    date = ((2026 - 1980) << 9) | (2 << 5) | 1
    return write_zip([dataclasses.replace(e, mtime=12 << 11, mdate=date) for e in ctx.entries])


@bad("extra-field.zip", 7, "zip-not-canonical", "articles/1.json has an extended-timestamp extra field")
def _extra(ctx: Ctx) -> bytes:
    return write_zip(with_entry(ctx.entries, "articles/1.json", extra=b"UT\x05\x00\x01\x00\x00\x00\x00"))


@bad("utf8-flag.zip", 7, "zip-not-canonical", "every entry has the UTF-8 name flag (bit 11)")
def _utf8(ctx: Ctx) -> bytes:
    return write_zip([dataclasses.replace(e, flags=0x0800) for e in ctx.entries])


@bad("stored-sizes-differ.zip", 7, "zip-not-canonical", "the stored PNG declares an uncompressed size 1 larger")
def _stored_sizes(ctx: Ctx) -> bytes:
    png = ctx.name("media/")
    e = ctx.entries[find(ctx.entries, png)]
    return write_zip(with_entry(ctx.entries, png, usize=e.usize + 1))


@bad("stored-html.zip", 7, "zip-not-canonical", "index.html stored instead of deflated")
def _stored_html(ctx: Ctx) -> bytes:
    e = entry("index.html", ctx.files["index.html"], method=0)
    return write_zip(with_entry(ctx.entries, "index.html", **_fields(e)))


@bad("deflated-image.zip", 7, "zip-not-canonical", "the PNG deflated instead of stored")
def _deflated_png(ctx: Ctx) -> bytes:
    png = ctx.name("media/")
    e = entry(png, ctx.files[png], method=8)
    return write_zip(with_entry(ctx.entries, png, **_fields(e)))


def _fields(e: ZEntry) -> dict[str, object]:
    return {"data": e.data, "method": e.method, "crc": e.crc, "csize": e.csize, "usize": e.usize}


# Step 8: names.


@bad("duplicate-name.zip", 8, "zip-duplicate-name", "index.html twice")
def _duplicate(ctx: Ctx) -> bytes:
    entries = ctx.entries
    i = find(entries, "index.html")
    return write_zip([*entries[: i + 1], entries[i], *entries[i + 1 :]])


@bad("case-collision.zip", 8, "zip-case-collision", "Index.html beside index.html")
def _case(ctx: Ctx) -> bytes:
    return write_zip(insert_sorted(ctx.entries, entry("Index.html", b"<p>shadow</p>")))


@bad("dotdot-path.zip", 8, "zip-bad-name", "an entry named ../evil.html")
def _dotdot(ctx: Ctx) -> bytes:
    return write_zip(insert_sorted(ctx.entries, entry("../evil.html", b"<p>escape</p>")))


@bad("absolute-path.zip", 8, "zip-bad-name", "an entry named /tmp/evil.html")
def _absolute(ctx: Ctx) -> bytes:
    return write_zip(insert_sorted(ctx.entries, entry("/tmp/evil.html", b"<p>absolute</p>")))


@bad("backslash-path.zip", 8, "zip-bad-name", "an entry named articles\\evil.html")
def _backslash(ctx: Ctx) -> bytes:
    return write_zip(insert_sorted(ctx.entries, entry("articles\\evil.html", b"<p>backslash</p>")))


@bad("nul-in-name.zip", 8, "zip-bad-name", "an entry named articles/evil<NUL>.html")
def _nul(ctx: Ctx) -> bytes:
    return write_zip(insert_sorted(ctx.entries, entry(b"articles/evil\x00.html", b"<p>nul</p>")))


@bad("name-too-long.zip", 8, "zip-bad-name", "an entry name of 256 bytes (articles/aaa...a.html)")
def _long_name(ctx: Ctx) -> bytes:
    name = "articles/" + "a" * (256 - len("articles/.html")) + ".html"
    assert len(name) == 256
    return write_zip(insert_sorted(ctx.entries, entry(name, b"<p>long</p>")))


@bad("unsorted.zip", 8, "zip-not-sorted", "articles/1.json stored before articles/1.html")
def _unsorted(ctx: Ctx) -> bytes:
    entries = ctx.entries
    entries[0], entries[1] = entries[1], entries[0]
    return write_zip(entries)


# Step 9: layout.


@bad("prepended-data.zip", 9, "zip-prepended-data", "a shell stub prepended, offsets adjusted (zip -A)")
def _prepended(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, prepend=b"#!/bin/sh\nexit 0\n")


@bad("overlap.zip", 9, "zip-overlap", "the second central header points into the first entry's data")
def _overlap(ctx: Ctx) -> bytes:
    entries = ctx.entries
    entries[1] = dataclasses.replace(entries[1], offset=LOC.size + len(entries[0].name) + 5)
    return write_zip(entries)


@bad("gap.zip", 9, "zip-gap", "16 unlisted bytes between the second and the third entry")
def _gap(ctx: Ctx) -> bytes:
    entries = ctx.entries
    entries[2] = dataclasses.replace(entries[2], pad_before=b"\x00" * 16)
    return write_zip(entries)


@bad("gap-before-central.zip", 9, "zip-gap", "16 unlisted bytes between the last entry and the central directory")
def _gap_end(ctx: Ctx) -> bytes:
    return write_zip(ctx.entries, before_central=b"\x00" * 16)


@bad("local-mismatch.zip", 9, "zip-local-mismatch", "the local header of articles/1.json has a DOS time")
def _local(ctx: Ctx) -> bytes:
    return write_zip(with_entry(ctx.entries, "articles/1.json", local={"mtime": 12 << 11}))


@bad("local-name-mismatch.zip", 9, "zip-local-mismatch", "the local header names articles/1.jsoN")
def _local_name(ctx: Ctx) -> bytes:
    return write_zip(with_entry(ctx.entries, "articles/1.json", local={"name": b"articles/1.jsoN"}))


@bad("entry-overlaps-central.zip", 9, "zip-overlap", "the last entry's size reaches into the central directory")
def _into_central(ctx: Ctx) -> bytes:
    last = ctx.entries[-1]
    return write_zip(with_entry(ctx.entries, last.text_name, csize=last.csize + 10))


# Step 10: sizes.


@bad("entry-too-large.zip", 10, "zip-entry-too-large", "index.html declares 32 MiB + 1 bytes (a tiny deflate stream)")
def _too_large(ctx: Ctx) -> bytes:
    small = entry("index.html", b"x")
    return write_zip(with_entry(ctx.entries, "index.html", **{**_fields(small), "usize": 32 * MiB + 1}))


@bad("zip-bomb.zip", 10, "zip-ratio", "index.html is 10 MB of zeros deflated to about 10 KB")
def _bomb(ctx: Ctx) -> bytes:
    bomb = entry("index.html", b"\x00" * 10_000_000, level=9)
    return write_zip(with_entry(ctx.entries, "index.html", **_fields(bomb)))


# Step 11: control entries.


@bad("manifest-missing.zip", 11, "manifest-missing", "no meta/manifest.dsse.json")
def _no_manifest(ctx: Ctx) -> bytes:
    return repack(ctx.files, **{MANIFEST: None})


@bad("root-missing.zip", 11, "root-missing", "meta/roots/1.json renamed to meta/roots/2.json")
def _no_root(ctx: Ctx) -> bytes:
    files = ctx.files
    return repack(files, **{"meta/roots/1.json": None, "meta/roots/2.json": files["meta/roots/1.json"]})


@bad("unexpected-control-entry.zip", 11, "bad-control-entry", "an extra meta/notes.json")
def _control(ctx: Ctx) -> bytes:
    return repack(ctx.files, **{"meta/notes.json": b"{}\n"})


@bad("control-too-large.zip", 11, "control-too-large", "meta/roots/1.json declares 1 MiB + 1 bytes (ratio under 100)")
def _control_large(ctx: Ctx) -> bytes:
    size = MiB + 1
    junk = bytes(range(256)) * (size // 100 // 256 + 1)
    return write_zip(with_entry(ctx.entries, "meta/roots/1.json", data=junk, csize=len(junk), usize=size))


@bad("manifest-corrupt.zip", 11, "entry-corrupt", "a byte of the manifest's deflate stream flipped")
def _manifest_corrupt(ctx: Ctx) -> bytes:
    e = ctx.entries[find(ctx.entries, MANIFEST)]
    return write_zip(with_entry(ctx.entries, MANIFEST, data=flip(e.data, len(e.data) // 2, 0x10)))


@bad(
    "manifest-inflates-beyond-size.zip",
    11,
    "entry-corrupt",
    "the manifest declares 1 byte less than its deflate stream inflates to",
)
def _manifest_lie(ctx: Ctx) -> bytes:
    e = ctx.entries[find(ctx.entries, MANIFEST)]
    return write_zip(with_entry(ctx.entries, MANIFEST, usize=e.usize - 1))


# Steps 12-15: the root chain.


def _root_env(doc: dict[str, object], signers: list[SigningKey], payload_type: str = ROOT_TYPE) -> bytes:
    return envelope_bytes(signed_envelope(payload_type, compact_json(doc), signers))


def _signing_entry(raw: bytes) -> dict[str, object]:
    return {
        "keyid": hashlib.sha256(raw).hexdigest(),
        "public": base64.b64encode(raw).decode(),
        "purposes": ["bundle", "index"],
        "not_before": "2026-01-01T00:00:00Z",
        "not_after": "2028-01-01T00:00:00Z",
    }


@bad("root-small-order-key.zip", 12, "bad-public-key", "root 1 (re-signed) delegates a small-order signing key")
def _small_order(ctx: Ctx) -> bytes:
    doc = root_doc(ctx)
    order8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    doc["signing_keys"] = sorted([*doc["signing_keys"], _signing_entry(order8)], key=lambda k: k["keyid"])  # type: ignore[misc]
    return repack(ctx.files, **{"meta/roots/1.json": _root_env(doc, [GOLDEN_ROOT_KEY])})


@bad("root-noncanonical-key.zip", 12, "bad-public-key", "root 1 (re-signed) delegates a key encoding y = p")
def _noncanonical(ctx: Ctx) -> bytes:
    doc = root_doc(ctx)
    y_is_p = (2**255 - 19).to_bytes(32, "little")
    doc["signing_keys"] = [*doc["signing_keys"], _signing_entry(y_is_p)]  # type: ignore[misc]
    return repack(ctx.files, **{"meta/roots/1.json": _root_env(doc, [GOLDEN_ROOT_KEY])})


@bad("root-unknown-field.zip", 12, "bad-root", "root 1 (re-signed) has an unknown field")
def _root_unknown(ctx: Ctx) -> bytes:
    doc = {**root_doc(ctx), "mirrors": ["https://example.org"]}
    return repack(ctx.files, **{"meta/roots/1.json": _root_env(doc, [GOLDEN_ROOT_KEY])})


@bad("root-wrong-payload-type.zip", 12, "wrong-payload-type", "root 1 signed as a bundle manifest payload type")
def _root_type(ctx: Ctx) -> bytes:
    env = _root_env(root_doc(ctx), [GOLDEN_ROOT_KEY], payload_type=BUNDLE_TYPE)
    return repack(ctx.files, **{"meta/roots/1.json": env})


@bad("root-signature-not-base64.zip", 12, "bad-base64", "root 1's signature is not canonical base64")
def _root_b64(ctx: Ctx) -> bytes:
    env = json.loads(ctx.files["meta/roots/1.json"])
    env["signatures"][0]["sig"] = env["signatures"][0]["sig"].rstrip("=")
    return repack(ctx.files, **{"meta/roots/1.json": envelope_bytes(env)})


@bad(
    "wrong-root-key.zip",
    13,
    "root-not-pinned",
    "the golden article bundle, verified against another publisher's root key id",
    root_keyid=OTHER_ROOT_KEY.keyid,
)
def _wrong_root(ctx: Ctx) -> bytes:
    return ctx.golden


@bad("root-signature-flipped.zip", 13, "root-not-pinned", "a bit of root 1's signature flipped")
def _root_sig(ctx: Ctx) -> bytes:
    env = json.loads(ctx.files["meta/roots/1.json"])
    env["signatures"][0]["sig"] = base64.b64encode(flip(base64.b64decode(env["signatures"][0]["sig"]), 10)).decode()
    return repack(ctx.files, **{"meta/roots/1.json": envelope_bytes(env)})


@bad(
    "root-threshold-duplicate-signature.zip",
    13,
    "root-bad-signature",
    "root 1 needs 2 of 2 root keys and carries the same valid signature twice",
)
def _root_dup_sig(ctx: Ctx) -> bytes:
    second = SigningKey.from_seed(seed("golden root 2"))
    doc = root_doc(ctx)
    doc["root_keys"] = sorted(
        [*doc["root_keys"], {"keyid": second.keyid, "public": second.public.b64()}],  # type: ignore[misc]
        key=lambda k: k["keyid"],
    )
    doc["threshold"] = 2
    env = signed_envelope(ROOT_TYPE, compact_json(doc), [GOLDEN_ROOT_KEY])
    env["signatures"] = [env["signatures"][0], dict(env["signatures"][0])]
    assert base64.b64decode(env["signatures"][1]["sig"])
    return repack(ctx.files, **{"meta/roots/1.json": envelope_bytes(env)})


@bad("root-chain-gap.zip", 14, "root-chain-gap", "meta/roots/2.json holds root version 3")
def _gap_chain(ctx: Ctx) -> bytes:
    keydir = ctx.keydir("gap")
    with fixed_key_generation("gap"):
        keydir.rotate_signing(now=T_ROTATE_SIGNING)
        keydir.rotate_signing(now=T_REVOKE)
    return repack(ctx.files, **{"meta/roots/2.json": (keydir.path / "roots" / "3.json").read_bytes()})


def _rotated_root(ctx: Ctx, new_key: SigningKey) -> dict[str, object]:
    doc = root_doc(ctx)
    doc.update(
        version=2,
        created="2026-04-01T00:00:00Z",
        expires="2027-04-01T00:00:00Z",
        root_keys=[{"keyid": new_key.keyid, "public": new_key.public.b64()}],
    )
    return doc


@bad(
    "root-not-signed-by-previous.zip",
    15,
    "root-chain-signature",
    "root 2 replaces the root key and is signed only by its own new key",
)
def _not_by_previous(ctx: Ctx) -> bytes:
    new = SigningKey.from_seed(seed("usurper root"))
    return repack(ctx.files, **{"meta/roots/2.json": _root_env(_rotated_root(ctx, new), [new])})


@bad(
    "root-not-signed-by-itself.zip",
    15,
    "root-chain-signature",
    "root 2 replaces the root key and is signed only by the old root key",
)
def _not_by_itself(ctx: Ctx) -> bytes:
    new = SigningKey.from_seed(seed("unsigned new root"))
    return repack(ctx.files, **{"meta/roots/2.json": _root_env(_rotated_root(ctx, new), [GOLDEN_ROOT_KEY])})


def _forged_root_one(ctx: Ctx, edit: Callable[[dict[str, object]], None]) -> bytes:
    """The article with a genuine root 2 (rotate-signing: it still lists the pinned key) and root 1 edited."""
    keydir = ctx.keydir(f"below{edit.__name__}")
    with fixed_key_generation("below"):
        keydir.rotate_signing(now=T_ROTATE_SIGNING)
    env = json.loads(ctx.files["meta/roots/1.json"])
    edit(env)
    root2 = (keydir.path / "roots" / "2.json").read_bytes()
    return repack(ctx.files, **{"meta/roots/1.json": envelope_bytes(env), "meta/roots/2.json": root2})


def _forge_publisher(env: dict[str, object]) -> None:
    doc = json.loads(base64.b64decode(str(env["payload"])))
    doc["publisher"] = "Ministry of Truth"
    env["payload"] = base64.b64encode(compact_json(doc)).decode()


def _flip_root_signature(env: dict[str, object]) -> None:
    sigs = env["signatures"]
    assert isinstance(sigs, list)
    sigs[0]["sig"] = base64.b64encode(flip(base64.b64decode(sigs[0]["sig"]), 10)).decode()


@bad(
    "forged-root-below-anchor.zip",
    15,
    "root-chain-signature",
    "root 1's publisher forged (its signature no longer verifies); root 2, which also lists the pinned key, anchors",
)
def _forged_below(ctx: Ctx) -> bytes:
    return _forged_root_one(ctx, _forge_publisher)


@bad(
    "root-below-anchor-signature-flipped.zip",
    15,
    "root-chain-signature",
    "a bit of root 1's signature flipped; root 2, which also lists the pinned key, anchors",
)
def _flipped_below(ctx: Ctx) -> bytes:
    return _forged_root_one(ctx, _flip_root_signature)


NEW_ROOT_KEY = SigningKey.from_seed(seed("below-new generated 1"))  # what rotate-root makes under that label


def _rotated_root_two(ctx: Ctx, label: str) -> bytes:
    keydir = ctx.keydir(label)
    with fixed_key_generation("below-new"):
        keydir.rotate_root(now=T_ROTATE_ROOT)
    assert NEW_ROOT_KEY.keyid in keydir.chain().newest.root_keys
    return (keydir.path / "roots" / "2.json").read_bytes()


@bad(
    "root-below-anchor-not-vouched.zip",
    15,
    "root-chain-signature",
    "pinned to root 2's new key: root 1 is another publisher's own self-signed root, root 2 was not signed by its keys",
    root_keyid=NEW_ROOT_KEY.keyid,
)
def _not_vouched_below(ctx: Ctx) -> bytes:
    doc = root_doc(ctx)
    doc["root_keys"] = [{"keyid": OTHER_ROOT_KEY.keyid, "public": OTHER_ROOT_KEY.public.b64()}]
    return repack(
        ctx.files,
        **{
            "meta/roots/1.json": _root_env(doc, [OTHER_ROOT_KEY]),
            "meta/roots/2.json": _rotated_root_two(ctx, "not-vouched"),
        },
    )


@bad(
    "root-below-anchor-gap.zip",
    14,
    "root-chain-gap",
    "pinned to root 2's new key: meta/roots/1.json holds a root version 7 (signed by the old root key)",
    root_keyid=NEW_ROOT_KEY.keyid,
)
def _gap_below(ctx: Ctx) -> bytes:
    doc = {**root_doc(ctx), "version": 7}
    return repack(
        ctx.files,
        **{
            "meta/roots/1.json": _root_env(doc, [GOLDEN_ROOT_KEY]),
            "meta/roots/2.json": _rotated_root_two(ctx, "gap-below"),
        },
    )


# Step 16-17: the manifest envelope and its signature.


@bad("envelope-duplicate-key.zip", 16, "json-duplicate-key", "the manifest envelope has payloadType twice")
def _env_dup(ctx: Ctx) -> bytes:
    data = ctx.files[MANIFEST]
    assert data.startswith(b"{\n")
    dup = b'{\n  "payloadType": "application/vnd.tamizdat.index+json",\n' + data[2:]
    return repack(ctx.files, **{MANIFEST: dup})


@bad("envelope-unknown-field.zip", 16, "bad-envelope", "the manifest envelope has an extra field")
def _env_unknown(ctx: Ctx) -> bytes:
    env = {**json.loads(ctx.files[MANIFEST]), "signed_at": "2026-02-01T12:00:00Z"}
    return repack(ctx.files, **{MANIFEST: envelope_bytes(env)})


@bad("manifest-wrong-payload-type.zip", 16, "wrong-payload-type", "the manifest signed as a root document")
def _manifest_type(ctx: Ctx) -> bytes:
    payload = base64.b64decode(json.loads(ctx.files[MANIFEST])["payload"])
    env = signed_envelope(ROOT_TYPE, payload, [GOLDEN_SIGNING_KEY])
    return repack(ctx.files, **{MANIFEST: envelope_bytes(env)})


@bad("signature-flipped.zip", 17, "manifest-bad-signature", "a bit of the manifest signature flipped")
def _sig_flip(ctx: Ctx) -> bytes:
    env = json.loads(ctx.files[MANIFEST])
    env["signatures"][0]["sig"] = base64.b64encode(flip(base64.b64decode(env["signatures"][0]["sig"]), 31)).decode()
    return repack(ctx.files, **{MANIFEST: envelope_bytes(env)})


@bad("manifest-payload-flipped.zip", 17, "manifest-bad-signature", "a bit of the signed manifest payload flipped")
def _payload_flip(ctx: Ctx) -> bytes:
    env = json.loads(ctx.files[MANIFEST])
    payload = base64.b64decode(env["payload"])
    env["payload"] = base64.b64encode(flip(payload, payload.index(b"Court hears") + 1, 0x20)).decode()
    return repack(ctx.files, **{MANIFEST: envelope_bytes(env)})


@bad("manifest-signed-by-root-key.zip", 17, "manifest-bad-signature", "the manifest signed by the root key itself")
def _by_root(ctx: Ctx) -> bytes:
    payload = base64.b64decode(json.loads(ctx.files[MANIFEST])["payload"])
    return with_manifest(ctx, payload, signers=[GOLDEN_ROOT_KEY])


# Step 18: the payload.


@bad("manifest-unknown-field.zip", 18, "bad-manifest", "the manifest (re-signed) has an unknown field")
def _manifest_unknown(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(expires="2027-01-01T00:00:00Z"))


@bad(
    "manifest-duplicate-key.zip",
    18,
    "json-duplicate-key",
    "the manifest (re-signed) names publisher twice with different values",
)
def _manifest_dup(ctx: Ctx) -> bytes:
    payload = base64.b64decode(json.loads(ctx.files[MANIFEST])["payload"])
    assert payload.startswith(b"{")
    return with_manifest(ctx, b'{"publisher":"Someone Else",' + payload[1:])


@bad("manifest-float.zip", 18, "json-bad-number", "the manifest (re-signed) has format 1.0")
def _manifest_float(ctx: Ctx) -> bytes:
    payload = base64.b64decode(json.loads(ctx.files[MANIFEST])["payload"])
    assert b'"format":1,' in payload
    return with_manifest(ctx, payload.replace(b'"format":1,', b'"format":1.0,'))


@bad("manifest-bad-time.zip", 18, "bad-time", "the manifest (re-signed) has created with a +00:00 offset")
def _manifest_time(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(created="2026-02-01T12:00:00+00:00"))


# Step 19: the signing key's authority.


@bad("key-revoked.zip", 19, "key-revoked", "carries root 2, which revokes the key that signed the manifest")
def _revoked(ctx: Ctx) -> bytes:
    keydir = ctx.keydir("revoked")
    keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=T_REVOKE)
    return repack(ctx.files, **{"meta/roots/2.json": (keydir.path / "roots" / "2.json").read_bytes()})


@bad("key-outside-window-before.zip", 19, "key-outside-window", "created (re-signed) a day before the key's window")
def _before(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(created="2025-12-31T00:00:00Z"))


@bad("key-outside-window-after.zip", 19, "key-outside-window", "created (re-signed) a day after the key's window")
def _after(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(created="2028-01-02T00:00:00Z"))


@bad("key-purpose.zip", 19, "key-purpose", "signed by a new key that root 2 delegates for index only")
def _purpose(ctx: Ctx) -> bytes:
    keydir = ctx.keydir("purpose")
    with fixed_key_generation("purpose"):
        _, index_key = keydir.rotate_signing(now=T_ROTATE_SIGNING, purposes=("index",))
    root2 = (keydir.path / "roots" / "2.json").read_bytes()
    doc = manifest_doc(ctx)
    doc["created"] = "2026-03-02T00:00:00Z"
    return with_manifest(ctx, compact_json(doc), signers=[index_key], extra={"meta/roots/2.json": root2})


# Step 20: the publisher.


@bad("manifest-other-publisher.zip", 20, "manifest-root-mismatch", "the manifest (re-signed) names another publisher")
def _publisher(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(publisher="Another Newsroom"))


@bad(
    "manifest-foreign-root-keyid.zip",
    20,
    "manifest-root-mismatch",
    "the manifest (re-signed) names another publisher's root key id",
)
def _foreign_root(ctx: Ctx) -> bytes:
    return resigned_manifest(ctx, lambda d: d.update(root_keyid=OTHER_ROOT_KEY.keyid))


# Steps 21-22: the files.


@bad("entry-not-in-manifest.zip", 21, "entry-not-in-manifest", "an extra articles/2.html not listed in the manifest")
def _unlisted(ctx: Ctx) -> bytes:
    return repack(ctx.files, **{"articles/2.html": b"<!doctype html><p>injected</p>\n"})


@bad("entry-missing.zip", 21, "entry-missing", "the listed articles/1.json deleted (central directory consistent)")
def _missing(ctx: Ctx) -> bytes:
    return repack(ctx.files, **{"articles/1.json": None})


@bad("article-byte-flipped.zip", 22, "entry-corrupt", "a byte of articles/1.html's deflate stream flipped")
def _article_flip(ctx: Ctx) -> bytes:
    e = ctx.entries[find(ctx.entries, "articles/1.html")]
    return write_zip(with_entry(ctx.entries, "articles/1.html", data=flip(e.data, len(e.data) // 2, 0x10)))


@bad(
    "article-changed.zip",
    22,
    "entry-hash-mismatch",
    "one character of articles/1.html changed, size kept and CRC recomputed",
)
def _article_changed(ctx: Ctx) -> bytes:
    html = ctx.files["articles/1.html"]
    changed = html.replace(b"single", b"simple", 1)
    assert changed != html and len(changed) == len(html)
    return repack(ctx.files, **{"articles/1.html": changed})


@bad(
    "article-deflate-trailing-garbage.zip",
    22,
    "entry-corrupt",
    "articles/1.html has 4 bytes after the end of its deflate stream (sizes and CRC consistent)",
)
def _trailing_deflate(ctx: Ctx) -> bytes:
    e = ctx.entries[find(ctx.entries, "articles/1.html")]
    data = e.data + b"junk"
    return write_zip(with_entry(ctx.entries, "articles/1.html", data=data, csize=len(data)))


@bad("entry-size-mismatch.zip", 22, "entry-size-mismatch", "articles/1.html one byte longer (CRC recomputed)")
def _size(ctx: Ctx) -> bytes:
    return repack(ctx.files, **{"articles/1.html": ctx.files["articles/1.html"] + b"\n"})


@bad("image-byte-flipped.zip", 22, "entry-corrupt", "a byte of the stored PNG flipped (CRC no longer matches)")
def _image_flip(ctx: Ctx) -> bytes:
    png = ctx.name("media/")
    e = ctx.entries[find(ctx.entries, png)]
    return write_zip(with_entry(ctx.entries, png, data=flip(e.data, len(e.data) // 2)))


def build_bad(golden: Path, work: Path, out: Path) -> dict[str, dict[str, str]]:
    """Write every bad bundle and bad/expected.json; return the table."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(golden.read_bytes(), work)
    table: dict[str, dict[str, str]] = {}
    for name in sorted(BAD):
        spec = BAD[name]
        (out / name).write_bytes(spec.make(ctx))
        row = {"step": spec.step, "code": spec.code, "hazard": spec.hazard}
        if spec.root_keyid:
            row["root_keyid"] = spec.root_keyid
        table[name] = row
    (out / "expected.json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return table


def generate(assets: Path = ASSETS) -> None:
    """Write every fixture under ``assets`` (stale bundles there are removed)."""
    for folder in (assets / "golden", assets / "bad"):
        for stale in folder.glob("*.zip"):
            stale.unlink()
    with tempfile.TemporaryDirectory(prefix="tamizdat-assets-") as tmp:
        work = Path(tmp)
        build_goldens(work / "golden", assets / "golden")
        build_bad(assets / "golden" / "article-en.zip", work / "bad", assets / "bad")


def main(argv: list[str]) -> None:
    """``make_assets.py [ASSETS_DIR]``: rewrite tests/assets (or write a copy elsewhere)."""
    assets = Path(argv[0]) if argv else ASSETS
    for folder in ("golden", "bad"):
        (assets / folder).mkdir(parents=True, exist_ok=True)
    generate(assets)
    print(f"wrote {len(list((assets / 'golden').glob('*.zip')))} golden and {len(BAD)} bad bundles under {assets}")


if __name__ == "__main__":
    main(sys.argv[1:])
