"""The origin and its witnesses: the restore-from-backup check, cosignature gathering, proofs.

A fake witness is a tiny aiohttp app on 127.0.0.1 serving
``/tlog/witness/<hex sha256(origin)>/checkpoint`` (docs/transparency.md).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tamizdat.bundles.tlog import Checkpoint, LeafKind, ProofFile, bundle_leaf
from tamizdat.bundles.tlog.witness import origin_hash
from tamizdat.keys.keydir import KeyDir

from .support import Api, article, wait_for
from .tlog_support import FakeWitness, checkpoint_of, db_leaves, keeper, log_health, set_policy, sign_with_log_key

Start = Callable[[], Awaitable[Api]]


async def _publish(api: Api, aid: str) -> str:
    status, out = await api.call("POST", "/api/v1/articles", article(aid))
    assert status == 201, out
    await api.flush()
    return str(out["versions"][0]["bundle_id"])


async def _signed(api: Api, size: int | None = None) -> None:
    async def done() -> bool:
        log = await log_health(api)
        return log["state"] == "ok" and log["signed_size"] == (log["size"] if size is None else size)

    await wait_for(done)


async def test_gathering_merges_cosignatures_and_writes_proofs(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, start: Start
) -> None:
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    api = await start()
    bid = await _publish(api, "g1")
    await _signed(api)  # the witness answered 404 (seen nothing): a quorum's worth answered
    public = data_dir / "public"
    assert not (public / "bundles" / f"{bid}.tlog-proof").exists()  # no cosignature yet
    log = await log_health(api)
    assert log["quorum_met"] is False and log["witnesses"] == {}
    # the witness cosigns the current checkpoint; the origin merges it and writes the proofs
    current = (public / "tlog" / "checkpoint").read_bytes()
    fake.note = fake.cosign(current)

    async def proven() -> bool:
        return (public / "bundles" / f"{bid}.tlog-proof").exists() and (public / "tlog" / "index.tlog-proof").exists()

    await wait_for(proven)
    merged = checkpoint_of(data_dir, trust)  # verifies with the quorum
    assert merged.checkpoint == Checkpoint.parse(current.decode().split("\n\n")[0] + "\n")
    assert trust.witness_names(merged) == (fake.name,)
    proof = ProofFile.parse((public / "bundles" / f"{bid}.tlog-proof").read_bytes())
    proof.verify(bundle_leaf(bid).hash(), trust.policy, origin=trust.origin)
    rows = db_leaves(data_dir)
    assert rows[proof.index][1:3] == (LeafKind.BUNDLE, bid)
    index_proof = ProofFile.parse((public / "tlog" / "index.tlog-proof").read_bytes())
    assert index_proof.index == merged.checkpoint.size - 1
    log = await log_health(api)
    assert log["quorum_met"] is True
    assert log["witnesses"][fake.name]["size"] == merged.checkpoint.size
    # a new round: a new checkpoint with the log signature only, until the witness cosigns it
    await _publish(api, "g2")
    await _signed(api)
    assert (await log_health(api))["quorum_met"] is False


async def test_restore_from_backup_refuses_to_sign(
    witness: tuple[FakeWitness, str],
    offline_keydir: KeyDir,
    data_dir: Path,
    tmp_path: Path,
    start: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    api = await start()
    await _publish(api, "b1")
    await _signed(api)
    await api.client.close()
    backup = tmp_path / "backup"
    shutil.copytree(data_dir, backup)
    # the origin goes on; the witness cosigns its newer checkpoint
    api = await start()
    await _publish(api, "b2")
    await _signed(api)
    newer = (data_dir / "public" / "tlog" / "checkpoint").read_bytes()
    fake.note = fake.cosign(newer)
    await api.client.close()
    # disaster: the origin comes back from the older backup
    shutil.rmtree(data_dir)
    shutil.copytree(backup, data_dir)
    before = (data_dir / "public" / "tlog" / "checkpoint").read_bytes()
    caplog.set_level(logging.ERROR, logger="tamizdat.server.tlog")
    api = await start()

    async def refused() -> bool:
        return (await log_health(api))["state"] == "restored-from-backup"

    await wait_for(refused)
    await _publish(api, "b3")  # rounds go on: the index is published, the leaves are kept
    log = await log_health(api)
    assert log["state"] == "restored-from-backup" and log["size"] > log["signed_size"]
    assert log["signed_size"] == checkpoint_of(data_dir, trust, quorum=False).checkpoint.size
    assert (data_dir / "public" / "tlog" / "checkpoint").read_bytes() == before
    assert any("restored from a backup" in r.getMessage() for r in caplog.records)
    body = await (await api.client.get("/healthz")).json()
    assert body["ok"] is True  # readers are still served; the log state carries the alarm


async def test_a_forked_view_refuses_to_sign(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, start: Start
) -> None:
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    api = await start()
    await _publish(api, "f1")
    await _signed(api)
    ours = checkpoint_of(data_dir, trust, quorum=False).checkpoint
    await api.client.close()
    # a checkpoint of the same size with another root, signed with this log's key
    other = Checkpoint(ours.origin, ours.size, bytes(32))
    fake.note = fake.cosign(sign_with_log_key(keys_dir, other))
    api = await start()

    async def refused() -> bool:
        return (await log_health(api))["state"] == "restored-from-backup"

    await wait_for(refused)
    assert checkpoint_of(data_dir, trust, quorum=False).checkpoint == ours
    assert keeper(api).status()["signed_size"] == ours.size


async def test_an_unanswering_witness_blocks_signing_until_it_answers(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, data_dir: Path, start: Start
) -> None:
    fake, url = witness
    set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    fake.status = 503
    api = await start()
    await _publish(api, "u1")

    async def waiting() -> bool:
        log = await log_health(api)
        return log["state"] == "waiting-for-witnesses" and fake.name in log["unreachable"]

    await wait_for(waiting)
    assert not (data_dir / "public" / "tlog" / "checkpoint").exists()
    assert not (data_dir / "public" / "tlog" / "tile").exists()  # nothing published before the check
    fake.status = 200  # now it answers 404: it has seen nothing of this log
    await _signed(api)
    assert (data_dir / "public" / "tlog" / "checkpoint").exists()


async def test_quorum_none_signs_although_a_witness_is_unreachable(
    offline_keydir: KeyDir, data_dir: Path, start: Start, unused_tcp_port: int
) -> None:
    fake = FakeWitness()
    trust = set_policy(
        offline_keydir, f"witness {fake.name} {fake.vkey()} http://127.0.0.1:{unused_tcp_port}/\nquorum none\n"
    )
    api = await start()
    await _publish(api, "q1")
    await _signed(api)
    assert checkpoint_of(data_dir, trust).checkpoint.size == len(db_leaves(data_dir))


async def test_a_witness_showing_a_larger_checkpoint_stops_signing_even_with_quorum_none(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, start: Start
) -> None:
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum none\n")
    api = await start()
    await _publish(api, "l1")
    await _signed(api)
    ours = checkpoint_of(data_dir, trust).checkpoint
    fake.note = fake.cosign(sign_with_log_key(keys_dir, Checkpoint(ours.origin, ours.size + 5, bytes(32))))

    async def refused() -> bool:
        return (await log_health(api))["state"] == "restored-from-backup"

    await wait_for(refused)
    await _publish(api, "l2")
    assert checkpoint_of(data_dir, trust).checkpoint == ours
    assert set(fake.paths) == {f"/tlog/witness/{origin_hash(trust.origin)}/checkpoint"}


async def test_a_cosignature_dated_in_the_future_neither_counts_nor_shadows(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, data_dir: Path, start: Start
) -> None:
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    api = await start()
    bid = await _publish(api, "t1")
    await _signed(api)
    public = data_dir / "public"
    current = (public / "tlog" / "checkpoint").read_bytes()
    fake.note = fake.cosign(current, at=int(time.time()) + 3600)
    seen = len(fake.paths)
    await wait_for(_after(fake, seen + 2))  # two more passes saw it
    assert (public / "tlog" / "checkpoint").read_bytes() == current  # not merged
    assert not (public / "bundles" / f"{bid}.tlog-proof").exists() and (await log_health(api))["quorum_met"] is False
    fake.note = fake.cosign(current)  # a proper one now counts

    async def proven() -> bool:
        return (public / "bundles" / f"{bid}.tlog-proof").exists()

    await wait_for(proven)
    assert trust.witness_names(checkpoint_of(data_dir, trust)) == (fake.name,)


def _after(fake: FakeWitness, requests: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(fake.paths) >= requests

    return check


async def test_a_smaller_view_of_another_tree_raises_the_fork_alarm_and_keeps_evidence(
    witness: tuple[FakeWitness, str], offline_keydir: KeyDir, keys_dir: Path, data_dir: Path, start: Start
) -> None:
    """A witness shows a checkpoint smaller than ours, signed by our log key, with another root.

    That is proof the log key signed a second history: the origin keeps the note
    as evidence and /healthz says ``fork-seen`` (its own tree is still
    consistent, so it keeps signing).
    """
    fake, url = witness
    trust = set_policy(offline_keydir, f"witness {fake.name} {fake.vkey()} {url}\nquorum {fake.name}\n")
    api = await start()
    await _publish(api, "s1")
    await _signed(api)
    first = checkpoint_of(data_dir, trust, quorum=False).checkpoint
    fake.note = fake.cosign((data_dir / "public" / "tlog" / "checkpoint").read_bytes())
    await _publish(api, "s2")
    await _signed(api)
    assert (await log_health(api))["state"] == "ok"
    # Now the witness shows a tree of the first size with another root, signed with our log key.
    fake.note = fake.cosign(sign_with_log_key(keys_dir, Checkpoint(first.origin, first.size, bytes(32))))

    async def alarmed() -> bool:
        return (await log_health(api))["state"] == "fork-seen"

    await wait_for(alarmed)
    evidence = list((data_dir / "state" / "tlog-evidence").iterdir())
    assert len(evidence) == 1 and evidence[0].name.startswith(f"fork-{first.size}-")
    assert Checkpoint.parse(evidence[0].read_text().split("\n\n")[0] + "\n").root == bytes(32)
    # Signing goes on (the origin's own tree is consistent); the alarm stays.
    size_before = (await log_health(api))["size"]
    await _publish(api, "s3")

    async def signed_on() -> bool:
        log = await log_health(api)
        return bool(log["size"] > size_before and log["signed_size"] == log["size"])

    await wait_for(signed_on)
    assert (await log_health(api))["state"] == "fork-seen"


def test_a_witness_failing_right_after_a_start_is_logged_only_once_it_keeps_failing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The origin usually starts before its mirrors: /healthz lists the witness at once; the log says so
    once it has failed for WARN_AFTER seconds in a row, once per distinct error, and again after it
    answered in between."""
    from tamizdat.server.tlog import keeper as keeper_mod
    from tamizdat.server.tlog.witnesses import WitnessView

    clock = [1000.0]
    monkeypatch.setattr(keeper_mod.time, "monotonic", lambda: clock[0])
    k = keeper_mod.LogKeeper.__new__(keeper_mod.LogKeeper)
    k._unreachable, k._failing_since, k._warned, k._seen = {}, {}, {}, {}
    down = [WitnessView("m", False, error="cannot reach it")]
    caplog.set_level(logging.WARNING, logger="tamizdat.server.tlog")

    def warnings() -> int:
        return sum("witness m: cannot reach it" in r.getMessage() for r in caplog.records)

    step = keeper_mod.WARN_AFTER / 6
    for _ in range(5):  # a start: failures for less than WARN_AFTER seconds
        k._note_views(down)
        clock[0] += step
    assert k._unreachable == {"m": "cannot reach it"} and warnings() == 0
    clock[0] += step + 1
    k._note_views(down)
    k._note_views(down)
    assert warnings() == 1
    k._note_views([WitnessView("m", True)])  # it answered (404: seen nothing)
    assert k._unreachable == {}
    k._note_views(down)
    clock[0] += keeper_mod.WARN_AFTER
    k._note_views(down)
    assert warnings() == 2
