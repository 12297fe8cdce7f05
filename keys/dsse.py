"""DSSE envelopes (the in-toto / Sigstore Dead Simple Signing Envelope).

Signatures cover ``PAE(payloadType, payload)``; the payload is verified as
bytes before anything parses it. Payload types separate the domains of
root, bundle manifest and index documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tamizdat.errors import FormatError, SignatureError

from . import strictjson
from .ed25519 import PublicKey, SigningKey, b64decode, b64encode

ROOT_TYPE = "application/vnd.tamizdat.root+json"
BUNDLE_TYPE = "application/vnd.tamizdat.bundle+json"
INDEX_TYPE = "application/vnd.tamizdat.index+json"

MAX_SIGNATURES = 16
_KEYID = re.compile(r"[0-9a-f]{64}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def is_keyid(value: object) -> bool:
    """True for a lowercase hex SHA-256 key id."""
    return isinstance(value, str) and _KEYID.fullmatch(value) is not None


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed (not yet verified) DSSE envelope."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def from_bytes(cls, data: bytes, *, expected_type: str, step: str | None = None) -> Envelope:
        """Parse an envelope strictly and check its payload type."""
        doc = strictjson.loads(data, step=step)
        return cls.from_json(doc, expected_type=expected_type, step=step)

    @classmethod
    def from_json(cls, doc: Any, *, expected_type: str, step: str | None = None) -> Envelope:
        if not isinstance(doc, dict) or set(doc) != {"payloadType", "payload", "signatures"}:
            raise FormatError(
                "envelope must have exactly payloadType, payload and signatures",
                code="bad-envelope",
                step=step,
            )
        if doc["payloadType"] != expected_type:
            raise FormatError(
                f"payload type is {str(doc['payloadType'])[:80]!r}, expected {expected_type}",
                code="wrong-payload-type",
                step=step,
            )
        payload = b64decode(doc["payload"], field="payload", step=step)
        sigs_in = doc["signatures"]
        if not isinstance(sigs_in, list) or not 1 <= len(sigs_in) <= MAX_SIGNATURES:
            raise FormatError(f"envelope needs 1 to {MAX_SIGNATURES} signatures", code="bad-envelope", step=step)
        sigs = []
        for item in sigs_in:
            if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
                raise FormatError("a signature must have exactly keyid and sig", code="bad-envelope", step=step)
            if not is_keyid(item["keyid"]):
                raise FormatError("signature keyid is not a key id", code="bad-envelope", step=step)
            sigs.append(Signature(item["keyid"], b64decode(item["sig"], field="sig", step=step)))
        return cls(expected_type, payload, tuple(sigs))

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": b64encode(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        return strictjson.dumps_pretty(self.to_json())

    def signed_by(self, keys: Mapping[str, PublicKey]) -> set[str]:
        """Key ids from ``keys`` with a valid signature here (each id counted once)."""
        message = pae(self.payload_type, self.payload)
        good: set[str] = set()
        for sig in self.signatures:
            key = keys.get(sig.keyid)
            if key is not None and sig.keyid not in good and key.verify(sig.sig, message):
                good.add(sig.keyid)
        return good

    def verify_threshold(
        self,
        keys: Mapping[str, PublicKey],
        threshold: int,
        *,
        what: str,
        step: str | None = None,
        code: str = "bad-signature",
    ) -> set[str]:
        """Require ``threshold`` distinct keys from ``keys`` to have signed."""
        good = self.signed_by(keys)
        if len(good) < threshold:
            raise SignatureError(
                f"{what} has {len(good)} valid signature(s) of {threshold} needed",
                code=code,
                step=step,
            )
        return good


def sign(payload_type: str, payload: bytes, signers: Iterable[SigningKey]) -> Envelope:
    """Sign ``payload`` with every key in ``signers`` (sorted by key id, deterministic)."""
    message = pae(payload_type, payload)
    unique = {k.keyid: k for k in signers}
    sigs = tuple(Signature(kid, unique[kid].sign(message)) for kid in sorted(unique))
    if not sigs:
        raise ValueError("at least one signer is needed")
    return Envelope(payload_type, payload, sigs)
