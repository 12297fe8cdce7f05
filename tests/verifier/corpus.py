"""Bundles for the differential tests: deterministic valid bundles and seeded mutations.

Nothing here uses either verifier: the ZIP reader and writer below are written
from docs/format.md ("ZIP form"), and signatures are made with keys from fixed
seeds, so re-signed mutations reach the later steps (schema, key windows,
file lists) instead of stopping at a signature check.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from PIL import Image, ImageDraw

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import parse_bundle_input
from tamizdat.errors import RejectedError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir

UTC = dt.UTC
ROOT_SEED = bytes([1]) * 32
SIGNING_SEED = bytes([2]) * 32
BUNDLE_TYPE = "application/vnd.tamizdat.bundle+json"
ROOT_TYPE = "application/vnd.tamizdat.root+json"
MANIFEST = b"meta/manifest.dsse.json"
MEDIA = (b".jpg", b".png", b".webp")

CEN = struct.Struct("<4s6H3L5H2L")
LOC = struct.Struct("<4s5H3L2H")
EOCD = struct.Struct("<4s4H2LH")
CEN_FIELDS = (
    "made",
    "needed",
    "flags",
    "method",
    "mtime",
    "mdate",
    "crc",
    "csize",
    "usize",
    "nlen",
    "xlen",
    "clen",
    "disk",
    "iattr",
    "eattr",
    "offset",
)
LOC_FIELDS = ("needed", "flags", "method", "mtime", "mdate", "crc", "csize", "usize", "nlen", "xlen")
EOCD_FIELDS = ("disk", "cd_disk", "n_disk", "n_total", "cd_size", "cd_offset", "clen")


def python_verdict(path: Path, root_keyid: str) -> tuple[str, int | None, str | None]:
    """The Python verifier's verdict: ("valid", None, None) or ("invalid", step, code)."""
    from tamizdat.bundles.verify import verify_bundle

    try:
        verify_bundle(path, root_keyid=root_keyid)
    except RejectedError as exc:
        return ("invalid", int(exc.step) if exc.step else None, exc.code)
    return ("valid", None, None)


# -- a small ZIP reader and writer -------------------------------------------------------------


@dataclass
class ZEntry:
    name: bytes
    data: bytes  # as stored (compressed for method 8)
    method: int
    crc: int
    usize: int
    cen_at: int = 0  # offsets in the archive it was read from
    loc_at: int = 0

    @property
    def content(self) -> bytes:
        return self.data if self.method == 0 else zlib.decompress(self.data, -15)


def read_zip(data: bytes) -> list[ZEntry]:
    """Entries of a well-formed archive (central directory order)."""
    _, _, _, _, n, _, cd_off, _ = EOCD.unpack_from(data, len(data) - EOCD.size)
    out, pos = [], cd_off
    for _ in range(n):
        f = dict(zip(CEN_FIELDS, CEN.unpack_from(data, pos)[1:], strict=True))
        name = data[pos + CEN.size : pos + CEN.size + f["nlen"]]
        start = f["offset"] + LOC.size + f["nlen"]
        out.append(ZEntry(name, data[start : start + f["csize"]], f["method"], f["crc"], f["usize"], pos, f["offset"]))
        pos += CEN.size + f["nlen"] + f["xlen"] + f["clen"]
    return out


def deflate(content: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(content) + c.flush()


def zentry(name: bytes, content: bytes) -> ZEntry:
    method = 0 if name.endswith(MEDIA) else 8
    return ZEntry(name, content if method == 0 else deflate(content), method, zlib.crc32(content), len(content))


def write_zip(entries: list[ZEntry]) -> bytes:
    """The canonical layout of ``entries`` in the order given."""
    out, cd = bytearray(), bytearray()
    for e in entries:
        offset = len(out)
        out += LOC.pack(b"PK\x03\x04", 20, 0, e.method, 0, 0x21, e.crc, len(e.data), e.usize, len(e.name), 0)
        out += e.name + e.data
        cd += (
            CEN.pack(
                b"PK\x01\x02",
                0x0314,
                20,
                0,
                e.method,
                0,
                0x21,
                e.crc,
                len(e.data),
                e.usize,
                len(e.name),
                0,
                0,
                0,
                0,
                0x81A40000,
                offset,
            )
            + e.name
        )
    end = EOCD.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(cd), len(out), 0)
    return bytes(out + cd + end)


