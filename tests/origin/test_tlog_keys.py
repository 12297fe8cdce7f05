"""Rotating and revoking the log key on a running origin (docs/operator-origin.md, "Log key").

- Planned rotation (``keys rotate-signing --purpose log``, the old key kept):
  the next checkpoint is signed by the new key (and the old one) and extends the last one; proofs
  written under the old key stay as they are and still verify, new ones too.
- Revocation (``keys revoke``): checkpoints signed only by the revoked key no
  longer verify. The origin signs its tree again with a trusted key at once, the
  proofs the newest root no longer accepts are counted in /healthz
  (``proofs_stale``) and rewritten under the first quorum-cosigned checkpoint.
- A witness view signed by the revoked key neither blocks the first checkpoint
  after a restart nor hides that witness's cosignatures of the same body.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog import (
    Checkpoint,
    CosignatureSigner,
    Ed25519Signer,
    Note,
    ProofFile,
    check_extends,
    consistency_proof_from_tiles,
    sign_checkpoint,
)
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.note import SIG_ED25519, format_vkey, key_id
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.reader import BAD_PROOF, LogProofError, check_log_proof
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.server.tlog.stale import MARK_NAME, ProofJudge, TrustMark
from tamizdat.server.tlog.tree import TileFiles

from .support import Api, article, wait_for
from .tlog_support import FakeWitness, db_leaves, keeper, log_health, set_policy

Start = Callable[[], Awaitable[Api]]


async def _publish(api: Api, aid: str) -> str:
    status, out = await api.call("POST", "/api/v1/articles", article(aid))
    assert status == 201, out
    await api.flush()
    return str(out["versions"][0]["bundle_id"])


def _newest(keys_dir: Path) -> Root:
    return KeyDir(keys_dir).chain().newest


def _log_key_ids(note: bytes) -> set[bytes]:
    return {s.key_id for s in Note.parse(note).signatures if len(s.signature) == 64}


def _note_key_id(origin: str, root: Root, keyid: str) -> bytes:
    return key_id(origin, SIG_ED25519, root.signing_keys[keyid].key.raw)


def _log_keyid(root: Root) -> str:
    [keyid] = root.log_keys()
    return keyid


class World:
    """An origin, its one witness (quorum 1) and the offline key directory."""

    def __init__(self, api: Api, fake: FakeWitness, offline: KeyDir, keys_dir: Path, data_dir: Path) -> None:
        self.api, self.fake, self.offline, self.keys_dir = api, fake, offline, keys_dir
        self.public = data_dir / "public"

    @property
    def checkpoint(self) -> bytes:
        return (self.public / "tlog" / "checkpoint").read_bytes()

    def proof(self, bid: str) -> Path:
        return self.public / "bundles" / f"{bid}.tlog-proof"

    def check(self, bid: str) -> int:
        """``check_log_proof`` of the bundle's proof under the newest root: the leaf index, or raises."""
        return check_log_proof(bid, self.proof(bid).read_bytes(), _newest(self.keys_dir), now=int(time.time())).index

    async def signed_all(self) -> None:
        async def done() -> bool:
            log = await log_health(self.api)
            return bool(log["state"] == "ok" and log["signed_size"] == log["size"])

        await wait_for(done)

    async def cosign_current(self, *paths: Path) -> None:
        """The witness cosigns the current checkpoint; wait until the origin merged it and wrote ``paths``."""
        self.fake.note = self.fake.cosign(self.checkpoint)

        async def merged() -> bool:
            return bool((await log_health(self.api))["quorum_met"]) and all(p.exists() for p in paths)

        await wait_for(merged)


@pytest.fixture
async def world(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, start: Start
) -> World:
    fake, url = witness
    set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    return World(await start(), fake, offline_keydir, keys_dir, data_dir)


async def test_planned_rotation_signs_with_the_new_key_and_keeps_old_proofs(world: World, data_dir: Path) -> None:
    old_key = _log_keyid(_newest(world.keys_dir))
    b1 = await _publish(world.api, "p1")
    await world.signed_all()
    await world.cosign_current(world.proof(b1))
    before = world.checkpoint
    old_proof = world.proof(b1).read_bytes()
    origin = Checkpoint.parse(Note.parse(before).text).origin
    assert _log_key_ids(before) == {_note_key_id(origin, _newest(world.keys_dir), old_key)}

    root, new = world.offline.rotate_signing(purposes=("log",))
    assert set(root.log_keys()) == {old_key, new.keyid}  # the old key is kept: not revoked
    b2 = await _publish(world.api, "p2")
    await world.signed_all()
    after = world.checkpoint
    # signed by both keys (test_tlog_dualsign.py): readers holding the old root still open it
    assert _log_key_ids(after) == {_note_key_id(origin, root, k) for k in (new.keyid, old_key)}
    old_cp, new_cp = (Checkpoint.parse(Note.parse(n).text) for n in (before, after))
    files = TileFiles.in_public(data_dir / "public")
    check_extends(old_cp, new_cp, consistency_proof_from_tiles(old_cp.size, new_cp.size, files.read))
    await world.cosign_current(world.proof(b2))

    assert world.proof(b1).read_bytes() == old_proof  # never rewritten
    assert _log_key_ids(ProofFile.parse(old_proof).checkpoint) == {_note_key_id(origin, root, old_key)}
    assert world.check(b1) < world.check(b2)
    assert (await log_health(world.api))["proofs_stale"] == 0
    # only keys were added: the proofs were not even read again
    assert TrustMark.from_bytes((data_dir / "state" / MARK_NAME).read_bytes()) == TrustMark.of(_trust(root))


