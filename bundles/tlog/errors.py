"""Errors of the transparency-log module, with stable ``code`` values.

Every class derives from the project's hierarchy (:mod:`tamizdat.errors`): data
that breaks a format rule is a :class:`~tamizdat.errors.FormatError`, a failed
signature, proof or quorum a :class:`~tamizdat.errors.SignatureError`.

Codes (part of the public interface):

- ``bad-proof``: an inclusion or consistency proof does not verify;
- ``bad-tile``: a tile or entry bundle has the wrong size or shape, or a path is
  not canonical;
- ``bad-note``: a signed note is malformed; ``bad-note-signature``: a known key's
  signature fails, or no known key signed;
- ``bad-vkey``: a verifier key is malformed or its key id does not match;
- ``bad-checkpoint``: a checkpoint body is malformed, or the log did not sign it;
- ``bad-proof-file``: a ``.tlog-proof`` file is malformed;
- ``bad-policy``: a policy file is malformed; ``no-quorum``: the cosignatures do
  not satisfy the policy's quorum;
- ``bad-leaf``: a tamizdat leaf is malformed;
- ``bad-witness-request``: a witness ``add-checkpoint`` body is malformed;
- ``fork`` and ``rollback`` (:class:`~tamizdat.errors.RollbackError`): two checkpoints
  of one log cannot both be honest.
"""

from __future__ import annotations

from tamizdat.errors import FormatError, RollbackError, SignatureError


class ProofError(SignatureError):
    """An inclusion or consistency proof does not verify."""

    code = "bad-proof"


class TileError(FormatError):
    """A tile, an entry bundle or a tile path is malformed."""

    code = "bad-tile"


class NoteFormatError(FormatError):
    """A signed note, a signature line or a verifier key is malformed."""

    code = "bad-note"


class NoteSignatureError(SignatureError):
    """A known key's signature fails, or no known key signed the note."""

    code = "bad-note-signature"


class CheckpointError(FormatError):
    """A checkpoint body is malformed."""

    code = "bad-checkpoint"


class ProofFileError(FormatError):
    """A ``.tlog-proof`` file is malformed."""

    code = "bad-proof-file"


class PolicyError(FormatError):
    """A tlog-policy file is malformed."""

    code = "bad-policy"


class QuorumError(SignatureError):
    """The valid cosignatures do not satisfy the policy's quorum."""

    code = "no-quorum"


class LeafError(FormatError):
    """A tamizdat log leaf is malformed."""

    code = "bad-leaf"


class WitnessRequestError(FormatError):
    """A tlog-witness ``add-checkpoint`` request body is malformed."""

    code = "bad-witness-request"


class ForkError(SignatureError):
    """Two signed checkpoints of one log are inconsistent: evidence of a split view."""

    code = "fork"


__all__ = [
    "CheckpointError",
    "ForkError",
    "LeafError",
    "NoteFormatError",
    "NoteSignatureError",
    "PolicyError",
    "ProofError",
    "ProofFileError",
    "QuorumError",
    "RollbackError",
    "TileError",
    "WitnessRequestError",
]