def repack(data: bytes, files: dict[bytes, bytes]) -> bytes:
    """``files`` (name -> content) written canonically, sorted by name."""
    del data
    return write_zip([zentry(name, files[name]) for name in sorted(files)])


def files_of(data: bytes) -> dict[bytes, bytes]:
    return {e.name: e.content for e in read_zip(data)}


# -- signing ---------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def envelope(payload_type: str, payload: bytes, signers: list[SigningKey]) -> bytes:
    doc = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [
            {"keyid": k.keyid, "sig": base64.b64encode(k.sign(pae(payload_type, payload))).decode()}
            for k in sorted(signers, key=lambda k: k.keyid)
        ],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


# -- valid base bundles ----------------------------------------------------------------------


@dataclass
class Base:
    """A valid bundle and what a mutation needs to re-sign its parts."""

    name: str
    path: Path
    root_keyid: str
    signer: SigningKey  # signs the manifest
    root_signers: dict[int, list[SigningKey]]  # version -> keys that signed that root
    own_root_keys: dict[int, list[SigningKey]]  # version -> that version's own root keys

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def _image(path: Path, seed: int) -> Path:
    rnd = random.Random(seed)
    im = Image.new("RGB", (160, 90), (240, 236, 226))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = rnd.randrange(150), rnd.randrange(80)
        d.ellipse((x, y, x + 10, y + 10), fill=(rnd.randrange(256), 60, 60))
    im.save(path, "PNG")
    return path


def _article(n: int, lang: str, title: str, image: str | None = None, **extra: Any) -> dict[str, Any]:
    doc = {
        "id": f"story-{n}",
        "lang": lang,
        "title": title,
        "summary": f"Summary {n}: what the documents show.",
        "byline": "Anna Petrova",
        "published": "2026-11-20T08:00:00Z",
        "body": f"Paragraph one of story {n}, with a [link](https://example.org/{n}).\n\n"
        "**Bold** and *emphasis*; a list:\n\n- one\n- two\n\n> a quotation",
        "sections": [{"heading": "What comes next", "body": "More text, still only text."}],
        **extra,
    }
    if image:
        doc["images"] = [{"path": image, "caption": "A sketch.", "alt": "Dots on a field.", "credit": "Desk"}]
    return doc


NOTICE_RU = {
    "id": "undesirable",
    "regions": ["BY", "RU"],
    "text": {
        "en": "Sharing this publication can be punished in Russia and Belarus. Reading is not sharing.",
        "ru": "Распространение этого издания может преследоваться в России и Беларуси. Чтение не распространение.",
    },
}
NOTICE_ALL = {"id": "general", "regions": ["*"], "text": {"fa": "این یک هشدار عمومی است.", "en": "A general notice."}}


@contextmanager
def fixed_generation(label: str) -> Iterator[None]:
    counter = iter(range(1, 1000))

    def generate(cls: type[SigningKey]) -> SigningKey:
        return cls.from_seed(hashlib.sha256(f"{label} {next(counter)}".encode()).digest())

    with mock.patch.object(SigningKey, "generate", classmethod(generate)):
        yield


