"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> <base64(key id[4] ‖ signature)>``. The key id of an Ed25519 key is
``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``; a verifier key (vkey) is
``<name>+<hex key id>+<base64(type ‖ public key)>``.

Opening a note (:func:`open_note`) follows the spec: signatures from unknown
keys (name and key id not both matching a known key) are ignored, a known key's
signature that fails rejects the whole note, and a note no known key signed is
rejected. Base64 is decoded strictly (canonical, padded), so every bit flip of a
signed note is either malformed or fails a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from tamizdat.errors import FormatError, SignatureError
from tamizdat.keys.ed25519 import PublicKey, SigningKey

from .errors import NoteFormatError, NoteSignatureError

EM_DASH = "\u2014"
SIG_PREFIX = EM_DASH + " "
SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 1 << 20
KEY_ID_SIZE = 4

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64strict(text: str, *, what: str, error: type[FormatError] = NoteFormatError, code: str = "bad-note") -> bytes:
    """Standard padded base64, canonical only (no spare bits, no whitespace)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise error(f"{what} is not valid base64", code=code) from None
    if b64(data) != text:
        raise error(f"{what} is not canonical base64", code=code)
    return data


def valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode spaces, no ``+``, no control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and _CONTROL.search(name) is None
        and "\x7f" not in name
    )


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`` (the spec's recommended key id)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()[:KEY_ID_SIZE]


def format_vkey(name: str, sig_type: int, public_key: bytes) -> str:
    """``<name>+<hex key id>+<base64(type ‖ public key)>``."""
    if not valid_key_name(name):
        raise NoteFormatError(f"invalid key name {name!r}", code="bad-vkey")
    return f"{name}+{key_id(name, sig_type, public_key).hex()}+{b64(bytes([sig_type]) + public_key)}"


def split_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """Parse a vkey into (name, key id, type, public key); checks the key id derivation."""
    parts = vkey.split("+", 2)  # the base64 key may itself hold "+"
    if len(parts) != 3:
        raise NoteFormatError("a vkey is <name>+<key id>+<key>", code="bad-vkey")
    name, hex_id, key64 = parts
    if not valid_key_name(name):
        raise NoteFormatError("vkey has an invalid key name", code="bad-vkey")
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteFormatError("vkey key id is not 8 lowercase hex digits", code="bad-vkey")
    raw = b64strict(key64, what="vkey key", code="bad-vkey")
    if len(raw) < 2:
        raise NoteFormatError("vkey key is empty", code="bad-vkey")
    sig_type, public = raw[0], raw[1:]
    kid = bytes.fromhex(hex_id)
    if key_id(name, sig_type, public) != kid:
        raise NoteFormatError("vkey key id does not match its key", code="bad-vkey")
    return name, kid, sig_type, public


def checked_public_key(raw: bytes) -> PublicKey:
    try:
        return PublicKey.from_raw(raw)
    except SignatureError as exc:
        raise NoteFormatError(f"vkey public key refused: {exc.message}", code="bad-vkey") from None


# -- signatures and notes ---------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id, signature bytes (after the key id)."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name) or len(self.key_id) != KEY_ID_SIZE or not self.signature:
            raise NoteFormatError("invalid note signature", code="bad-note")

    def line(self) -> str:
        """``— <name> <base64>\\n``."""
        return f"{SIG_PREFIX}{self.name} {b64(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line (without its newline)."""
        if not line.startswith(SIG_PREFIX):
            raise NoteFormatError("signature line does not start with an em dash and a space", code="bad-note")
        name, sep, sig64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not sig64 or not valid_key_name(name):
            raise NoteFormatError("malformed signature line", code="bad-note")
        raw = b64strict(sig64, what="signature")
        if len(raw) < KEY_ID_SIZE + 1:
            raise NoteFormatError("signature is too short", code="bad-note")
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def check_text(text: str) -> None:
    """A note text: ends in a newline, no control characters but newlines."""
    if not text.endswith("\n"):
        raise NoteFormatError("note text does not end in a newline", code="bad-note")
    if _CONTROL.search(text):
        raise NoteFormatError("note text holds a control character", code="bad-note")


@dataclass(frozen=True)
class Note:
    """A note text and its signature lines, as parsed (nothing verified)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        check_text(self.text)
        if not self.signatures:
            raise NoteFormatError("a signed note needs at least one signature", code="bad-note")
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode("utf-8")

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        """Add signatures; a new one replaces existing ones of the same name and key id."""
        new = list(dict.fromkeys(extra))
        replaced = {(s.name, s.key_id) for s in new}
        kept = [s for s in self.signatures if (s.name, s.key_id) not in replaced]
        return Note(self.text, tuple(dict.fromkeys([*kept, *new])))

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Split a signed note; checks the syntax only. Identical signature lines are kept once."""
        if len(data) > MAX_NOTE_BYTES:
            raise NoteFormatError("note is too large", code="bad-note")
        try:
            s = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteFormatError("note is not valid UTF-8", code="bad-note") from None
        if _CONTROL.search(s):
            raise NoteFormatError("note holds a control character", code="bad-note")
        split = s.rfind("\n\n")
        if split < 0:
            raise NoteFormatError("note has no signature block", code="bad-note")
        text, block = s[: split + 1], s[split + 2 :]
        if not block.endswith("\n"):
            raise NoteFormatError("signature block does not end in a newline", code="bad-note")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteFormatError(f"note has more than {MAX_SIGNATURES} signatures", code="bad-note")
        sigs = tuple(dict.fromkeys(NoteSignature.from_line(line) for line in lines))
        return cls(text, sigs)


