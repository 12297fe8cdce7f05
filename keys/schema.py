"""Small strict-schema helpers: exact field sets and typed getters.

Signed payloads reject unknown fields, so that an addition always bumps the
``format`` version and both verifiers change together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NoReturn

from tamizdat.errors import FormatError

from . import timefmt

_FieldSets = tuple[frozenset[str], frozenset[str]]
# Schemas are few and fixed (tuples in the code): their field sets are built once.
_SCHEMAS: dict[tuple[tuple[str, ...], tuple[str, ...]], _FieldSets] = {}


def _field_sets(required: Iterable[str], optional: Iterable[str]) -> _FieldSets:
    """(required fields, all allowed fields) as frozensets, cached for tuple schemas."""
    if type(required) is tuple and type(optional) is tuple:
        key = (required, optional)
        sets = _SCHEMAS.get(key)
        if sets is None and len(_SCHEMAS) < 256:
            sets = _SCHEMAS[key] = (frozenset(required), frozenset(required) | frozenset(optional))
        if sets is not None:
            return sets
    req = frozenset(required)
    return req, req | frozenset(optional)


class Reader:
    """Reads one JSON object with a fixed set of fields, raising with one code and step."""

    def __init__(
        self,
        doc: Any,
        *,
        what: str,
        required: Iterable[str],
        optional: Iterable[str] = (),
        code: str = "bad-schema",
        step: str | None = None,
    ):
        self.what = what
        self.code = code
        self.step = step
        if not isinstance(doc, dict):
            self.fail("must be a JSON object")
        req, allowed = _field_sets(required, optional)
        keys = doc.keys()
        if not (req <= keys and keys <= allowed):  # the exact field set is the common case
            missing = sorted(req - keys)
            if missing:
                self.fail(f"lacks field {missing[0]!r}")
            unknown = sorted(keys - allowed)
            self.fail(f"has unknown field {unknown[0][:40]!r}")
        self.doc: dict[str, Any] = doc

    def fail(self, message: str) -> NoReturn:
        raise FormatError(f"{self.what} {message}", code=self.code, step=self.step)

    def has(self, key: str) -> bool:
        return key in self.doc

    def text(self, key: str, *, max_len: int = 1000, min_len: int = 1, default: str | None = None) -> str:
        value = self.doc.get(key, default)
        if not isinstance(value, str) or not min_len <= len(value) <= max_len:
            self.fail(f"field {key!r} must be a string of {min_len} to {max_len} characters")
        if "\x00" in value:
            self.fail(f"field {key!r} contains NUL")
        return value

    def opt_text(self, key: str, *, max_len: int = 1000) -> str | None:
        if key not in self.doc:
            return None
        return self.text(key, max_len=max_len)

    def integer(self, key: str, *, lo: int = 0, hi: int = 2**53 - 1) -> int:
        value = self.doc.get(key)
        if type(value) is not int or not lo <= value <= hi:
            self.fail(f"field {key!r} must be an integer from {lo} to {hi}")
        return value

    def time(self, key: str) -> dt.datetime:
        return timefmt.parse(self.doc.get(key), field=f"{self.what} {key}", step=self.step)

    def opt_time(self, key: str) -> dt.datetime | None:
        return self.time(key) if key in self.doc else None

    def items(self, key: str, *, max_items: int, min_items: int = 0) -> list[Any]:
        value = self.doc.get(key)
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            self.fail(f"field {key!r} must be a list of {min_items} to {max_items} items")
        return value

    def strings(self, key: str, *, max_items: int, max_len: int = 200, min_items: int = 0) -> list[str]:
        items = self.items(key, max_items=max_items, min_items=min_items)
        for item in items:
            if not isinstance(item, str) or not 1 <= len(item) <= max_len:
                self.fail(f"field {key!r} must hold strings of 1 to {max_len} characters")
        if len(set(items)) != len(items):
            self.fail(f"field {key!r} has duplicates")
        return items

    def obj(self, key: str) -> Any:
        return self.doc.get(key)
