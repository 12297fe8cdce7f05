"""C2SP signed-note: the spec's example, Go's sumdb/note example, bit flips, unknown and bad keys."""

from __future__ import annotations

import base64

import pytest

from tamizdat.bundles.tlog.errors import NoteFormatError, NoteSignatureError
from tamizdat.bundles.tlog.note import (
    EM_DASH,
    MAX_SIGNATURES,
    SIG_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    format_vkey,
    key_id,
    open_note,
    sign_note,
)
from tamizdat.bundles.tlog.vkey import parse_vkey
from tamizdat.errors import FormatError, RejectedError, SignatureError
from tamizdat.keys.ed25519 import SigningKey

from .util import key

# c2sp.org/signed-note, "Verifier keys" and its example note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    f"{EM_DASH} example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()

# golang.org/x/mod/sumdb/note package documentation.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_SIG = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="


def test_spec_vkey() -> None:
    v = parse_vkey(SPEC_VKEY)
    assert isinstance(v, Ed25519Verifier)
    assert v.name == "example.com/foo"
    assert v.key_id.hex() == "530d903a"
    assert v.public_key.raw.hex() == "e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4"
    assert key_id("example.com/foo", SIG_ED25519, v.public_key.raw) == bytes.fromhex("530d903a")
    assert v.vkey() == SPEC_VKEY
    assert format_vkey(v.name, SIG_ED25519, v.public_key.raw) == SPEC_VKEY


def test_spec_note_verifies() -> None:
    opened = open_note(SPEC_NOTE, [parse_vkey(SPEC_VKEY)])
    assert opened.text == "This is an example message.\n"
    assert [s.signature.name for s in opened.verified] == ["example.com/foo"]
    assert opened.verified[0].signature.key_id.hex() == "530d903a"
    assert opened.verified[0].timestamp is None and opened.unknown == ()
    assert opened.note.to_bytes() == SPEC_NOTE


def test_every_single_bit_flip_fails() -> None:
    verifiers = [parse_vkey(SPEC_VKEY)]
    for i in range(len(SPEC_NOTE) * 8):
        flipped = bytearray(SPEC_NOTE)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(RejectedError) as err:
            open_note(bytes(flipped), verifiers)
        assert isinstance(err.value, NoteFormatError | NoteSignatureError), i


def test_go_note_example() -> None:
    peter, enoch = parse_vkey(GO_VKEY), parse_vkey(ENOCH_VKEY)
    note = (GO_TEXT + "\n" + f"{EM_DASH} PeterNeumann {GO_SIG}\n").encode()
    assert open_note(note, [peter]).text == GO_TEXT
    both = (GO_TEXT + "\n" + f"{EM_DASH} PeterNeumann {GO_SIG}\n{EM_DASH} EnochRoot {ENOCH_SIG}\n").encode()
    opened = open_note(both, [peter, enoch])
    assert [v.signature.name for v in opened.verified] == ["PeterNeumann", "EnochRoot"]
    only_enoch = open_note(both, [enoch])
    assert [s.name for s in only_enoch.unknown] == ["PeterNeumann"]


def test_go_signing_key_reproduces_signature() -> None:
    """Ed25519 is deterministic: Go's example private key signs to Go's example signature."""
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == SIG_ED25519
    signer = Ed25519Signer("PeterNeumann", SigningKey.from_seed(raw[1:]))
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier.vkey() == GO_VKEY
    assert sign_note(GO_TEXT, [signer]) == (GO_TEXT + "\n" + f"{EM_DASH} PeterNeumann {GO_SIG}\n").encode()


def _signers(n: int) -> list[Ed25519Signer]:
    return [Ed25519Signer(f"signer{i}.example", key(100 + i)) for i in range(n)]


def test_seventeen_signatures_accepted() -> None:
    signers = _signers(17)
    note = sign_note("hello\n", signers)
    opened = open_note(note, [s.verifier for s in signers])
    assert len(opened.verified) == 17
    assert len(open_note(note, [signers[16].verifier]).unknown) == 16


def test_too_many_signatures_rejected() -> None:
    signers = _signers(2)
    sigs = [NoteSignature(f"k{i}", b"\x00\x00\x00\x00", b"sig") for i in range(MAX_SIGNATURES)]
    note = Note("hello\n", (*sigs, *Note.parse(sign_note("hello\n", signers)).signatures))
    with pytest.raises(NoteFormatError):
        open_note(note.to_bytes(), [signers[0].verifier])


def test_unknown_keys_ignored() -> None:
    known, other = _signers(2)
    impostor_name = Ed25519Signer(known.name, key(7))  # same name, another key (so another id)
    same_id_other_name = NoteSignature("someone.else", known.key_id, b"\x00" * 64)
    note = Note.parse(sign_note("text\n", [other, impostor_name, known]))
    note = note.with_signatures([same_id_other_name])
    opened = open_note(note.to_bytes(), [known.verifier])
    assert [v.verifier for v in opened.verified] == [known.verifier]
    assert len(opened.unknown) == 3


