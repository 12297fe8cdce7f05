"""Verifier keys (vkeys): ``<name>+<hex key id>+<base64(type ‖ public key)>``, per signature type."""

from __future__ import annotations

from .cosignature import CosignatureVerifier
from .errors import NoteFormatError
from .note import SIG_COSIGNATURE_V1, SIG_ED25519, Ed25519Verifier, Verifier, split_vkey


def parse_vkey(vkey: str) -> Verifier:
    """An :class:`Ed25519Verifier` (type 0x01) or a :class:`CosignatureVerifier` (type 0x04)."""
    sig_type = split_vkey(vkey)[2]
    if sig_type == SIG_ED25519:
        return Ed25519Verifier.from_vkey(vkey)
    if sig_type == SIG_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(vkey)
    raise NoteFormatError(f"unsupported signature type 0x{sig_type:02x}", code="bad-vkey")
