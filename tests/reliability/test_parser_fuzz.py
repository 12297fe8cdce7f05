"""Hypothesis fuzz of the bundle reader and the index and shard parsers: the project's own error, or success.

Inputs are random bytes, byte-level mutations of valid documents, and
structural edits of valid documents (a value anywhere replaced by an arbitrary
JSON value, a key removed or added). For ``verify_index`` the edited payloads
are also signed with the publisher's real index key, so that the signature
check (which comes first) passes and the payload parser is reached. Every
call must return, or raise a ``tamizdat.errors.TamizdatError`` subclass; any
other exception (TypeError, KeyError, OverflowError, RecursionError, ...) is
a bug. Examples per property: 200, or 2,000 with TAMIZDAT_FULL=1.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput
from tamizdat.bundles.index import (
    ArticleInfo,
    BundleEntry,
    Index,
    Retraction,
    Shard,
    ShardRef,
    check_shard,
    shard_sha256,
    sign_index,
    verify_index,
)
from tamizdat.bundles.verify import verify_bundle
from tamizdat.errors import TamizdatError
from tamizdat.keys import dsse
from tamizdat.keys.keydir import KeyDir

from .support import FULL

EXAMPLES = 2000 if FULL else 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Fixture:
    """Fixed-seed keys, one valid bundle, one valid shard and one valid signed index."""

    def __init__(self, folder: Path):
        kd = KeyDir(folder / "keys")
        kd.init("Fuzz Desk", seeds=[bytes([31]) * 32, bytes([32]) * 32], now=NOW)
        self.root_keyid = kd.root_keyid()
        self.root = kd.chain().newest
        signer = kd.signer("bundle", at=NOW)
        self.index_signer = kd.signer("index", at=NOW)
        art = ArticleInput(id="a1", lang="en", title="Fuzz", body="Some *text*.", published=NOW)
        built = build_bundle(
            BundleInput((art,)), signer=signer, chain=kd.chain(), out=folder / "b.zip", created=NOW, durable=False
        )
        self.bundle = (folder / "b.zip").read_bytes()
        self.bundle_id = built.bundle_id
        entry = BundleEntry(
            id=built.bundle_id,
            sha256="ab" * 32,
            size=len(self.bundle),
            created=NOW,
            kind="article",
            articles=(ArticleInfo("a1", 1, "en", "Fuzz"),),
            supersedes=("cd" * 32,),
            retracted=Retraction(NOW, "legal request"),
        )
        self.shard = Shard(
            (entry, BundleEntry("ef" * 32, "01" * 32, 10, NOW, "edition", (ArticleInfo("b", 2, "ru", "T"),), (), None))
        )
        self.shard_bytes = self.shard.to_bytes()
        ref = ShardRef(shard_sha256(self.shard_bytes), len(self.shard_bytes), 2)
        self.index = Index(1, NOW, NOW + dt.timedelta(days=1), 1, ("https://m.example.org/",), (ref,))
        self.index_payload = self.index.to_payload()
        self.index_bytes = sign_index(self.index, self.index_signer)

    def sign_payload(self, payload: bytes) -> bytes:
        return dsse.sign(dsse.INDEX_TYPE, payload, [self.index_signer]).to_bytes()


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("fuzz"))


def ours_or_nothing(fn: Any, *args: Any, **kw: Any) -> str:
    """Call ``fn``; "ok", or the code of the TamizdatError it raised. Anything else propagates (a bug)."""
    try:
        fn(*args, **kw)
    except TamizdatError as err:
        return err.code
    return "ok"


# -- strategies ----------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "2026-01-01T00:00:00Z", "9999-99-99T99:99:99Z", "ab" * 32, "https://x/", "article"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def edited(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three structural edits at random places."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent: Any = None
        node = doc
        for key in path:
            parent, node = node, node[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            doc = draw(json_values) if action == "replace" else doc
            continue
        key = path[-1]
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "delete":
            del parent[key]
        elif isinstance(node, dict):
            node[draw(st.text(max_size=12))] = draw(json_values)
        elif isinstance(node, list):
            node.append(draw(json_values))
        else:
            parent[key] = [node, draw(json_values)]
    return doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if not out:
            break
        pos = draw(st.integers(0, len(out) - 1))
        if op == "flip":
            out[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[pos : pos + draw(st.integers(1, 8))]
        else:
            del out[pos:]
    return bytes(out)


# -- the bundle reader -----------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4096))
def test_verify_bundle_random_bytes(fx: Fixture, data: bytes) -> None:
    ours_or_nothing(verify_bundle, io.BytesIO(data), root_keyid=fx.root_keyid)


@FUZZ
@given(st.data())
def test_verify_bundle_mutated(fx: Fixture, data: st.DataObject) -> None:
    mutated = data.draw(byte_mutation(fx.bundle))
    code = ours_or_nothing(verify_bundle, io.BytesIO(mutated), root_keyid=fx.root_keyid)
    if code == "ok":
        assert verify_bundle(io.BytesIO(mutated), root_keyid=fx.root_keyid).bundle_id == fx.bundle_id


@FUZZ
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_verify_bundle_with_junk_around(fx: Fixture, head: bytes, tail: bytes) -> None:
    ours_or_nothing(verify_bundle, io.BytesIO(head + fx.bundle + tail), root_keyid=fx.root_keyid)


# -- the index ---------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048))
def test_verify_index_random_bytes(fx: Fixture, data: bytes) -> None:
    ours_or_nothing(verify_index, data, fx.root)


@FUZZ
@given(st.data())
def test_verify_index_mutated_envelope(fx: Fixture, data: st.DataObject) -> None:
    ours_or_nothing(verify_index, data.draw(byte_mutation(fx.index_bytes)), fx.root)


@FUZZ
@given(st.data())
def test_verify_index_edited_envelope(fx: Fixture, data: st.DataObject) -> None:
    doc = data.draw(edited(json.loads(fx.index_bytes)))
    ours_or_nothing(verify_index, dumps(doc), fx.root)


@FUZZ
@given(st.data())
def test_verify_index_signed_edited_payload(fx: Fixture, data: st.DataObject) -> None:
    """Validly signed, so the payload parser (I3) and the key checks (I4) are reached."""
    payload = dumps(data.draw(edited(json.loads(fx.index_payload))))
    code = ours_or_nothing(verify_index, fx.sign_payload(payload), fx.root)
    assert code != "index-bad-signature"


@FUZZ
@given(st.one_of(st.binary(max_size=1024), json_values.map(dumps)))
def test_index_from_payload_anything(data: bytes) -> None:
    ours_or_nothing(Index.from_payload, data)


@FUZZ
@given(st.data())
def test_index_from_payload_edited(fx: Fixture, data: st.DataObject) -> None:
    ours_or_nothing(Index.from_payload, dumps(data.draw(edited(json.loads(fx.index_payload)))))


# -- shards ------------------------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=2048), json_values.map(dumps)))
def test_shard_from_bytes_anything(data: bytes) -> None:
    ours_or_nothing(Shard.from_bytes, data)


@FUZZ
@given(st.data())
def test_shard_from_bytes_edited(fx: Fixture, data: st.DataObject) -> None:
    ours_or_nothing(Shard.from_bytes, dumps(data.draw(edited(json.loads(fx.shard_bytes)))))


@FUZZ
@given(st.data())
def test_shard_mutated_against_its_reference(fx: Fixture, data: st.DataObject) -> None:
    [ref] = fx.index.shards
    mutated = data.draw(byte_mutation(fx.shard_bytes))
    code = ours_or_nothing(check_shard, ref, mutated)
    assert code != "ok" or mutated == fx.shard_bytes


def test_deep_nesting_is_our_error(fx: Fixture) -> None:
    """Nesting far past the strict-JSON depth limit: an error of ours, never RecursionError."""
    for depth in (600, 100_000):
        deep = b"[" * depth + b"]" * depth
        assert ours_or_nothing(Shard.from_bytes, deep) != "ok"
        assert ours_or_nothing(Index.from_payload, deep) != "ok"
        assert ours_or_nothing(verify_index, fx.sign_payload(deep), fx.root) != "ok"


def test_huge_numbers_are_our_error(fx: Fixture) -> None:
    doc = json.loads(fx.index_payload)
    for value in (10**400, -(10**400), 2**53, 1e308, math.inf):
        doc["version"] = value
        assert ours_or_nothing(Index.from_payload, dumps(doc)) != "ok"