# -- keys -------------------------------------------------------------------------------------


class Verifier(Protocol):
    """A known public key: checks signatures whose line names ``name`` and ``key_id``."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    @property
    def sig_type(self) -> int: ...

    @property
    def public_key(self) -> PublicKey: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...

    def timestamp(self, signature: bytes) -> int | None:
        """The time a (timestamped) signature states, or None for plain signatures."""
        ...

    def vkey(self) -> str: ...


class Signer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


class KeyedVerifier:
    """A named public key of one signature type: name, key id, vkey parsing. Subclasses verify."""

    sig_type: int
    vkey_kind = "vkey"

    def __init__(self, name: str, public_key: PublicKey) -> None:
        if not valid_key_name(name):
            raise NoteFormatError(f"invalid key name {name!r}", code="bad-vkey")
        self._name = name
        self._public_key = public_key
        self._key_id = key_id(name, self.sig_type, public_key.raw)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        name, _, sig_type, public = split_vkey(vkey)
        if sig_type != cls.sig_type or len(public) != 32:
            raise NoteFormatError(f"not {cls.vkey_kind}", code="bad-vkey")
        return cls(name, checked_public_key(public))


class Ed25519Verifier(KeyedVerifier):
    """Plain Ed25519 note signatures (type 0x01)."""

    sig_type = SIG_ED25519
    vkey_kind = "an Ed25519 vkey"

    def verify(self, text: bytes, signature: bytes) -> bool:
        return self._public_key.verify(signature, text)

    def timestamp(self, signature: bytes) -> int | None:
        return None

    def vkey(self) -> str:
        return format_vkey(self._name, SIG_ED25519, self._public_key.raw)

    def __repr__(self) -> str:
        return f"Ed25519Verifier({self.vkey()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ed25519Verifier) and other.vkey() == self.vkey()

    def __hash__(self) -> int:
        return hash(self.vkey())


class Ed25519Signer:
    """Signs note texts with an Ed25519 key under a key name."""

    def __init__(self, name: str, key: SigningKey) -> None:
        self.verifier = Ed25519Verifier(name, key.public)
        self._key = key

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)


def sign_text(text: str, signers: Sequence[Signer]) -> tuple[NoteSignature, ...]:
    """Signatures of ``text`` by each signer."""
    check_text(text)
    body = text.encode("utf-8")
    return tuple(NoteSignature(s.name, s.key_id, s.sign(body)) for s in signers)


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """A signed note of ``text`` by ``signers`` (at least one)."""
    return Note(text, sign_text(text, signers)).to_bytes()


# -- opening ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature line that a known key verified."""

    verifier: Verifier
    signature: NoteSignature
    timestamp: int | None  # cosignatures state a time; plain signatures do not


@dataclass(frozen=True)
class OpenedNote:
    """A note whose known signatures all verified (at least one)."""

    note: Note
    verified: tuple[VerifiedSignature, ...]
    unknown: tuple[NoteSignature, ...]

    @property
    def text(self) -> str:
        return self.note.text

    def verified_by(self, verifier: Verifier) -> list[VerifiedSignature]:
        return [v for v in self.verified if v.verifier == verifier]


def verifier_map(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        k = (v.name, v.key_id)
        if k in known and known[k] != v:
            raise NoteSignatureError(
                f"two known keys share name and key id {v.name}+{v.key_id.hex()}", code="ambiguous-key"
            )
        known[k] = v
    return known


def open_parsed(note: Note, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Verify an already parsed note; see :func:`open_note`."""
    known = verifier_map(verifiers)
    body = note.text.encode("utf-8")
    verified: list[VerifiedSignature] = []
    unknown: list[NoteSignature] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            unknown.append(sig)
            continue
        if not v.verify(body, sig.signature):
            raise NoteSignatureError(
                f"signature by known key {sig.name}+{sig.key_id.hex()} does not verify", code="bad-note-signature"
            )
        verified.append(VerifiedSignature(v, sig, v.timestamp(sig.signature)))
    if not verified:
        raise NoteSignatureError("no known key signed the note", code="unverified-note")
    return OpenedNote(note, tuple(verified), tuple(unknown))


def open_note(data: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse and verify a signed note.

    Unknown keys are ignored; a failing signature by a known key rejects the
    note (``bad-note-signature``); so does a note no known key signed
    (``unverified-note``). Malformed notes raise :class:`NoteFormatError`.
    """
    return open_parsed(Note.parse(data), verifiers)
