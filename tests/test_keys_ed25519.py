"""Ed25519 keys: ids, refused public keys (checked with independent curve arithmetic), key files."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamizdat.errors import SignatureError, UsageError
from tamizdat.keys.ed25519 import PublicKey, SigningKey, b64decode, check_public_key_bytes, keyid_of

# -- independent Edwards25519 arithmetic (affine, complete twisted Edwards addition) --

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1)


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def _times(n: int, point: tuple[int, int]) -> tuple[int, int]:
    out = IDENTITY
    for bit in bin(n)[2:]:
        out = _add(out, out)
        if bit == "1":
            out = _add(out, point)
    return out


def _decode(encoding: bytes) -> tuple[int, int] | None:
    """RFC 8032 point decoding, reducing y mod p (as lax decoders do); None if not on the curve."""
    n = int.from_bytes(encoding, "little")
    y, sign = (n & ((1 << 255) - 1)) % P, n >> 255
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x % 2 != sign:
        x = (P - x) % P
    return x, y


# libsodium's blocklist (ge25519_has_small_order in ed25519_ref10.c), verbatim.
LIBSODIUM_BLOCKLIST = [
    bytes(32),  # 0 (order 4)
    bytes([1]) + bytes(31),  # 1 (order 1)
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),  # order 8
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),  # order 8
    bytes([0xEC]) + b"\xff" * 30 + b"\x7f",  # p - 1 (order 2)
    bytes([0xED]) + b"\xff" * 30 + b"\x7f",  # p (= 0, order 4)
    bytes([0xEE]) + b"\xff" * 30 + b"\x7f",  # p + 1 (= 1, order 1)
]


def _with_sign_bit(encoding: bytes) -> bytes:
    return encoding[:31] + bytes([encoding[31] | 0x80])


BLOCKED = LIBSODIUM_BLOCKLIST + [_with_sign_bit(e) for e in LIBSODIUM_BLOCKLIST]


def test_curve_arithmetic_sanity() -> None:
    base = _decode(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))
    assert base is not None
    order = 2**252 + 27742317777372353535851937790883648493
    assert _times(order, base) == IDENTITY
    assert _times(8, base) != IDENTITY
    real = _decode(SigningKey.from_seed(b"\x07" * 32).public.raw)
    assert real is not None and _times(8, real) != IDENTITY


@pytest.mark.parametrize("encoding", LIBSODIUM_BLOCKLIST, ids=lambda e: e.hex()[:8] + ".." + e.hex()[-2:])
def test_each_blocklisted_encoding_is_a_small_order_point(encoding: bytes) -> None:
    for enc in (encoding, _with_sign_bit(encoding)):
        point = _decode(enc)
        assert point is not None
        assert _times(8, point) == IDENTITY


@pytest.mark.parametrize("encoding", BLOCKED, ids=lambda e: e.hex()[:8] + ".." + e.hex()[-2:])
def test_small_order_and_noncanonical_keys_are_refused(encoding: bytes) -> None:
    with pytest.raises(SignatureError) as info:
        check_public_key_bytes(encoding, step="12")
    assert (info.value.code, info.value.step) == ("bad-public-key", "12")
    with pytest.raises(SignatureError):
        PublicKey.from_raw(encoding)


@pytest.mark.parametrize(
    "y",
    [P, P + 1, P + 2, P + 18, 2**255 - 1],
    ids=["p", "p+1", "p+2", "p+18", "2^255-1"],
)
def test_y_not_below_p_is_refused_with_either_sign(y: int) -> None:
    enc = y.to_bytes(32, "little")
    for e in (enc, _with_sign_bit(enc)):
        with pytest.raises(SignatureError) as info:
            check_public_key_bytes(e)
        assert info.value.code == "bad-public-key"


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(SignatureError):
        check_public_key_bytes(b"\x09" * length)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_refusal_matches_the_rule_for_any_32_bytes(encoding: bytes) -> None:
    y = int.from_bytes(encoding, "little") & ((1 << 255) - 1)
    point = _decode(encoding) if y < P else None
    small = point is not None and _times(8, point) == IDENTITY
    refused = y >= P or small
    try:
        check_public_key_bytes(encoding)
    except SignatureError:
        assert refused
    else:
        assert not refused


def test_real_keys_are_accepted_and_keyid_is_sha256_of_raw() -> None:
    for i in range(20):
        key = SigningKey.from_seed(hashlib.sha256(b"%d" % i).digest())
        check_public_key_bytes(key.public.raw)
        assert key.keyid == keyid_of(key.public.raw) == hashlib.sha256(key.public.raw).hexdigest()
        assert PublicKey.from_b64(key.public.b64()) == key.public


def test_from_seed_is_deterministic() -> None:
    a, b = SigningKey.from_seed(b"\x01" * 32), SigningKey.from_seed(b"\x01" * 32)
    assert a.keyid == b.keyid and a.sign(b"m") == b.sign(b"m")
    assert a.public.verify(a.sign(b"m"), b"m")
    assert not a.public.verify(a.sign(b"m"), b"M")
    assert not a.public.verify(b"\x00" * 64, b"m")
    assert not a.public.verify(a.sign(b"m")[:63], b"m")


@pytest.mark.parametrize("text", ["QQ", "QR==", " QQ==", "QQ==\n", "QQ=", "Q===", "QQ==QQ==", "ÄQ==", "-_8="])
def test_base64_must_be_canonical_standard_with_padding(text: str) -> None:
    with pytest.raises(Exception) as info:
        b64decode(text, field="x", step="12")
    assert getattr(info.value, "code", None) == "bad-base64"
    assert b64decode("QQ==", field="x") == b"A"


def test_base64_must_be_a_string() -> None:
    for value in (None, 1, b"QQ==", ["QQ=="]):
        with pytest.raises(Exception) as info:
            b64decode(value, field="x")
        assert getattr(info.value, "code", None) == "bad-base64"


# -- key files --------------------------------------------------------------------


def test_key_file_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    key = SigningKey.from_seed(b"\x02" * 32)
    path = tmp_path / "k.pem"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(UsageError) as info:
        SigningKey.from_seed(b"\x03" * 32).save(path)
    assert info.value.code == "key-exists"
    assert path.read_bytes() == before
    assert SigningKey.load(path).keyid == key.keyid


def test_unencrypted_key_file_is_deterministic(tmp_path: Path) -> None:
    key = SigningKey.from_seed(b"\x02" * 32)
    assert key.to_pem() == SigningKey.from_seed(b"\x02" * 32).to_pem()
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_encrypted_key_file(tmp_path: Path) -> None:
    key = SigningKey.from_seed(b"\x04" * 32)
    path = tmp_path / "root.pem"
    key.save(path, b"correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert SigningKey.load(path, b"correct horse").keyid == key.keyid
    with pytest.raises(UsageError) as info:
        SigningKey.load(path, b"wrong horse")
    assert info.value.code == "bad-private-key"
    with pytest.raises(UsageError) as info:
        SigningKey.load(path)
    assert info.value.code == "passphrase-needed"


def test_bad_key_files_give_clean_errors(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    plain = tmp_path / "plain.pem"
    SigningKey.from_seed(b"\x05" * 32).save(plain)
    with pytest.raises(UsageError) as info:
        SigningKey.load(plain, b"unneeded")
    assert info.value.code == "usage"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(UsageError) as info:
        SigningKey.load(garbage)
    assert info.value.code == "bad-private-key"
    ecdsa = tmp_path / "ec.pem"
    ecdsa.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(UsageError) as info:
        SigningKey.load(ecdsa)
    assert info.value.code == "bad-private-key"
    with pytest.raises(UsageError):
        SigningKey.load(tmp_path / "missing.pem")
