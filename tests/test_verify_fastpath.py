"""The verifier's fast paths decide exactly as the general code they shortcut.

Each fast path is compared here with the code it stands in front of (a copy of
it where the fast path replaced it), on a table of cases and on random input.

``zipstrict.read_all`` inflates an entry that fits one chunk in one call; it
must accept, reject (code, step and message) and return exactly what the
streaming ``iter_data`` does. ``check_name`` answers a plain name at once; it
must give the same reason as the full list of checks for every name.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import pickle
import random
import re
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamizdat.bundles import manifest, zipstrict
from tamizdat.bundles.limits import DEFAULT_LIMITS, Limits
from tamizdat.bundles.manifest import FileEntry
from tamizdat.errors import FormatError, RejectedError
from tamizdat.keys import timefmt
from tamizdat.keys.ed25519 import PublicKey, SigningKey
from tamizdat.keys.schema import Reader

_WORDS = [b"a", b"free", b"press", b"court", b"said", b"report", b"city", b"law"]
TEXT = b"<p>" + b" ".join(random.Random(7).choices(_WORDS, k=1000)) + b"</p>"
DEFLATED = zlib.compress(TEXT, 9, wbits=-15)


def _entry(data: bytes, *, size: int, crc: int, method: int = zipstrict.DEFLATED) -> zipstrict.Entry:
    return zipstrict.Entry("articles/1.html", method, crc, len(data), size, 0, 0)


def _outcome(fn: object, data: bytes, entry: zipstrict.Entry) -> tuple[str, object]:
    try:
        if fn is zipstrict.read_all:
            return "ok", zipstrict.read_all(io.BytesIO(data), entry, step=22)
        return "ok", b"".join(zipstrict.iter_data(io.BytesIO(data), entry, step=22))
    except FormatError as err:
        return "rejected", (err.step, err.code, str(err))


def _same(data: bytes, entry: zipstrict.Entry) -> tuple[str, object]:
    fast, slow = _outcome(zipstrict.read_all, data, entry), _outcome(zipstrict.iter_data, data, entry)
    assert fast == slow
    return fast


CRC = zlib.crc32(TEXT)
CASES = {
    "genuine": (DEFLATED, len(TEXT), CRC, "ok"),
    "wrong crc": (DEFLATED, len(TEXT), CRC ^ 1, "rejected"),
    "declared one byte short": (DEFLATED, len(TEXT) - 1, CRC, "rejected"),
    "declared one byte long": (DEFLATED, len(TEXT) + 1, CRC, "rejected"),
    "declared empty": (DEFLATED, 0, 0, "rejected"),
    "cut stream": (DEFLATED[:-3], len(TEXT), CRC, "rejected"),
    "bytes after the stream": (DEFLATED + b"\x00", len(TEXT), CRC, "rejected"),
    "garbage": (b"\xff" * 64, len(TEXT), CRC, "rejected"),
    "no data": (b"", 0, 0, "rejected"),
    "empty stream": (zlib.compress(b"", wbits=-15), 0, 0, "ok"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_shot_inflate_matches_the_stream(name: str) -> None:
    data, size, crc, expected = CASES[name]
    assert _same(data, _entry(data, size=size, crc=crc))[0] == expected


def test_one_shot_stored_entries_match_the_stream() -> None:
    assert _same(TEXT, _entry(TEXT, size=len(TEXT), crc=CRC, method=zipstrict.STORED)) == ("ok", TEXT)
    assert _same(TEXT, _entry(TEXT, size=len(TEXT), crc=CRC ^ 1, method=zipstrict.STORED))[0] == "rejected"


def test_entries_over_one_chunk_still_stream() -> None:
    big = zlib.compress(bytes(range(256)) * 4096, 1, wbits=-15) + bytes(zipstrict.CHUNK)
    entry = _entry(big, size=256 * 4096, crc=zlib.crc32(bytes(range(256)) * 4096))
    assert entry.compressed_size > zipstrict.CHUNK
    assert _same(big, entry)[0] == "rejected"  # the zero bytes after the stream


def test_a_short_file_is_reported_as_the_stream_reports_it() -> None:
    entry = _entry(DEFLATED, size=len(TEXT), crc=CRC)
    assert len(DEFLATED) > 200
    outcome = _same(DEFLATED[:100], entry)
    assert outcome[0] == "rejected"
    assert outcome[1][:2] == ("22", "entry-corrupt")  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200), st.builds(lambda b, n: DEFLATED[:n] + b, st.binary(max_size=8), st.integers(0, 600))
    ),
    st.integers(0, 6000),
    st.sampled_from([CRC, 0, 1]),
)
def test_one_shot_inflate_matches_the_stream_on_any_bytes(data: bytes, size: int, crc: int) -> None:
    _same(data, _entry(data, size=size, crc=crc))


# The list of checks as it stands before the fast path, word for word.
def _reference_check_name(name: str, limits: Limits = DEFAULT_LIMITS) -> str | None:
    if "\x00" in name:
        return "contains NUL"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or re.match(r"\A[A-Za-z]:", name):
        return "is absolute"
    if any(part in ("..", ".") for part in name.split("/")):
        return "has a . or .. segment"
    if len(name) > limits.max_name_length:
        return "is too long"
    if not zipstrict.NAME_RE.match(name):
        return "is not lowercase ASCII letters, digits, '.', '_', '-' and '/'"
    return None


NAMES = [
    "index.html",
    "articles/1.html",
    "a" * 255,
    "a" * 256,
    "x/" + "a" * 254,
    "c:/x",
    "C:x",
    "/etc/passwd",
    "a/../b",
    "./a",
    "a/.",
    "a\\b",
    "a\x00b",
    "A.html",
    "a//b",
    "a/",
    "-a",
    "a\n",
    "é.html",
    "",
]


@pytest.mark.parametrize("name", NAMES)
def test_check_name_gives_the_reference_reason(name: str) -> None:
    assert zipstrict.check_name(name) == _reference_check_name(name)
    short = Limits(max_name_length=5)
    assert zipstrict.check_name(name, short) == _reference_check_name(name, short)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab1./\\:-_A\x00\n", max_size=12), st.integers(1, 12))
def test_check_name_gives_the_reference_reason_on_any_name(name: str, max_len: int) -> None:
    limits = Limits(max_name_length=max_len)
    assert zipstrict.check_name(name, limits) == _reference_check_name(name, limits)


# -- manifest ``files`` items: the inline check against the field-by-field Reader --------------


def _reference_file(item: object) -> FileEntry:
    f = Reader(item, what="file", required=("path", "size", "sha256", "type"), step="18", code="bad-manifest")
    return FileEntry(
        f.text("path", max_len=255), f.integer("size"), f.text("sha256", max_len=64), f.text("type", max_len=100)
    )


def _file_outcome(fn: Callable[[object], FileEntry], item: object) -> object:
    try:
        return fn(item)
    except FormatError as err:
        return (err.step, err.code, str(err))


GOOD_FILE = {"path": "index.html", "size": 12, "sha256": "ab" * 32, "type": "text/html"}
BAD_FILES = {
    "good": GOOD_FILE,
    "a list": [GOOD_FILE],
    "missing type": {k: v for k, v in GOOD_FILE.items() if k != "type"},
    "extra field": {**GOOD_FILE, "mode": 1},
    "bool size": {**GOOD_FILE, "size": True},
    "negative size": {**GOOD_FILE, "size": -1},
    "size over 2^53-1": {**GOOD_FILE, "size": 2**53},
    "largest size": {**GOOD_FILE, "size": 2**53 - 1},
    "float size": {**GOOD_FILE, "size": 1.0},
    "empty path": {**GOOD_FILE, "path": ""},
    "path of 256": {**GOOD_FILE, "path": "a" * 256},
    "path of 255": {**GOOD_FILE, "path": "a" * 255},
    "NUL in path": {**GOOD_FILE, "path": "a\x00"},
    "NUL in type": {**GOOD_FILE, "type": "text/\x00"},
    "NUL in sha256": {**GOOD_FILE, "sha256": "\x00"},
    "long sha256": {**GOOD_FILE, "sha256": "a" * 65},
    "long type": {**GOOD_FILE, "type": "t" * 101},
    "number path": {**GOOD_FILE, "path": 5},
    "null type": {**GOOD_FILE, "type": None},
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_file_items_are_read_as_the_reader_reads_them(name: str) -> None:
    item = BAD_FILES[name]
    assert _file_outcome(manifest._file, item) == _file_outcome(_reference_file, item)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**53 + 1) | st.text(alphabet="a\x00/", max_size=3),
    lambda inner: st.lists(inner, max_size=2),
    max_leaves=3,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["path", "size", "sha256", "type", "x"]), _JSON, min_size=3))
def test_file_items_are_read_as_the_reader_reads_them_on_any_item(item: dict[str, object]) -> None:
    assert _file_outcome(manifest._file, item) == _file_outcome(_reference_file, item)


def test_public_keys_pickle_without_their_cached_key_object() -> None:
    key = SigningKey.from_seed(bytes(32))
    message = b"DSSEv1 test"
    assert key.public.verify(key.sign(message), message)  # builds the cached key object
    copy = pickle.loads(pickle.dumps(key.public))
    assert copy == key.public
    assert copy.verify(key.sign(message), message)
    assert not copy.verify(key.sign(message), message + b"!")


# -- caches of pure parses: each call still gets its own step and wording -----------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [("AAAA", "bad-public-key"), ("not base64!", "bad-base64"), ("A" * 43 + "=", "bad-public-key")],
)
def test_cached_key_parsing_still_reports_each_callers_step(text: str, code: str) -> None:
    for step in ("12", "13", None):
        with pytest.raises(RejectedError) as info:
            PublicKey.from_b64(text, step=step)
        assert (info.value.code, info.value.step) == (code, step)


def test_cached_key_parsing_gives_the_uncached_key() -> None:
    raw = SigningKey.from_seed(bytes(range(32))).public.raw
    text = base64.b64encode(raw).decode()
    assert PublicKey.from_b64(text) == PublicKey.from_raw(raw)
    assert PublicKey.from_b64(text) is PublicKey.from_b64(text)  # one object, one cached key object


@pytest.mark.parametrize("text", ["2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-1-01T00:00:00Z", 5])
def test_cached_time_parsing_words_each_error_for_its_field(text: object) -> None:
    for field, step in (("root created", "12"), ("manifest created", "18")):
        with pytest.raises(FormatError) as info:
            timefmt.parse(text, field=field, step=step)
        assert info.value.step == step
        assert str(info.value).startswith(field)


def test_cached_time_parsing_gives_utc_datetimes() -> None:
    moment = timefmt.parse("2026-11-26T13:40:05Z")
    assert moment == dt.datetime(2026, 11, 26, 13, 40, 5, tzinfo=dt.UTC)
    assert timefmt.parse("2026-11-26T13:40:05Z") is moment
