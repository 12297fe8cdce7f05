"""DSSE envelopes: the PAE encoding, strict parsing, and threshold counting."""

from __future__ import annotations

import base64
import json

import pytest
from helpers import GOLDEN_ROOT_KEY, GOLDEN_SIGNING_KEY, OTHER_ROOT_KEY, seed

from tamizdat.errors import FormatError, SignatureError
from tamizdat.keys import dsse
from tamizdat.keys.dsse import BUNDLE_TYPE, INDEX_TYPE, ROOT_TYPE, Envelope, Signature, pae, sign
from tamizdat.keys.ed25519 import SigningKey


def test_pae_matches_the_dsse_spec_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_lengths_are_byte_lengths_in_decimal() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t\u00e9", b"\x00" * 10) == b"DSSEv1 3 t\xc3\xa9 10 " + b"\x00" * 10
    body = b"x" * 1234
    assert pae(BUNDLE_TYPE, body) == b"DSSEv1 %d %s 1234 %s" % (len(BUNDLE_TYPE), BUNDLE_TYPE.encode(), body)


def test_payload_types_are_distinct_domains() -> None:
    assert len({ROOT_TYPE, BUNDLE_TYPE, INDEX_TYPE}) == 3
    env = sign(BUNDLE_TYPE, b"{}", [GOLDEN_SIGNING_KEY])
    with pytest.raises(FormatError) as info:
        Envelope.from_bytes(env.to_bytes(), expected_type=ROOT_TYPE, step="16")
    assert (info.value.code, info.value.step) == ("wrong-payload-type", "16")


def test_sign_is_deterministic_and_sorted_by_keyid() -> None:
    keys = [GOLDEN_SIGNING_KEY, GOLDEN_ROOT_KEY, OTHER_ROOT_KEY]
    a = sign(ROOT_TYPE, b"payload", keys)
    b = sign(ROOT_TYPE, b"payload", list(reversed(keys)) + keys)
    assert a == b
    assert [s.keyid for s in a.signatures] == sorted(k.keyid for k in keys)
    with pytest.raises(ValueError):
        sign(ROOT_TYPE, b"payload", [])


def test_envelope_round_trips_through_bytes() -> None:
    env = sign(ROOT_TYPE, b'{"a":1}', [GOLDEN_ROOT_KEY])
    again = Envelope.from_bytes(env.to_bytes(), expected_type=ROOT_TYPE)
    assert again == env
    assert again.signed_by({GOLDEN_ROOT_KEY.keyid: GOLDEN_ROOT_KEY.public}) == {GOLDEN_ROOT_KEY.keyid}


def _doc(**changes: object) -> dict[str, object]:
    env = sign(ROOT_TYPE, b'{"a":1}', [GOLDEN_ROOT_KEY]).to_json()
    env.update(changes)
    return env


SIG = {"keyid": GOLDEN_ROOT_KEY.keyid, "sig": base64.b64encode(b"\x01" * 64).decode()}


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ([], "bad-envelope"),
        ({"payload": "", "payloadType": ROOT_TYPE}, "bad-envelope"),
        (_doc(extra=1), "bad-envelope"),
        (_doc(payloadType=BUNDLE_TYPE), "wrong-payload-type"),
        (_doc(payload="e30"), "bad-base64"),  # no padding
        (_doc(payload="e31="), "bad-base64"),  # non-canonical trailing bits
        (_doc(payload="e3 0="), "bad-base64"),
        (_doc(payload=123), "bad-base64"),
        (_doc(signatures=[]), "bad-envelope"),
        (_doc(signatures=[SIG] * 17), "bad-envelope"),
        (_doc(signatures={"keyid": "x"}), "bad-envelope"),
        (_doc(signatures=[{**SIG, "extra": 1}]), "bad-envelope"),
        (_doc(signatures=[{"keyid": SIG["keyid"]}]), "bad-envelope"),
        (_doc(signatures=[{**SIG, "keyid": SIG["keyid"].upper()}]), "bad-envelope"),
        (_doc(signatures=[{**SIG, "keyid": SIG["keyid"][:-2]}]), "bad-envelope"),
        (_doc(signatures=[{**SIG, "sig": "AAAA=="}]), "bad-base64"),
    ],
)
def test_envelope_parsing_is_strict(doc: object, code: str) -> None:
    with pytest.raises(FormatError) as info:
        Envelope.from_bytes(json.dumps(doc).encode(), expected_type=ROOT_TYPE, step="12")
    assert (info.value.code, info.value.step) == (code, "12")


