"""A reader's check that a verified bundle is in the publisher's log (docs/transparency.md, "Readers").

Pure: bytes in, a :class:`LogVerdict` out or a :class:`LogProofError` with one of
these codes (the same in ``tamizdat verify``, ``tamizdat fetch`` and the browser
page's ``tlog.js``):

- ``no-log``: the trusted root has no ``tlog`` section (or an unusable one):
  the publisher keeps no log, so there is nothing to check;
- ``no-proof``: no ``.tlog-proof`` was given;
- ``bad-proof``: the proof file or its checkpoint is malformed, names another
  origin, is not signed by a log key of the root, carries a signature by a known
  key that fails, or its inclusion proof does not lead from the bundle's leaf to
  the checkpoint's root;
- ``no-quorum``: the proof is sound but the witnesses' cosignatures do not meet
  the root's policy (cosignatures dated more than :data:`FUTURE_SKEW` seconds
  after ``now`` do not count);
- ``stale`` (index proofs only): the quorum's cosignatures are older than the
  root's ``max_age``.

The checks run in this fixed order: syntax, origin, signatures, inclusion,
quorum. A proof that fails inclusion is ``bad-proof`` whatever its
cosignatures; ``no-quorum`` always means "really logged, not witnessed enough".
:attr:`LogProofError.reason` keeps the underlying error code for people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tamizdat.errors import RejectedError
from tamizdat.keys import timefmt
from tamizdat.keys.root import Root

from .checkpoint import SignedCheckpoint, open_checkpoint
from .errors import PolicyError
from .leaf import bundle_leaf, index_leaf
from .policy import Policy
from .proof_file import ProofFile
from .proofs import verify_inclusion
from .trust import LogTrust

FUTURE_SKEW = 300  # seconds a cosignature may be dated ahead of the reader's clock
MAX_PROOF_BYTES = 64 * 1024  # a real proof is about 2 KB; callers cap downloads at this

NO_LOG = "no-log"
NO_PROOF = "no-proof"
BAD_PROOF = "bad-proof"
NO_QUORUM = "no-quorum"
STALE = "stale"
CODES = (NO_LOG, NO_PROOF, BAD_PROOF, NO_QUORUM, STALE)


class LogProofError(RejectedError):
    """A log proof could not show that the data is logged and witnessed."""

    code = BAD_PROOF

    def __init__(self, message: str, *, code: str, reason: str | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason or code

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "reason": self.reason}


@dataclass(frozen=True)
class LogVerdict:
    """What a sound proof shows: leaf ``index`` of a tree of ``size``, witnessed as of ``as_of``.

    ``witnesses`` maps each policy witness whose cosignature counted to the
    time it stated; ``as_of`` is the newest time ``T`` such that the witnesses
    that cosigned at or after ``T`` still meet the quorum (None when the policy
    needs no witness).
    """

    index: int
    size: int
    origin: str
    root_hash: bytes
    witnesses: Mapping[str, int]
    as_of: int | None

    def witness_names(self) -> list[str]:
        return sorted(self.witnesses)

    def line(self) -> str:
        """``logged as #i of N, witnessed by X, Y at T``."""
        head = f"logged as #{self.index} of {self.size}"
        if self.as_of is None:
            return head + " (the publisher's policy asks for no witness)"
        return f"{head}, witnessed by {', '.join(self.witness_names())} at {format_time(self.as_of)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "logged",
            "index": self.index,
            "size": self.size,
            "origin": self.origin,
            "root": self.root_hash.hex(),
            "witnesses": {name: format_time(t) for name, t in sorted(self.witnesses.items())},
            "as_of": None if self.as_of is None else format_time(self.as_of),
        }


def format_time(seconds: int) -> str:
    """UNIX seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (the decimal number when out of range)."""
    try:
        return timefmt.format(dt.datetime.fromtimestamp(seconds, dt.UTC))
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def log_trust(root: Root) -> LogTrust:
    """The root's log trust, or ``no-log``."""
    try:
        trust = LogTrust.from_root(root)
    except PolicyError as exc:
        raise LogProofError(
            f"the publisher's log settings are unusable: {exc.message}", code=NO_LOG, reason=exc.code
        ) from None
    if trust is None:
        raise LogProofError("the publisher keeps no log", code=NO_LOG)
    return trust


