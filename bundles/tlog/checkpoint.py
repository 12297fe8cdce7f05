"""C2SP checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of a log.

Body: ``<origin>\\n<size>\\n<base64 root>\\n`` then optional non-empty extension
lines (tamizdat writes none and, by default, accepts none). The log signs it as a
note with its key name equal to the origin; witnesses add cosignatures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tamizdat.errors import RollbackError

from .errors import CheckpointError, ForkError, NoteFormatError, NoteSignatureError, ProofError
from .hashing import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE
from .note import (
    Note,
    NoteSignature,
    OpenedNote,
    Signer,
    VerifiedSignature,
    Verifier,
    b64,
    b64strict,
    check_text,
    open_parsed,
    sign_text,
)
from .proofs import verify_consistency

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_SPACE_OR_PLUS = re.compile(r"[\s+]")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin (the log's identity), size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint origin is empty or spans lines", code="bad-checkpoint")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size is not a uint64", code="bad-checkpoint")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError("checkpoint root is not 32 bytes", code="bad-checkpoint")
        if any(not e or "\n" in e for e in self.extensions):
            raise CheckpointError("checkpoint extension lines must be non-empty", code="bad-checkpoint")
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise CheckpointError("an empty tree's root is SHA-256 of nothing", code="bad-checkpoint")

    def text(self) -> str:
        """The note text (body), ending in a newline."""
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), b64(self.root), *self.extensions))

    def body(self) -> bytes:
        return self.text().encode("utf-8")

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (the note text, signatures already split off)."""
        check_text_or_checkpoint_error(text)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("a checkpoint has at least three lines", code="bad-checkpoint")
        origin, size, root64, *ext = lines
        if not origin:
            raise CheckpointError("checkpoint origin is empty", code="bad-checkpoint")
        if not _SIZE.fullmatch(size) or int(size) > MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size is not a canonical decimal uint64", code="bad-checkpoint")
        root = b64strict(root64, what="checkpoint root", error=CheckpointError, code="bad-checkpoint")
        return cls(origin, int(size), root, tuple(ext))


def check_text_or_checkpoint_error(text: str) -> None:
    try:
        check_text(text)
    except NoteFormatError as exc:
        raise CheckpointError(exc.message, code="bad-checkpoint") from None


