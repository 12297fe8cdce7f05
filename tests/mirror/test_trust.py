"""TrustedState on its own: bytes in, decisions out (no network, no disk)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace

import pytest

from tamizdat.errors import RejectedError
from tamizdat.keys import timefmt
from tamizdat.mirror.trust import Listings, TrustedState

from .simulator import Simulator, key


def shards_of(sim: Simulator, raw: bytes, files: dict[str, bytes]) -> dict[str, Listings]:
    trust = TrustedState(sim.root_keyid)
    trust.add_root(sim.roots[0])
    signed = trust.check_index(raw, timefmt.now())
    assert signed is not None
    return {ref.sha256: trust.check_shard(ref, files[f"index/{ref.sha256}.json"]) for ref in signed.index.shards}


def test_roots_advance_one_version_at_a_time(sim: Simulator) -> None:
    sim.rotate()
    sim.rotate()
    trust = TrustedState(sim.root_keyid)
    with pytest.raises(RejectedError) as exc:
        TrustedState(Simulator(sim.workdir / "x", seed=3).root_keyid).add_root(sim.roots[0])
    assert exc.value.code == "root-not-pinned"
    trust.add_root(sim.roots[0])
    with pytest.raises(RejectedError) as exc:
        trust.add_root(sim.roots[2])
    assert exc.value.code == "root-chain-gap"
    trust.add_root(sim.roots[1])
    with pytest.raises(RejectedError) as exc:
        trust.add_root(sim.roots[0])
    assert exc.value.code == "root-rollback"
    trust.add_root(sim.roots[2])
    assert trust.root_version == 3


def test_index_rules(sim: Simulator) -> None:
    trust = TrustedState(sim.root_keyid)
    trust.add_root(sim.roots[0])
    now = timefmt.now()
    v1 = sim.files["index.json"]
    signed = trust.check_index(v1, now)
    assert signed is not None
    trust.commit(signed, shards_of(sim, v1, sim.files))
    assert trust.check_index(v1, now) is None  # the same bytes: nothing to do

    other, _ = sim.sign(version=1, created=now - dt.timedelta(seconds=5))  # same version, other bytes
    with pytest.raises(RejectedError) as exc:
        trust.check_index(other, now)
    assert exc.value.code == "index-mismatch"

    sim.add(1)
    v2 = sim.publish()
    signed2 = trust.check_index(v2, now)
    assert signed2 is not None
    trust.commit(signed2, shards_of(sim, v2, sim.files))
    with pytest.raises(RejectedError) as exc:
        trust.check_index(v1, now)
    assert exc.value.code == "rollback"

    later = now + dt.timedelta(days=2)
    v3, _ = sim.sign()
    with pytest.raises(RejectedError) as exc:
        trust.check_index(v3, later)
    assert exc.value.code == "expired"

    foreign, _ = sim.sign(signer=key(250))
    with pytest.raises(RejectedError) as exc:
        trust.check_index(foreign, now)
    assert exc.value.code == "index-bad-signature"


def test_restore_and_fast_forward_reset(sim: Simulator) -> None:
    trust = TrustedState(sim.root_keyid)
    trust.add_root(sim.roots[0])
    raw = sim.files["index.json"]
    signed = trust.check_index(raw, timefmt.now())
    assert signed is not None
    trust.commit(signed, shards_of(sim, raw, sim.files))
    again = TrustedState.restore(sim.root_keyid, sim.roots, raw)
    assert again.index is not None and again.index.raw == raw and again.index_floor == 1

    assert sim.index_key is not None
    sim.rotate(revoke=[sim.index_key.keyid], add=[(key(251), ("index",))])
    again.add_root(sim.roots[1])
    assert again.index_floor == 0 and again.floor_reset
    # Restoring after the rotation keeps the old index (verified under the root it names).
    third = TrustedState.restore(sim.root_keyid, sim.roots, raw, index_floor=0)
    assert third.index is not None and third.index_floor == 0


def test_plan_and_bundle_checks(sim: Simulator) -> None:
    first, second, third = sim.listed_ids()
    sim.retract(first)
    newer = sim.supersede(second)
    extra = sim.add(2)  # a second shard
    raw = sim.publish()
    trust = TrustedState(sim.root_keyid)
    trust.add_root(sim.roots[0])
    signed = trust.check_index(raw, timefmt.now())
    assert signed is not None
    shards = shards_of(sim, raw, sim.files)
    plan = trust.plan(signed.index, shards, keep_superseded=True)
    assert set(plan.wanted) == {second, third, newer, *extra}
    assert plan.retracted == {first} and plan.superseded == {second}
    assert set(trust.plan(signed.index, shards, keep_superseded=False).wanted) == {third, newer, *extra}

    entry = next(e for s in shards.values() for e in s if e.id == third)
    data = sim.bundles[third]
    trust.check_transfer(entry, len(data), entry.sha256)
    assert trust.check_bundle(entry, io.BytesIO(data)).bundle_id == third
    with pytest.raises(RejectedError) as exc:
        trust.check_transfer(entry, len(data) - 1, entry.sha256)
    assert exc.value.code == "bundle-mismatch"
    with pytest.raises(RejectedError) as exc:
        trust.check_bundle(replace(entry, id=newer), io.BytesIO(data))
    assert exc.value.code == "bundle-id-mismatch"

    assert len(signed.index.shards) == 2
    doubled = {**shards, signed.index.shards[1].sha256: shards[signed.index.shards[0].sha256]}
    with pytest.raises(RejectedError) as exc:
        trust.plan(signed.index, doubled, keep_superseded=True)
    assert exc.value.code == "shard-duplicate"


def test_recalled_shard_equals_checked_shard(sim: Simulator) -> None:
    """The fast read of a shard this mirror accepted before gives what the strict parse gives."""
    sim.retract(sim.listed_ids()[0])
    sim.supersede(sim.listed_ids()[1])
    sim.add(3)
    raw = sim.publish()
    trust = TrustedState(sim.root_keyid)
    trust.add_root(sim.roots[0])
    signed = trust.check_index(raw, timefmt.now())
    assert signed is not None
    for ref in signed.index.shards:
        data = sim.files[f"index/{ref.sha256}.json"]
        assert trust.recall_shard(ref, data) == trust.check_shard(ref, data)
        with pytest.raises(RejectedError) as exc:
            trust.recall_shard(ref, data + b" ")
        assert exc.value.code == "shard-mismatch"
