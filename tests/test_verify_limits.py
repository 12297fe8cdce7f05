"""Size limits and the API's argument checks (codes no checked-in fixture can carry)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from helpers import GOLDEN, GOLDEN_ROOT_KEYID, ZEntry, read_zip, write_zip

from tamizdat.bundles import verify_bundle, zipstrict
from tamizdat.bundles.limits import DEFAULT_LIMITS, Limits, MiB
from tamizdat.errors import RejectedError, UsageError

ARTICLE = GOLDEN / "article-en.zip"


def _reject(limits: Limits, source: Path = ARTICLE) -> tuple[str | None, str]:
    with pytest.raises(RejectedError) as info:
        verify_bundle(source, root_keyid=GOLDEN_ROOT_KEYID, limits=limits)
    return info.value.step, info.value.code


def test_default_limits_are_the_documented_ones() -> None:
    assert (
        Limits(
            max_bundle_bytes=256 * MiB,
            max_entry_bytes=32 * MiB,
            max_total_bytes=256 * MiB,
            max_ratio=100,
            max_entries=10_000,
            max_name_length=255,
            max_control_bytes=1 * MiB,
            max_articles=1_000,
        )
        == DEFAULT_LIMITS
    )


def test_bundle_over_the_file_limit_is_rejected_at_step_1() -> None:
    size = ARTICLE.stat().st_size
    assert _reject(Limits(max_bundle_bytes=size - 1)) == ("1", "zip-too-large")
    verify_bundle(ARTICLE, root_keyid=GOLDEN_ROOT_KEYID, limits=Limits(max_bundle_bytes=size))


def test_entries_over_the_total_limit_are_rejected_at_step_10() -> None:
    total = sum(e.usize for e in read_zip(ARTICLE.read_bytes()))
    assert _reject(Limits(max_total_bytes=total - 1)) == ("10", "zip-total-too-large")
    verify_bundle(ARTICLE, root_keyid=GOLDEN_ROOT_KEYID, limits=Limits(max_total_bytes=total))


def test_too_many_entries_are_rejected_at_step_2() -> None:
    count = len(read_zip(ARTICLE.read_bytes()))
    assert _reject(Limits(max_entries=count - 1)) == ("2", "zip-entry-count")


def test_control_entry_limit_is_step_11() -> None:
    assert _reject(Limits(max_control_bytes=100)) == ("11", "control-too-large")


def test_entry_limit_applies_to_declared_sizes() -> None:
    assert _reject(Limits(max_entry_bytes=1)) == ("10", "zip-entry-too-large")


def _structure(data: bytes) -> list[zipstrict.Entry]:
    return zipstrict.read_structure(io.BytesIO(data), len(data))


def _deflated_with_sizes(csize: int, usize: int) -> bytes:
    """One deflated entry whose (junk) data is ``csize`` bytes and whose declared size is ``usize``."""
    return write_zip([ZEntry(b"index.html", bytes(csize), 8, zlib.crc32(b""), csize, usize)])


def test_ratio_boundary_is_100_times_the_compressed_size() -> None:
    assert len(_structure(_deflated_with_sizes(1000, 100_000))) == 1
    with pytest.raises(RejectedError) as info:
        _structure(_deflated_with_sizes(1000, 100_001))
    assert (info.value.step, info.value.code) == ("10", "zip-ratio")


def test_entry_size_boundary_is_32_mib() -> None:
    csize = 32 * MiB // 100 + 1
    assert len(_structure(_deflated_with_sizes(csize, 32 * MiB))) == 1
    with pytest.raises(RejectedError) as info:
        _structure(_deflated_with_sizes(csize, 32 * MiB + 1))
    assert (info.value.step, info.value.code) == ("10", "zip-entry-too-large")


def test_smallest_input_is_22_bytes() -> None:
    for size in (0, 1, 21):
        with pytest.raises(RejectedError) as info:
            _structure(b"\x00" * size)
        assert (info.value.step, info.value.code) == ("1", "zip-truncated")


def test_verify_accepts_a_file_object(golden_bytes: dict[str, bytes]) -> None:
    result = verify_bundle(io.BytesIO(golden_bytes["article-en.zip"]), root_keyid=GOLDEN_ROOT_KEYID)
    assert result.size == len(golden_bytes["article-en.zip"])


def test_verify_needs_exactly_one_anchor() -> None:
    root = (GOLDEN / "keys" / "roots" / "1.json").read_bytes()
    with pytest.raises(UsageError):
        verify_bundle(ARTICLE)
    with pytest.raises(UsageError):
        verify_bundle(ARTICLE, root_keyid=GOLDEN_ROOT_KEYID, trusted_root=root)
    for bad in ("", "abc", GOLDEN_ROOT_KEYID.upper(), GOLDEN_ROOT_KEYID[:-1] + "g"):
        with pytest.raises(UsageError) as info:
            verify_bundle(ARTICLE, root_keyid=bad)
        assert info.value.code == "bad-root-keyid"