def test_sixteen_signatures_are_allowed() -> None:
    Envelope.from_bytes(json.dumps(_doc(signatures=[SIG] * 16)).encode(), expected_type=ROOT_TYPE)


def test_envelope_json_is_strict() -> None:
    data = b'{"payload": "e30=", "payload": "e30=", "payloadType": "x", "signatures": []}'
    with pytest.raises(FormatError) as info:
        Envelope.from_bytes(data, expected_type=ROOT_TYPE, step="16")
    assert (info.value.code, info.value.step) == ("json-duplicate-key", "16")


def test_a_keyid_counts_once_towards_a_threshold() -> None:
    one = sign(ROOT_TYPE, b"payload", [GOLDEN_ROOT_KEY])
    twice = Envelope(one.payload_type, one.payload, one.signatures * 2)
    keys = {GOLDEN_ROOT_KEY.keyid: GOLDEN_ROOT_KEY.public, OTHER_ROOT_KEY.keyid: OTHER_ROOT_KEY.public}
    assert twice.signed_by(keys) == {GOLDEN_ROOT_KEY.keyid}
    twice.verify_threshold(keys, 1, what="doc")
    with pytest.raises(SignatureError) as info:
        twice.verify_threshold(keys, 2, what="doc", step="13", code="root-bad-signature")
    assert (info.value.code, info.value.step) == ("root-bad-signature", "13")
    both = sign(ROOT_TYPE, b"payload", [GOLDEN_ROOT_KEY, OTHER_ROOT_KEY])
    assert both.verify_threshold(keys, 2, what="doc") == set(keys)


def test_signatures_from_untrusted_or_wrong_keys_are_ignored() -> None:
    env = sign(ROOT_TYPE, b"payload", [GOLDEN_ROOT_KEY, OTHER_ROOT_KEY])
    trusted = {GOLDEN_ROOT_KEY.keyid: GOLDEN_ROOT_KEY.public}
    assert env.signed_by(trusted) == {GOLDEN_ROOT_KEY.keyid}
    # A signature filed under a trusted key id but made by another key does not count.
    forged = Envelope(
        env.payload_type,
        env.payload,
        (Signature(GOLDEN_ROOT_KEY.keyid, OTHER_ROOT_KEY.sign(pae(ROOT_TYPE, b"payload"))),),
    )
    assert forged.signed_by(trusted) == set()


def test_signature_covers_type_and_payload() -> None:
    env = sign(ROOT_TYPE, b"payload", [GOLDEN_ROOT_KEY])
    keys = {GOLDEN_ROOT_KEY.keyid: GOLDEN_ROOT_KEY.public}
    assert Envelope(BUNDLE_TYPE, env.payload, env.signatures).signed_by(keys) == set()
    assert Envelope(ROOT_TYPE, b"payloaD", env.signatures).signed_by(keys) == set()
    short = Envelope(ROOT_TYPE, env.payload, (Signature(env.signatures[0].keyid, env.signatures[0].sig[:63]),))
    assert short.signed_by(keys) == set()


def test_payload_bytes_are_not_parsed_by_the_envelope() -> None:
    """The envelope checks signatures over bytes; even non-JSON payloads parse as envelopes."""
    env = sign(INDEX_TYPE, b"\xff\xfe not json", [SigningKey.from_seed(seed("x"))])
    assert Envelope.from_bytes(env.to_bytes(), expected_type=INDEX_TYPE).payload == b"\xff\xfe not json"
    assert dsse.is_keyid(env.signatures[0].keyid)
