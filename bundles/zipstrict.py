"""A strict reader for the canonical ZIP form that bundles use.

``zipfile`` keeps ``../`` names, reads the last of duplicate names, checks
overlaps lazily and accepts prepended data, so the structure is walked here by
hand: every byte of the file must belong to exactly one local header, entry
data, the central directory or the end record. Steps 1-10 of docs/format.md.
Entry data is then streamed through zlib with hard output caps.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from tamizdat.errors import FormatError

from .limits import DEFAULT_LIMITS, Limits

EOCD_SIG = b"PK\x05\x06"
CEN_SIG = b"PK\x01\x02"
LOC_SIG = b"PK\x03\x04"
EOCD = struct.Struct("<4s4H2LH")
CEN = struct.Struct("<4s6H3L5H2L")
LOC = struct.Struct("<4s5H3L2H")

STORED, DEFLATED = 0, 8
# Media is stored, everything else deflated (docs/format.md, "ZIP form").
STORED_SUFFIXES = (b".jpg", b".png", b".webp")
# Canonical header values written by bundles.zipwrite (docs/format.md, "ZIP form").
VERSION_MADE = (3 << 8) | 20
VERSION_NEEDED = 20
DOS_TIME, DOS_DATE = 0, (1 << 5) | 1  # 1980-01-01 00:00:00
EXTERNAL_ATTR = (stat.S_IFREG | 0o644) << 16
# The same canonical values as slices of a CEN tuple: [1:4], [5:7] and [11:16].
_CANON_HEAD = (VERSION_MADE, VERSION_NEEDED, 0)
_CANON_TIME = (DOS_TIME, DOS_DATE)
_CANON_TAIL = (0, 0, 0, 0, EXTERNAL_ATTR)
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*\Z")
_DRIVE_RE = re.compile(r"\A[A-Za-z]:")
CHUNK = 256 * 1024


def _fail(message: str, code: str, step: int) -> FormatError:
    return FormatError(message, code=code, step=str(step))


class Entry(NamedTuple):
    """One checked central-directory entry (a named tuple: immutable, and cheap to make per entry)."""

    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int


def check_name(name: str, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Why ``name`` is not an allowed entry name, or None."""
    # Fast path: a NAME_RE match already rules out NUL, '\\', '/...', 'c:', '.' and '..'.
    if len(name) <= limits.max_name_length and NAME_RE.match(name):
        return None
    if "\x00" in name:
        return "contains NUL"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "is absolute"
    if any(part in ("..", ".") for part in name.split("/")):
        return "has a . or .. segment"
    if len(name) > limits.max_name_length:
        return "is too long"
    if not NAME_RE.match(name):
        return "is not lowercase ASCII letters, digits, '.', '_', '-' and '/'"
    return None


def _check_central(fields: tuple[Any, ...], name_bytes: bytes) -> None:
    """Steps 4-7 for one central directory entry, in order."""
    (
        _,
        made,
        needed,
        flags,
        method,
        mtime,
        mdate,
        _crc,
        csize,
        usize,
        _nlen,
        extra_len,
        comment_len,
        disk_start,
        int_attr,
        ext_attr,
        _off,
    ) = fields
    # Step 4: no encryption (traditional or strong).
    if flags & 0x41:
        raise _fail("archive has an encrypted entry", "zip-encrypted", 4)
    # Step 5: stored or deflated only.
    if method not in (STORED, DEFLATED):
        raise _fail(f"entry uses compression method {method}", "zip-method", 5)
    # Step 6: regular files only (no symlinks, directories or devices).
    mode = ext_attr >> 16
    if stat.S_ISLNK(mode):
        raise _fail("archive has a symbolic link", "zip-symlink", 6)
    if not stat.S_ISREG(mode) or (ext_attr & 0xFFFF):
        raise _fail("archive has an entry that is not a regular file", "zip-not-file", 6)
    # Step 7: canonical header fields.
    if (made, needed, flags, mtime, mdate, extra_len, comment_len, disk_start, int_attr, ext_attr) != (
        VERSION_MADE,
        VERSION_NEEDED,
        0,
        DOS_TIME,
        DOS_DATE,
        0,
        0,
        0,
        0,
        EXTERNAL_ATTR,
    ):
        raise _fail("entry header is not in the canonical form", "zip-not-canonical", 7)
    if method == STORED and csize != usize:
        raise _fail("stored entry sizes differ", "zip-not-canonical", 7)
    if method != (STORED if name_bytes.endswith(STORED_SUFFIXES) else DEFLATED):
        raise _fail("entry is not stored (media) or deflated (text) as its name requires", "zip-not-canonical", 7)


