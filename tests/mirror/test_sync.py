"""The sync engine against the simulator: first sync, no-op, increments, retractions, restarts, failover."""

from __future__ import annotations

from pathlib import Path

from tamizdat.bundles.verify import verify_bundle

from .conftest import MirrorFactory, check_served, served_index
from .simulator import Simulator


async def test_first_sync_then_noop_then_increment(sim: Simulator, make_mirror: MirrorFactory) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        s = await m.sync()
        assert s.ok and s.changed and s.new == 3, s.errors
        assert (m.data.public / "index.json").read_bytes() == sim.files["index.json"]
        listed = check_served(m.data.public, sim.root_keyid)
        assert len(listed) == 3

        sim.requests.clear()
        s = await m.sync()
        assert s.ok and not s.changed and s.new == 0
        assert sim.requests == ["index.json"]

        new = sim.add(1)
        sim.publish()
        sim.requests.clear()
        s = await m.sync()
        assert s.ok and s.new == 1
        assert sim.requests[0] == "index.json"
        assert len(sim.requests) <= 3, sim.requests
        assert (m.data.bundles / f"{new[0]}.zip").exists()
        check_served(m.data.public, sim.root_keyid)


async def test_retraction_and_supersede(sim: Simulator, make_mirror: MirrorFactory) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url], keep_superseded=False)
        assert (await m.sync()).ok
        first, second, _ = sim.listed_ids()
        sim.retract(first)
        newer = sim.supersede(second)
        sim.publish()
        s = await m.sync()
        assert s.ok and s.retracted == 1 and s.pruned == 1 and s.new == 1, s
        assert not m.data.bundle_path(first).exists()
        assert not m.data.bundle_path(second).exists()
        assert m.data.bundle_path(newer).exists()


async def test_restart_continues(sim: Simulator, make_mirror: MirrorFactory, tmp_path: Path) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        assert (await m.sync()).ok
        again = type(m)(m.data, root_keyid=sim.root_keyid, upstreams=[url], config=m.config)
        assert again.trust.index is not None and again.trust.index.raw == sim.files["index.json"]
        sim.requests.clear()
        assert (await again.sync()).ok
        assert sim.requests == ["index.json"]


async def test_directory_upstream(sim: Simulator, make_mirror: MirrorFactory, tmp_path: Path) -> None:
    stick = sim.write_dir(tmp_path / "stick")
    m = make_mirror(sim.root_keyid, [str(stick)])
    s = await m.sync()
    assert s.ok and s.new == 3
    for p in m.data.bundles.glob("*.zip"):
        verify_bundle(p, root_keyid=sim.root_keyid)


async def test_failover_skips_dead_and_hostile(sim: Simulator, make_mirror: MirrorFactory, tmp_path: Path) -> None:
    bad = Simulator(tmp_path / "bad", seed=2)  # another publisher: its data is hostile here
    bad.add(1)
    bad.publish()
    with sim.serve() as good_url, bad.serve() as bad_url:
        dead = "http://127.0.0.1:9/"
        m = make_mirror(sim.root_keyid, [dead, good_url])
        s = await m.sync()
        assert s.ok and s.upstream == good_url.rstrip("/") + "/"
        assert s.errors[0]["kind"] == "network"
        assert m.record(dead).consecutive_failures == 1
        # The failing upstream goes to the back next time: the good one is asked first.
        sim.requests.clear()
        s = await m.sync()
        assert s.ok and not s.errors
        index = served_index(m.data.public)
        assert index is not None and index.version == 1
        # A hostile upstream first (another publisher's tree): skipped, reported, state kept.
        m2 = make_mirror(sim.root_keyid, [bad_url, good_url])
        s = await m2.sync()
        assert s.ok and s.errors[0]["kind"] == "rejected"
        assert m2.record(bad_url).last_error is not None


async def test_worker_processes_verify_and_reject(sim: Simulator, make_mirror: MirrorFactory) -> None:
    """Big batches are verified in worker processes; a rejection there is the same rejection."""
    from dataclasses import replace

    from .conftest import FAST

    config = replace(FAST, process_threshold=1, verify_workers=2)
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url], config=config)
        s = await m.sync()
        assert s.ok and s.new == 3, s.errors
        stranger = sim.build()
        entry = sim.build()
        sim.list.append(replace(entry, sha256=stranger.sha256, size=stranger.size))
        sim.publish()
        sim.files[sim.bundle_path(entry.id)] = sim.bundles[stranger.id]
        s = await m.sync()
        assert not s.ok and s.code == "bundle-id-mismatch"
        check_served(m.data.public, sim.root_keyid)
