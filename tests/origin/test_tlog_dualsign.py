"""Planned log key rotation reaches readers holding an older root (docs/transparency.md, "Log key rotation").

The origin signs each checkpoint with every non-revoked log key of the newest
root whose private key it holds. A reader whose root knows only
the old key (a bundle made before the rotation) opens the new checkpoints by
the old key's signature, a reader knowing only the new key by the new one;
once the old key is revoked it stops signing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tamizdat.bundles.tlog import Note, ProofFile
from tamizdat.bundles.tlog.note import SIG_ED25519, key_id
from tamizdat.bundles.tlog.reader import BAD_PROOF, LogProofError, check_log_proof
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.server import tokens
from tamizdat.server.app import make_app
from tamizdat.server.appkeys import ORIGIN
from tamizdat.server.keyring import Keyring

from .support import Api, article, wait_for
from .tlog_support import FakeWitness, set_policy


def _newest(keys_dir: Path) -> Root:
    return KeyDir(keys_dir).chain().newest


def _only(root: Root, keyid: str) -> Root:
    """``root`` as a reader would hold it if ``keyid`` were its only log key."""
    keys = {k: e for k, e in root.signing_keys.items() if k == keyid or "log" not in e.purposes}
    return dataclasses.replace(root, signing_keys=keys)


def _note_ids(note: bytes) -> list[bytes]:
    return [s.key_id for s in Note.parse(note).signatures if len(s.signature) == 64]


async def _log(api: Api) -> dict[str, Any]:
    return dict((await (await api.client.get("/healthz")).json())["log"])


@pytest.fixture
async def origin(
    aiohttp_server: Any, aiohttp_client: Any, offline_keydir: KeyDir, keys_dir: Path, data_dir: Path
) -> tuple[Api, FakeWitness]:
    fake = FakeWitness()
    server: TestServer = await aiohttp_server(fake.app, host="127.0.0.1")
    set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {server.make_url('/')}\nquorum {fake.name}\n")
    app = make_app(data_dir, keys_dir, round_seconds=3600.0, tlog_gather_interval=0.05)
    client = await aiohttp_client(app)
    return Api(client, await tokens.create(app[ORIGIN].store, "t")), fake


async def _publish_and_cosign(api: Api, fake: FakeWitness, public: Path, aid: str) -> tuple[str, bytes]:
    """Publish one article, let the origin sign, cosign its checkpoint; the bundle id and its proof."""
    status, out = await api.call("POST", "/api/v1/articles", article(aid))
    assert status == 201, out
    await api.flush()
    bid = str(out["versions"][0]["bundle_id"])

    async def signed() -> bool:
        log = await _log(api)
        return bool(log["state"] == "ok" and log["signed_size"] == log["size"])

    await wait_for(signed)
    checkpoint = public / "tlog" / "checkpoint"
    fake.note = fake.cosign(checkpoint.read_bytes())
    proof = public / "bundles" / f"{bid}.tlog-proof"

    async def written() -> bool:
        return bool((await _log(api))["quorum_met"]) and proof.exists()

    await wait_for(written)
    return bid, proof.read_bytes()


async def test_rotation_signs_with_both_keys_until_the_old_one_is_revoked(
    origin: tuple[Api, FakeWitness], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path
) -> None:
    api, fake = origin
    public = data_dir / "public"
    before = _newest(keys_dir)
    [old] = before.log_keys()
    assert before.tlog is not None
    name = before.tlog.origin
    await _publish_and_cosign(api, fake, public, "d1")

    root, new = offline_keydir.rotate_signing(purposes=("log",))
    old_id, new_id = (key_id(name, SIG_ED25519, root.signing_keys[k].key.raw) for k in (old, new.keyid))
    bid, proof = await _publish_and_cosign(api, fake, public, "d2")
    checkpoint = ProofFile.parse(proof).checkpoint
    assert sorted(_note_ids(checkpoint)) == sorted([new_id, old_id])
    now = int(time.time())
    for reader_root in (before, _only(root, old), _only(root, new.keyid), root):
        check_log_proof(bid, proof, reader_root, now=now)
    # Without the old key's signature, a reader with the pre-rotation root could not open it.
    note = Note.parse(checkpoint)
    only_new = Note(note.text, tuple(s for s in note.signatures if s.key_id != old_id)).to_bytes()
    pf = ProofFile.parse(proof)
    bare = dataclasses.replace(pf, checkpoint=only_new).to_bytes()
    with pytest.raises(LogProofError) as err:
        check_log_proof(bid, bare, before, now=now)
    assert err.value.code == BAD_PROOF

    offline_keydir.revoke(old, "retired")
    bid3, proof3 = await _publish_and_cosign(api, fake, public, "d3")
    assert _note_ids(ProofFile.parse(proof3).checkpoint) == [new_id]
    check_log_proof(bid3, proof3, _newest(keys_dir), now=int(time.time()))


def test_log_signers_newest_first_then_held_unrevoked_keys(offline_keydir: KeyDir, keys_dir: Path) -> None:
    [old] = _newest(keys_dir).log_keys()
    start = timefmt.now()  # key windows are in whole seconds: rotate at distinct moments
    _, mid = offline_keydir.rotate_signing(purposes=("log",), now=start + dt.timedelta(seconds=10))
    _, new = offline_keydir.rotate_signing(purposes=("log",), now=start + dt.timedelta(seconds=20))
    at = start + dt.timedelta(seconds=30)
    assert Keyring(keys_dir).log_signers(start + dt.timedelta(seconds=15))[0].keyid == mid.keyid
    ring = Keyring(keys_dir)
    ids = [k.keyid for k in ring.log_signers(at)]
    assert ids[0] == new.keyid and sorted(ids[1:]) == sorted([old, mid.keyid])
    (keys_dir / "signing" / f"{mid.keyid}.pem").unlink()  # a key whose file is gone signs nothing
    offline_keydir.revoke(old, "retired")
    assert [k.keyid for k in Keyring(keys_dir).log_signers(at)] == [new.keyid]
    bundle_keys = set(_newest(keys_dir).signing_keys_for("bundle"))
    assert not bundle_keys & {k.keyid for k in ring.log_signers(at)}
