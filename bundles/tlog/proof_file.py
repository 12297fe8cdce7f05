"""Offline-verifiable proofs of logging (c2sp.org/tlog-proof), files named ``*.tlog-proof``::

c2sp.org/tlog-proof@v1
extra <base64>            (optional, unauthenticated)
index <i>
<base64 hash>             (inclusion proof, leaf's sibling first)
...
                          (empty line)
<checkpoint note, verbatim>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .checkpoint import Checkpoint, SignedCheckpoint
from .errors import ProofFileError
from .hashing import HASH_SIZE, MAX_TREE_SIZE
from .note import Note, b64, b64strict
from .policy import Policy
from .proofs import MAX_PROOF_HASHES, verify_inclusion

PROOF_HEADER = "c2sp.org/tlog-proof@v1"
PROOF_EXTENSION = ".tlog-proof"
MAX_PROOF_FILE_BYTES = 1 << 20

_INDEX = re.compile(r"index (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True)
class ProofFile:
    """An inclusion proof of entry ``index`` in the tree of ``checkpoint`` (a signed note)."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_TREE_SIZE:
            raise ProofFileError("proof index is not a uint64", code="bad-proof-file")
        if len(self.proof) > MAX_PROOF_HASHES or any(len(h) != HASH_SIZE for h in self.proof):
            raise ProofFileError("proof hashes must be 32 bytes, at most 64 of them", code="bad-proof-file")
        if self.extra is not None and not self.extra:
            raise ProofFileError("extra data, when present, is not empty", code="bad-proof-file")

    def to_bytes(self) -> bytes:
        head = [PROOF_HEADER]
        if self.extra is not None:
            head.append(f"extra {b64(self.extra)}")
        head.append(f"index {self.index}")
        head.extend(b64(h) for h in self.proof)
        return ("\n".join(head) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> ProofFile:
        """Split a proof file; the checkpoint is checked for syntax, not signatures."""
        if len(data) > MAX_PROOF_FILE_BYTES:
            raise ProofFileError("proof file is too large", code="bad-proof-file")
        head, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise ProofFileError("proof file has no checkpoint", code="bad-proof-file")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise ProofFileError("proof header is not ASCII", code="bad-proof-file") from None
        if lines[0] != PROOF_HEADER:
            raise ProofFileError(f"proof file does not start with {PROOF_HEADER}", code="bad-proof-file")
        i = 1
        extra: bytes | None = None
        if i < len(lines) and lines[i].startswith("extra "):
            extra = b64strict(lines[i][6:], what="extra data", error=ProofFileError, code="bad-proof-file")
            i += 1
        m = _INDEX.fullmatch(lines[i]) if i < len(lines) else None
        if m is None or int(m.group(1)) > MAX_TREE_SIZE:
            raise ProofFileError("proof file has no valid index line", code="bad-proof-file")
        hashes = tuple(
            b64strict(line, what="proof hash", error=ProofFileError, code="bad-proof-file") for line in lines[i + 1 :]
        )
        Checkpoint.parse(Note.parse(checkpoint).text)  # syntax only; signatures come in verify()
        return cls(int(m.group(1)), hashes, checkpoint, extra)

    def verify(
        self, leaf: bytes, policy: Policy, *, origin: str | None = None, not_before: int | None = None
    ) -> SignedCheckpoint:
        """Check the checkpoint against ``policy`` (log key, quorum, freshness), then inclusion of ``leaf``.

        ``leaf`` is the leaf *hash* the verifier rebuilt from the logged data.
        Returns the verified checkpoint (its cosignature times say "as of when").
        """
        signed = policy.verify_checkpoint(self.checkpoint, origin=origin, not_before=not_before)
        cp = signed.checkpoint
        verify_inclusion(leaf, self.index, cp.size, self.proof, cp.root)
        return signed
