"""Shared test helpers: fixed keys and times, a hand-rolled ZIP writer, bundle surgery.

The ZIP code here is deliberately independent of ``tamizdat.bundles`` (its own
constants, its own struct layouts) so that fixtures built with it test the
verifier rather than mirror it. :func:`write_zip` can emit any header field,
which is how each hazard in ``tests/assets/bad/`` is constructed exactly.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import shutil
import struct
import textwrap
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir

TESTS = Path(__file__).resolve().parent
ASSETS = TESTS / "assets"
GOLDEN = ASSETS / "golden"
BAD = ASSETS / "bad"

UTC = dt.UTC
PUBLISHER = "Example Newsroom"
T_INIT = dt.datetime(2026, 1, 1, tzinfo=UTC)
T_CREATED = dt.datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC)
T_ROTATE_SIGNING = dt.datetime(2026, 3, 1, tzinfo=UTC)
T_REVOKE = dt.datetime(2026, 3, 15, tzinfo=UTC)
T_ROTATE_ROOT = dt.datetime(2026, 4, 1, tzinfo=UTC)
T_ROTATED_CREATED = dt.datetime(2026, 4, 15, 8, 30, 0, tzinfo=UTC)

GOLDEN_NAMES = ("article-en.zip", "edition-multilang.zip", "rotated.zip")


def seed(label: str) -> bytes:
    """A fixed 32-byte Ed25519 seed named by ``label``."""
    return hashlib.sha256(b"tamizdat test seed: " + label.encode()).digest()


GOLDEN_SEEDS = [seed("golden root 1"), seed("golden signing 1"), seed("golden log 1")]
GOLDEN_ROOT_KEY = SigningKey.from_seed(GOLDEN_SEEDS[0])
GOLDEN_SIGNING_KEY = SigningKey.from_seed(GOLDEN_SEEDS[1])
GOLDEN_LOG_KEY = SigningKey.from_seed(GOLDEN_SEEDS[2])
GOLDEN_ROOT_KEYID = GOLDEN_ROOT_KEY.keyid
OTHER_ROOT_KEY = SigningKey.from_seed(seed("another publisher root"))


@contextlib.contextmanager
def fixed_key_generation(label: str) -> Iterator[None]:
    """Make ``SigningKey.generate`` deterministic (rotations create keys with it)."""
    counter = itertools.count(1)

    def generate(cls: type[SigningKey]) -> SigningKey:
        return cls.from_seed(seed(f"{label} generated {next(counter)}"))

    with mock.patch.object(SigningKey, "generate", classmethod(generate)):
        yield


def golden_keydir(path: Path, *, log: bool = True) -> KeyDir:
    """A key directory with the fixed golden keys at root version 1 (and the log key and section)."""
    keydir = KeyDir(path)
    keydir.init(PUBLISHER, seeds=GOLDEN_SEEDS, now=T_INIT, log=log)
    return keydir


def require_tool(name: str) -> str:
    """Path of an external tool; FAIL without it when $CI is set, else skip."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but was not found on PATH")
    pytest.skip(f"{name} is not installed")


# -- ZIP: an independent reader and a writer that emits any field ------------

LOC_SIG = b"PK\x03\x04"
CEN_SIG = b"PK\x01\x02"
EOCD_SIG = b"PK\x05\x06"
LOC = struct.Struct("<4sHHHHHLLLHH")
CEN = struct.Struct("<4sHHHHHHLLLHHHHHLL")
EOCD = struct.Struct("<4sHHHHLLH")

MADE_BY = 0x0314  # Unix, version 2.0
NEEDED = 20
DOS_DATE_1980 = 0x0021  # 1980-01-01
REGULAR_0644 = 0x81A40000
STORED_SUFFIXES = (b".jpg", b".png", b".webp")


