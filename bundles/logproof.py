"""Finding and checking a verified bundle's ``.tlog-proof`` on disk (``tamizdat verify``).

Where the proof is looked for, in order: the ``--proof`` path, ``<FILE>.tlog-proof``,
then ``<bundle id>.tlog-proof`` beside the file (the name ``tamizdat fetch``
saves it under). The check itself is :func:`tamizdat.bundles.tlog.reader.check_log_proof`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tlog.proof_file import PROOF_EXTENSION
from .tlog.reader import MAX_PROOF_BYTES, NO_LOG, NO_PROOF, LogProofError, LogVerdict, check_log_proof
from .verify import VerifiedBundle


@dataclass(frozen=True)
class LogCheck:
    """The outcome for one bundle: a verdict, or the error that explains why there is none."""

    verdict: LogVerdict | None
    error: LogProofError | None
    proof: Path | None

    @property
    def status(self) -> str:
        return "logged" if self.error is None else self.error.code

    def text(self) -> str:
        """The ``log:`` line of ``tamizdat verify``."""
        if self.verdict is not None:
            return self.verdict.line()
        assert self.error is not None
        if self.error.code == NO_LOG:
            return "not checked: the publisher keeps no log"
        if self.error.code == NO_PROOF:
            return "not checked: no proof (none given or found beside the file)"
        return (
            f"WARNING: {self.error.code} ({self.error.reason}): the signature is valid, but this proof does not "
            f"show the file in the publisher's witnessed log: {self.error.message}"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "proof": self.proof.name if self.proof else None}
        if self.verdict is not None:
            out.update(self.verdict.to_json())
        if self.error is not None:
            out.update(code=self.error.code, reason=self.error.reason, message=self.error.message)
        return out


def find_proof(bundle: Path, bundle_id: str) -> Path | None:
    """``<FILE>.tlog-proof``, else ``<bundle id>.tlog-proof`` beside the file, else None."""
    for candidate in (bundle.with_name(bundle.name + PROOF_EXTENSION), bundle.with_name(bundle_id + PROOF_EXTENSION)):
        if candidate.is_file():
            return candidate
    return None


def read_proof(path: Path) -> bytes:
    """At most :data:`MAX_PROOF_BYTES` (+1, so that a larger file is refused as too large)."""
    with path.open("rb") as fh:
        return fh.read(MAX_PROOF_BYTES + 1)


def check_log(vb: VerifiedBundle, bundle: Path, proof: Path | None, *, now: int) -> LogCheck:
    """Check the bundle's proof (given or found) against the newest root of its verified chain."""
    path = proof if proof is not None else find_proof(bundle, vb.bundle_id)
    data = read_proof(path) if path is not None else None
    try:
        verdict = check_log_proof(vb.bundle_id, data, vb.root, now=now)
    except LogProofError as err:
        return LogCheck(None, err, path)
    return LogCheck(verdict, None, path)