def read_structure(fh: BinaryIO, file_size: int, limits: Limits = DEFAULT_LIMITS) -> list[Entry]:
    """Walk and check the whole archive layout; return entries in archive order."""
    # Step 1: overall size.
    if file_size > limits.max_bundle_bytes:
        raise _fail(f"file is {file_size} bytes, over the {limits.max_bundle_bytes} limit", "zip-too-large", 1)
    if file_size < EOCD.size:
        raise _fail("file is too short to be a ZIP archive", "zip-truncated", 1)

    # Step 2: the end record sits in the last 22 bytes; no comment, nothing after it.
    tail_len = min(file_size, EOCD.size + 0xFFFF)
    fh.seek(file_size - tail_len)
    tail = fh.read(tail_len)
    if tail[-EOCD.size : -EOCD.size + 4] != EOCD_SIG:
        pos = tail.rfind(EOCD_SIG)
        if pos < 0:
            raise _fail("no ZIP end record found", "zip-no-end-record", 2)
        comment_len = struct.unpack_from("<H", tail, pos + 20)[0] if pos + 22 <= len(tail) else 0
        if comment_len and pos + EOCD.size + comment_len == len(tail):
            raise _fail("archive has a comment", "zip-comment", 2)
        raise _fail("data follows the ZIP end record", "zip-trailing-data", 2)
    eocd_offset = file_size - EOCD.size
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len) = EOCD.unpack(tail[-EOCD.size :])
    if comment_len:
        raise _fail("end record is inconsistent", "zip-bad-end-record", 2)
    if 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _fail("ZIP64 archives are not allowed", "zip64-unsupported", 2)
    if disk or cd_disk or n_disk != n_total:
        raise _fail("multi-disk archives are not allowed", "zip-bad-end-record", 2)
    if n_total == 0 or n_total > limits.max_entries:
        raise _fail(f"archive has {n_total} entries (1..{limits.max_entries} allowed)", "zip-entry-count", 2)

    # Step 3: the central directory ends exactly where the end record starts.
    if cd_offset + cd_size != eocd_offset:
        code = "zip-trailing-data" if cd_offset + cd_size < eocd_offset else "zip-bad-central"
        raise _fail("central directory does not end at the end record", code, 3)
    if cd_size > n_total * (CEN.size + limits.max_name_length):
        raise _fail("central directory is too large", "zip-bad-central", 3)
    fh.seek(cd_offset)
    cd = fh.read(cd_size)
    raw_entries = []
    pos = 0
    for _ in range(n_total):
        if pos + CEN.size > len(cd):
            raise _fail("central directory is truncated", "zip-bad-central", 3)
        fields = CEN.unpack_from(cd, pos)
        if fields[0] != CEN_SIG:
            raise _fail("central directory entry has a bad signature", "zip-bad-central", 3)
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        end = pos + CEN.size + name_len + extra_len + comment_len
        if end > len(cd):
            raise _fail("central directory is truncated", "zip-bad-central", 3)
        name_bytes = cd[pos + CEN.size : pos + CEN.size + name_len]
        raw_entries.append((fields, name_bytes))
        pos = end
    if pos != len(cd):
        raise _fail("central directory has extra bytes", "zip-bad-central", 3)

    names: list[str] = []
    for fields, name_bytes in raw_entries:
        # Steps 4-7 at once for the canonical header every bundle has (flags 0 and a
        # regular file pass steps 4 and 6); anything else goes through them one by one.
        if fields[1:4] == _CANON_HEAD and fields[5:7] == _CANON_TIME and fields[11:16] == _CANON_TAIL:
            method = fields[4]
            if method not in (STORED, DEFLATED):
                raise _fail(f"entry uses compression method {method}", "zip-method", 5)
            if method == STORED and fields[8] != fields[9]:
                raise _fail("stored entry sizes differ", "zip-not-canonical", 7)
            if method != (STORED if name_bytes.endswith(STORED_SUFFIXES) else DEFLATED):
                raise _fail(
                    "entry is not stored (media) or deflated (text) as its name requires", "zip-not-canonical", 7
                )
        else:
            _check_central(fields, name_bytes)
        try:
            names.append(name_bytes.decode("ascii"))
        except UnicodeDecodeError:
            names.append(name_bytes.decode("latin-1"))

    # Step 8: names are safe, unique and sorted.
    seen: set[str] = set()
    folded: set[str] = set()
    for name in names:
        if name in seen:
            raise _fail(f"entry name {name[:60]!r} appears twice", "zip-duplicate-name", 8)
        if name.casefold() in folded:
            raise _fail(f"entry names collide when case is ignored: {name[:60]!r}", "zip-case-collision", 8)
        seen.add(name)
        folded.add(name.casefold())
    for name in names:
        why = check_name(name, limits)
        if why:
            raise _fail(f"entry name {name[:60]!r} {why}", "zip-bad-name", 8)
    if names != sorted(names):
        raise _fail("entries are not in sorted order", "zip-not-sorted", 8)

    # Step 9: entries are contiguous from offset 0 to the central directory;
    # each local header repeats its central header.
    entries: list[Entry] = []
    expected = 0
    for (fields, name_bytes), name in zip(raw_entries, names, strict=True):
        (_, _, needed, flags, method, mtime, mdate, crc, csize, usize, name_len, *_rest) = fields
        offset = fields[16]
        if offset != expected:
            if not entries and offset > 0:
                raise _fail("data is prepended before the first entry", "zip-prepended-data", 9)
            code = "zip-overlap" if offset < expected else "zip-gap"
            raise _fail(f"entry {name[:60]!r} is not where the previous one ends", code, 9)
        fh.seek(offset)
        local = fh.read(LOC.size + name_len)
        if len(local) < LOC.size + name_len:
            raise _fail("local header is truncated", "zip-local-mismatch", 9)
        # The local header must be byte for byte the one its central entry implies.
        if local != LOC.pack(LOC_SIG, needed, flags, method, mtime, mdate, crc, csize, usize, name_len, 0) + name_bytes:
            raise _fail(f"local header of {name[:60]!r} differs from the central one", "zip-local-mismatch", 9)
        data_offset = offset + LOC.size + name_len
        expected = data_offset + csize
        if expected > cd_offset:
            raise _fail(f"entry {name[:60]!r} overlaps the central directory", "zip-overlap", 9)
        entries.append(Entry(name, method, crc, csize, usize, offset, data_offset))
    if expected != cd_offset:
        raise _fail("unlisted data sits before the central directory", "zip-gap", 9)

    # Step 10: size limits and compression ratio (zip bombs).
    total = 0
    for e in entries:
        if e.size > limits.max_entry_bytes:
            raise _fail(f"entry {e.name!r} is {e.size} bytes, over the entry limit", "zip-entry-too-large", 10)
        if e.method == DEFLATED and e.size > limits.max_ratio * max(e.compressed_size, 1):
            raise _fail(f"entry {e.name!r} expands more than {limits.max_ratio}x", "zip-ratio", 10)
        total += e.size
    if total > limits.max_total_bytes:
        raise _fail("entries add up beyond the bundle limit", "zip-total-too-large", 10)
    return entries


