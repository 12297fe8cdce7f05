"""C2SP tlog-checkpoint and tlog-cosignature: the spec's examples, signing, opening, merging."""

from __future__ import annotations

import base64

import pytest

from tamizdat.bundles.tlog.checkpoint import (
    Checkpoint,
    check_extends,
    merge_cosignatures,
    open_checkpoint,
    sign_checkpoint,
)
from tamizdat.bundles.tlog.cosignature import (
    COSIGNATURE_SIZE,
    CosignatureSigner,
    CosignatureVerifier,
    cosigned_message,
    split_cosignature,
)
from tamizdat.bundles.tlog.errors import (
    CheckpointError,
    ForkError,
    NoteFormatError,
    NoteSignatureError,
    ProofError,
)
from tamizdat.bundles.tlog.hashing import EMPTY_ROOT
from tamizdat.bundles.tlog.note import EM_DASH, SIG_COSIGNATURE_V1, Ed25519Signer, Note, NoteSignature, format_vkey
from tamizdat.bundles.tlog.proofs import MemoryTree
from tamizdat.bundles.tlog.vkey import parse_vkey
from tamizdat.errors import RollbackError

from .conftest import NOW, ORIGIN
from .util import entry, key

# c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature examples.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_LOG_SIG = "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8="
# The spec wraps this line in its markdown source; joined here.
SPEC_COSIG = "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
SPEC_NOTE = (
    f"{SPEC_BODY}\n"
    f"{EM_DASH} example.com/behind-the-sofa {SPEC_LOG_SIG}\n"
    f"{EM_DASH} witness.example.com/w1 {SPEC_COSIG}\n"
).encode()


def test_spec_checkpoint_body() -> None:
    cp = Checkpoint.parse(SPEC_BODY)
    assert cp.origin == "example.com/behind-the-sofa" and cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.text() == SPEC_BODY and cp.extensions == ()


def test_spec_cosignature_decodes() -> None:
    note = Note.parse(SPEC_NOTE)
    assert note.text == SPEC_BODY
    log, cosig = note.signatures
    assert log.name == "example.com/behind-the-sofa"
    assert cosig.name == "witness.example.com/w1"
    assert cosig.key_id.hex() == "8d66cf3f"
    assert len(SPEC_COSIG) == 104 and len(cosig.signature) == COSIGNATURE_SIZE == 72
    timestamp, sig = split_cosignature(cosig.signature)
    assert timestamp == 1679315147 and len(sig) == 64


def test_spec_cosigned_message() -> None:
    assert cosigned_message(SPEC_BODY.encode(), 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_cosignature_key_id_and_vkey() -> None:
    w = CosignatureSigner("witness.example/w1", key(9), clock=lambda: NOW)
    raw = key(9).public.raw
    import hashlib

    assert w.key_id == hashlib.sha256(b"witness.example/w1\n\x04" + raw).digest()[:4]
    vkey = w.verifier.vkey()
    assert vkey == format_vkey("witness.example/w1", SIG_COSIGNATURE_V1, raw)
    parsed = parse_vkey(vkey)
    assert isinstance(parsed, CosignatureVerifier) and parsed == w.verifier
    with pytest.raises(NoteFormatError):
        CosignatureVerifier.from_vkey(Ed25519Signer("x.example", key(9)).verifier.vkey())


def _tree(n: int) -> MemoryTree:
    t = MemoryTree()
    for i in range(n):
        t.append(entry(i))
    return t


def _cp(n: int, tree: MemoryTree | None = None) -> Checkpoint:
    return Checkpoint(ORIGIN, n, (tree or _tree(n)).root(n))


def test_sign_and_open(log_signer: Ed25519Signer, witnesses: list[CosignatureSigner]) -> None:
    cp = _cp(10)
    note = Note.parse(sign_checkpoint(cp, [log_signer]))
    note = note.with_signatures(w.cosign(cp.text()) for w in witnesses[:3])
    signed = open_checkpoint(note.to_bytes(), [log_signer.verifier], [w.verifier for w in witnesses])
    assert signed.checkpoint == cp
    assert [v.verifier for v in signed.log_signatures] == [log_signer.verifier]
    assert signed.cosigned_at() == {w.verifier: NOW for w in witnesses[:3]}
    assert signed.to_bytes() == note.to_bytes()
    # Witness keys alone do not make a checkpoint: the log must sign.
    with pytest.raises(NoteSignatureError) as err:
        open_checkpoint(note.to_bytes(), [], [w.verifier for w in witnesses])
    assert err.value.code in {"no-log-signature", "unverified-note"}


def test_cosignature_binds_its_time(log_signer: Ed25519Signer, witnesses: list[CosignatureSigner]) -> None:
    cp = _cp(3)
    line = witnesses[0].cosign(cp.text(), timestamp=NOW)
    later = NoteSignature(line.name, line.key_id, (NOW + 1).to_bytes(8, "big") + line.signature[8:])
    note = Note.parse(sign_checkpoint(cp, [log_signer])).with_signatures([later])
    with pytest.raises(NoteSignatureError):
        open_checkpoint(note.to_bytes(), [log_signer.verifier], [witnesses[0].verifier])
    # An Ed25519 (type 0x01) signature by the witness key is not a cosignature.
    plain = Ed25519Signer(witnesses[0].name, key(10))
    note = Note.parse(sign_checkpoint(cp, [log_signer])).with_signatures(
        [NoteSignature(plain.name, witnesses[0].key_id, plain.sign(cp.body()))]
    )
    with pytest.raises(NoteSignatureError):
        open_checkpoint(note.to_bytes(), [log_signer.verifier], [witnesses[0].verifier])


def test_origin_rules(log_signer: Ed25519Signer) -> None:
    cp = _cp(2)
    data = sign_checkpoint(cp, [log_signer])
    with pytest.raises(CheckpointError) as err:
        open_checkpoint(data, [log_signer.verifier], origin="other.example/log")
    assert err.value.code == "origin-mismatch"
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint("other.example/log", 2, cp.root), [log_signer])
    # A log key with another name than the origin does not count as the log's signature.
    other = Ed25519Signer("other.example/log", key(1))
    forged = Note(
        cp.text(), Note.parse(sign_checkpoint(Checkpoint("other.example/log", 2, cp.root), [other])).signatures
    )
    with pytest.raises(NoteSignatureError):
        open_checkpoint(forged.to_bytes(), [other.verifier])