def check_log_proof(bundle_id: str, proof: bytes | None, root: Root, *, now: int) -> LogVerdict:
    """Check a ``.tlog-proof`` for a verified bundle against the newest root of its verified chain.

    The leaf is rebuilt from the bundle id (kind 1); ``now`` (UNIX seconds)
    only bounds how far in the future a counted cosignature may be dated.
    """
    trust = log_trust(root)
    if proof is None:
        raise LogProofError("no log proof was given", code=NO_PROOF)
    return check_leaf_proof(bundle_leaf(bundle_id).hash(), proof, trust, now=now)


def check_index_proof(index_payload: bytes, proof: bytes | None, root: Root, *, now: int) -> LogVerdict:
    """Check ``tlog/index.tlog-proof`` for a signed index payload: logged, last, witnessed, fresh.

    The index leaf must be the checkpoint's last leaf (every checkpoint ends
    with the index of its round), and the quorum must have cosigned within the
    root's ``max_age`` (``stale`` otherwise): then nothing was logged after this
    index as of ``as_of``, so its retraction marks were current then.
    """
    trust = log_trust(root)
    if proof is None:
        raise LogProofError("no index proof was given", code=NO_PROOF)
    verdict = check_leaf_proof(index_leaf(index_payload).hash(), proof, trust, now=now)
    if verdict.index != verdict.size - 1:
        raise LogProofError(
            f"the index is leaf #{verdict.index}, not the last of {verdict.size}", code=BAD_PROOF, reason="not-last"
        )
    floor = now - trust.max_age
    if verdict.as_of is not None and verdict.as_of < floor:
        raise LogProofError(
            f"the witnesses last confirmed this index at {format_time(verdict.as_of)}, longer ago than "
            f"{trust.max_age} s",
            code=STALE,
        )
    return verdict


def check_leaf_proof(leaf_hash: bytes, proof: bytes, trust: LogTrust, *, now: int) -> LogVerdict:
    """Syntax, origin, signatures, inclusion of ``leaf_hash``, then the quorum (see the module doc)."""
    if len(proof) > MAX_PROOF_BYTES:
        raise LogProofError(f"the proof is over {MAX_PROOF_BYTES} bytes", code=BAD_PROOF, reason="too-large")
    policy = trust.policy
    try:
        pf = ProofFile.parse(proof)
        signed = open_checkpoint(
            pf.checkpoint, policy.log_verifiers(trust.origin), policy.witness_verifiers(), origin=trust.origin
        )
        cp = signed.checkpoint
        verify_inclusion(leaf_hash, pf.index, cp.size, pf.proof, cp.root)
    except RejectedError as exc:
        raise LogProofError(f"bad log proof: {exc.message}", code=BAD_PROOF, reason=exc.code) from None
    counted = counted_witnesses(policy, signed, now=now)
    if not policy.satisfied(counted):
        have = ", ".join(sorted(counted)) or "none"
        raise LogProofError(
            f"the checkpoint's cosignatures do not meet the publisher's witness policy (valid: {have})",
            code=NO_QUORUM,
        )
    return LogVerdict(pf.index, cp.size, cp.origin, cp.root, counted, quorum_time(policy, counted))


def counted_witnesses(policy: Policy, signed: SignedCheckpoint, *, now: int) -> dict[str, int]:
    """Policy witness name -> newest cosignature time not dated beyond ``now`` + :data:`FUTURE_SKEW`."""
    limit = now + FUTURE_SKEW
    by_key: dict[object, int] = {}
    for v in signed.cosignatures:
        if v.timestamp is not None and v.timestamp <= limit and v.timestamp >= by_key.get(v.verifier, -1):
            by_key[v.verifier] = v.timestamp
    return {w.name: by_key[w.verifier] for w in policy.witnesses if w.verifier in by_key}


def quorum_time(policy: Policy, times: Mapping[str, int]) -> int | None:
    """The newest ``T`` such that the witnesses that cosigned at or after ``T`` meet the quorum."""
    if policy.quorum is None:
        return None
    for t in sorted(set(times.values()), reverse=True):
        if policy.satisfied(name for name, ts in times.items() if ts >= t):
            return t
    return None


__all__ = [
    "CODES",
    "FUTURE_SKEW",
    "MAX_PROOF_BYTES",
    "LogProofError",
    "LogVerdict",
    "check_index_proof",
    "check_leaf_proof",
    "check_log_proof",
    "counted_witnesses",
    "log_trust",
    "quorum_time",
]
