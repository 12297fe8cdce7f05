"""Root documents: strict schema, and the chain walked from a pinned key id or a trusted root."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest
from helpers import (
    GOLDEN,
    GOLDEN_LOG_KEY,
    GOLDEN_ROOT_KEY,
    GOLDEN_ROOT_KEYID,
    GOLDEN_SIGNING_KEY,
    OTHER_ROOT_KEY,
    ROOT_TYPE,
    compact_json,
    envelope_bytes,
    seed,
    signed_envelope,
)

from tamizdat.errors import FormatError, RejectedError, SignatureError
from tamizdat.keys import dsse
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import Root, parse_root_envelope, verify_root_chain

ROOTS = [(GOLDEN / "keys" / "roots" / f"{v}.json").read_bytes() for v in (1, 2, 3)]
V1: dict[str, Any] = json.loads(base64.b64decode(json.loads(ROOTS[0])["payload"]))
STEPS = ("12", "13", "14", "15")


def _payload(**changes: Any) -> bytes:
    doc = copy.deepcopy(V1)
    doc.update(changes)
    return compact_json(doc)


def test_golden_root_payload_round_trips() -> None:
    root = Root.from_payload(_payload())
    assert root.to_payload() == _payload()
    assert root.version == 1 and root.publisher == "Example Newsroom"
    assert set(root.root_keys) == {GOLDEN_ROOT_KEYID}
    assert set(root.signing_keys) == {GOLDEN_SIGNING_KEY.keyid, GOLDEN_LOG_KEY.keyid}
    assert root.signing_keys[GOLDEN_SIGNING_KEY.keyid].purposes == ("bundle", "index")
    assert root.log_keys() == {GOLDEN_LOG_KEY.keyid: GOLDEN_LOG_KEY.public}
    assert root.tlog is not None and root.tlog.origin == f"{GOLDEN_ROOT_KEYID}/log"


BUNDLE_KEY_ENTRY = next(k for k in V1["signing_keys"] if k["keyid"] == GOLDEN_SIGNING_KEY.keyid)


def _signing(**changes: Any) -> list[dict[str, Any]]:
    return [{**BUNDLE_KEY_ENTRY, **changes}]


ROOT_KEY_ENTRY = {"keyid": GOLDEN_ROOT_KEYID, "public": GOLDEN_ROOT_KEY.public.b64()}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"format": 2}, "bad-root"),
        ({"extra": 1}, "bad-root"),
        ({"version": 0}, "bad-root"),
        ({"version": "1"}, "bad-root"),
        ({"publisher": ""}, "bad-root"),
        ({"publisher": "x" * 201}, "bad-root"),
        ({"created": "2026-01-01T00:00:00.5Z"}, "bad-time"),
        ({"created": "2026-01-01 00:00:00Z"}, "bad-time"),
        ({"created": "2026-02-30T00:00:00Z"}, "bad-time"),
        ({"expires": "2025-12-31T23:59:59Z"}, "bad-root"),
        ({"expires": "2026-01-01T00:00:00Z"}, "bad-root"),
        ({"root_keys": []}, "bad-root"),
        ({"root_keys": [ROOT_KEY_ENTRY, ROOT_KEY_ENTRY]}, "bad-root"),
        ({"root_keys": [{**ROOT_KEY_ENTRY, "keyid": OTHER_ROOT_KEY.keyid}]}, "bad-root"),
        ({"root_keys": [{**ROOT_KEY_ENTRY, "extra": 1}]}, "bad-root"),
        ({"root_keys": [{**ROOT_KEY_ENTRY, "public": base64.b64encode(bytes(32)).decode()}]}, "bad-public-key"),
        ({"threshold": 0}, "bad-root"),
        ({"threshold": 2}, "bad-root"),
        ({"signing_keys": _signing(purposes=["index", "bundle"])}, "bad-root"),
        ({"signing_keys": _signing(purposes=["publish"])}, "bad-root"),
        ({"signing_keys": _signing(purposes=[])}, "bad-root"),
        ({"signing_keys": _signing(purposes=["bundle", "bundle"])}, "bad-root"),
        ({"signing_keys": _signing(not_after=BUNDLE_KEY_ENTRY["not_before"])}, "bad-root"),
        ({"signing_keys": _signing(extra=1)}, "bad-root"),
        ({"signing_keys": _signing() * 2}, "bad-root"),
        ({"signing_keys": _signing(keyid=ROOT_KEY_ENTRY["keyid"], public=ROOT_KEY_ENTRY["public"])}, "bad-root"),
        ({"revoked": [{"keyid": "ab", "revoked_at": "2026-01-01T00:00:00Z", "reason": "x"}]}, "bad-root"),
        ({"revoked": [{"keyid": GOLDEN_SIGNING_KEY.keyid, "revoked_at": "2026-01-01T00:00:00Z"}]}, "bad-root"),
    ],
)
def test_root_schema_is_strict(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(RejectedError) as info:
        Root.from_payload(_payload(**changes), step="12")
    assert (info.value.code, info.value.step) == (code, "12")


def test_root_payload_json_is_strict() -> None:
    with pytest.raises(FormatError) as info:
        Root.from_payload(b'{"format":1,' + _payload()[1:], step="12")
    assert (info.value.code, info.value.step) == ("json-duplicate-key", "12")


def test_authorize_decisions() -> None:
    root = Root.from_payload(_payload())
    kid = GOLDEN_SIGNING_KEY.keyid
    entry = root.signing_keys[kid]
    assert root.authorize(kid, "bundle", entry.not_before, step="19") == entry
    assert root.authorize(kid, "index", entry.not_after, step="19") == entry
    for at in (entry.not_before - dt.timedelta(seconds=1), entry.not_after + dt.timedelta(seconds=1)):
        with pytest.raises(SignatureError) as info:
            root.authorize(kid, "bundle", at, step="19")
        assert info.value.code == "key-outside-window"
    with pytest.raises(SignatureError) as info:
        root.authorize(OTHER_ROOT_KEY.keyid, "bundle", entry.not_before, step="19")
    assert info.value.code == "key-unknown"


# -- the chain ----------------------------------------------------------------------


def test_golden_chain_from_the_pinned_id() -> None:
    chain = verify_root_chain(ROOTS, pinned_keyid=GOLDEN_ROOT_KEYID, steps=STEPS)
    assert [r.version for r in chain.roots] == [1, 2, 3]
    assert chain.envelopes == tuple(ROOTS)


def test_chain_from_a_trusted_root_authenticates_older_carried_roots_backwards() -> None:
    chain = verify_root_chain(ROOTS, trusted=ROOTS[1], steps=STEPS)
    assert [r.version for r in chain.roots] == [1, 2, 3]
    assert chain.envelopes == tuple(ROOTS)
    # Root 1 is missing: nothing older can be linked; the trusted root still governs.
    only_new = verify_root_chain(ROOTS[:1], trusted=ROOTS[2])
    assert [r.version for r in only_new.roots] == [3]


def test_an_older_root_the_trusted_one_does_not_vouch_for_is_rejected() -> None:
    _, forged = parse_root_envelope(ROOTS[0])
    stranger = dsse.sign(dsse.ROOT_TYPE, forged.to_payload(), [OTHER_ROOT_KEY]).to_bytes()
    assert _reject([stranger, ROOTS[1]], trusted=ROOTS[1]) == ("15", "root-chain-signature")
    # Not linked to the trusted root (version 2 is not carried): it decides nothing.
    assert [r.version for r in verify_root_chain([stranger], trusted=ROOTS[2]).roots] == [3]


def test_a_carried_copy_of_the_trusted_version_must_match_it() -> None:
    env = json.loads(ROOTS[1])
    env["payload"] = base64.b64encode(_forged_publisher(ROOTS[1])).decode()
    assert _reject([ROOTS[0], envelope_bytes(env), ROOTS[2]], trusted=ROOTS[1]) == ("15", "root-chain-signature")


def _forged_publisher(envelope: bytes) -> bytes:
    doc = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    doc["publisher"] = "Ministry of Truth"
    return compact_json(doc)


def test_chain_needs_exactly_one_anchor() -> None:
    with pytest.raises(ValueError):
        verify_root_chain(ROOTS)
    with pytest.raises(ValueError):
        verify_root_chain(ROOTS, pinned_keyid=GOLDEN_ROOT_KEYID, trusted=ROOTS[0])


def _reject(docs: list[bytes], **kw: Any) -> tuple[str | None, str]:
    with pytest.raises(RejectedError) as info:
        verify_root_chain(docs, steps=STEPS, **kw)
    return info.value.step, info.value.code


def test_unknown_pinned_id_is_not_an_anchor() -> None:
    assert _reject(ROOTS, pinned_keyid=OTHER_ROOT_KEY.keyid) == ("13", "root-not-pinned")
    assert _reject([], pinned_keyid=GOLDEN_ROOT_KEYID) == ("13", "root-not-pinned")


def test_pinned_id_must_have_signed_the_anchor() -> None:
    """A root that lists the pinned key but is signed only by another of its keys is no anchor."""
    doc = copy.deepcopy(V1)
    other = SigningKey.from_seed(seed("second root"))
    doc["root_keys"] = sorted([ROOT_KEY_ENTRY, {"keyid": other.keyid, "public": other.public.b64()}], key=str)
    env = envelope_bytes(signed_envelope(ROOT_TYPE, compact_json(doc), [other]))
    assert _reject([env], pinned_keyid=GOLDEN_ROOT_KEYID) == ("13", "root-not-pinned")
    assert verify_root_chain([env], pinned_keyid=other.keyid).newest.version == 1


def _v3_root_keyid() -> str:
    v3 = json.loads(base64.b64decode(json.loads(ROOTS[2])["payload"]))
    new_id = sorted(k["keyid"] for k in v3["root_keys"])[0]
    assert new_id != GOLDEN_ROOT_KEYID
    return new_id


def test_anchor_is_the_lowest_root_signed_by_the_pinned_key() -> None:
    """Pinned to the key that version 3 introduced (rotate-root), version 3 anchors; 1-2 join backwards."""
    chain = verify_root_chain(ROOTS, pinned_keyid=_v3_root_keyid(), steps=STEPS)
    assert [r.version for r in chain.roots] == [1, 2, 3] and chain.envelopes == tuple(ROOTS)
    assert [r.version for r in verify_root_chain(ROOTS[2:], pinned_keyid=_v3_root_keyid()).roots] == [3]


def _flipped_signature(envelope: bytes) -> bytes:
    env = json.loads(envelope)
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[5] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return envelope_bytes(env)


def _with_payload(envelope: bytes, payload: bytes) -> bytes:
    env = json.loads(envelope)
    env["payload"] = base64.b64encode(payload).decode()
    return envelope_bytes(env)


@pytest.mark.parametrize("pinned", ["first", "v3"])
def test_every_carried_root_below_the_anchor_must_verify(pinned: str) -> None:
    """A forged root 1 that lists the pinned key is not skipped: root 2 anchors, and root 1 must still verify."""
    keyid = GOLDEN_ROOT_KEYID if pinned == "first" else _v3_root_keyid()
    forged_payload = _with_payload(ROOTS[0], _forged_publisher(ROOTS[0]))
    stranger = dsse.sign(dsse.ROOT_TYPE, parse_root_envelope(ROOTS[0])[1].to_payload(), [OTHER_ROOT_KEY]).to_bytes()
    for root1 in (_flipped_signature(ROOTS[0]), forged_payload, stranger):
        assert _reject([root1, *ROOTS[1:]], pinned_keyid=keyid) == ("15", "root-chain-signature")
    # Root 2 forged below a version-3 anchor: version 3 was not signed by it.
    if pinned == "v3":
        forged2 = _with_payload(ROOTS[1], _forged_publisher(ROOTS[1]))
        assert _reject([ROOTS[0], forged2, ROOTS[2]], pinned_keyid=keyid) == ("15", "root-chain-signature")
        assert _reject([ROOTS[0], ROOTS[2]], pinned_keyid=keyid) == ("14", "root-chain-gap")
        assert _reject([ROOTS[2], ROOTS[2]], pinned_keyid=keyid) == ("14", "root-chain-gap")


def test_untrusted_self_signed_trusted_root_is_refused() -> None:
    env = json.loads(ROOTS[0])
    sig = base64.b64decode(env["signatures"][0]["sig"])
    env["signatures"][0]["sig"] = base64.b64encode(sig[:-1] + bytes([sig[-1] ^ 1])).decode()
    assert _reject(ROOTS, trusted=envelope_bytes(env)) == ("13", "root-bad-signature")


def test_threshold_two_root() -> None:
    second = SigningKey.from_seed(seed("golden root 2"))
    doc = copy.deepcopy(V1)
    doc["root_keys"] = sorted([ROOT_KEY_ENTRY, {"keyid": second.keyid, "public": second.public.b64()}], key=str)
    doc["threshold"] = 2
    both = envelope_bytes(signed_envelope(ROOT_TYPE, compact_json(doc), [GOLDEN_ROOT_KEY, second]))
    assert verify_root_chain([both], pinned_keyid=GOLDEN_ROOT_KEYID).newest.threshold == 2
    one = signed_envelope(ROOT_TYPE, compact_json(doc), [GOLDEN_ROOT_KEY])
    one["signatures"] = one["signatures"] * 2  # the same key id twice counts once
    assert _reject([envelope_bytes(one)], pinned_keyid=GOLDEN_ROOT_KEYID) == ("13", "root-bad-signature")


def _v2(new_roots: list[SigningKey], signers: list[SigningKey], version: int = 2) -> bytes:
    doc = copy.deepcopy(V1)
    doc.update(
        version=version,
        root_keys=sorted(({"keyid": k.keyid, "public": k.public.b64()} for k in new_roots), key=str),
        created="2026-04-01T00:00:00Z",
        expires="2027-04-01T00:00:00Z",
    )
    return envelope_bytes(signed_envelope(ROOT_TYPE, compact_json(doc), signers))


def test_next_root_signed_by_old_and_new_keys_is_accepted() -> None:
    new = SigningKey.from_seed(seed("next root"))
    chain = verify_root_chain([ROOTS[0], _v2([new], [GOLDEN_ROOT_KEY, new])], pinned_keyid=GOLDEN_ROOT_KEYID)
    assert chain.newest.version == 2 and set(chain.newest.root_keys) == {new.keyid}


def test_next_root_signed_only_by_its_own_keys_is_rejected() -> None:
    new = SigningKey.from_seed(seed("next root"))
    docs = [ROOTS[0], _v2([new], [new])]
    assert _reject(docs, pinned_keyid=GOLDEN_ROOT_KEYID) == ("15", "root-chain-signature")


def test_next_root_signed_only_by_the_old_keys_is_rejected() -> None:
    new = SigningKey.from_seed(seed("next root"))
    docs = [ROOTS[0], _v2([new], [GOLDEN_ROOT_KEY])]
    assert _reject(docs, pinned_keyid=GOLDEN_ROOT_KEYID) == ("15", "root-chain-signature")


def test_chain_versions_must_step_by_one() -> None:
    new = SigningKey.from_seed(seed("next root"))
    skip = _v2([new], [GOLDEN_ROOT_KEY, new], version=3)
    assert _reject([ROOTS[0], skip], pinned_keyid=GOLDEN_ROOT_KEYID) == ("14", "root-chain-gap")
    assert _reject([ROOTS[0], ROOTS[0]], pinned_keyid=GOLDEN_ROOT_KEYID) == ("14", "root-chain-gap")
    assert _reject([ROOTS[0], ROOTS[2]], pinned_keyid=GOLDEN_ROOT_KEYID) == ("14", "root-chain-gap")


def test_unparsable_carried_root_fails_first() -> None:
    assert _reject([ROOTS[0], b"{}"], pinned_keyid=GOLDEN_ROOT_KEYID) == ("12", "bad-envelope")
    assert _reject([ROOTS[0], b"\xff"], pinned_keyid=GOLDEN_ROOT_KEYID) == ("12", "json-bad-utf8")


def test_a_chain_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(FormatError) as info:
        verify_root_chain([b"{}"] * 1001, pinned_keyid=GOLDEN_ROOT_KEYID, steps=STEPS)
    assert (info.value.code, info.value.step) == ("root-chain", STEPS[0])
