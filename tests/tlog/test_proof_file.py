"""C2SP tlog-proof files: format, round trip, offline verification against a policy, size."""

from __future__ import annotations

import base64

import pytest

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.errors import NoteFormatError, ProofError, ProofFileError, QuorumError
from tamizdat.bundles.tlog.leaf import Leaf, bundle_leaf, index_leaf, log_origin
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.proof_file import PROOF_HEADER, ProofFile
from tamizdat.bundles.tlog.proofs import prove_inclusion
from tamizdat.bundles.tlog.tiles import tile_hash_reader

from .conftest import NOW
from .util import TileStore, key

ORIGIN = log_origin("ab" * 32)
LOG = Ed25519Signer(ORIGIN, key(1))
MIRRORS = [CosignatureSigner(f"mirror{i}.example.org/tamizdat", key(40 + i), clock=lambda: NOW) for i in range(4)]
POLICY = Policy.parse(
    f"log {LOG.verifier.vkey()}\n"
    + "".join(f"witness M{i} {m.verifier.vkey()}\n" for i, m in enumerate(MIRRORS))
    + "group mirrors 2 M0 M1 M2 M3\nquorum mirrors\n"
)


def _log(n: int) -> tuple[TreeBuilder, TileStore, list[Leaf]]:
    leaves = [bundle_leaf(f"{i:064x}") for i in range(n - 1)] + [index_leaf(b"index payload")]
    b = TreeBuilder()
    b.extend(leaf.to_bytes() for leaf in leaves)
    store = TileStore()
    store.write(b.flush().files())
    return b, store, leaves


def _checkpoint(b: TreeBuilder, cosigners: list[CosignatureSigner]) -> bytes:
    cp = Checkpoint(ORIGIN, b.size, b.root())
    return Note.parse(sign_checkpoint(cp, [LOG])).with_signatures(m.cosign(cp.text()) for m in cosigners).to_bytes()


def test_round_trip_and_verify() -> None:
    b, store, leaves = _log(1000)
    note = _checkpoint(b, MIRRORS[:2])
    for i in (0, 1, 255, 256, 998, 999):
        pf = ProofFile(i, tuple(prove_inclusion(i, b.size, tile_hash_reader(b.size, store.read))), note)
        data = pf.to_bytes()
        assert data.startswith(f"{PROOF_HEADER}\nindex {i}\n".encode())
        assert ProofFile.parse(data) == pf
        signed = ProofFile.parse(data).verify(leaves[i].hash(), POLICY, origin=ORIGIN)
        assert signed.checkpoint.size == 1000
        with pytest.raises(ProofError):
            pf.verify(leaves[(i + 1) % 1000].hash(), POLICY)


def test_extra_data() -> None:
    b, store, _ = _log(5)
    pf = ProofFile(2, tuple(prove_inclusion(2, 5, tile_hash_reader(5, store.read))), _checkpoint(b, MIRRORS), b"vrf")
    data = pf.to_bytes()
    assert data.split(b"\n")[1] == b"extra " + base64.b64encode(b"vrf")
    assert ProofFile.parse(data) == pf


def test_no_quorum() -> None:
    b, store, leaves = _log(10)
    pf = ProofFile(3, tuple(prove_inclusion(3, 10, tile_hash_reader(10, store.read))), _checkpoint(b, MIRRORS[:1]))
    with pytest.raises(QuorumError):
        pf.verify(leaves[3].hash(), POLICY)


def test_spec_example_header_parses() -> None:
    """tlog-proof's example, with a checkpoint of our own (the spec elides its signatures)."""
    b, _, _ = _log(3)
    head = (
        b"c2sp.org/tlog-proof@v1\n"
        b"extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
        b"index 73894\n"
        b"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
        b"B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
        b"EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
        b"RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
        b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
        b"\n"
    )
    pf = ProofFile.parse(head + _checkpoint(b, MIRRORS))
    assert pf.index == 73894 and len(pf.proof) == 5 and pf.extra is not None
    assert pf.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")


@pytest.mark.parametrize(
    "head",
    [
        b"c2sp.org/tlog-proof@v2\nindex 1\n\n",
        b"index 1\n\n",
        b"c2sp.org/tlog-proof@v1\n\n",
        b"c2sp.org/tlog-proof@v1\nindex 01\n\n",
        b"c2sp.org/tlog-proof@v1\nindex -1\n\n",
        b"c2sp.org/tlog-proof@v1\nindex  1\n\n",
        b"c2sp.org/tlog-proof@v1\nindex 1\nextra YQ==\n\n",
        b"c2sp.org/tlog-proof@v1\nextra \nindex 1\n\n",
        b"c2sp.org/tlog-proof@v1\nextra YQ\nindex 1\n\n",
        b"c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\n",  # 3-byte hash
        b"c2sp.org/tlog-proof@v1\nindex 1\ngSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",  # no blank line
        b"c2sp.org/tlog-proof@v1\r\nindex 1\n\n",
    ],
)
def test_malformed_proof_files(head: bytes) -> None:
    b, _, _ = _log(3)
    with pytest.raises((ProofFileError, NoteFormatError)):
        ProofFile.parse(head + _checkpoint(b, MIRRORS))


def test_garbage_checkpoint_rejected() -> None:
    with pytest.raises(NoteFormatError):
        ProofFile.parse(b"c2sp.org/tlog-proof@v1\nindex 1\n\nnot a note\n")


def test_proof_file_size_at_one_million() -> None:
    """A 20-hash proof and a checkpoint with a log signature and four cosignatures stay under 2 KB."""
    cp = Checkpoint(ORIGIN, 1_000_000, b"\x07" * 32)
    note = Note.parse(sign_checkpoint(cp, [LOG])).with_signatures(m.cosign(cp.text()) for m in MIRRORS).to_bytes()
    pf = ProofFile(999_999, (b"\x01" * 32,) * 20, note)
    assert len(pf.to_bytes()) <= 2048
    assert len(note) < 900  # the origin (a 64-hex root key id + "/log") appears twice
