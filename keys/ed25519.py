"""Ed25519 keys: ids, strict public key decoding, private key files.

A key id is the lowercase hex SHA-256 of the raw 32-byte public key. Public
keys that arrive from data are checked before use: ``cryptography`` accepts a
small-order public key with a trivial signature, so the encodings of the
eight small-order points and every non-canonical encoding (y >= p) are refused,
as libsodium does.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tamizdat.errors import FormatError, RejectedError, SignatureError, UsageError

_P = 2**255 - 19
_Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022
# y-coordinates of the points of order 1, 2, 4 and 8 (the sign bit is ignored).
SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


def keyid_of(raw_public: bytes) -> str:
    """Key id: lowercase hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public).hexdigest()


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as used for keys and signatures in JSON."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, field: str, step: str | None = None) -> bytes:
    """Strict standard base64 (padding required, no whitespace, canonical)."""
    if not isinstance(text, str):
        raise FormatError(f"{field} must be a base64 string", code="bad-base64", step=step)
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise FormatError(f"{field} is not valid base64", code="bad-base64", step=step) from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise FormatError(f"{field} is not canonical base64", code="bad-base64", step=step)
    return data


def check_public_key_bytes(raw: bytes, *, step: str | None = None) -> None:
    """Refuse wrong lengths, non-canonical encodings and small-order points."""
    if len(raw) != 32:
        raise SignatureError("public key is not 32 bytes", code="bad-public-key", step=step)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise SignatureError("public key has a non-canonical encoding", code="bad-public-key", step=step)
    if y in SMALL_ORDER_Y:
        raise SignatureError("public key is a small-order point", code="bad-public-key", step=step)


@dataclass(frozen=True)
class PublicKey:
    """A checked Ed25519 public key. Build it with :meth:`from_raw`."""

    raw: bytes
    keyid: str

    @classmethod
    def from_raw(cls, raw: bytes, *, step: str | None = None) -> PublicKey:
        check_public_key_bytes(raw, step=step)
        return cls(raw=raw, keyid=keyid_of(raw))

    @classmethod
    def from_b64(cls, text: object, *, step: str | None = None) -> PublicKey:
        if isinstance(text, str):
            try:
                return _public_from_b64(text)
            except RejectedError as err:
                err.step = step
                raise
        return cls.from_raw(b64decode(text, field="public key", step=step), step=step)

    def b64(self) -> str:
        return b64encode(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __getstate__(self) -> dict[str, object]:
        return {"raw": self.raw, "keyid": self.keyid}  # not the cached key object (not picklable)

    @functools.cached_property
    def _key(self) -> Ed25519PublicKey:
        """The ``cryptography`` key object, built once per key (roots are cached, so per publisher)."""
        return Ed25519PublicKey.from_public_bytes(self.raw)


@functools.lru_cache(maxsize=1024)
def _public_from_b64(text: str) -> PublicKey:
    """Checked keys by their base64 text: every root version repeats its keys (and the
    cached ``cryptography`` key object in each). Errors are raised, never cached."""
    return PublicKey.from_raw(b64decode(text, field="public key"))


class SigningKey:
    """An Ed25519 private key with its public half and key id."""

    def __init__(self, private: Ed25519PrivateKey):
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey.from_raw(raw)

    @property
    def keyid(self) -> str:
        return self.public.keyid

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed (test fixtures, golden bundles)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        return self._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None, *, name: str = "key") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError as exc:
            if passphrase is None:
                raise UsageError(f"{name} is encrypted: give its passphrase", code="passphrase-needed") from exc
            raise UsageError(f"{name} is not encrypted: give no passphrase", code="usage") from exc
        except ValueError as exc:
            raise UsageError(
                f"{name} could not be read (wrong passphrase or damaged file)",
                code="bad-private-key",
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise UsageError(f"{name} is not an Ed25519 key", code="bad-private-key")
        return cls(key)

    def save(self, path: Path, passphrase: bytes | None = None) -> None:
        """Write the key to a new file with mode 0600; never overwrite."""
        data = self.to_pem(passphrase)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise UsageError(f"refusing to overwrite {path.name}", code="key-exists") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def load(cls, path: Path, passphrase: bytes | None = None) -> SigningKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read key file {path.name}: {exc.strerror}", code="usage") from exc
        return cls.from_pem(data, passphrase, name=path.name)
