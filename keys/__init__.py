"""Publisher keys, DSSE envelopes and the trust root (root.json chain).

No network here; the only I/O is the key directory in :mod:`.keydir`.
"""

from .dsse import Envelope, pae
from .ed25519 import PublicKey, SigningKey, keyid_of
from .root import KeyEntry, Revocation, Root, RootChain, verify_root_chain

__all__ = [
    "Envelope",
    "KeyEntry",
    "PublicKey",
    "Revocation",
    "Root",
    "RootChain",
    "SigningKey",
    "keyid_of",
    "pae",
    "verify_root_chain",
]
