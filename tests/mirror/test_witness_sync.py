"""Mirrors as witnesses, end to end against the simulated publisher and its log.

Mirror A cosigns what it verified; mirror B syncing from A (over HTTP) does
the same checks and cosigns too; each merges the other's view as a peer and
writes proofs once the quorum is met. The proofs and the witness views verify
with the readers' code and the root's log trust. Attacks (fork, rollback,
unlogged bundle, tampered entries, a log ahead of the index) are refused with
their code in the sync summary and /healthz, while the last good state stays
served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tamizdat.bundles.tlog.checkpoint import open_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner, CosignatureVerifier
from tamizdat.bundles.tlog.note import Note
from tamizdat.bundles.tlog.reader import check_index_proof, check_log_proof
from tamizdat.bundles.tlog.tiles import tile_layout
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.bundles.tlog.witness import origin_hash
from tamizdat.keys import dsse, timefmt
from tamizdat.keys.dsse import INDEX_TYPE, Envelope
from tamizdat.mirror.app import health, make_app
from tamizdat.mirror.export import export_tree
from tamizdat.mirror.sync import Mirror
from tamizdat.mirror.witnesskey import ensure_witness_key

from .conftest import TAMIZDAT, MirrorFactory, check_served
from .simulator import Simulator, key

Server = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
def logsim(tmp_path: Path) -> Simulator:
    """A publisher with a log: three bundles at index version 1."""
    s = Simulator(tmp_path / "sim", log=True)
    s.add(3)
    s.publish()
    return s


def vkey(m: Mirror) -> str:
    return ensure_witness_key(m.data).vkey()


def join(sim: Simulator, witnesses: dict[str, tuple[Mirror, str | None]], quorum: str) -> None:
    """The publisher puts the mirrors' vkeys in its policy (root N+1) and publishes a round."""
    lines = [" ".join(filter(None, ["witness", name, vkey(m), url])) for name, (m, url) in witnesses.items()]
    sim.set_policy("\n".join(lines) + "\n" + quorum)
    sim.publish()


def witness_view(m: Mirror, sim: Simulator) -> Path:
    return m.data.public / "tlog" / "witness" / origin_hash(sim.origin) / "checkpoint"


def now() -> int:
    return int(time.time())


def payload(raw: bytes) -> bytes:
    return dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE).payload


def assert_proofs(m: Mirror, sim: Simulator) -> int:
    """Every held bundle has a proof the readers accept; so does the served index."""
    count = 0
    for zip_path in m.data.bundles.glob("*.zip"):
        proof = zip_path.with_suffix(".tlog-proof").read_bytes()
        verdict = check_log_proof(zip_path.stem, proof, sim.root, now=now())
        assert verdict.size >= 1
        count += 1
    index_raw = (m.data.public / "index.json").read_bytes()
    check_index_proof(
        payload(index_raw), (m.data.public / "tlog" / "index.tlog-proof").read_bytes(), sim.root, now=now()
    )
    return count


