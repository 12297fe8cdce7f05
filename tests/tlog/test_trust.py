"""LogTrust: a root's tlog section and log keys joined into one checkpoint policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tamizdat.bundles.tlog import LogTrust
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.errors import CheckpointError, NoteSignatureError, PolicyError, QuorumError
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.root import KeyEntry, LogSettings, Revocation, Root

from .conftest import NOW
from .util import key

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROOT_KEY = key(40)
ORIGIN = f"{ROOT_KEY.keyid}/log"
LOG_KEYS = [key(41), key(42)]
ONLINE = key(43)
W = [CosignatureSigner(f"mirror{i}.example", key(50 + i), clock=lambda: NOW) for i in range(3)]
CP = Checkpoint(ORIGIN, 1, leaf_hash(b"\x01\x03" + bytes(32)))


def _entry(k: SigningKey, *purposes: str) -> KeyEntry:
    return KeyEntry(k.public, purposes, T0, T0 + dt.timedelta(days=365))


def _root(policy: str | None = "quorum none\n", *, log_keys: list[SigningKey] = LOG_KEYS, max_age: int = 3600) -> Root:
    signing = {k.keyid: _entry(k, "log") for k in log_keys}
    signing[ONLINE.keyid] = _entry(ONLINE, "bundle", "index")
    return Root(
        version=3,
        publisher="Trust Desk",
        created=T0,
        expires=T0 + dt.timedelta(days=365),
        root_keys={ROOT_KEY.keyid: ROOT_KEY.public},
        threshold=1,
        signing_keys=signing,
        revoked={},
        tlog=None if policy is None else LogSettings(ORIGIN, policy, max_age),
    )


def _witness_policy(quorum: str = "mirrors") -> str:
    lines = [f"witness m{i} {w.verifier.vkey()} https://m{i}.example/" for i, w in enumerate(W)]
    return "\n".join([*lines, "group mirrors 2 m0 m1 m2", f"quorum {quorum}"]) + "\n"


def _cosigned(data: bytes, *signers: tuple[CosignatureSigner, int]) -> bytes:
    note = Note.parse(data)
    return note.with_signatures(s.cosign(CP.text(), ts) for s, ts in signers).to_bytes()


def test_a_root_without_tlog_has_no_log_trust() -> None:
    assert LogTrust.from_root(_root(None)) is None


def test_policy_gets_one_log_line_per_log_key() -> None:
    trust = LogTrust.from_root(_root(_witness_policy(), max_age=7200))
    assert trust is not None and (trust.origin, trust.max_age) == (ORIGIN, 7200)
    assert sorted(log.verifier.public_key.raw for log in trust.policy.logs) == sorted(k.public.raw for k in LOG_KEYS)
    assert {log.origin for log in trust.policy.logs} == {ORIGIN}
    assert [w.name for w in trust.policy.witnesses] == ["m0", "m1", "m2"] and trust.policy.quorum == "mirrors"
    assert trust.fresh_after(NOW) == NOW - 7200


def test_no_log_key_is_a_bad_log_policy() -> None:
    with pytest.raises(PolicyError) as info:
        LogTrust.from_root(_root(log_keys=[]))
    assert info.value.code == "bad-log-policy" and "no log key" in info.value.message
    revoked = _root()
    revoked = replace(revoked, revoked={k.keyid: Revocation(k.keyid, T0, "retired") for k in LOG_KEYS})
    with pytest.raises(PolicyError) as info:
        LogTrust.from_root(revoked)
    assert info.value.code == "bad-log-policy"


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        ("quorum nobody\n", "policy line 1"),
        ("witness m0 nonsense\nquorum m0\n", "policy line 1"),
        ("# only a comment\n", "no quorum line"),
        ("quorum none\nquorum none\n", "policy line 2"),
        ("frobnicate\nquorum none\n", "policy line 1"),
    ],
)
def test_unparsable_policy_names_the_roots_own_line(policy: str, line: str) -> None:
    with pytest.raises(PolicyError) as info:
        LogTrust.from_root(_root(policy))
    assert info.value.code == "bad-log-policy" and line in info.value.message


def test_verify_checkpoint_by_any_log_key_with_quorum() -> None:
    trust = LogTrust.from_root(_root(_witness_policy()))
    assert trust is not None
    for log_key in LOG_KEYS:
        signed_by_log = sign_checkpoint(CP, [Ed25519Signer(ORIGIN, log_key)])
        with pytest.raises(QuorumError) as info:
            trust.verify_checkpoint(signed_by_log)
        assert info.value.code == "no-quorum"
        one = _cosigned(signed_by_log, (W[0], NOW))
        with pytest.raises(QuorumError):
            trust.verify_checkpoint(one)
        two = _cosigned(signed_by_log, (W[0], NOW), (W[2], NOW - 100))
        signed = trust.verify_checkpoint(two)
        assert signed.checkpoint == CP
        assert trust.witness_names(signed) == ("m0", "m2")
        assert trust.witness_names(signed, not_before=NOW - 50) == ("m0",)
        with pytest.raises(QuorumError):  # the older cosignature is stale
            trust.verify_checkpoint(two, not_before=NOW - 50)


def test_quorum_none_needs_only_the_log_signature() -> None:
    trust = LogTrust.from_root(_root())
    assert trust is not None
    signed = trust.verify_checkpoint(sign_checkpoint(CP, [Ed25519Signer(ORIGIN, LOG_KEYS[1])]))
    assert trust.witness_names(signed) == ()


def test_other_keys_and_other_origins_are_refused() -> None:
    trust = LogTrust.from_root(_root())
    assert trust is not None
    with pytest.raises(NoteSignatureError):  # the bundle key is no log key
        trust.verify_checkpoint(sign_checkpoint(CP, [Ed25519Signer(ORIGIN, ONLINE)]))
    other = Checkpoint("other.example/log", CP.size, CP.root)
    with pytest.raises(CheckpointError) as info:
        trust.verify_checkpoint(sign_checkpoint(other, [Ed25519Signer(other.origin, LOG_KEYS[0])]))
    assert info.value.code == "origin-mismatch"
    revoked = replace(_root(), revoked={LOG_KEYS[0].keyid: Revocation(LOG_KEYS[0].keyid, T0, "leaked")})
    trust = LogTrust.from_root(revoked)
    assert trust is not None
    with pytest.raises(NoteSignatureError):
        trust.verify_checkpoint(sign_checkpoint(CP, [Ed25519Signer(ORIGIN, LOG_KEYS[0])]))
    trust.verify_checkpoint(sign_checkpoint(CP, [Ed25519Signer(ORIGIN, LOG_KEYS[1])]))
