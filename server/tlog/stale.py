"""Proofs the newest root no longer accepts, and when to look for them. Blocking: run in a thread.

A ``.tlog-proof`` carries the checkpoint it was written under: a log signature
and the witnesses' cosignatures. When a root drops a log key (``keys revoke``)
or changes the witness policy, proofs written before may stop verifying for
readers: no log signature by a key the newest root trusts, or cosignatures that
no longer meet its quorum. The origin (:mod:`.keeper`) and mirrors
(``mirror.logsync``) find such *stale* proofs with a :class:`ProofJudge` and
rewrite them under their newest quorum-cosigned checkpoint.

A scan reads every proof file, so it runs only when the trust lost something:
:class:`TrustMark` records the trust the proofs were last checked against
(``DATA/state/tlog-proof-trust`` on the origin) and :meth:`TrustMark.keeps`
says whether every proof good under it is still good (a new log key added by
``rotate-signing``: no scan).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tamizdat.bundles.tlog.checkpoint import open_checkpoint
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.reader import MAX_PROOF_BYTES, counted_witnesses
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.errors import RejectedError
from tamizdat.fsutil import atomic_write

MARK_NAME = "tlog-proof-trust"
MAX_CACHED_NOTES = 4096  # distinct checkpoints judged and remembered per judge

K = TypeVar("K")


@dataclass(frozen=True)
class TrustMark:
    """What a proof's checkpoint is judged by: the log keys (vkeys) and the witness policy (text)."""

    log_keys: frozenset[str]
    policy: str

    @classmethod
    def of(cls, trust: LogTrust) -> TrustMark:
        p = trust.policy
        rest = Policy((), p.witnesses, p.groups, p.quorum).to_text()
        return cls(frozenset(log.verifier.vkey() for log in p.logs), rest)

    def keeps(self, earlier: TrustMark | None) -> bool:
        """Whether every proof good under ``earlier`` is still good now (None: never checked)."""
        return earlier is not None and earlier.log_keys <= self.log_keys and earlier.policy == self.policy

    def to_bytes(self) -> bytes:
        return json.dumps({"log_keys": sorted(self.log_keys), "policy": self.policy}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrustMark:
        doc = json.loads(data)
        keys, policy = doc["log_keys"], doc["policy"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or not isinstance(policy, str):
            raise ValueError("not a trust mark")
        return cls(frozenset(keys), policy)


def load_mark(path: Path) -> TrustMark | None:
    """The saved mark; None when there is none or it is unreadable (then a scan runs: safe, only slower)."""
    try:
        return TrustMark.from_bytes(path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_mark(path: Path, mark: TrustMark) -> None:
    atomic_write(path, mark.to_bytes(), 0o600)


class ProofJudge:
    """Whether a proof's checkpoint verifies under ``trust`` as a reader checks it (signatures, quorum).

    Inclusion is not checked: the proofs judged here were computed from the
    judge's own tiles; only the trust around them changes. Verdicts are cached
    per checkpoint (the proofs of one batch share theirs). ``now`` bounds how
    far ahead a counted cosignature may be dated, as for readers.
    """

    def __init__(self, trust: LogTrust, now: int) -> None:
        self.trust = trust
        self.now = now
        self._logs = trust.policy.log_verifiers(trust.origin)
        self._witnesses = trust.policy.witness_verifiers()
        self._seen: dict[bytes, bool] = {}

    def good(self, proof: bytes) -> bool:
        """The verdict on a proof file's bytes (malformed or oversized: not good)."""
        if len(proof) > MAX_PROOF_BYTES:
            return False
        _, sep, note = proof.partition(b"\n\n")
        known = self._seen.get(note) if sep else None
        if known is not None:
            return known
        try:
            note = ProofFile.parse(proof).checkpoint
        except RejectedError:
            return False
        verdict = self.note_good(note)
        if len(self._seen) >= MAX_CACHED_NOTES:
            self._seen.clear()
        self._seen[note] = verdict
        return verdict

    def note_good(self, note: bytes) -> bool:
        """Whether a checkpoint note has a trusted log signature and cosignatures meeting the quorum."""
        policy = self.trust.policy
        try:
            signed = open_checkpoint(note, self._logs, self._witnesses, origin=self.trust.origin)
        except RejectedError:
            return False
        return policy.satisfied(counted_witnesses(policy, signed, now=self.now))

    def file_good(self, path: Path) -> bool | None:
        """The verdict on a proof file (None when there is no such file)."""
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_PROOF_BYTES + 1)
        except FileNotFoundError:
            return None
        return self.good(data)


def stale_files(judge: ProofJudge, files: Iterable[tuple[K, Path]]) -> list[K]:
    """The keys of the files that exist but are not good under the judge's trust."""
    return [key for key, path in files if judge.file_good(path) is False]


__all__ = ["MARK_NAME", "ProofJudge", "TrustMark", "load_mark", "save_mark", "stale_files"]