def test_bad_signature_by_known_key_rejects() -> None:
    good, bad = _signers(2)
    note = Note.parse(sign_note("text\n", [good]))
    forged = NoteSignature(bad.name, bad.key_id, bad.sign(b"other text\n"))
    with pytest.raises(NoteSignatureError) as err:
        open_note(note.with_signatures([forged]).to_bytes(), [good.verifier, bad.verifier])
    assert err.value.code == "bad-note-signature"
    assert isinstance(err.value, SignatureError)


def test_no_known_signature_rejects() -> None:
    a, b = _signers(2)
    with pytest.raises(NoteSignatureError) as err:
        open_note(sign_note("text\n", [a]), [b.verifier])
    assert err.value.code == "unverified-note"


def test_ambiguous_verifiers_rejected() -> None:
    a = _signers(1)[0]
    twin = NoteSignature(a.name, a.key_id, b"x")
    assert twin.key_id == a.key_id
    same = Ed25519Verifier(a.name, a.verifier.public_key)
    open_note(sign_note("t\n", [a]), [a.verifier, same])  # the same key twice is fine


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no signatures\n",
        b"text\n\n",
        "text\n\n— k AAAAAAE=".encode(),  # no final newline
        "text\n\n— k AAAAAAE=\n\n".encode(),
        b"text\n\n- k AAAAAAE=\n",  # hyphen, not em dash
        "text\n\n—k AAAAAAE=\n".encode(),
        "text\n\n— k+x AAAAAAE=\n".encode(),  # plus in name
        "text\n\n— k\u00a0x AAAAAAE=\n".encode(),  # Unicode space in name
        "text\n\n—  AAAAAAE=\n".encode(),  # empty name
        "text\n\n— k AAAAAA==\n".encode(),  # 4 bytes: no signature after the key id
        "text\n\n— k AAAAAAF=\n".encode(),  # non-canonical base64 (spare bits)
        "text\n\n— k AAAAAAE\n".encode(),  # unpadded
        "text\n\n— k AAAA AAE=\n".encode(),
        "text\n\n— k \n".encode(),
        "te\txt\n\n— k AAAAAAE=\n".encode(),  # control character
        "text\r\n\n— k AAAAAAE=\n".encode(),
        b"text\xff\n\n\xe2\x80\x94 k AAAAAAE=\n",  # invalid UTF-8
        b"text\xed\xa0\x80\n\n\xe2\x80\x94 k AAAAAAE=\n",  # encoded surrogate
        "text\n\n— k AAAAAAE=\nnot a signature\n".encode(),
    ],
)
def test_malformed_notes(data: bytes) -> None:
    with pytest.raises(NoteFormatError) as err:
        Note.parse(data)
    assert isinstance(err.value, FormatError)


def test_text_may_hold_blank_lines() -> None:
    s = _signers(1)
    text = "para one\n\npara two\n"
    opened = open_note(sign_note(text, s), [s[0].verifier])
    assert opened.text == text


def test_signing_rejects_bad_text() -> None:
    s = _signers(1)
    for text in ["no newline", "tab\there\n"]:
        with pytest.raises(NoteFormatError):
            sign_note(text, s)
    with pytest.raises(NoteFormatError):
        Note("x\n", ()).to_bytes()


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # uppercase id
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # id of another name
        "example.com/foo+530d903a",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k+x",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "",
    ],
)
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(NoteFormatError) as err:
        parse_vkey(vkey)
    assert err.value.code == "bad-vkey"


def test_vkey_with_plus_in_base64() -> None:
    for seed in range(40):
        vkey = Ed25519Signer("plus.example", key(seed)).verifier.vkey()
        assert parse_vkey(vkey).vkey() == vkey
    assert any("+" in Ed25519Signer("plus.example", key(s)).verifier.vkey().split("+", 2)[2] for s in range(40))


def test_vkey_types_and_weak_keys() -> None:
    zero = bytes(32)  # y = 0: a small-order point, refused like everywhere in tamizdat
    with pytest.raises(NoteFormatError):
        parse_vkey(format_vkey("weak.example", SIG_ED25519, zero))
    with pytest.raises(NoteFormatError):
        parse_vkey(format_vkey("ecdsa.example", 0x02, b"\x04" + b"\x01" * 64))
    with pytest.raises(NoteFormatError):
        Ed25519Verifier.from_vkey(format_vkey("w.example", 0x04, key(3).public.raw))
    with pytest.raises(NoteFormatError):
        format_vkey("bad name", SIG_ED25519, key(3).public.raw)
