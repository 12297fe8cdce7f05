"""Any single-byte change or truncation of a golden bundle is rejected, or changes nothing.

"Changes nothing" means the bundle still verifies to the same bundle id, the
same manifest and the same entry bytes (e.g. the unused padding bits at the end
of a deflate stream). Anything else is a bug: an accepted mutation that changes
what a reader sees.

Examples: TAMIZDAT_FUZZ_EXAMPLES (default 300) per property.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

import pytest
from helpers import GOLDEN, GOLDEN_NAMES, GOLDEN_ROOT_KEYID, LOC, read_zip
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tamizdat.bundles import Manifest, verify_bundle
from tamizdat.errors import RejectedError

EXAMPLES = int(os.environ.get("TAMIZDAT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Original:
    data: bytes
    bundle_id: str
    manifest: Manifest
    files: dict[str, bytes]
    structure: tuple[int, ...]  # offsets of header, central directory and end record bytes


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _structure(data: bytes) -> tuple[int, ...]:
    offsets: list[int] = []
    pos = 0
    for e in read_zip(data):
        offsets += range(pos, pos + LOC.size + len(e.name))
        pos += LOC.size + len(e.name) + e.csize
    offsets += range(pos, len(data))  # central directory and end record
    return tuple(offsets)


def _load(name: str) -> Original:
    data = (GOLDEN / name).read_bytes()
    result = verify_bundle(io.BytesIO(data), root_keyid=GOLDEN_ROOT_KEYID)
    return Original(data, result.bundle_id, result.manifest, _files(data), _structure(data))


ORIGINALS = {name: _load(name) for name in GOLDEN_NAMES}


def check(original: Original, mutated: bytes) -> str:
    """Rejected (RejectedError, never another exception) or identical in content."""
    try:
        result = verify_bundle(io.BytesIO(mutated), root_keyid=GOLDEN_ROOT_KEYID)
    except RejectedError as err:
        return f"{err.step}:{err.code}"
    assert result.bundle_id == original.bundle_id
    assert result.manifest == original.manifest
    assert _files(mutated) == original.files
    return "accepted, same content"


def _changed(data: bytes, pos: int, value: int) -> bytes:
    return data[:pos] + bytes([value]) + data[pos + 1 :]


@st.composite
def byte_changes(draw: st.DrawFn) -> tuple[str, int, int]:
    name = draw(st.sampled_from(GOLDEN_NAMES))
    original = ORIGINALS[name]
    pos = draw(st.one_of(st.sampled_from(original.structure), st.integers(0, len(original.data) - 1)))
    value = draw(st.integers(0, 255).filter(lambda v: v != original.data[pos]))
    return name, pos, value


@FUZZ
@given(byte_changes())
def test_any_single_byte_change_is_rejected_or_harmless(change: tuple[str, int, int]) -> None:
    name, pos, value = change
    original = ORIGINALS[name]
    event(check(original, _changed(original.data, pos, value)))


@FUZZ
@given(st.sampled_from(GOLDEN_NAMES), st.data())
def test_any_truncation_is_rejected(name: str, data: st.DataObject) -> None:
    original = ORIGINALS[name]
    length = data.draw(st.integers(0, len(original.data) - 1))
    with pytest.raises(RejectedError):
        verify_bundle(io.BytesIO(original.data[:length]), root_keyid=GOLDEN_ROOT_KEYID)


@FUZZ
@given(st.sampled_from(GOLDEN_NAMES), st.binary(min_size=1, max_size=64))
def test_appended_bytes_are_rejected(name: str, extra: bytes) -> None:
    with pytest.raises(RejectedError):
        verify_bundle(io.BytesIO(ORIGINALS[name].data + extra), root_keyid=GOLDEN_ROOT_KEYID)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_every_header_byte_flipped(name: str) -> None:
    """Exhaustive over the structure: each header, central directory and end record byte, two ways."""
    original = ORIGINALS[name]
    outcomes: dict[str, int] = {}
    for pos in original.structure:
        for value in (original.data[pos] ^ 0x01, original.data[pos] ^ 0x80):
            outcome = check(original, _changed(original.data, pos, value))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert "accepted, same content" not in outcomes, outcomes


@pytest.mark.slow
def test_every_byte_of_the_article_bundle_flipped() -> None:
    """Exhaustive over the whole article bundle (data included), one bit per byte."""
    original = ORIGINALS["article-en.zip"]
    outcomes: dict[str, int] = {}
    for pos in range(len(original.data)):
        outcome = check(original, _changed(original.data, pos, original.data[pos] ^ 0x01))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert sum(outcomes.values()) == len(original.data)