async def test_mirror_cosigns_and_writes_proofs(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        s = await m.sync()
        assert s.ok and s.log is not None, s.errors
        assert s.log["state"] == "ok" and s.log["cosigned"] and s.log["quorum"], s.log
        assert s.log["witness"] == "a" and s.log["size"] == sim.tree.size
        check_served(m.data.public, sim.root_keyid)

        # The witness view verifies with the root's log trust, its cosignature with the mirror's vkey.
        view = witness_view(m, sim).read_bytes()
        trust = LogTrust.from_root(sim.root)
        assert trust is not None
        signed = open_checkpoint(view, trust.policy.log_verifiers(sim.origin), [CosignatureVerifier.from_vkey(vkey(m))])
        assert signed.checkpoint.size == sim.tree.size and len(signed.cosignatures) == 1
        trust.verify_checkpoint((m.data.public / "tlog" / "checkpoint").read_bytes(), not_before=now() - 60)
        # The tiles it serves are the ones it built: byte-identical to the origin's.
        tiles = [p for p in m.data.public.glob("tlog/tile/**/*") if p.is_file()]
        built = {p.relative_to(m.data.public).as_posix(): p.read_bytes() for p in tiles}
        assert {t.path() for t in tile_layout(sim.tree.size, entries=True)} <= {r[5:] for r in built}
        for rel, body in built.items():
            assert sim.files[rel] == body, rel
        assert assert_proofs(m, sim) == 3

        # Nothing new: one request for the sync's budget; the log's requests are counted apart.
        sim.requests.clear()
        s = await m.sync()
        assert s.ok and s.requests == 1 and s.log is not None and s.log["state"] == "ok"
        assert [r for r in sim.requests if not r.startswith("tlog/")] == ["index.json"]
        assert s.log["requests"] == 1 and not s.log["cosigned"]  # re-cosigned only after an hour

        # A new round: only the new entries travel, the old proofs stay as they are.
        before = {p.name: p.read_bytes() for p in m.data.bundles.glob("*.tlog-proof")}
        sim.add(2)
        sim.publish()
        sim.requests.clear()
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log
        assert [r for r in sim.requests if r.startswith("tlog/")] == [
            "tlog/checkpoint",
            f"tlog/tile/entries/000.p/{sim.tree.size}",
        ]
        for name, body in before.items():
            assert (m.data.bundles / name).read_bytes() == body
        assert assert_proofs(m, sim) == 5
        doc = health(m, 300)
        assert doc["log"]["state"] == "ok" and doc["log"]["evidence"] == 0 and doc["log"]["last_cosigned"]
        # Each index it served and found logged last is archived under its leaf id (tlog/index/<id>.json).
        served = (m.data.public / "index.json").read_bytes()
        leaf_id = hashlib.sha256(Envelope.from_bytes(served, expected_type=INDEX_TYPE).payload).hexdigest()
        archive = sorted((m.data.public / "tlog" / "index").iterdir())
        assert len(archive) == 2 and (m.data.public / "tlog" / "index" / f"{leaf_id}.json").read_bytes() == served


async def test_chain_b_from_a_and_peers(logsim: Simulator, make_mirror: MirrorFactory, aiohttp_server: Server) -> None:
    sim = logsim
    with sim.serve() as url:
        a = make_mirror(sim.root_keyid, [url])
        server_a = await aiohttp_server(make_app(a, interval=60, background_sync=False))
        url_a = str(server_a.make_url("/"))
        b = make_mirror(sim.root_keyid, [url_a])
        server_b = await aiohttp_server(make_app(b, interval=60, background_sync=False))
        url_b = str(server_b.make_url("/"))
        join(sim, {"a": (a, url_a), "b": (b, url_b)}, "group both 2 a b\nquorum both\n")

        s = await a.sync()
        assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log
        assert not s.log["quorum"]  # B has not cosigned yet
        assert not list(a.data.bundles.glob("*.tlog-proof"))

        s = await b.sync()  # B checks A's checkpoint and tiles like any upstream's, and cosigns
        assert s.ok and s.log is not None and s.log["state"] == "ok", s.log
        assert s.log["cosigned"] and s.log["quorum"] and s.log["witness"] == "b"
        assert assert_proofs(b, sim) == 3

        s = await a.sync()  # A merges B's view as a peer's: the quorum is met there too
        assert s.log is not None and s.log["quorum"], s.log
        assert {"source": "witness b", "size": sim.tree.size, "status": "same"} in s.log["sources"]
        assert assert_proofs(a, sim) == 3
        for m in (a, b):
            cp = (m.data.public / "tlog" / "checkpoint").read_bytes()
            trust = LogTrust.from_root(sim.root)
            assert trust is not None
            assert trust.witness_names(trust.verify_checkpoint(cp, not_before=now() - 60)) == ("a", "b")


async def test_fork_keeps_evidence_and_last_good_state(
    logsim: Simulator, make_mirror: MirrorFactory, tmp_path: Path
) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        served = (m.data.public / "tlog" / "checkpoint").read_bytes()
        view = witness_view(m, sim).read_bytes()
        good = sim.files["tlog/checkpoint"]
        fork = sim.fork_checkpoint()
        sim.files["tlog/checkpoint"] = fork

        s = await m.sync()
        assert s.ok, s.errors  # the index sync is not the log's business
        assert s.log is not None and s.log["state"] == "fork" and s.log["evidence"] == 2, s.log
        kept = {p.name: p.read_bytes() for p in (m.data.state / "tlog-evidence").iterdir()}
        published = m.data.public / "tlog" / "witness" / origin_hash(sim.origin) / "evidence"
        assert {p.name: p.read_bytes() for p in published.iterdir()} == kept
        assert fork in kept.values()  # theirs verbatim, ours as accepted (with the cosignatures gathered)
        assert sorted(Note.parse(n).text for n in kept.values()) == sorted(Note.parse(n).text for n in (fork, good))
        assert (m.data.public / "tlog" / "checkpoint").read_bytes() == served
        assert witness_view(m, sim).read_bytes() == view
        assert health(m, 300)["log"]["state"] == "fork"

        # Sticky: a good round does not end it; the operator does.
        sim.add(1)
        sim.publish()
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "fork" and witness_view(m, sim).read_bytes() == view
        out = subprocess.run(
            [*TAMIZDAT, "mirror", "witness-clear", "--data", str(m.data.root), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert '"cleared": "fork"' in out.stdout
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log
        assert s.log["evidence"] == 2  # evidence stays


async def test_rollback_is_refused_then_recovers(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        old = sim.files["tlog/checkpoint"]
        sim.add(1)
        sim.publish()
        assert (await m.sync()).ok
        new = sim.files["tlog/checkpoint"]
        sim.files["tlog/checkpoint"] = old
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "rollback" and s.log["evidence"] == 2, s.log
        assert s.log["size"] == sim.tree.size
        sim.files["tlog/checkpoint"] = new
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok", s.log


async def test_unlogged_bundle_is_not_cosigned(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        view = witness_view(m, sim).read_bytes()
        stolen = sim.add(1)[0]  # signed with the bundle key, listed, but never logged
        sim.publish(log_skip=[stolen])
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "unlogged-bundle", s.log
        assert stolen[:16] in s.log["message"]
        assert witness_view(m, sim).read_bytes() == view
        assert not (m.data.bundles / f"{stolen}.tlog-proof").exists()
        assert health(m, 300)["log"]["state"] == "unlogged-bundle"


async def test_hidden_retraction_is_not_cosigned(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    from tamizdat.bundles.tlog.leaf import retraction_leaf

    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        victim = sim.listed_ids()[0]
        sim.publish(log_extra=[retraction_leaf(victim)])  # logged as retracted; the index still serves it
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "hidden-retraction", s.log


async def test_log_ahead_of_the_index_waits(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        old_index = sim.files["index.json"]
        sim.add(1)
        new_index = sim.publish()
        sim.files["index.json"] = old_index  # the mirror fetched the index just before the round
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "log-behind" and not s.log["cosigned"], s.log
        sim.files["index.json"] = new_index
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok" and s.log["cosigned"], s.log


async def test_tampered_entry_bundle_is_refused(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        size = sim.tree.size
        sim.add(1)
        sim.publish()
        rel = f"tlog/tile/entries/000.p/{sim.tree.size}"
        good = sim.files[rel]
        sim.files[rel] = good[:-1] + bytes([good[-1] ^ 1])
        s = await m.sync()
        assert s.ok and s.log is not None and s.log["state"] == "bad-tile" and s.log["size"] == size, s.log
        assert not (m.data.public / rel).exists()
        sim.files[rel] = good
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok" and s.log["size"] == sim.tree.size


async def test_second_upstream_with_a_fork(logsim: Simulator, make_mirror: MirrorFactory, tmp_path: Path) -> None:
    sim = logsim
    with sim.serve() as url:
        m0 = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m0, None)}, "quorum a\n")
        stick = sim.write_dir(tmp_path / "stick")
        (stick / "tlog" / "checkpoint").write_bytes(sim.fork_checkpoint())
        m = Mirror(m0.data, root_keyid=sim.root_keyid, upstreams=[url, str(stick)], config=m0.config)
        s = await m.sync()
        assert s.ok and s.upstream == url
        assert s.log is not None and s.log["state"] == "fork", s.log


async def test_stale_upstream_cosignatures(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    outside = CosignatureSigner("outside.example", key(99))
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        lines = f"witness a {vkey(m)}\nwitness c {outside.verifier.vkey()}\nquorum a\n"
        sim.set_policy(lines, max_age=3600)
        sim.publish()
        sim.cosign(outside, now() - 7200)
        assert (await m.sync()).ok
        s = await m.sync()  # unchanged, and every cosignature on it is older than max_age
        assert s.log is not None and s.log["state"] == "stale", s.log


async def test_recosign_after_an_hour(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    offset = [0.0]

    def clock() -> dt.datetime:
        return timefmt.now() + dt.timedelta(seconds=offset[0])

    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url], clock=clock)
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        first = witness_view(m, sim).read_bytes()
        offset[0] = 1800
        s = await m.sync()
        assert s.log is not None and not s.log["cosigned"] and witness_view(m, sim).read_bytes() == first
        offset[0] = 3700
        s = await m.sync()
        assert s.log is not None and s.log["cosigned"], s.log
        again = witness_view(m, sim).read_bytes()
        trust = LogTrust.from_root(sim.root)
        assert trust is not None
        signed = open_checkpoint(again, trust.policy.log_verifiers(sim.origin), trust.policy.witness_verifiers())
        assert signed.checkpoint.size == sim.tree.size
        assert max(signed.cosigned_at().values()) >= now() + 3600


async def test_export_carries_the_log_and_an_import_checks_it(
    logsim: Simulator, make_mirror: MirrorFactory, tmp_path: Path
) -> None:
    sim = logsim
    with sim.serve() as url:
        a = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (a, None)}, "quorum a\n")
        assert (await a.sync()).ok
    stick = tmp_path / "stick"
    summary = export_tree(a.data, sim.root_keyid, stick)
    assert summary.log_files >= 5
    for rel in ("tlog/checkpoint", "tlog/index.tlog-proof", f"tlog/tile/entries/000.p/{sim.tree.size}"):
        assert (stick / rel).read_bytes() == (a.data.public / rel).read_bytes()
    assert len(list(stick.glob("bundles/*.tlog-proof"))) == 3
    c = make_mirror(sim.root_keyid, [str(stick)])
    s = await c.sync()
    assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["size"] == sim.tree.size, s.log
    assert s.log["witness"] is None  # not in the policy: it checks and cosigns, nobody counts it yet
    assert s.log["quorum"]  # a's cosignature came along on the stick
    assert_proofs(c, sim)


async def test_root_without_log(sim: Simulator, make_mirror: MirrorFactory) -> None:
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        s = await m.sync()
        assert s.ok and s.log is None
        assert not (m.data.state / "witness.key").exists()
        assert health(m, 300)["log"] is None


def test_witness_key_is_private(tmp_path: Path) -> None:
    from tamizdat.server.datadir import DataDir

    data = DataDir(tmp_path / "m").create()
    wk = ensure_witness_key(data)
    assert (data.state / "witness.key").stat().st_mode & 0o777 == 0o600
    assert wk.created and wk.name.startswith("mirror-") and wk.vkey().startswith(wk.name + "+")
    again = ensure_witness_key(data)
    assert not again.created and again.vkey() == wk.vkey()
    assert data.settings()["witness_name"] == wk.name


async def test_restart_rebuilds_the_log_view_from_own_tiles(logsim: Simulator, make_mirror: MirrorFactory) -> None:
    sim = logsim
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).ok
        sim.add(1)
        sim.publish()
        again = Mirror(m.data, root_keyid=sim.root_keyid, upstreams=[url], config=m.config)
        assert health(again, 300)["log"]["state"] == "ok"  # the saved report, before any sync
        s = await again.sync()
        assert s.log is not None and s.log["state"] == "ok" and s.log["size"] == sim.tree.size, s.log
        # Damaged own tiles are noticed, never silently trusted.
        own = m.data.public / "tlog" / "tile" / "entries" / "000.p" / str(sim.tree.size)
        own.write_bytes(own.read_bytes()[:-1] + b"\x00")
        third = Mirror(m.data, root_keyid=sim.root_keyid, upstreams=[url], config=m.config)
        s = await third.sync()
        assert s.ok and s.log is not None and s.log["state"] == "local-log", s.log


async def test_partial_tiles_are_collected_after_the_grace_period(
    logsim: Simulator, make_mirror: MirrorFactory
) -> None:
    from tamizdat.bundles.tlog.leaf import bundle_leaf

    sim = logsim
    offset = [0.0]

    def clock() -> dt.datetime:
        return timefmt.now() + dt.timedelta(seconds=offset[0])

    far = timefmt.now() + dt.timedelta(days=30)
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url], clock=clock)
        assert (await m.sync()).ok
        partial = m.data.public / "tlog" / "tile" / "entries" / "000.p"
        assert partial.is_dir()
        # 300 leaves in one round: the first tile fills up (leaves no index lists: refused, but consistent).
        fake = [bundle_leaf(hashlib.sha256(b"%d" % i).hexdigest()) for i in range(300)]
        sim.publish(log_extra=fake, expires=far)
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "unlisted-bundle" and s.log["size"] == sim.tree.size
        assert (m.data.public / "tlog" / "tile" / "entries" / "000").is_file() and partial.is_dir()
        offset[0] = 8 * 24 * 3600
        sim.publish(expires=far)
        s = await m.sync()
        assert s.ok and s.log is not None, s.errors
        assert not partial.exists() and not (m.data.public / "tlog" / "tile" / "0" / "000.p").exists()
        assert (m.data.public / "tlog" / "tile" / "0" / "000").is_file()
