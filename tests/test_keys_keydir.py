"""The key directory: init, rotate-signing, revoke, rotate-root, and what each does to bundles."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from helpers import (
    GOLDEN,
    GOLDEN_LOG_KEY,
    GOLDEN_ROOT_KEYID,
    GOLDEN_SEEDS,
    GOLDEN_SIGNING_KEY,
    PUBLISHER,
    ROOT_TYPE,
    T_CREATED,
    T_INIT,
    T_REVOKE,
    T_ROTATE_ROOT,
    T_ROTATE_SIGNING,
    compact_json,
    envelope_bytes,
    fixed_key_generation,
    seed,
    signed_envelope,
)

from tamizdat.bundles import build_bundle, verify_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput
from tamizdat.errors import RejectedError, SignatureError, UsageError
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import verify_root_chain

ARTICLE = GOLDEN / "article-en.zip"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _build(keydir: KeyDir, out: Path, created: dt.datetime) -> Path:
    inp = BundleInput(articles=(ArticleInput("note", "en", "A note", "Short *body*.", created),))
    build_bundle(inp, signer=keydir.signer("bundle", at=created), chain=keydir.chain(), out=out, durable=False)
    return out


def _chain_versions(keydir: KeyDir) -> list[int]:
    docs = keydir.root_documents()
    return [r.version for r in verify_root_chain(docs, pinned_keyid=GOLDEN_ROOT_KEYID).roots]


# -- init -------------------------------------------------------------------------------


def test_init_writes_private_files_0600_in_0700_folders(keydir: KeyDir) -> None:
    private = sorted((keydir.path / "root-private").glob("*.pem"))
    signing = sorted((keydir.path / "signing").glob("*.pem"))
    assert [p.stem for p in private] == [GOLDEN_ROOT_KEYID]
    assert [p.stem for p in signing] == sorted([GOLDEN_SIGNING_KEY.keyid, GOLDEN_LOG_KEY.keyid])
    for path in (*private, *signing):
        assert _mode(path) == 0o600, path
        assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    for folder in (keydir.path, keydir.path / "root-private", keydir.path / "signing"):
        assert _mode(folder) == 0o700, folder
    assert (keydir.path / "root-private" / "README.txt").exists()


def test_init_with_fixed_seeds_gives_the_checked_in_root(keydir: KeyDir) -> None:
    assert (keydir.path / "roots" / "1.json").read_bytes() == (GOLDEN / "keys" / "roots" / "1.json").read_bytes()
    assert (keydir.path / "root.json").read_bytes() == (keydir.path / "roots" / "1.json").read_bytes()
    assert keydir.root_keyid() == GOLDEN_ROOT_KEYID


def test_init_refuses_to_overwrite(keydir: KeyDir) -> None:
    before = {p: p.read_bytes() for p in keydir.path.rglob("*") if p.is_file()}
    with pytest.raises(UsageError) as info:
        KeyDir(keydir.path).init(PUBLISHER, seeds=[seed("a"), seed("b")], now=T_INIT)
    assert info.value.code == "key-exists"
    assert {p: p.read_bytes() for p in keydir.path.rglob("*") if p.is_file()} == before


def test_init_refuses_a_folder_with_roots_only(tmp_path: Path) -> None:
    (tmp_path / "k" / "roots").mkdir(parents=True)
    with pytest.raises(UsageError):
        KeyDir(tmp_path / "k").init(PUBLISHER)


@pytest.mark.parametrize(
    "kwargs",
    [{"root_keys": 1, "threshold": 2}, {"root_keys": 17, "threshold": 1}, {"threshold": 0}, {"publisher": " "}],
)
def test_init_checks_its_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    kwargs = dict(kwargs)
    publisher = kwargs.pop("publisher", PUBLISHER)
    with pytest.raises(UsageError):
        KeyDir(tmp_path / "k").init(str(publisher), **kwargs)
    assert not (tmp_path / "k" / "roots").exists()


def test_random_init_works(tmp_path: Path) -> None:
    keydir = KeyDir(tmp_path / "k")
    root = keydir.init(PUBLISHER)
    assert root.version == 1 and keydir.chain().newest == root


def test_threshold_two_of_three_root_keys(tmp_path: Path) -> None:
    keydir = KeyDir(tmp_path / "k")
    seeds = [seed(f"multi {i}") for i in range(4)]
    keydir.init(PUBLISHER, root_keys=3, threshold=2, seeds=seeds, now=T_INIT)
    keydir.rotate_signing(now=T_ROTATE_SIGNING)
    chain = keydir.chain()
    assert chain.newest.version == 2 and chain.newest.threshold == 2
    assert len(list((keydir.path / "root-private").glob("*.pem"))) == 3
    # Two private root keys suffice; one does not.
    for path in sorted((keydir.path / "root-private").glob("*.pem"))[:2]:
        path.unlink()
    with pytest.raises(UsageError) as info:
        keydir.rotate_signing(now=T_REVOKE)
    assert info.value.code == "no-root-key"


# -- each change writes version N+1 --------------------------------------------------


def _change(keydir: KeyDir, what: str, now: dt.datetime) -> None:
    if what == "rotate-signing":
        keydir.rotate_signing(now=now)
    elif what == "revoke":
        keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=now)
    else:
        keydir.rotate_root(now=now)


@pytest.mark.parametrize("what", ["rotate-signing", "revoke", "rotate-root"])
def test_each_change_writes_the_next_version(keydir: KeyDir, what: str) -> None:
    with fixed_key_generation(what):
        _change(keydir, what, T_ROTATE_SIGNING)
    assert (keydir.path / "root.json").read_bytes() == (keydir.path / "roots" / "2.json").read_bytes()
    assert _chain_versions(keydir) == [1, 2]
    assert keydir.root_keyid() == GOLDEN_ROOT_KEYID
    # Version 1 is kept unchanged for verifiers that pinned it.
    assert (keydir.path / "roots" / "1.json").read_bytes() == (GOLDEN / "keys" / "roots" / "1.json").read_bytes()


def test_a_sequence_of_changes_stays_one_chain(keydir: KeyDir) -> None:
    with fixed_key_generation("sequence"):
        keydir.rotate_signing(now=T_ROTATE_SIGNING)
        keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=T_REVOKE)
        keydir.rotate_root(now=T_ROTATE_ROOT)
        keydir.rotate_root(now=T_ROTATE_ROOT + dt.timedelta(days=1))
        keydir.rotate_signing(now=T_ROTATE_ROOT + dt.timedelta(days=2))
    assert _chain_versions(keydir) == [1, 2, 3, 4, 5, 6]
    newest = keydir.chain().newest
    assert GOLDEN_ROOT_KEYID not in newest.root_keys
    assert GOLDEN_SIGNING_KEY.keyid in newest.revoked


# -- rotate-signing -----------------------------------------------------------------------


def test_bundles_built_before_rotate_signing_still_verify(keydir: KeyDir, tmp_path: Path) -> None:
    with fixed_key_generation("rs"):
        _, new = keydir.rotate_signing(now=T_ROTATE_SIGNING)
    newest = (keydir.path / "root.json").read_bytes()
    old = verify_bundle(ARTICLE, trusted_root=newest)
    assert old.signing_keyid == GOLDEN_SIGNING_KEY.keyid and old.root.version == 2
    verify_bundle(ARTICLE, root_keyid=GOLDEN_ROOT_KEYID)
    # The old key's window now ends at the rotation; the new key signs from then on.
    entry = keydir.chain().newest.signing_keys[GOLDEN_SIGNING_KEY.keyid]
    assert entry.not_after == T_ROTATE_SIGNING
    later = T_ROTATE_SIGNING + dt.timedelta(days=1)
    assert keydir.signer("bundle", at=later).keyid == new.keyid
    fresh = verify_bundle(_build(keydir, tmp_path / "fresh.zip", later), root_keyid=GOLDEN_ROOT_KEYID)
    assert fresh.signing_keyid == new.keyid
    assert verify_bundle(tmp_path / "fresh.zip", trusted_root=newest).signing_keyid == new.keyid


def test_rotate_signing_with_purposes(keydir: KeyDir) -> None:
    with fixed_key_generation("purposes"):
        root, new = keydir.rotate_signing(now=T_ROTATE_SIGNING, purposes=("index",))
    assert root.signing_keys[new.keyid].purposes == ("index",)
    assert _mode(keydir.path / "signing" / f"{new.keyid}.pem") == 0o600
    later = T_ROTATE_SIGNING + dt.timedelta(days=1)
    assert keydir.signer("index", at=later).keyid == new.keyid
    with pytest.raises(UsageError):  # the old bundle key's window has ended
        keydir.signer("bundle", at=later)


# -- revoke -----------------------------------------------------------------------


def test_revoke_voids_previously_valid_bundles(keydir: KeyDir) -> None:
    verify_bundle(ARTICLE, trusted_root=(keydir.path / "root.json").read_bytes())
    keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=T_REVOKE)
    with pytest.raises(RejectedError) as info:
        verify_bundle(ARTICLE, trusted_root=(keydir.path / "root.json").read_bytes())
    assert (info.value.step, info.value.code) == ("19", "key-revoked")
    assert "key leaked" in info.value.message
    # The bundle's created time (before the revocation) does not matter.
    assert T_CREATED < T_REVOKE
    # Pinned to the id alone, the bundle's own carried roots know nothing of the revocation.
    verify_bundle(ARTICLE, root_keyid=GOLDEN_ROOT_KEYID)
    with pytest.raises(UsageError) as err:
        keydir.signer("bundle", at=T_REVOKE)
    assert err.value.code == "no-signing-key"


@pytest.mark.parametrize(
    ("keyid", "reason"),
    [(GOLDEN_ROOT_KEYID, "x"), ("ab" * 32, "x"), (GOLDEN_SIGNING_KEY.keyid, "  ")],
    ids=["root-key", "unknown-key", "no-reason"],
)
def test_revoke_refusals(keydir: KeyDir, keyid: str, reason: str) -> None:
    with pytest.raises(UsageError):
        keydir.revoke(keyid, reason, now=T_REVOKE)
    assert not (keydir.path / "roots" / "2.json").exists()


def test_revoke_twice_is_refused(keydir: KeyDir) -> None:
    keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "key leaked", now=T_REVOKE)
    with pytest.raises(UsageError):
        keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "again", now=T_REVOKE)


# -- rotate-root ------------------------------------------------------------------------


def test_rotate_root_chain_is_accepted_from_the_original_id(keydir: KeyDir, tmp_path: Path) -> None:
    with fixed_key_generation("rr"):
        keydir.rotate_root(now=T_ROTATE_ROOT)
        keydir.rotate_root(now=T_ROTATE_ROOT + dt.timedelta(days=1))
    chain = verify_root_chain(keydir.root_documents(), pinned_keyid=GOLDEN_ROOT_KEYID)
    assert chain.newest.version == 3
    v2_keys, v3_keys = set(chain.roots[1].root_keys), set(chain.roots[2].root_keys)
    assert GOLDEN_ROOT_KEYID not in v2_keys | v3_keys and not v2_keys & v3_keys
    # Old root private keys are moved aside, the current ones are in place.
    retired = {p.stem for p in (keydir.path / "root-private" / "retired").glob("*.pem")}
    assert retired == {GOLDEN_ROOT_KEYID, *v2_keys}
    assert {p.stem for p in (keydir.path / "root-private").glob("*.pem")} == v3_keys
    # A bundle built now carries roots 1..3 and verifies from the original id.
    created = T_ROTATE_ROOT + dt.timedelta(days=2)
    result = verify_bundle(_build(keydir, tmp_path / "b.zip", created), root_keyid=GOLDEN_ROOT_KEYID)
    assert result.root.version == 3 and result.manifest.root_keyid == GOLDEN_ROOT_KEYID


def test_root_signed_only_by_its_own_keys_is_rejected(keydir: KeyDir) -> None:
    usurper = SigningKey.from_seed(seed("usurper"))
    v1 = keydir.chain().newest
    doc = {
        "format": 1,
        "version": 2,
        "publisher": v1.publisher,
        "created": "2026-04-01T00:00:00Z",
        "expires": "2027-04-01T00:00:00Z",
        "root_keys": [{"keyid": usurper.keyid, "public": usurper.public.b64()}],
        "threshold": 1,
        "signing_keys": [e.to_json() for e in v1.signing_keys.values()],
        "revoked": [],
    }
    planted = envelope_bytes(signed_envelope(ROOT_TYPE, compact_json(doc), [usurper]))
    (keydir.path / "roots" / "2.json").write_bytes(planted)
    with pytest.raises(SignatureError) as info:
        keydir.chain()
    assert info.value.code == "root-chain-signature"


def test_trusted_newest_root_after_rotate_root_accepts_a_fresh_bundle(keydir: KeyDir, tmp_path: Path) -> None:
    with fixed_key_generation("trusted"):
        keydir.rotate_root(now=T_ROTATE_ROOT)
    created = T_ROTATE_ROOT + dt.timedelta(days=1)
    bundle = _build(keydir, tmp_path / "b.zip", created)
    verify_bundle(bundle, root_keyid=GOLDEN_ROOT_KEYID)
    verify_bundle(bundle, trusted_root=(keydir.path / "root.json").read_bytes())


# -- an encrypted root key ---------------------------------------------------------------


def test_encrypted_root_key(tmp_path: Path) -> None:
    keydir = KeyDir(tmp_path / "k")
    keydir.init(PUBLISHER, passphrase=b"correct horse", seeds=GOLDEN_SEEDS, now=T_INIT)
    pem = (keydir.path / "root-private" / f"{GOLDEN_ROOT_KEYID}.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert b"ENCRYPTED" not in (keydir.path / "signing" / f"{GOLDEN_SIGNING_KEY.keyid}.pem").read_bytes()
    before = sorted(p for p in keydir.path.rglob("*") if p.is_file())
    for passphrase, code in ((b"wrong horse", "bad-private-key"), (None, "passphrase-needed")):
        with pytest.raises(UsageError) as info:
            keydir.rotate_signing(passphrase=passphrase, now=T_ROTATE_SIGNING)
        assert info.value.code == code
        with pytest.raises(UsageError) as info:
            keydir.revoke(GOLDEN_SIGNING_KEY.keyid, "x", passphrase=passphrase, now=T_REVOKE)
        assert info.value.code == code
        with pytest.raises(UsageError) as info:
            keydir.rotate_root(passphrase=passphrase, now=T_ROTATE_ROOT)
        assert info.value.code == code
    assert sorted(p for p in keydir.path.rglob("*") if p.is_file()) == before  # nothing written
    with fixed_key_generation("encrypted"):
        keydir.rotate_root(passphrase=b"correct horse", new_passphrase=b"battery staple", now=T_ROTATE_ROOT)
    with pytest.raises(UsageError):
        keydir.rotate_signing(passphrase=b"correct horse", now=T_ROTATE_ROOT + dt.timedelta(days=1))
    keydir.rotate_signing(passphrase=b"battery staple", now=T_ROTATE_ROOT + dt.timedelta(days=1))
    assert _chain_versions(keydir) == [1, 2, 3]