@dataclass
class ZEntry:
    """Every field of one entry; ``data`` is the raw (compressed) bytes in the archive.

    ``local`` overrides fields of the local header only (keys: needed, flags,
    method, mtime, mdate, crc, csize, usize, name, extra). ``offset`` overrides
    the central header's offset; ``pad_before`` is written before the local header.
    """

    name: bytes
    data: bytes
    method: int
    crc: int
    csize: int
    usize: int
    flags: int = 0
    mtime: int = 0
    mdate: int = DOS_DATE_1980
    made: int = MADE_BY
    needed: int = NEEDED
    disk: int = 0
    int_attr: int = 0
    ext_attr: int = REGULAR_0644
    extra: bytes = b""
    comment: bytes = b""
    local: dict[str, Any] = field(default_factory=dict)
    offset: int | None = None
    pad_before: bytes = b""

    @property
    def text_name(self) -> str:
        return self.name.decode("latin-1")


def deflate(content: bytes, level: int = 6) -> bytes:
    """Raw DEFLATE as zipfile writes it (wbits -15)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(content) + comp.flush()


def entry(name: str | bytes, content: bytes, *, method: int | None = None, level: int = 6) -> ZEntry:
    """A canonical entry: deflated text, stored media (by the name's suffix)."""
    raw = name.encode() if isinstance(name, str) else name
    if method is None:
        method = 0 if raw.endswith(STORED_SUFFIXES) else 8
    data = content if method == 0 else deflate(content, level)
    return ZEntry(raw, data, method, zlib.crc32(content), len(data), len(content))


def write_zip(
    entries: list[ZEntry],
    *,
    prepend: bytes = b"",
    adjust_offsets: bool = True,
    before_central: bytes = b"",
    comment: bytes = b"",
    trailing: bytes = b"",
    eocd: Mapping[str, int] | None = None,
) -> bytes:
    """Lay out ``entries`` as written, then the central directory and end record.

    ``prepend`` bytes go first; with ``adjust_offsets`` every offset counts
    them (like ``zip -A``), otherwise offsets are as if they were absent.
    ``eocd`` overrides end-record fields (disk, cd_disk, n_disk, n_total,
    cd_size, cd_offset, comment_len).
    """
    out = bytearray(prepend)
    base = 0 if adjust_offsets else len(prepend)
    offsets = []
    for e in entries:
        out += e.pad_before
        offsets.append(len(out) - base)
        loc = {
            "needed": e.needed,
            "flags": e.flags,
            "method": e.method,
            "mtime": e.mtime,
            "mdate": e.mdate,
            "crc": e.crc,
            "csize": e.csize,
            "usize": e.usize,
            "name": e.name,
            "extra": e.extra,
            **e.local,
        }
        out += LOC.pack(
            LOC_SIG,
            loc["needed"],
            loc["flags"],
            loc["method"],
            loc["mtime"],
            loc["mdate"],
            loc["crc"],
            loc["csize"],
            loc["usize"],
            len(loc["name"]),
            len(loc["extra"]),
        )
        out += loc["name"] + loc["extra"] + e.data
    out += before_central
    cd_offset = len(out) - base
    cd = bytearray()
    for e, off in zip(entries, offsets, strict=True):
        cd += CEN.pack(
            CEN_SIG,
            e.made,
            e.needed,
            e.flags,
            e.method,
            e.mtime,
            e.mdate,
            e.crc,
            e.csize,
            e.usize,
            len(e.name),
            len(e.extra),
            len(e.comment),
            e.disk,
            e.int_attr,
            e.ext_attr,
            off if e.offset is None else e.offset,
        )
        cd += e.name + e.extra + e.comment
    out += cd
    end = {
        "disk": 0,
        "cd_disk": 0,
        "n_disk": len(entries),
        "n_total": len(entries),
        "cd_size": len(cd),
        "cd_offset": cd_offset,
        "comment_len": len(comment),
        **(eocd or {}),
    }
    out += EOCD.pack(
        EOCD_SIG,
        end["disk"],
        end["cd_disk"],
        end["n_disk"],
        end["n_total"],
        end["cd_size"],
        end["cd_offset"],
        end["comment_len"],
    )
    return bytes(out + comment + trailing)


def read_zip(data: bytes) -> list[ZEntry]:
    """Parse a well-formed archive into entries (central header fields, raw data)."""
    (_, _, _, _, n_total, _, cd_offset, _) = EOCD.unpack_from(data, len(data) - EOCD.size)
    out = []
    pos = cd_offset
    for _ in range(n_total):
        f = CEN.unpack_from(data, pos)
        assert f[0] == CEN_SIG
        (_, made, needed, flags, method, mtime, mdate, crc, csize, usize, nlen, xlen, clen, disk, iattr, eattr, off) = f
        name = data[pos + CEN.size : pos + CEN.size + nlen]
        pos += CEN.size + nlen + xlen + clen
        lf = LOC.unpack_from(data, off)
        start = off + LOC.size + lf[9] + lf[10]
        out.append(
            ZEntry(
                name, data[start : start + csize], method, crc, csize, usize, flags, mtime, mdate, made, needed, disk
            )
        )
        out[-1].int_attr, out[-1].ext_attr = iattr, eattr
    return out


def contents(data: bytes) -> dict[str, bytes]:
    """Entry name -> uncompressed bytes, read with the standard library."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def canonical_zip(files: Mapping[str, bytes]) -> bytes:
    """The canonical archive of ``files`` (sorted, deflated text, stored media)."""
    return write_zip([entry(name, files[name]) for name in sorted(files)])


def find(entries: list[ZEntry], name: str) -> int:
    """Index of the entry called ``name``."""
    for i, e in enumerate(entries):
        if e.name == name.encode():
            return i
    raise KeyError(name)


def with_entry(entries: list[ZEntry], name: str, **changes: Any) -> list[ZEntry]:
    """A copy of ``entries`` with fields of ``name`` replaced."""
    out = list(entries)
    i = find(out, name)
    out[i] = replace(out[i], **changes)
    return out


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """``data`` with the byte at ``index`` XORed with ``mask``."""
    b = bytearray(data)
    b[index] ^= mask
    return bytes(b)


# -- bundle-level helpers -----------------------------------------------------

MANIFEST = "meta/manifest.dsse.json"


def manifest_envelope(files: Mapping[str, bytes]) -> dict[str, Any]:
    return json.loads(files[MANIFEST])


def manifest_payload(files: Mapping[str, bytes]) -> bytes:
    return base64.b64decode(manifest_envelope(files)["payload"])


def envelope_bytes(doc: Mapping[str, Any]) -> bytes:
    """An envelope serialised as tamizdat writes it (the verifier does not care)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 PAE, written from the spec (independent of tamizdat.keys.dsse)."""
    t = payload_type.encode()
    return b" ".join([b"DSSEv1", str(len(t)).encode(), t, str(len(payload)).encode(), payload])


def signed_envelope(payload_type: str, payload: bytes, signers: list[SigningKey]) -> dict[str, Any]:
    """A DSSE envelope signed here, from the spec (sorted by key id)."""
    message = pae(payload_type, payload)
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [
            {"keyid": k.keyid, "sig": base64.b64encode(k.sign(message)).decode()}
            for k in sorted(signers, key=lambda k: k.keyid)
        ],
    }


BUNDLE_TYPE = "application/vnd.tamizdat.bundle+json"
ROOT_TYPE = "application/vnd.tamizdat.root+json"


def compact_json(doc: Any) -> bytes:
    """Compact sorted JSON, as signed payloads are written."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def spki_pem(raw_public: bytes) -> bytes:
    """A raw Ed25519 public key as a PEM SubjectPublicKeyInfo (fixed DER prefix)."""
    der = bytes.fromhex("302a300506032b6570032100") + raw_public
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n".encode()
