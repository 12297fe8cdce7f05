"""bundles/tlog/reader.py: a reader's check of a bundle's log proof against its root."""

from __future__ import annotations

import time

import pytest

from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.reader import (
    FUTURE_SKEW,
    MAX_PROOF_BYTES,
    LogProofError,
    check_index_proof,
    check_log_proof,
    quorum_time,
)
from tamizdat.bundles.tlog.trust import LogTrust

from .logkit import LogKit, fake_id, proof_cases

NOW = int(time.time())


@pytest.fixture(scope="module")
def kit() -> LogKit:
    k = LogKit(now=NOW)
    k.add_round([fake_id(i) for i in range(5)])
    k.add_round([fake_id(i) for i in range(5, 12)], retracted=[fake_id(2)])
    return k


BUNDLE = fake_id(7)


@pytest.mark.parametrize("case", proof_cases(), ids=lambda c: c.name)
def test_proof_table(kit: LogKit, case) -> None:  # type: ignore[no-untyped-def]
    proof = case.make(kit, BUNDLE)
    if case.expect == "logged":
        verdict = check_log_proof(BUNDLE, proof, kit.root(), now=NOW)
        assert verdict.index == kit.index_of(BUNDLE)
        assert verdict.size == kit.tree.size
        assert verdict.origin == kit.origin
        assert len(verdict.witnesses) >= 2
    else:
        with pytest.raises(LogProofError) as err:
            check_log_proof(BUNDLE, proof, kit.root(), now=NOW)
        assert err.value.code == case.expect, err.value.message
        assert "\n" not in err.value.message


def test_good_verdict_line_and_json(kit: LogKit) -> None:
    proof = kit.proof(kit.index_of(BUNDLE), note=kit.note(cosigners=(0, 1, 2), times=(NOW - 300, NOW - 200, NOW - 100)))
    v = check_log_proof(BUNDLE, proof, kit.root(), now=NOW)
    assert v.witnesses == {"mirror-a": NOW - 300, "mirror-b": NOW - 200, "mirror-c": NOW - 100}
    assert v.as_of == NOW - 200  # the newest time at which two witnesses (the quorum) had cosigned
    line = v.line()
    assert line.startswith(f"logged as #{kit.index_of(BUNDLE)} of {kit.tree.size}, witnessed by mirror-a, mirror-b, ")
    j = v.to_json()
    assert j["status"] == "logged" and j["index"] == kit.index_of(BUNDLE) and set(j["witnesses"]) == set(v.witnesses)


def test_reasons_are_specific(kit: LogKit) -> None:
    cases = {c.name: c for c in proof_cases()}
    reasons = {}
    for name in ("tampered-hash", "wrong-origin", "foreign-log-key", "forged-log-signature", "not-a-proof"):
        with pytest.raises(LogProofError) as err:
            check_log_proof(BUNDLE, cases[name].make(kit, BUNDLE), kit.root(), now=NOW)
        reasons[name] = err.value.reason
    assert reasons == {
        "tampered-hash": "bad-proof",
        "wrong-origin": "origin-mismatch",
        "foreign-log-key": "no-log-signature",
        "forged-log-signature": "bad-note-signature",
        "not-a-proof": "bad-proof-file",
    }


def test_no_log_root(kit: LogKit) -> None:
    with pytest.raises(LogProofError) as err:
        check_log_proof(BUNDLE, kit.proof(kit.index_of(BUNDLE)), kit.root(policy=None), now=NOW)
    assert err.value.code == "no-log"
    with pytest.raises(LogProofError) as err:
        check_log_proof(BUNDLE, None, kit.root(policy=None), now=NOW)
    assert err.value.code == "no-log"  # no log beats no proof: there is nothing to look for


def test_unusable_policy_is_no_log(kit: LogKit) -> None:
    with pytest.raises(LogProofError) as err:
        check_log_proof(BUNDLE, kit.proof(kit.index_of(BUNDLE)), kit.root(policy="quorum nobody\n"), now=NOW)
    assert (err.value.code, err.value.reason) == ("no-log", "bad-log-policy")


def test_policy_without_witnesses(kit: LogKit) -> None:
    root = kit.root(policy="quorum none\n")
    v = check_log_proof(BUNDLE, kit.proof(kit.index_of(BUNDLE), note=kit.note(cosigners=())), root, now=NOW)
    assert v.as_of is None and v.witnesses == {}
    assert "asks for no witness" in v.line()


def test_future_skew_boundary(kit: LogKit) -> None:
    for ahead, ok in ((FUTURE_SKEW, True), (FUTURE_SKEW + 1, False)):
        note = kit.note(cosigners=(0, 1), times=(NOW, NOW + ahead))
        proof = kit.proof(kit.index_of(BUNDLE), note=note)
        if ok:
            assert check_log_proof(BUNDLE, proof, kit.root(), now=NOW).witnesses["mirror-b"] == NOW + ahead
        else:
            with pytest.raises(LogProofError, match="do not meet"):
                check_log_proof(BUNDLE, proof, kit.root(), now=NOW)


def test_inclusion_checked_before_quorum(kit: LogKit) -> None:
    """A proof that fails inclusion is bad-proof, even with no cosignature at all."""
    note = kit.note(cosigners=())
    pf = ProofFile.parse(kit.proof(kit.index_of(BUNDLE), note=note))
    bad = ProofFile(pf.index + 1, pf.proof, pf.checkpoint).to_bytes()
    with pytest.raises(LogProofError) as err:
        check_log_proof(BUNDLE, bad, kit.root(), now=NOW)
    assert err.value.code == "bad-proof"


def test_oversized_proof(kit: LogKit) -> None:
    proof = kit.proof(kit.index_of(BUNDLE))
    with pytest.raises(LogProofError) as err:
        check_log_proof(BUNDLE, proof + b"\n" * MAX_PROOF_BYTES, kit.root(), now=NOW)
    assert (err.value.code, err.value.reason) == ("bad-proof", "too-large")


def test_quorum_time() -> None:
    trust = LogTrust.from_root(LogKit(now=NOW).root())
    assert trust is not None
    p = trust.policy
    assert quorum_time(p, {"mirror-a": 10, "mirror-b": 30, "mirror-c": 20}) == 20
    assert quorum_time(p, {"mirror-a": 10, "mirror-b": 30}) == 10
    assert quorum_time(p, {"mirror-a": 10}) is None


def test_index_proof_fresh_last_and_stale() -> None:
    k = LogKit(now=NOW)
    k.add_round([fake_id(1), fake_id(2)], index_payload=b"index one")
    payload = b"index one" + b"%d" % 2
    last = k.tree.size - 1
    v = check_index_proof(payload, k.proof(last), k.root(), now=NOW)
    assert v.index == last
    stale = k.note(cosigners=(0, 1), times=(NOW - 700_000, NOW - 650_000))
    with pytest.raises(LogProofError) as err:
        check_index_proof(payload, k.proof(last, note=stale), k.root(), now=NOW)
    assert err.value.code == "stale"
    k.add_round([fake_id(3)])
    with pytest.raises(LogProofError) as err:  # a newer round followed: the old index is no longer last
        check_index_proof(payload, k.proof(last), k.root(), now=NOW)
    assert (err.value.code, err.value.reason) == ("bad-proof", "not-last")
    with pytest.raises(LogProofError) as err:
        check_index_proof(b"another index", k.proof(k.tree.size - 1), k.root(), now=NOW)
    assert err.value.code == "bad-proof"
