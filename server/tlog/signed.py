"""The last checkpoint this origin signed, kept in ``DATA/state/tlog-signed`` (fsynced).

The file holds the signed note exactly as it was signed (log signature only).
It is written, durably, *before* the note is published: whatever a crash
interrupts, the origin never signs a checkpoint that does not extend one it
already let out. A backup restores it as it was; the witnesses' views catch that
(:mod:`.witnesses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tamizdat.bundles.tlog import Checkpoint, Note
from tamizdat.errors import TamizdatError, UsageError
from tamizdat.fsutil import atomic_write

SIGNED_NAME = "tlog-signed"


@dataclass(frozen=True)
class LastSigned:
    """The newest checkpoint note this origin signed, and its body."""

    note: bytes
    checkpoint: Checkpoint


def path_in(state: Path) -> Path:
    return state / SIGNED_NAME


def load(state: Path) -> LastSigned | None:
    """The stored note (None if the origin never signed); an unreadable file is an operator problem."""
    path = path_in(state)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        checkpoint = Checkpoint.parse(Note.parse(raw).text)
    except TamizdatError as exc:
        raise UsageError(
            f"{path} is not a signed checkpoint ({exc.message}): restore it from a backup", code="bad-log-state"
        ) from None
    return LastSigned(raw, checkpoint)


def save(state: Path, note: bytes) -> LastSigned:
    """Record ``note`` as signed (atomic and fsynced) before anyone sees it."""
    checkpoint = Checkpoint.parse(Note.parse(note).text)
    atomic_write(path_in(state), note, 0o600)
    return LastSigned(note, checkpoint)