def test_extension_lines(log_signer: Ed25519Signer) -> None:
    cp = Checkpoint(ORIGIN, 2, _cp(2).root, ("ext one",))
    data = sign_checkpoint(cp, [log_signer])
    with pytest.raises(CheckpointError):
        open_checkpoint(data, [log_signer.verifier])
    assert open_checkpoint(data, [log_signer.verifier], allow_extensions=True).checkpoint.extensions == ("ext one",)


@pytest.mark.parametrize(
    "body",
    [
        "origin\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n+1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
        "origin\n1\n\n",
        "origin\n1\n",
        "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        "origin\n0\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # size 0 needs the empty root
        "origin\n\u0661\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
    ],
)
def test_malformed_checkpoints(body: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)


def test_empty_tree_checkpoint() -> None:
    cp = Checkpoint(ORIGIN, 0, EMPTY_ROOT)
    assert Checkpoint.parse(cp.text()) == cp
    assert cp.text() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


def test_merge_cosignatures(log_signer: Ed25519Signer, witnesses: list[CosignatureSigner]) -> None:
    cp = _cp(5)
    base = sign_checkpoint(cp, [log_signer])
    logs, wits = [log_signer.verifier], [w.verifier for w in witnesses]
    mirror_a = Note.parse(base).with_signatures([witnesses[0].cosign(cp.text(), NOW)]).to_bytes()
    mirror_b = Note.parse(base).with_signatures([witnesses[1].cosign(cp.text(), NOW)]).to_bytes()
    stranger = CosignatureSigner("stranger.example", key(50))
    merged = merge_cosignatures(
        base,
        [mirror_a, mirror_b, witnesses[0].cosign(cp.text(), NOW + 3600), stranger.cosign(cp.text(), NOW)],
        logs,
        wits,
    )
    signed = open_checkpoint(merged, logs, [*wits, stranger.verifier])
    assert signed.cosigned_at() == {witnesses[0].verifier: NOW + 3600, witnesses[1].verifier: NOW}
    assert len(signed.note.signatures) == 3  # log + newest of each known witness; the stranger dropped
    other = sign_checkpoint(_cp(6), [log_signer])
    with pytest.raises(CheckpointError):
        merge_cosignatures(base, [other], logs, wits)
    bad = NoteSignature(witnesses[2].name, witnesses[2].key_id, b"\x00" * 72)
    with pytest.raises(NoteSignatureError):
        merge_cosignatures(base, [bad], logs, wits)


def test_check_extends() -> None:
    tree = _tree(20)
    old, new = _cp(7, tree), _cp(20, tree)
    check_extends(old, new, tree.consistency_proof(7, 20))
    check_extends(None, new, [])
    check_extends(Checkpoint(ORIGIN, 0, EMPTY_ROOT), new, [])
    check_extends(new, new, [])
    with pytest.raises(ProofError):
        check_extends(None, new, tree.consistency_proof(7, 20))
    with pytest.raises(RollbackError) as rb:
        check_extends(new, old, [])
    assert rb.value.code == "rollback"
    with pytest.raises(ForkError) as fork:
        check_extends(new, Checkpoint(ORIGIN, 20, bytes(32)), [])
    assert fork.value.code == "fork"
    with pytest.raises(ProofError):
        check_extends(old, new, tree.consistency_proof(6, 20))
    with pytest.raises(CheckpointError):
        check_extends(old, Checkpoint("another/log", 20, new.root), [])