def _trust(root: Root) -> LogTrust:
    trust = LogTrust.from_root(root)
    assert trust is not None
    return trust


async def test_revocation_resigns_at_once_and_rewrites_stale_proofs_at_the_next_quorum(
    world: World, data_dir: Path
) -> None:
    old_key = _log_keyid(_newest(world.keys_dir))
    ids = [await _publish(world.api, f"r{n}") for n in range(3)]
    await world.signed_all()
    await world.cosign_current(*(world.proof(b) for b in ids))
    old = {b: world.proof(b).read_bytes() for b in ids}
    _, new = world.offline.rotate_signing(purposes=("log",))
    world.offline.revoke(old_key, "the log key leaked")
    root = _newest(world.keys_dir)
    origin = _trust(root).origin

    # The round the key change forces: a checkpoint of the grown tree, signed by the new key only.
    await world.api.flush()
    await world.signed_all()
    assert _log_key_ids(world.checkpoint) == {_note_key_id(origin, root, new.keyid)}

    # Until the witness cosigns it, the old proofs are stale: counted, kept as they are, refused by readers.
    async def counted() -> bool:
        log = await log_health(world.api)
        return bool(log["proofs_stale"] == len(ids) + 1 and not log["quorum_met"])  # + tlog/index.tlog-proof

    await wait_for(counted)
    for b in ids:
        assert world.proof(b).read_bytes() == old[b]
        with pytest.raises(LogProofError) as err:
            world.check(b)
        assert (err.value.code, err.value.reason) == (BAD_PROOF, "no-log-signature")
    assert {r[0] for r in _proof_states(data_dir)} == {2}

    await world.cosign_current()

    async def rewritten() -> bool:
        return bool((await log_health(world.api))["proofs_stale"] == 0)

    await wait_for(rewritten)
    for b in ids:
        assert world.proof(b).read_bytes() != old[b]
        assert _log_key_ids(ProofFile.parse(world.proof(b).read_bytes()).checkpoint) == {
            _note_key_id(origin, root, new.keyid)
        }
        world.check(b)  # verifies under the newest root
    index_proof = (world.public / "tlog" / "index.tlog-proof").read_bytes()
    assert ProofJudge(_trust(root), int(time.time())).good(index_proof)
    assert {r[0] for r in _proof_states(data_dir)} == {1}


def _proof_states(data_dir: Path) -> list[tuple[int, int]]:
    """(proof_done, leaf) of every bundle leaf."""
    db = sqlite3.connect(data_dir / "state" / "origin.sqlite3")
    try:
        return [(int(d), int(n)) for d, n in db.execute("SELECT proof_done, n FROM tlog_leaves WHERE kind = 1")]
    finally:
        db.close()


async def test_revocation_without_a_round_resigns_the_same_tree_and_salvages_cosignatures(
    world: World, data_dir: Path
) -> None:
    """No round runs: the gathering signs the unchanged tree again; the witness's cosignature of that
    body (on its view signed by the revoked key) still counts, so the proofs are rewritten at once."""
    old_key = _log_keyid(_newest(world.keys_dir))
    bid = await _publish(world.api, "s1")
    await world.signed_all()
    await world.cosign_current(world.proof(bid))
    before = world.checkpoint
    stale_proof = world.proof(bid).read_bytes()
    _, new = world.offline.rotate_signing(purposes=("log",))
    world.offline.revoke(old_key, "the log key leaked")
    root = _newest(world.keys_dir)

    async def resigned() -> bool:
        return world.proof(bid).read_bytes() != stale_proof and (await log_health(world.api))["proofs_stale"] == 0

    await wait_for(resigned)
    after = world.checkpoint
    assert Note.parse(after).text == Note.parse(before).text  # the same tree: same size, same root
    origin = _trust(root).origin
    assert _note_key_id(origin, root, new.keyid) in _log_key_ids(after)
    assert _note_key_id(origin, root, old_key) not in _log_key_ids(after)
    signed = _trust(root).verify_checkpoint(after)  # the quorum: the witness's salvaged cosignature
    assert _trust(root).witness_names(signed) == (world.fake.name,)
    world.check(bid)
    assert len(db_leaves(data_dir)) == Checkpoint.parse(Note.parse(after).text).size  # nothing appended


