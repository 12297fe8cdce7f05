"""tamizdat's 34-byte leaves and the tlog-witness add-checkpoint body."""

from __future__ import annotations

import hashlib

import pytest

from tamizdat.bundles.tlog.errors import LeafError, WitnessRequestError
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.leaf import (
    LEAF_SIZE,
    Leaf,
    LeafKind,
    bundle_leaf,
    index_leaf,
    log_origin,
    retraction_leaf,
)
from tamizdat.bundles.tlog.witness import (
    AddCheckpointRequest,
    format_size_response,
    origin_hash,
    parse_size_response,
)

BID = "0f" * 32


def test_leaf_layout() -> None:
    leaf = bundle_leaf(BID)
    data = leaf.to_bytes()
    assert len(data) == LEAF_SIZE == 34
    assert data == b"\x01\x01" + bytes.fromhex(BID)
    assert retraction_leaf(BID).to_bytes()[:2] == b"\x01\x02"
    idx = index_leaf(b"payload")
    assert idx.to_bytes() == b"\x01\x03" + hashlib.sha256(b"payload").digest()
    assert leaf.hash() == leaf_hash(data)
    assert Leaf.parse(data) == leaf and leaf.id_hex == BID
    assert log_origin("ab" * 32) == "ab" * 32 + "/log"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x01" + b"\x00" * 31,
        b"\x01\x01" + b"\x00" * 33,
        b"\x02\x01" + b"\x00" * 32,
        b"\x01\x04" + b"\x00" * 32,
    ],
)
def test_bad_leaves(data: bytes) -> None:
    with pytest.raises(LeafError):
        Leaf.parse(data)


def test_bad_ids() -> None:
    for bad in ["AB" * 32, "ab" * 31, "zz" * 32, ""]:
        with pytest.raises(LeafError):
            bundle_leaf(bad)
        with pytest.raises(LeafError):
            log_origin(bad)
    assert LeafKind(3) is LeafKind.INDEX


SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
).encode()


def test_witness_request_spec_example() -> None:
    req = AddCheckpointRequest.parse(SPEC_REQUEST)
    assert req.old_size == 20852014 and len(req.proof) == 4
    assert req.checkpoint.startswith(b"example.com/behind-the-sofa\n20852163\n")
    assert req.to_bytes() == SPEC_REQUEST


@pytest.mark.parametrize(
    "data",
    [
        b"old 01\n\ncp",
        b"old 1\ncp",
        b"new 1\n\ncp",
        b"old 0\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\ncp",  # proof from size 0
        b"old 5\nAAAA\n\ncp",
        b"old 5\n" + b"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" * 64 + b"\ncp",
    ],
)
def test_bad_witness_requests(data: bytes) -> None:
    with pytest.raises(WitnessRequestError):
        AddCheckpointRequest.parse(data)


def test_size_response() -> None:
    assert format_size_response(42) == b"42\n"
    assert parse_size_response(b"42\n") == 42
    for bad in [b"42", b"042\n", b"-1\n", b""]:
        with pytest.raises(WitnessRequestError):
            parse_size_response(bad)


def test_origin_hash() -> None:
    assert origin_hash("example.com/log") == hashlib.sha256(b"example.com/log").hexdigest()