def iter_data(fh: BinaryIO, entry: Entry, *, step: int) -> Iterator[bytes]:
    """Stream an entry's uncompressed bytes; never yield more than its declared size.

    Raises ``entry-corrupt`` (bad deflate data, wrong length or CRC) at ``step``.
    """
    fh.seek(entry.data_offset)
    remaining = entry.compressed_size
    produced = 0
    crc = 0
    inflater = zlib.decompressobj(-15) if entry.method == DEFLATED else None
    while remaining:
        chunk = fh.read(min(CHUNK, remaining))
        if not chunk:
            raise _fail(f"entry {entry.name!r} is truncated", "entry-corrupt", step)
        remaining -= len(chunk)
        if inflater is None:
            out = chunk
        else:
            try:
                # Never inflate more than one byte past the declared size: if the
                # cap is reached, input is left over and the entry lies about its size.
                out = inflater.decompress(chunk, entry.size - produced + 1)
            except zlib.error as exc:
                raise _fail(f"entry {entry.name!r} has corrupt compressed data", "entry-corrupt", step) from exc
        produced += len(out)
        if produced > entry.size:
            raise _fail(f"entry {entry.name!r} inflates beyond its size", "entry-corrupt", step)
        crc = zlib.crc32(out, crc)
        yield out
    if inflater is not None:
        try:
            tail = inflater.flush()
        except zlib.error as exc:  # pragma: no cover - flush rarely raises
            raise _fail(f"entry {entry.name!r} has corrupt compressed data", "entry-corrupt", step) from exc
        if tail or not inflater.eof or inflater.unused_data:
            raise _fail(f"entry {entry.name!r} has corrupt compressed data", "entry-corrupt", step)
    if produced != entry.size or crc != entry.crc:
        raise _fail(f"entry {entry.name!r} does not match its size or CRC", "entry-corrupt", step)


def read_all(fh: BinaryIO, entry: Entry, *, step: int) -> bytes:
    """Read an entry whole (callers check its size first), with the checks of :func:`iter_data`.

    An entry that fits one chunk (most of them) is read and inflated in one
    call: what :func:`iter_data` does in its single round, without the generator.
    """
    if entry.compressed_size > CHUNK:
        return b"".join(iter_data(fh, entry, step=step))
    fh.seek(entry.data_offset)
    data = fh.read(entry.compressed_size)
    if len(data) != entry.compressed_size:  # the file changed under us: let iter_data say how
        return b"".join(iter_data(fh, entry, step=step))
    if entry.method == DEFLATED:
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(data, entry.size + 1)
            if len(out) > entry.size:
                raise _fail(f"entry {entry.name!r} inflates beyond its size", "entry-corrupt", step)
            tail = inflater.flush()
        except zlib.error as exc:
            raise _fail(f"entry {entry.name!r} has corrupt compressed data", "entry-corrupt", step) from exc
        if tail or not inflater.eof or inflater.unused_data:
            raise _fail(f"entry {entry.name!r} has corrupt compressed data", "entry-corrupt", step)
    else:
        out = data
    if len(out) != entry.size or zlib.crc32(out) != entry.crc:
        raise _fail(f"entry {entry.name!r} does not match its size or CRC", "entry-corrupt", step)
    return out