def build_bases(folder: Path) -> list[Base]:
    """Three valid bundles: one article, a multilingual edition, and a rotated chain with revocation."""
    folder.mkdir(parents=True, exist_ok=True)
    _image(folder / "a.png", 1)
    _image(folder / "b.png", 2)
    t0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
    keys = KeyDir(folder / "keys-a")
    keys.init("Example Newsroom", seeds=[ROOT_SEED, SIGNING_SEED], now=t0)
    signer = SigningKey.from_seed(SIGNING_SEED)
    root_key = SigningKey.from_seed(ROOT_SEED)
    bases = []

    def build(
        name: str,
        doc: dict[str, Any],
        keydir: KeyDir,
        by: SigningKey,
        roots: dict[int, list[SigningKey]],
        own: dict[int, list[SigningKey]],
    ) -> None:
        src = folder / f"{name}.json"
        src.write_text(json.dumps(doc, ensure_ascii=False))
        inp = parse_bundle_input(src.read_bytes(), base=folder)
        out = folder / f"{name}.zip"
        build_bundle(inp, signer=by, chain=keydir.chain(), out=out, durable=False)
        bases.append(Base(name, out, keydir.root_keyid(), by, roots, own))

    build(
        "article",
        {"articles": [_article(1, "en", "Plant discharged waste", "a.png")], "notices": [NOTICE_RU]},
        keys,
        signer,
        {1: [root_key]},
        {1: [root_key]},
    )
    edition = {
        "kind": "edition",
        "title": "Weekly edition",
        "articles": [
            _article(2, "en", "Court hears the case", "b.png", notices=["undesirable"]),
            _article(3, "ru", "Суд рассматривает дело", notices=["undesirable"]),
            _article(4, "fa", "دادگاه پرونده را بررسی می‌کند", notices=["general"]),
        ],
        "notices": [NOTICE_RU, NOTICE_ALL],
    }
    build("edition", edition, keys, signer, {1: [root_key]}, {1: [root_key]})

    # A rotated chain: new signing key, the first one revoked, then a new root key.
    rot = KeyDir(folder / "keys-b")
    seeds_b = [hashlib.sha256(b"b root").digest(), hashlib.sha256(b"b signing").digest()]
    rot.init("Other Newsroom", seeds=seeds_b, now=t0)
    root_b = SigningKey.from_seed(seeds_b[0])
    with fixed_generation("rotated"):
        _, new_signer = rot.rotate_signing(now=dt.datetime(2026, 3, 1, tzinfo=UTC))
        first = SigningKey.from_seed(seeds_b[1])
        rot.revoke(first.keyid, "key leaked", now=dt.datetime(2026, 3, 15, tzinfo=UTC))
        rot.rotate_root(now=dt.datetime(2026, 4, 1, tzinfo=UTC))
    new_root = SigningKey.load(next((rot.private_dir).glob("*.pem")))
    doc = {
        "articles": [_article(5, "uk", "Суд розглядає справу", published="2026-04-10T08:00:00Z")],
        "created": "2026-04-15T08:30:00Z",
    }
    build(
        "rotated",
        doc,
        rot,
        new_signer,
        {1: [root_b], 2: [root_b], 3: [root_b], 4: [root_b, new_root]},
        {1: [root_b], 2: [root_b], 3: [root_b], 4: [new_root]},
    )
    return bases


# -- mutations -------------------------------------------------------------------------------


@dataclass
class Mutation:
    name: str
    data: bytes
    resigned: bool  # signed again with the publisher's keys: "valid" is a legitimate outcome


