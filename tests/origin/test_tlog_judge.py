"""The restore-from-backup rule (server/tlog/witnesses.judge) as a table: views in, may the origin sign?"""

from __future__ import annotations

import hashlib

import pytest

from tamizdat.bundles.tlog import Checkpoint, CosignatureSigner, Ed25519Signer, Note, Policy, sign_checkpoint
from tamizdat.bundles.tlog.policy import PolicyWitness
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import TamizdatError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.server.tlog.witnesses import OK, RESTORED, WAITING, WitnessView, judge, open_view, view_url

ORIGIN = "ab" * 32 + "/log"
LOG_KEY = SigningKey.from_seed(b"L" * 32)
WITNESSES = {n: CosignatureSigner(n, SigningKey.from_seed(bytes([65 + i]) * 32)) for i, n in enumerate("abc")}


def trust(policy_tail: str, urls: str = "abc") -> LogTrust:
    log_line = f"log {Ed25519Signer(ORIGIN, LOG_KEY).verifier.vkey()}\n"
    lines = "".join(
        f"witness {n} {w.verifier.vkey()}" + (f" https://{n}.example/" if n in urls else "") + "\n"
        for n, w in WITNESSES.items()
    )
    return LogTrust(ORIGIN, Policy.parse(log_line + lines + policy_tail), 604800)


def cp(size: int, tag: str = "") -> Checkpoint:
    return Checkpoint(ORIGIN, size, hashlib.sha256(f"{size}{tag}".encode()).digest())


def shows(name: str, checkpoint: Checkpoint, t: LogTrust) -> WitnessView:
    """A witness's view of ``checkpoint``, signed by the log key and cosigned by the witness."""
    note = sign_checkpoint(checkpoint, [Ed25519Signer(ORIGIN, LOG_KEY)])
    parsed = Note.parse(note)
    cosigned = parsed.with_signatures([WITNESSES[name].cosign(parsed.text, 1_800_000_000)]).to_bytes()
    [witness] = [w for w in t.policy.witnesses if w.name == name]
    return open_view(cosigned, t, witness)


def nothing(name: str) -> WitnessView:
    return WitnessView(name, True)


def silent(name: str) -> WitnessView:
    return WitnessView(name, False, error="unreachable")


QUORUM_2 = "group g 2 a b c\nquorum g\n"
LAST = cp(10)


@pytest.mark.parametrize(
    ("policy", "urls", "views", "last", "local", "state"),
    [
        # larger, or the same size with another root, by our key: restored from a backup
        (QUORUM_2, "abc", [("shows", "a", cp(11)), ("nothing", "b", None)], LAST, None, RESTORED),
        (QUORUM_2, "abc", [("shows", "a", cp(10, "fork")), ("nothing", "b", None)], LAST, None, RESTORED),
        (QUORUM_2, "abc", [("nothing", "a", None), ("nothing", "b", None)], None, cp(3), RESTORED),
        (QUORUM_2, "abc", [("shows", "a", cp(1))], None, None, RESTORED),  # never signed, yet a witness has it
        ("quorum none\n", "abc", [("shows", "c", cp(12))], LAST, None, RESTORED),  # even with quorum none
        # the same or older: fine once a quorum's worth answered
        (QUORUM_2, "abc", [("shows", "a", cp(10)), ("shows", "b", cp(7)), ("silent", "c", None)], LAST, None, OK),
        (QUORUM_2, "abc", [("nothing", "a", None), ("nothing", "b", None)], None, None, OK),
        (QUORUM_2, "abc", [("shows", "a", cp(10)), ("silent", "b", None), ("silent", "c", None)], LAST, None, WAITING),
        (QUORUM_2, "abc", [("silent", "a", None), ("silent", "b", None), ("silent", "c", None)], LAST, None, WAITING),
        ("quorum none\n", "abc", [("silent", "a", None)], LAST, cp(10), OK),
        # witnesses without a URL cannot answer: the ones with a URL must all answer
        (QUORUM_2, "a", [("nothing", "a", None)], LAST, None, OK),
        (QUORUM_2, "a", [("silent", "a", None)], LAST, None, WAITING),
        (QUORUM_2, "", [], LAST, None, OK),
    ],
)
def test_judge(
    policy: str,
    urls: str,
    views: list[tuple[str, str, Checkpoint | None]],
    last: Checkpoint | None,
    local: Checkpoint | None,
    state: str,
) -> None:
    t = trust(policy, urls)
    made = [
        shows(name, c, t) if kind == "shows" and c is not None else nothing(name) if kind == "nothing" else silent(name)
        for kind, name, c in views
    ]
    verdict = judge(made, t, last, local)
    assert verdict.state == state, verdict.message
    assert verdict.may_sign == (state == OK)


def test_view_url_and_a_view_not_signed_by_our_log_key() -> None:
    t = trust(QUORUM_2)
    assert view_url("https://a.example/", ORIGIN) == view_url("https://a.example", ORIGIN)
    assert view_url("https://a.example/", ORIGIN).endswith(
        f"/tlog/witness/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
    )
    stranger = SigningKey.from_seed(b"S" * 32)
    note = sign_checkpoint(cp(50), [Ed25519Signer(ORIGIN, stranger)])
    witness: PolicyWitness = t.policy.witnesses[0]
    with pytest.raises(TamizdatError) as err:
        open_view(note, t, witness)
    assert err.value.code == "unverified-note"
