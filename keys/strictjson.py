"""Strict JSON for signed documents.

``json.loads`` keeps the last of duplicate keys and accepts NaN and Infinity;
both let two parsers of the same bytes disagree. Here duplicates, non-finite
numbers, floats, and integers outside +-(2^53 - 1) are rejected, so the Python
and browser verifiers read every signed payload the same way.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from tamizdat.errors import FormatError

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 512
# Unrolled: [^"\\]* runs without a backtracking frame per character (the form
# "(?:[^"\\]|\\.)*" takes about 120 bytes of regex stack per character: +129 MB for a 1 MiB manifest).
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate JSON key {key!r}", code="json-duplicate-key")
        out[key] = value
    return out


def _bad_constant(name: str) -> Any:
    raise FormatError(f"JSON constant {name} is not allowed", code="json-bad-number")


def _bad_float(text: str) -> Any:
    raise FormatError(f"JSON number {text[:20]} is not an integer", code="json-bad-number")


def _int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INT:
        raise FormatError("JSON integer out of the safe range", code="json-bad-number")
    return value


# One decoder for every call: json.loads(text, **hooks) builds a new JSONDecoder and scanner each time.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_constant=_bad_constant,
    parse_float=_bad_float,
    parse_int=_int,
)


def loads(data: bytes | str, *, step: str | None = None) -> Any:
    """Parse strict JSON; raise :class:`FormatError` (code ``json-*``) otherwise."""
    try:
        text = data.decode("utf-8", errors="strict") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise FormatError("JSON is not valid UTF-8", code="json-bad-utf8", step=step) from exc
    if text.startswith("\ufeff"):
        raise FormatError("JSON starts with a byte order mark", code="json-syntax", step=step)
    if _too_deep(text):
        raise FormatError(f"JSON nests deeper than {MAX_DEPTH} levels", code="json-syntax", step=step)
    try:
        return _DECODER.decode(text)
    except FormatError as exc:
        exc.step = step
        raise
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"invalid JSON: {exc}", code="json-syntax", step=step) from exc


def dumps(value: Any) -> bytes:
    """Serialise deterministically: sorted keys, compact, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def dumps_pretty(value: Any) -> bytes:
    """Serialise deterministically for files people read (indented, newline-terminated)."""
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _too_deep(text: str) -> bool:
    """True if arrays/objects nest deeper than MAX_DEPTH (strings removed first)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cheap: deep nesting needs that many openers
        return False
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    if len(brackets) <= 2 * MAX_DEPTH:
        return False
    depth = itertools.accumulate(1 if c in "[{" else -1 for c in brackets)
    return max(depth, default=0) > MAX_DEPTH
