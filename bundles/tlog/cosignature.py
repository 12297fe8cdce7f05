"""Timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature, type 0x04).

A cosignature is a note signature on a checkpoint: key id
``SHA-256(name ‖ "\\n" ‖ 0x04 ‖ public key)[:4]``, signature bytes
``u64 big-endian timestamp ‖ Ed25519 signature`` (72 bytes; 104 base64 characters
with the key id), over ``"cosignature/v1\\ntime <t>\\n" ‖ checkpoint body``.

It states that, as of the time, the witness's largest consistent view of the
log named by the origin line has this root. tamizdat mirrors sign it only after
also checking that they hold every logged bundle.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from tamizdat.keys.ed25519 import SigningKey

from .errors import NoteFormatError
from .note import (
    SIG_COSIGNATURE_V1,
    KeyedVerifier,
    NoteSignature,
    check_text,
    format_vkey,
)

COSIGNATURE_HEADER = b"cosignature/v1\n"
COSIGNATURE_SIZE = 8 + 64
MAX_TIMESTAMP = (1 << 64) - 1


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs: header line, time line, then the checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("cosignature timestamp is not a uint64")
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


def split_cosignature(signature: bytes) -> tuple[int, bytes]:
    """``(timestamp, Ed25519 signature)`` of a 72-byte timestamped signature."""
    if len(signature) != COSIGNATURE_SIZE:
        raise NoteFormatError("a cosignature is 72 bytes", code="bad-note")
    (timestamp,) = struct.unpack(">Q", signature[:8])
    return timestamp, signature[8:]


class CosignatureVerifier(KeyedVerifier):
    """A witness key: verifies cosignature/v1 signatures and reads their timestamps."""

    sig_type = SIG_COSIGNATURE_V1
    vkey_kind = "a cosignature/v1 (type 0x04) vkey"

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != COSIGNATURE_SIZE:
            return False
        timestamp, sig = split_cosignature(signature)
        return self._public_key.verify(sig, cosigned_message(text, timestamp))

    def timestamp(self, signature: bytes) -> int | None:
        return split_cosignature(signature)[0]

    def vkey(self) -> str:
        return format_vkey(self._name, SIG_COSIGNATURE_V1, self._public_key.raw)

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.vkey()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CosignatureVerifier) and other.vkey() == self.vkey()

    def __hash__(self) -> int:
        return hash(self.vkey())


def _now() -> int:
    return int(time.time())


class CosignatureSigner:
    """A witness key that cosigns checkpoint bodies; ``clock`` gives the timestamp (seconds)."""

    def __init__(self, name: str, key: SigningKey, clock: Callable[[], int] = _now) -> None:
        self.verifier = CosignatureVerifier(name, key.public)
        self._key = key
        self._clock = clock

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    def sign(self, text: bytes) -> bytes:
        """A 72-byte timestamped signature at the clock's current time."""
        return self.sign_at(text, self._clock())

    def sign_at(self, text: bytes, timestamp: int) -> bytes:
        return struct.pack(">Q", timestamp) + self._key.sign(cosigned_message(text, timestamp))

    def cosign(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """The signature line to add to the checkpoint note of body ``text``."""
        check_text(text)
        ts = self._clock() if timestamp is None else timestamp
        return NoteSignature(self.name, self.key_id, self.sign_at(text.encode("utf-8"), ts))