def valid_origin(origin: str) -> bool:
    """The spec's recommendation, which tamizdat enforces for its own log: no spaces, no ``+``."""
    return bool(origin) and _SPACE_OR_PLUS.search(origin) is None


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """The signed note of ``checkpoint``; every log key's name must be the origin."""
    for s in signers:
        if s.name != checkpoint.origin:
            raise CheckpointError(f"log key name {s.name!r} is not the origin", code="origin-mismatch")
    if not signers:
        raise CheckpointError("a checkpoint needs a log signature", code="bad-checkpoint")
    return Note(checkpoint.text(), sign_text(checkpoint.text(), signers)).to_bytes()


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with a verified log signature, and the cosignatures that verified."""

    checkpoint: Checkpoint
    opened: OpenedNote
    log_signatures: tuple[VerifiedSignature, ...]
    cosignatures: tuple[VerifiedSignature, ...]

    @property
    def note(self) -> Note:
        return self.opened.note

    def to_bytes(self) -> bytes:
        """The note as received (identical signature lines merged)."""
        return self.note.to_bytes()

    def cosigned_at(self) -> dict[Verifier, int]:
        """Each witness key that cosigned, with the newest time it stated."""
        out: dict[Verifier, int] = {}
        for v in self.cosignatures:
            ts = v.timestamp if v.timestamp is not None else 0
            if ts >= out.get(v.verifier, -1):
                out[v.verifier] = ts
        return out


def open_checkpoint(
    data: bytes,
    log_verifiers: Iterable[Verifier],
    witness_verifiers: Iterable[Verifier] = (),
    *,
    origin: str | None = None,
    allow_extensions: bool = False,
) -> SignedCheckpoint:
    """Parse and verify a checkpoint note.

    The log must have signed it with a key named like the origin (and, given
    ``origin``, that must be the expected one). Every signature by a known key —
    log or witness — must verify; unknown signatures are ignored.
    """
    logs = list(log_verifiers)
    witnesses = list(witness_verifiers)
    note = Note.parse(data)
    cp = Checkpoint.parse(note.text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not {origin!r}", code="origin-mismatch")
    if cp.extensions and not allow_extensions:
        raise CheckpointError("checkpoint has extension lines", code="bad-checkpoint")
    opened = open_parsed(note, [*logs, *witnesses])
    log_sigs = tuple(v for v in opened.verified if v.verifier in logs and v.verifier.name == cp.origin)
    if not log_sigs:
        raise NoteSignatureError(
            "no known log key named like the origin signed the checkpoint", code="no-log-signature"
        )
    cosigs = tuple(v for v in opened.verified if v.verifier in witnesses and v.timestamp is not None)
    return SignedCheckpoint(cp, opened, log_sigs, cosigs)


def merge_cosignatures(
    base: bytes,
    others: Iterable[bytes | NoteSignature],
    log_verifiers: Iterable[Verifier],
    witness_verifiers: Iterable[Verifier],
) -> bytes:
    """Aggregate cosignatures of one checkpoint from several notes or signature lines.

    Every input is verified against the known keys; notes must carry the same
    body. The result keeps the log signatures of ``base`` and, for each witness
    key, only its newest cosignature; unknown signatures are dropped.
    """
    logs, witnesses = list(log_verifiers), list(witness_verifiers)
    known = [*logs, *witnesses]
    first = open_checkpoint(base, logs, witnesses, allow_extensions=True)
    text = first.note.text
    newest: dict[Verifier, VerifiedSignature] = {}

    def consider(v: VerifiedSignature) -> None:
        if v.verifier not in witnesses or v.timestamp is None:
            return
        cur = newest.get(v.verifier)
        if cur is None or v.timestamp > (cur.timestamp or 0):
            newest[v.verifier] = v

    for v in first.cosignatures:
        consider(v)
    loose: list[NoteSignature] = []
    for other in others:
        if isinstance(other, NoteSignature):
            loose.append(other)
            continue
        note = Note.parse(other)
        if note.text != text:
            raise CheckpointError("cannot merge cosignatures of different checkpoints", code="checkpoint-mismatch")
        for v in open_parsed(note, known).verified:
            consider(v)
    if loose:
        for v in open_parsed(Note(text, tuple(loose)), known).verified:
            consider(v)
    sigs = [v.signature for v in first.log_signatures] + [v.signature for v in newest.values()]
    return Note(text, tuple(dict.fromkeys(sigs))).to_bytes()


def check_extends(old: Checkpoint | None, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` (both already signature-checked) with ``proof``.

    No old state (or size 0) needs an empty proof. A smaller new size raises
    :class:`~tamizdat.errors.RollbackError` (``rollback``); the same size with
    another root raises :class:`ForkError` (``fork``): keep both notes as
    evidence. A proof that does not verify raises ``bad-proof``.
    """
    if old is None or old.size == 0:
        if old is not None and old.origin != new.origin:
            raise CheckpointError("checkpoints of different logs", code="origin-mismatch")
        if proof:
            raise ProofError("a proof from the empty tree must be empty", code="bad-proof")
        return
    if old.origin != new.origin:
        raise CheckpointError("checkpoints of different logs", code="origin-mismatch")
    if new.size < old.size:
        raise RollbackError(f"checkpoint size went back from {old.size} to {new.size}", code="rollback")
    if new.size == old.size:
        if new.root != old.root:
            raise ForkError(f"two roots for size {new.size}", code="fork")
        if proof:
            raise ProofError("sizes are equal but the proof is not empty", code="bad-proof")
        return
    verify_consistency(old.size, new.size, proof, old.root, new.root)
