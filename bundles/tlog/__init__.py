"""The transparency log's formats and math, as the C2SP specs define them (no network, no I/O).

- :mod:`.hashing`: RFC 6962 leaf and node hashes, compact ranges;
- :mod:`.proofs`: inclusion and consistency proofs (build from any hash source, verify);
- :mod:`.tiles`: tlog-tiles paths, layout, entry bundles, proofs from tiles;
- :mod:`.builder`: the append-only tree state that emits tiles for each new size;
- :mod:`.note`, :mod:`.cosignature`, :mod:`.vkey`: signed notes, Ed25519 keys and
  timestamped witness cosignatures;
- :mod:`.checkpoint`: checkpoints, opening, merging cosignatures, consistency checks;
- :mod:`.policy`: tlog-policy files and quorum evaluation;
- :mod:`.proof_file`: ``.tlog-proof`` files;
- :mod:`.witness`: the tlog-witness ``add-checkpoint`` body;
- :mod:`.leaf`: tamizdat's 34-byte leaves and the log origin;
- :mod:`.trust`: the log a root trusts (origin, log keys, policy, ``max_age``).
"""

from __future__ import annotations

from .builder import TileBatch, TreeBuilder
from .checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    check_extends,
    merge_cosignatures,
    open_checkpoint,
    sign_checkpoint,
)
from .cosignature import CosignatureSigner, CosignatureVerifier, cosigned_message
from .errors import (
    CheckpointError,
    ForkError,
    LeafError,
    NoteFormatError,
    NoteSignatureError,
    PolicyError,
    ProofError,
    ProofFileError,
    QuorumError,
    TileError,
    WitnessRequestError,
)
from .hashing import EMPTY_ROOT, HASH_SIZE, CompactRange, leaf_hash, node_hash, root_from_leaf_hashes
from .leaf import Leaf, LeafKind, bundle_leaf, index_leaf, log_origin, retraction_leaf
from .note import (
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    OpenedNote,
    Signer,
    VerifiedSignature,
    Verifier,
    open_note,
    sign_note,
)
from .policy import Policy
from .proof_file import ProofFile
from .proofs import (
    HashReader,
    MemoryTree,
    prove_consistency,
    prove_inclusion,
    roots_from_consistency_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from .tiles import (
    TileId,
    TileReader,
    consistency_proof_from_tiles,
    decode_entry_bundle,
    encode_entry_bundle,
    inclusion_proof_from_tiles,
    root_from_tiles,
    tile_hash_reader,
    tile_layout,
    tiles_for_consistency,
    tiles_for_inclusion,
)
from .trust import LogTrust
from .vkey import parse_vkey
from .witness import AddCheckpointRequest

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AddCheckpointRequest",
    "Checkpoint",
    "CheckpointError",
    "CompactRange",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "ForkError",
    "HashReader",
    "Leaf",
    "LeafError",
    "LeafKind",
    "LogTrust",
    "MemoryTree",
    "Note",
    "NoteFormatError",
    "NoteSignature",
    "NoteSignatureError",
    "OpenedNote",
    "Policy",
    "PolicyError",
    "ProofError",
    "ProofFile",
    "ProofFileError",
    "QuorumError",
    "SignedCheckpoint",
    "Signer",
    "TileBatch",
    "TileError",
    "TileId",
    "TileReader",
    "TreeBuilder",
    "VerifiedSignature",
    "Verifier",
    "WitnessRequestError",
    "bundle_leaf",
    "check_extends",
    "consistency_proof_from_tiles",
    "cosigned_message",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "inclusion_proof_from_tiles",
    "index_leaf",
    "leaf_hash",
    "log_origin",
    "merge_cosignatures",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_vkey",
    "prove_consistency",
    "prove_inclusion",
    "retraction_leaf",
    "root_from_leaf_hashes",
    "root_from_tiles",
    "roots_from_consistency_proof",
    "sign_checkpoint",
    "sign_note",
    "tile_hash_reader",
    "tile_layout",
    "tiles_for_consistency",
    "tiles_for_inclusion",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]
