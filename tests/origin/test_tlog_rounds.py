"""Publishing rounds append the right log leaves, write the tiles a TreeBuilder writes, and sign.

docs/transparency.md ("Leaves", "Origin"): new bundles in creation order, then
retractions, then the index leaf last; re-signing appends nothing; the tiles on
disk are exactly what bundles.tlog's TreeBuilder emits for each round's size,
and the checkpoint verifies with the root's LogTrust.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog import (
    Leaf,
    LeafKind,
    ProofFile,
    bundle_leaf,
    check_extends,
    consistency_proof_from_tiles,
)
from tamizdat.keys import timefmt
from tamizdat.keys.keydir import KeyDir
from tamizdat.server import tokens
from tamizdat.server.app import make_app
from tamizdat.server.appkeys import ORIGIN
from tamizdat.server.tlog.tree import TileFiles

from .conftest import AppFactory
from .support import Api, article, wait_for
from .tlog_support import (
    checkpoint_of,
    db_leaves,
    index_leaf_id,
    keeper,
    replay,
    tlog_files,
    trust_of,
)


@pytest.fixture
async def api(make_api: AppFactory) -> Api:
    """Rounds only when the test flushes (each flush is one round), gathering every 50 ms."""
    return await make_api(round_seconds=3600.0, tlog_gather_interval=0.05)


async def _bundle_id(api: Api, aid: str, **fields: Any) -> str:
    status, out = await api.call("POST", "/api/v1/articles", article(aid, **fields))
    assert status == 201, out
    return str(out["versions"][0]["bundle_id"])


def _assert_tiles_match(data_dir: Path) -> list[tuple[int, int, str, int]]:
    rows = db_leaves(data_dir)
    expected, _ = replay(rows)
    assert tlog_files(data_dir) == expected
    return rows


async def test_round_appends_bundles_in_creation_order_then_the_index(api: Api, data_dir: Path, keys_dir: Path) -> None:
    await api.flush()
    first = db_leaves(data_dir)
    assert [r[1] for r in first] == [LeafKind.INDEX]  # the start round: an index, nothing else
    ids = [await _bundle_id(api, f"o{n}") for n in range(3)]
    await api.flush()
    rows = db_leaves(data_dir)[len(first) :]
    assert [(r[1], r[2]) for r in rows[:3]] == [(LeafKind.BUNDLE, i) for i in ids]
    index_json = (data_dir / "public" / "index.json").read_bytes()
    assert rows[3][1:3] == (LeafKind.INDEX, index_leaf_id(index_json))
    assert len(rows) == 4 and len({r[3] for r in rows}) == 1  # one round, one index version
    # the checkpoint covers every leaf, verifies with the root's trust, and ends with that index leaf
    trust = trust_of(keys_dir)
    signed = checkpoint_of(data_dir, trust)
    assert signed.checkpoint.origin == trust.origin == f"{KeyDir(keys_dir).root_keyid()}/log"
    assert signed.checkpoint.size == len(db_leaves(data_dir))
    _, builder = replay(db_leaves(data_dir))
    assert signed.checkpoint.root == builder.root()
    _assert_tiles_match(data_dir)
    status = (await (await api.client.get("/healthz")).json())["log"]
    assert status["state"] == "ok" and status["size"] == status["signed_size"] == signed.checkpoint.size
    assert status["quorum_met"] is True  # keys init's policy: quorum none


async def test_retraction_appends_a_retraction_leaf_after_the_bundle(api: Api, data_dir: Path) -> None:
    bid = await _bundle_id(api, "r1")
    await api.flush()
    proof = data_dir / "public" / "bundles" / f"{bid}.tlog-proof"

    async def proven() -> bool:
        return proof.exists()

    await wait_for(proven)
    before = len(db_leaves(data_dir))
    status, _ = await api.call("POST", "/api/v1/articles/r1/retraction", {"reason": "wrong"})
    assert status == 200
    await api.flush()
    rows = db_leaves(data_dir)
    new = rows[before:]
    assert [(r[1], r[2]) for r in new[:-1]] == [(LeafKind.RETRACTION, bid)]
    assert new[-1][1] == LeafKind.INDEX
    assert [r[0] for r in rows if (r[1], r[2]) == (LeafKind.BUNDLE, bid)] < [new[0][0]]
    assert not proof.exists()  # removed with the bundle's file
    # the next round logs new bundles only: the retraction is not logged twice
    await api.call("POST", "/api/v1/articles", article("r2"))
    await api.flush()
    assert [r[1] for r in db_leaves(data_dir)[len(rows) :]] == [LeafKind.BUNDLE, LeafKind.INDEX]
    _assert_tiles_match(data_dir)


async def test_resigning_a_bundle_appends_nothing_but_the_index(
    make_api: AppFactory, tmp_path: Path, data_dir: Path
) -> None:
    keys = tmp_path / "old-keys"
    start = timefmt.now() - dt.timedelta(minutes=10)
    kd = KeyDir(keys)
    kd.init("Test Newsroom", now=start)
    api = await make_api(keys_dir=keys, round_seconds=0.05)
    bid = await _bundle_id(api, "s1")
    await api.flush()
    before = db_leaves(data_dir)
    old_hash = hashlib.sha256((data_dir / "public" / "bundles" / f"{bid}.zip").read_bytes()).hexdigest()
    old_key = next(iter(kd.chain().newest.signing_keys_for("bundle")))
    kd.rotate_signing(now=start + dt.timedelta(minutes=1))
    kd.revoke(old_key, "leaked")

    async def resigned() -> bool:
        path = data_dir / "public" / "bundles" / f"{bid}.zip"
        return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != old_hash

    await wait_for(resigned)
    await api.flush()
    after = db_leaves(data_dir)[len(before) :]
    assert after and {r[1] for r in after} == {LeafKind.INDEX}  # same bundle id: no new bundle leaf
    assert [r for r in db_leaves(data_dir) if r[2] == bid] == [r for r in before if r[2] == bid]
    _assert_tiles_match(data_dir)


async def test_restart_resumes_the_log_consistently(aiohttp_client: Any, data_dir: Path, keys_dir: Path) -> None:
    trust = trust_of(keys_dir)

    async def start() -> Api:
        app = make_app(data_dir, keys_dir, round_seconds=3600.0)
        client = await aiohttp_client(app)
        return Api(client, await tokens.create(app[ORIGIN].store, f"t{id(app)}"))

    api = await start()
    await _bundle_id(api, "k1")
    await api.flush()
    old = checkpoint_of(data_dir, trust).checkpoint
    await api.client.close()
    api = await start()  # the start round appends an index leaf and signs again
    await _bundle_id(api, "k2")
    await api.flush()
    new = checkpoint_of(data_dir, trust).checkpoint
    assert new.size == len(db_leaves(data_dir)) > old.size
    files = TileFiles.in_public(data_dir / "public")
    check_extends(old, new, consistency_proof_from_tiles(old.size, new.size, files.read))
    _assert_tiles_match(data_dir)


async def test_bundle_proofs_verify_with_the_root_policy(api: Api, data_dir: Path, keys_dir: Path) -> None:
    ids = [await _bundle_id(api, f"p{n}") for n in range(2)]
    await api.flush()
    trust = trust_of(keys_dir)
    public = data_dir / "public"

    async def proofs_written() -> bool:
        return all((public / "bundles" / f"{i}.tlog-proof").exists() for i in ids)

    await wait_for(proofs_written)
    for bid in ids:
        proof = ProofFile.parse((public / "bundles" / f"{bid}.tlog-proof").read_bytes())
        signed = proof.verify(bundle_leaf(bid).hash(), trust.policy, origin=trust.origin)
        assert signed.checkpoint.size > proof.index
    index_proof = ProofFile.parse((public / "tlog" / "index.tlog-proof").read_bytes())
    rows = db_leaves(data_dir)
    signed = ProofFile.verify(index_proof, _leaf_hash(rows[index_proof.index]), trust.policy, origin=trust.origin)
    assert index_proof.index == signed.checkpoint.size - 1 and rows[index_proof.index][1] == LeafKind.INDEX
    # a bundle proof is written once and never rewritten
    first = (public / "bundles" / f"{ids[0]}.tlog-proof").read_bytes()
    await _bundle_id(api, "p9")
    await api.flush()
    await wait_for(proofs_written)
    assert (public / "bundles" / f"{ids[0]}.tlog-proof").read_bytes() == first


def _leaf_hash(row: tuple[int, int, str, int]) -> bytes:
    return Leaf(LeafKind(row[1]), bytes.fromhex(row[2])).hash()


async def test_a_root_without_log_changes_nothing(make_api: AppFactory, tmp_path: Path, data_dir: Path) -> None:
    keys = tmp_path / "nolog-keys"
    KeyDir(keys).init("Test Newsroom", log=False)
    api = await make_api(keys_dir=keys)
    await _bundle_id(api, "n1")
    await api.flush()
    assert not (data_dir / "public" / "tlog").exists()
    assert db_leaves(data_dir) == []
    body = await (await api.client.get("/healthz")).json()
    assert body["ok"] is True and body["log"]["state"] == "no-log"
    assert keeper(api).state == "no-log"


async def test_every_logged_index_is_archived_under_its_leaf_id(api: Api, data_dir: Path) -> None:
    """``tlog/index/<leaf id>.json`` holds each logged index envelope (docs/transparency.md, paths)."""
    for n in range(3):
        await _bundle_id(api, f"arch{n}")
        await api.flush()
    index_ids = [r[2] for r in db_leaves(data_dir) if r[1] == LeafKind.INDEX]
    archive = data_dir / "public" / "tlog" / "index"
    assert sorted(p.stem for p in archive.iterdir()) == sorted(index_ids) and len(index_ids) >= 3
    for leaf_id in index_ids:
        raw = (archive / f"{leaf_id}.json").read_bytes()
        assert index_leaf_id(raw) == leaf_id
    assert (archive / f"{index_ids[-1]}.json").read_bytes() == (data_dir / "public" / "index.json").read_bytes()
    status = (await api.client.get(f"/tlog/index/{index_ids[0]}.json")).status
    assert status == 200
