"""tamizdat's log leaves: 34 bytes ``0x01 ‖ kind ‖ id[32]``, rebuilt from public data.

- kind 1, bundle: the bundle id (SHA-256 of its manifest payload);
- kind 2, retraction: the id of the retracted bundle;
- kind 3, index: SHA-256 of the signed index payload.

The leaf carries no signature: the bundle carries its own DSSE signature, and
mirrors' cosignatures vouch that the bundles are stored. The log's origin is
``<first-root-key-id>/log`` (DESIGN.md, "Log identity").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import IntEnum

from .errors import LeafError
from .hashing import leaf_hash

LEAF_VERSION = 1
LEAF_SIZE = 34
_HEX64 = re.compile(r"[0-9a-f]{64}")


class LeafKind(IntEnum):
    BUNDLE = 1
    RETRACTION = 2
    INDEX = 3


@dataclass(frozen=True)
class Leaf:
    kind: LeafKind
    id: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.kind, LeafKind) or len(self.id) != 32:
            raise LeafError("a leaf is a known kind and a 32-byte id", code="bad-leaf")

    def to_bytes(self) -> bytes:
        return bytes([LEAF_VERSION, self.kind]) + self.id

    def hash(self) -> bytes:
        """The RFC 6962 leaf hash of this entry."""
        return leaf_hash(self.to_bytes())

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    @classmethod
    def parse(cls, data: bytes) -> Leaf:
        if len(data) != LEAF_SIZE:
            raise LeafError(f"a leaf is {LEAF_SIZE} bytes", code="bad-leaf")
        if data[0] != LEAF_VERSION:
            raise LeafError(f"unknown leaf version {data[0]}", code="bad-leaf")
        try:
            kind = LeafKind(data[1])
        except ValueError:
            raise LeafError(f"unknown leaf kind {data[1]}", code="bad-leaf") from None
        return cls(kind, bytes(data[2:]))


def _id(hex_id: str) -> bytes:
    if not _HEX64.fullmatch(hex_id):
        raise LeafError("an id is 64 lowercase hex digits", code="bad-leaf")
    return bytes.fromhex(hex_id)


def bundle_leaf(bundle_id: str) -> Leaf:
    return Leaf(LeafKind.BUNDLE, _id(bundle_id))


def retraction_leaf(retracted_bundle_id: str) -> Leaf:
    return Leaf(LeafKind.RETRACTION, _id(retracted_bundle_id))


def index_leaf(index_payload: bytes) -> Leaf:
    """The leaf of a signed index version: SHA-256 of its payload bytes."""
    return Leaf(LeafKind.INDEX, hashlib.sha256(index_payload).digest())


def log_origin(first_root_keyid: str) -> str:
    """The log's origin line (and log key name): ``<first-root-key-id>/log``."""
    _id(first_root_keyid)
    return f"{first_root_keyid}/log"