async def test_restart_after_revocation_is_not_blocked_by_views_signed_with_the_revoked_key(
    world: World, data_dir: Path, start: Start
) -> None:
    old_key = _log_keyid(_newest(world.keys_dir))
    bid = await _publish(world.api, "t1")
    await world.signed_all()
    await world.cosign_current(world.proof(bid))
    await world.api.client.close()
    # While the origin is down: rotate and revoke. The witness still shows its view signed by the old key.
    world.offline.rotate_signing(purposes=("log",))
    world.offline.revoke(old_key, "the log key leaked")
    world.api = await start()
    await world.signed_all()  # not "waiting-for-witnesses": the witness answered, with nothing to respect
    log = await log_health(world.api)
    assert log["unreachable"] == [] and log["proofs_stale"] >= 1
    await world.cosign_current()

    async def rewritten() -> bool:
        return bool((await log_health(world.api))["proofs_stale"] == 0)

    await wait_for(rewritten)
    world.check(bid)


async def test_no_log_key_left_after_revocation_then_a_new_one(world: World) -> None:
    old_key = _log_keyid(_newest(world.keys_dir))
    await _publish(world.api, "n1")
    await world.signed_all()
    before = world.checkpoint
    world.offline.revoke(old_key, "the log key leaked")
    await world.api.flush()

    async def no_key() -> bool:
        log = await log_health(world.api)
        return log["state"] == "bad-policy" and "no log key" in log["message"]

    await wait_for(no_key)
    for _ in range(3):  # gathering passes go on without an error
        await keeper(world.api).gather_once()
    assert (await log_health(world.api))["state"] == "bad-policy"
    assert world.checkpoint == before  # nothing else could sign it; readers refuse it by themselves
    _, new = world.offline.rotate_signing(purposes=("log",))
    await world.api.flush()
    await world.signed_all()
    root = _newest(world.keys_dir)
    assert _log_key_ids(world.checkpoint) == {_note_key_id(_trust(root).origin, root, new.keyid)}


# -- the stale-proof rule as a table -------------------------------------------------------------

ORIGIN_T = "t/log"
KEY_A, KEY_B = (SigningKey.from_seed(bytes([s]) * 32) for s in (1, 2))
W1, W2 = (CosignatureSigner(name, SigningKey.from_seed(bytes([s]) * 32)) for name, s in (("w1", 3), ("w2", 4)))


def _table_trust(keys: tuple[SigningKey, ...], policy: str) -> LogTrust:
    logs = "".join(f"log {format_vkey(ORIGIN_T, SIG_ED25519, k.public.raw)}\n" for k in keys)
    return LogTrust(ORIGIN_T, Policy.parse(logs + policy), 86400)


def _table_proof(*, cosigned_at: int | None = None, damaged: bool = False) -> bytes:
    """A proof of leaf 0 of a 1-leaf tree under a checkpoint signed by KEY_A and cosigned by w1."""
    cp = Checkpoint(ORIGIN_T, 1, leaf_hash(b"leaf"))
    note = Note.parse(sign_checkpoint(cp, [Ed25519Signer(ORIGIN_T, KEY_A)]))
    note = note.with_signatures([W1.cosign(note.text, cosigned_at or int(time.time()))])
    data = ProofFile(0, (), note.to_bytes()).to_bytes()
    return data.replace(b"index 0", b"index x") if damaged else data


W1_ONLY = f"witness w1 {W1.verifier.vkey()}\nquorum w1\n"
W1_AND_W2 = f"witness w1 {W1.verifier.vkey()}\nwitness w2 {W2.verifier.vkey()}\nquorum w1\n"
W2_QUORUM = f"witness w1 {W1.verifier.vkey()}\nwitness w2 {W2.verifier.vkey()}\nquorum w2\n"


@pytest.mark.parametrize(
    ("case", "keys", "policy", "proof", "good", "scan"),
    [
        ("nothing changed", (KEY_A,), W1_ONLY, {}, True, False),
        ("rotate-signing --purpose log: key B added", (KEY_A, KEY_B), W1_ONLY, {}, True, False),
        ("key A revoked (B left)", (KEY_B,), W1_ONLY, {}, False, True),
        ("a witness added, same quorum", (KEY_A,), W1_AND_W2, {}, True, True),
        ("the quorum moved to another witness", (KEY_A,), W2_QUORUM, {}, False, True),
        ("a damaged proof file", (KEY_A,), W1_ONLY, {"damaged": True}, False, False),
        (
            "a cosignature dated an hour ahead",
            (KEY_A,),
            W1_ONLY,
            {"cosigned_at": int(time.time()) + 3600},
            False,
            False,
        ),
    ],
)
def test_which_proofs_are_stale(
    case: str, keys: tuple[SigningKey, ...], policy: str, proof: dict[str, Any], good: bool, scan: bool
) -> None:
    written_under = TrustMark.of(_table_trust((KEY_A,), W1_ONLY))
    trust = _table_trust(keys, policy)
    assert ProofJudge(trust, int(time.time())).good(_table_proof(**proof)) is good, case
    assert (not TrustMark.of(trust).keeps(written_under)) is scan, case
    assert not TrustMark.of(trust).keeps(None)  # never checked: scan once
    assert TrustMark.from_bytes(TrustMark.of(trust).to_bytes()) == TrustMark.of(trust)