def _struct_regions(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of headers, names, the central directory and the end record."""
    regions = [(len(data) - EOCD.size, len(data))]
    _, _, _, _, _, cd_size, cd_off, _ = EOCD.unpack_from(data, len(data) - EOCD.size)
    regions.append((cd_off, cd_off + cd_size))
    for e in read_zip(data):
        regions.append((e.loc_at, e.loc_at + LOC.size + len(e.name)))
    return regions


INTERESTING = (0, 1, 2, 7, 8, 12, 20, 0x21, 0x314, 0x7FFF, 0xFFFF, 0x10000, 0x81A40000, 0xA1FF0000, 0xFFFFFFFF)


def _field_value(rnd: random.Random, old: int, width: int) -> int:
    choice = rnd.random()
    if choice < 0.4:
        value = rnd.choice(INTERESTING)
    elif choice < 0.7:
        value = old + rnd.choice((-2, -1, 1, 2, 30, -30))
    else:
        value = rnd.randrange(1 << (8 * width))
    return value % (1 << (8 * width))


def _patch_field(
    data: bytes, at: int, layout: struct.Struct, fields: tuple[str, ...], field: str, rnd: random.Random
) -> bytes:
    codes = [c for n, c in re.findall(r"(\d*)([HLs])", layout.format) for _ in range(1 if c == "s" else int(n or 1))]
    codes = codes[1:]  # the signature
    k = fields.index(field)
    pos = at + 4 + struct.calcsize("<" + "".join(codes[:k]))
    width = struct.calcsize("<" + codes[k])
    old = int.from_bytes(data[pos : pos + width], "little")
    new = _field_value(rnd, old, width)
    if new == old:
        new = (old + 1) % (1 << (8 * width))
    b = bytearray(data)
    b[pos : pos + width] = new.to_bytes(width, "little")
    return bytes(b)


# JSON-level edits for signed payloads (applied before signing again).
def _containers(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(doc, (dict, list)):
        yield path, doc
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for k, v in items:
            yield from _containers(v, (*path, k))


ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    2**53,
    "",
    "x",
    "\x00",
    [],
    {},
    ["bundle"],
    "2026-13-01T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-01-01T00:00:00",
    "2030-01-01T00:00:00Z",
    "1990-01-01T00:00:00Z",
    "a" * 300,
    "0" * 64,
    "Index.html",
    "articles/9.html",
    "media/x.png",
    "meta/x.json",
    "edition",
    "article",
    "*",
    "ZZ",
    "en",
    "EN",
    1.5,
)


def mutate_json(doc: Any, rnd: random.Random) -> tuple[str, Any]:
    """One structural edit of a JSON document; returns (label, new document)."""
    doc = copy.deepcopy(doc)
    path, box = rnd.choice(list(_containers(doc)))
    op = rnd.choice(("drop", "add", "set", "set", "set", "dup-item"))
    keys = list(box.keys()) if isinstance(box, dict) else list(range(len(box)))
    if op == "drop" and keys:
        del box[rnd.choice(keys)]
    elif op == "add":
        if isinstance(box, dict):
            box[rnd.choice(("extra", "format", "z", "Title"))] = rnd.choice(ODD_VALUES)
        else:
            box.append(copy.deepcopy(rnd.choice(box)) if box and rnd.random() < 0.5 else rnd.choice(ODD_VALUES))
    elif op == "dup-item" and isinstance(box, list) and box:
        box.insert(rnd.randrange(len(box) + 1), copy.deepcopy(rnd.choice(box)))
    elif keys:
        box[rnd.choice(keys)] = copy.deepcopy(rnd.choice(ODD_VALUES))
    else:
        op = "noop"
    return f"{op}@{'/'.join(map(str, path))}", doc


def mutate_text(text: bytes, rnd: random.Random) -> tuple[str, bytes]:
    """A text-level edit of JSON bytes (may break its syntax, encoding or types)."""
    b = bytearray(text)
    op = rnd.choice(("flip", "insert", "delete", "dup-key", "float", "bom", "bigint"))
    i = rnd.randrange(len(b))
    if op == "flip":
        b[i] ^= rnd.choice((1, 2, 4, 8, 0x20, 0x40, 0x80))
    elif op == "insert":
        b[i:i] = rnd.choice((b" ", b",", b'"', b"{", b"]", b"\xff", b"\\u0000", b"\\ud800", b"1", b"\t", b"NaN"))
    elif op == "delete":
        del b[i : i + rnd.randint(1, 3)]
    elif op == "dup-key":
        j = text.find(b'"', rnd.randrange(len(text)))
        k = text.find(b'":', j)
        if j >= 0 and k > j:
            key = text[j : k + 2]
            end = text.find(b",", k)
            if end > k:
                b = bytearray(text[: end + 1] + key + b"1," + text[end + 1 :])
    elif op == "float":
        j = text.find(b":", i)
        if j >= 0:
            b[j + 1 : j + 1] = rnd.choice((b'1.0,"f":', b'1e3,"f":', b'-0.5,"f":'))
    elif op == "bom":
        b[0:0] = b"\xef\xbb\xbf"
    elif op == "bigint":
        j = text.find(b":", i)
        if j >= 0:
            b[j + 1 : j + 1] = rnd.choice(
                (b'9007199254740992,"f":', b'-9007199254740992,"f":', b'9007199254740991,"f":')
            )
    return op, bytes(b)


def _resign_manifest(base: Base, files: dict[bytes, bytes], payload: bytes) -> bytes:
    files = dict(files)
    files[MANIFEST] = envelope(BUNDLE_TYPE, payload, [base.signer])
    return repack(b"", files)


def _root_doc(files: dict[bytes, bytes], version: int) -> tuple[bytes, dict[str, Any]]:
    env = json.loads(files[b"meta/roots/%d.json" % version])
    return base64.b64decode(env["payload"]), env


def mutations(base: Base, rnd: random.Random, count: int) -> Iterator[Mutation]:
    """``count`` seeded mutations of ``base`` (bytes, headers, entries, signed documents)."""
    data = base.data
    files = files_of(data)
    env = json.loads(files[MANIFEST])
    payload = base64.b64decode(env["payload"])
    manifest = json.loads(payload)
    entries = read_zip(data)
    regions = _struct_regions(data)
    versions = sorted(int(n.rsplit(b"/", 1)[1].split(b".")[0]) for n in files if n.startswith(b"meta/roots/"))

    def flip_any() -> tuple[str, bytes, bool]:
        i = rnd.randrange(len(data))
        b = bytearray(data)
        b[i] ^= rnd.randint(1, 255)
        return f"flip@{i}", bytes(b), False

    def flip_struct() -> tuple[str, bytes, bool]:
        lo, hi = rnd.choice(regions)
        i = rnd.randrange(lo, hi)
        b = bytearray(data)
        b[i] ^= 1 << rnd.randrange(8)
        return f"flip-struct@{i}", bytes(b), False

    def truncate() -> tuple[str, bytes, bool]:
        n = rnd.choice((rnd.randrange(len(data)), len(data) - rnd.randint(1, 40), rnd.randint(0, 30)))
        return f"truncate@{n}", data[:n], False

    def extend() -> tuple[str, bytes, bool]:
        junk = rnd.randbytes(rnd.randint(1, 64))
        if rnd.random() < 0.3:
            junk = b"PK\x05\x06" + junk
        return (
            ("append" if rnd.random() < 0.6 else "prepend"),
            (data + junk if rnd.random() < 0.6 else junk + data),
            False,
        )

    def field() -> tuple[str, bytes, bool]:
        e = rnd.choice(entries)
        if rnd.random() < 0.5:
            f = rnd.choice(CEN_FIELDS)
            return f"cen-{f}:{e.name.decode()}", _patch_field(data, e.cen_at, CEN, CEN_FIELDS, f, rnd), False
        f = rnd.choice(LOC_FIELDS)
        return f"loc-{f}:{e.name.decode()}", _patch_field(data, e.loc_at, LOC, LOC_FIELDS, f, rnd), False

    def eocd() -> tuple[str, bytes, bool]:
        f = rnd.choice(EOCD_FIELDS)
        return f"eocd-{f}", _patch_field(data, len(data) - EOCD.size, EOCD, EOCD_FIELDS, f, rnd), False

    def content() -> tuple[str, bytes, bool]:
        name = rnd.choice(sorted(files))
        c = bytearray(files[name])
        op = rnd.choice(("flip", "append", "cut", "empty"))
        if op == "flip" and c:
            c[rnd.randrange(len(c))] ^= 1 << rnd.randrange(8)
        elif op == "append":
            c += b" "
        elif op == "cut" and c:
            del c[-1]
        else:
            c = bytearray()
        return f"content-{op}:{name.decode()}", repack(data, {**files, name: bytes(c)}), False

    def entries_edit() -> tuple[str, bytes, bool]:
        op = rnd.choice(("remove", "add", "rename", "reorder", "dup", "oversize-name"))
        names = sorted(files)
        if op == "remove":
            name = rnd.choice(names)
            return f"remove:{name.decode()}", repack(data, {k: v for k, v in files.items() if k != name}), False
        if op == "add":
            name = rnd.choice(
                (
                    b"extra.html",
                    b"meta/extra.json",
                    b"meta/roots/9.json",
                    b"meta/roots/0.json",
                    b"Index.html",
                    b"media/0123456789abcdef.png",
                    b"articles/../x.html",
                    b"a//b.html",
                    b"articles/1.html/",
                    b"z.txt",
                    b"meta/roots/1.json.bak",
                    b"\xe9.html",
                )
            )
            if name in files:
                name = b"x" + name
            return f"add:{name!r}", repack(data, {**files, name: b"<p>added</p>"}), False
        if op == "rename":
            old = rnd.choice(names)
            new = rnd.choice((old.upper(), old + b"x", old.replace(b"/", b"/_", 1), b"zz/" + old))
            moved = {(new if k == old else k): v for k, v in files.items()}
            return f"rename:{old.decode()}", repack(data, moved), False
        zs = [zentry(n, files[n]) for n in names]
        if op == "reorder":
            i = rnd.randrange(len(zs) - 1)
            zs[i], zs[i + 1] = zs[i + 1], zs[i]
            return f"reorder@{i}", write_zip(zs), False
        if op == "dup":
            i = rnd.randrange(len(zs))
            zs.insert(i, zs[i])
            return f"dup@{i}", write_zip(zs), False
        zs.append(zentry(b"z" * 256 + b".html", b"x"))
        return "long-name", write_zip(zs), False

    def manifest_resigned() -> tuple[str, bytes, bool]:
        if rnd.random() < 0.6:
            label, doc = mutate_json(manifest, rnd)
            new = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        else:
            label, new = mutate_text(payload, rnd)
        return f"manifest-{label}", _resign_manifest(base, files, new), True

    def manifest_consistent() -> tuple[str, bytes, bool]:
        # A signed change that keeps the manifest consistent with the files:
        # publisher, times, notices, supersedes, order; validity is legitimate here.
        doc = copy.deepcopy(manifest)
        op = rnd.choice(
            (
                "created-early",
                "created-late",
                "publisher",
                "root_keyid",
                "supersedes",
                "notice-region",
                "article-updated",
                "kind",
            )
        )
        if op == "created-early":
            doc["created"] = "2025-12-31T23:59:59Z"
        elif op == "created-late":
            doc["created"] = rnd.choice(("2028-01-02T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-20T00:00:00Z"))
        elif op == "publisher":
            doc["publisher"] = rnd.choice(("Example Newsroom ", "Other Newsroom", "Example Newsroom"))
        elif op == "root_keyid":
            doc["root_keyid"] = rnd.choice(("0" * 64, hashlib.sha256(b"x").hexdigest(), base.root_keyid))
        elif op == "supersedes":
            doc["supersedes"] = [hashlib.sha256(b"old").hexdigest()] * rnd.randint(1, 2)
        elif op == "notice-region" and doc["notices"]:
            doc["notices"][0]["regions"] = rnd.choice((["RU", "BY"], ["*"], ["ru"], ["BY", "BY"], []))
        elif op == "article-updated":
            doc["articles"][0]["updated"] = rnd.choice(("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"))
        else:
            doc["kind"] = "edition" if doc["kind"] == "article" else "article"
        new = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return f"manifest-{op}", _resign_manifest(base, files, new), True

    def envelope_edit() -> tuple[str, bytes, bool]:
        e = copy.deepcopy(env)
        op = rnd.choice(("type", "extra", "keyid", "sig-b64", "sig-short", "no-sigs", "text", "payload-b64", "many"))
        if op == "type":
            e["payloadType"] = rnd.choice((ROOT_TYPE, "application/json", 1, None))
        elif op == "extra":
            e["x"] = 1
        elif op == "keyid":
            e["signatures"][0]["keyid"] = rnd.choice(("A" * 64, "0" * 64, "", 5))
        elif op == "sig-b64":
            e["signatures"][0]["sig"] = e["signatures"][0]["sig"].rstrip("=") + rnd.choice(("", "=", "==="))
        elif op == "sig-short":
            e["signatures"][0]["sig"] = base64.b64encode(b"\x00" * rnd.choice((0, 32, 63))).decode()
        elif op == "no-sigs":
            e["signatures"] = rnd.choice(([], {}, "x"))
        elif op == "payload-b64":
            e["payload"] = e["payload"][:-2] + rnd.choice(("==", "A=", "\n="))
        elif op == "many":
            e["signatures"] = e["signatures"] * rnd.choice((2, 17))
        else:
            _, text = mutate_text(files[MANIFEST], rnd)
            return "envelope-text", repack(data, {**files, MANIFEST: text}), False
        return f"envelope-{op}", repack(data, {**files, MANIFEST: json.dumps(e).encode()}), False

    def root_edit() -> tuple[str, bytes, bool]:
        v = rnd.choice(versions)
        root_payload, renv = _root_doc(files, v)
        if rnd.random() < 0.6:
            label, doc = mutate_json(json.loads(root_payload), rnd)
            new = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        else:
            label, new = mutate_text(root_payload, rnd)
        signed = rnd.random() < 0.7
        if signed:
            text = envelope(ROOT_TYPE, new, base.root_signers[v])
        else:
            renv["payload"] = base64.b64encode(new).decode()
            text = json.dumps(renv).encode()
        name = b"meta/roots/%d.json" % v
        return f"root{v}-{'signed-' if signed else ''}{label}", repack(data, {**files, name: text}), signed

    def roots_edit() -> tuple[str, bytes, bool]:
        op = rnd.choice(("drop-last", "drop-first", "swap", "copy"))
        roots = {n: c for n, c in files.items() if n.startswith(b"meta/roots/")}
        rest = {n: c for n, c in files.items() if not n.startswith(b"meta/roots/")}
        ordered = [roots[b"meta/roots/%d.json" % v] for v in versions]
        if op == "drop-last" and len(ordered) > 1:
            ordered = ordered[:-1]
        elif op == "drop-first" and len(ordered) > 1:
            ordered = ordered[1:]
        elif op == "swap" and len(ordered) > 1:
            ordered[0], ordered[1] = ordered[1], ordered[0]
        else:
            ordered.append(ordered[-1])
        rest.update({b"meta/roots/%d.json" % (i + 1): c for i, c in enumerate(ordered)})
        return f"roots-{op}", repack(data, rest), False

    def root_semantic() -> tuple[str, bytes, bool]:
        # A root that still parses, changed in meaning, then unsigned, re-signed, or signed by the wrong keys.
        v = rnd.choice(versions)
        root_payload, renv = _root_doc(files, v)
        doc = json.loads(root_payload)
        op = rnd.choice(("publisher", "expires", "revoke-signer", "purpose", "window", "threshold", "drop-signer"))
        mine = [k for k in doc["signing_keys"] if k["keyid"] == base.signer.keyid]
        if op == "publisher":
            doc["publisher"] = "Someone Else"
        elif op == "expires":
            doc["expires"] = "2099-01-01T00:00:00Z"
        elif op == "revoke-signer":
            doc["revoked"] = sorted(
                [*doc["revoked"], {"keyid": base.signer.keyid, "reason": "test", "revoked_at": "2026-06-01T00:00:00Z"}],
                key=lambda r: r["keyid"],
            )
        elif op == "purpose" and mine:
            mine[0]["purposes"] = ["index"]
        elif op == "window" and mine:
            mine[0]["not_after"] = rnd.choice(("2026-01-02T00:00:00Z", "2026-04-15T08:29:59Z", "2026-11-21T12:29:59Z"))
        elif op == "threshold":
            doc["threshold"] = 2
        else:
            doc["signing_keys"] = [k for k in doc["signing_keys"] if k["keyid"] != base.signer.keyid]
        new = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        how = rnd.choice(("unsigned", "signed", "signed", "intruder", "own-only"))
        if how == "unsigned":
            renv["payload"] = base64.b64encode(new).decode()
            text = json.dumps(renv).encode()
        else:
            keys = {"signed": base.root_signers[v], "own-only": base.own_root_keys[v]}.get(
                how, [SigningKey.from_seed(hashlib.sha256(b"intruder").digest())]
            )
            text = envelope(ROOT_TYPE, new, keys)
        name = b"meta/roots/%d.json" % v
        return f"root{v}-{op}-{how}", repack(data, {**files, name: text}), how == "signed"

    def size_bomb() -> tuple[str, bytes, bool]:
        e = rnd.choice(entries)
        size = rnd.choice((32 * 1024 * 1024 + 1, 256 * 1024 * 1024, 100 * max(len(e.data), 1) + 1, 0xFFFFFFFE))
        b = bytearray(data)
        struct.pack_into("<L", b, e.cen_at + 24, size)
        struct.pack_into("<L", b, e.loc_at + 22, size)
        if rnd.random() < 0.3:  # stored: keep both sizes equal
            struct.pack_into("<L", b, e.cen_at + 20, size)
            struct.pack_into("<L", b, e.loc_at + 18, size)
        return f"size-bomb:{e.name.decode()}", bytes(b), False

    kinds: list[tuple[Callable[[], tuple[str, bytes, bool]], int]] = [
        (flip_any, 14),
        (flip_struct, 12),
        (truncate, 5),
        (extend, 4),
        (field, 12),
        (eocd, 4),
        (content, 8),
        (entries_edit, 8),
        (manifest_resigned, 12),
        (manifest_consistent, 5),
        (envelope_edit, 6),
        (root_edit, 8),
        (roots_edit, 2),
        (root_semantic, 8),
        (size_bomb, 3),
    ]
    funcs = [f for f, _ in kinds]
    weights = [w for _, w in kinds]
    for i in range(count):
        label, out, resigned = rnd.choices(funcs, weights)[0]()
        yield Mutation(f"{base.name}-{i:03d}-{label}", out, resigned)


def resign_with(base: Base, changes: dict[bytes, bytes]) -> bytes:
    """``base`` with files replaced and the manifest's list updated and signed again (a valid bundle)."""
    files = files_of(base.data)
    files.update(changes)
    env = json.loads(files[MANIFEST])
    doc = json.loads(base64.b64decode(env["payload"]))
    for f in doc["files"]:
        content = files[f["path"].encode()]
        f["size"], f["sha256"] = len(content), hashlib.sha256(content).hexdigest()
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return _resign_manifest(base, files, payload)
