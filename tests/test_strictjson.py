"""Strict JSON: what two parsers could read differently is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamizdat.errors import FormatError
from tamizdat.keys import strictjson
from tamizdat.keys.strictjson import MAX_SAFE_INT


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"a": 1, "a": 1}', "json-duplicate-key"),
        (b'{"a": 1, "a": 2}', "json-duplicate-key"),
        (b'{"x": {"a": 1, "b": {"c": [1, {"d": 1, "d": 2}]}}}', "json-duplicate-key"),
        (b'[{"k": 1}, {"k": 1, "k": 1}]', "json-duplicate-key"),
        (b'{"a": 1, "\\u0061": 2}', "json-duplicate-key"),  # the same key, escaped
        (b"NaN", "json-bad-number"),
        (b'{"a": NaN}', "json-bad-number"),
        (b'{"a": Infinity}', "json-bad-number"),
        (b'{"a": -Infinity}', "json-bad-number"),
        (b'{"a": 1.0}', "json-bad-number"),
        (b'{"a": 1.5}', "json-bad-number"),
        (b'{"a": 1e3}', "json-bad-number"),
        (b'{"a": 1E3}', "json-bad-number"),
        (b'{"a": -0.0}', "json-bad-number"),
        (b'{"a": 9007199254740992}', "json-bad-number"),  # 2**53
        (b'{"a": -9007199254740992}', "json-bad-number"),
        (b'{"a": 123456789012345678901234567890}', "json-bad-number"),
        (b"1" * 5000, "json-syntax"),  # beyond Python's int digit limit
        (b'\xef\xbb\xbf{"a": 1}', "json-syntax"),  # UTF-8 byte order mark
        (b'{"a": "\xff"}', "json-bad-utf8"),
        (b'{"a": "\xc0\xaf"}', "json-bad-utf8"),  # overlong encoding of '/'
        (b'{"a": "\xed\xa0\x80"}', "json-bad-utf8"),  # encoded surrogate
        (b'{"a": "\xe2\x82"}', "json-bad-utf8"),  # truncated sequence
        (b"\xfe\xff\x00{\x00}", "json-bad-utf8"),  # UTF-16
        (b"", "json-syntax"),
        (b'{"a": 1', "json-syntax"),
        (b'{"a": 1} {"b": 2}', "json-syntax"),
        (b"{'a': 1}", "json-syntax"),
        (b'{"a": 1,}', "json-syntax"),
        (b"[" * 100_000 + b"]" * 100_000, "json-syntax"),  # recursion
    ],
)
def test_strict_json_rejects(data: bytes, code: str) -> None:
    with pytest.raises(FormatError) as info:
        strictjson.loads(data, step="18")
    assert (info.value.code, info.value.step) == (code, "18")


def test_string_input_with_bom_is_rejected_too() -> None:
    with pytest.raises(FormatError):
        strictjson.loads('\ufeff{"a": 1}')


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b'{"a": 9007199254740991}', {"a": MAX_SAFE_INT}),
        (b'{"a": -9007199254740991}', {"a": -MAX_SAFE_INT}),
        (b'{"a": -0}', {"a": 0}),
        (b'{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 1}]}', {"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 1}]}),
        ('{"ключ": "значение", "fa": "سلام"}'.encode(), {"ключ": "значение", "fa": "سلام"}),
        (b' \n{"t": true, "f": false, "n": null}\n', {"t": True, "f": False, "n": None}),
    ],
)
def test_strict_json_accepts(data: bytes, value: object) -> None:
    assert strictjson.loads(data) == value


def test_dumps_is_deterministic_compact_sorted_utf8() -> None:
    assert strictjson.dumps({"b": 1, "a": ["é", 2]}) == '{"a":["é",2],"b":1}'.encode()
    assert strictjson.dumps_pretty({"b": 1, "a": 2}) == b'{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        strictjson.dumps({"a": float("nan")})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_dumps_then_loads_round_trips(value: object) -> None:
    assert strictjson.loads(strictjson.dumps(value)) == value
    assert strictjson.loads(strictjson.dumps_pretty(value)) == value
