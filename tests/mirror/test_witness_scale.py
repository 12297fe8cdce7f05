"""The witness's per-round work follows what changed, not the size of the log.

- The leaf checks (set comparisons, no set built unless one fails) give the
  verdict of their plain definition over random rounds with faulty served
  indexes, on a mirror that keeps its leaf maps between rounds.
- Proofs read off each leaf's path equal RFC 6962 proofs from tiles at every
  tile boundary.
- The proof backlog writes a bounded batch per round in leaf order, keeps the
  rest for later rounds, never rewrites a proof, and removes the proofs of
  bundles that left; a mirror with a small batch reaches all proofs over
  several syncs.
- ``tlog_partial_grace`` is a mirror setting.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.leaf import bundle_leaf
from tamizdat.bundles.tlog.tiles import TileId, inclusion_proof_from_tiles
from tamizdat.cli import main
from tamizdat.mirror.logproofs import ProofBacklog, ProofMaker
from tamizdat.mirror.witness import LogRefusal, ServedIndex

from .conftest import MirrorFactory
from .simulator import Simulator
from .test_witness_sync import assert_proofs, join
from .test_witness_unit import Log, Mirror, _id
from .test_witness_unit import make_mirror as witness_mirror

# -- the leaf checks ----------------------------------------------------------------------------------


def verdict(m: Mirror, served: ServedIndex) -> tuple[str, str] | None:
    try:
        m.w.check_leaves(served)
    except LogRefusal as exc:
        return exc.code, exc.message
    return None


STEP_ONE = ("log-behind|index-unlogged", "")


def plain_verdict(lg: Log, served: ServedIndex) -> tuple[str, str] | None:
    """docs/transparency.md's leaf checks spelled out over the publisher's record (first failure wins)."""
    logged = set(lg.listed)  # this Log logs every bundle it lists and every retraction it makes
    retractions = set(lg.retracted)
    if served.payload_sha256 != hashlib.sha256(lg.index_payload).hexdigest():
        return STEP_ONE
    checks = [
        ("unlisted-bundle", sorted(logged - served.listed)),
        ("bundle-missing", sorted((logged & served.wanted) - served.held)),
        ("hidden-retraction", sorted(retractions - served.retracted)),
        ("unlogged-bundle", sorted(served.listed - logged)),
        ("unlogged-retraction", sorted(served.retracted - retractions)),
    ]
    for code, ids in checks:
        if ids:
            return code, ids[0][:16]
    return None


def faulty(lg: Log, rng: random.Random, previous: bytes) -> tuple[str, ServedIndex]:
    """The served index, honest or bent one way."""
    s = lg.served()
    listed, retracted, held = set(s.listed), set(s.retracted), set(s.held)
    logged = [b for b in lg.listed if b not in lg.retracted]
    fault = rng.choice(["none"] * 6 + ["unlisted", "unlogged", "not-held", "hide", "retract", "behind"])
    if fault == "unlisted" and logged:
        listed.discard(rng.choice(logged))
    elif fault == "unlogged":
        listed.add(_id(f"forged {rng.random()}"))
    elif fault == "not-held" and logged:
        held.discard(rng.choice(logged))
    elif fault == "hide" and retracted:
        retracted.discard(rng.choice(sorted(retracted)))
    elif fault == "retract" and logged:
        retracted.add(rng.choice(logged))
    elif fault == "behind":
        return fault, lg.served(payload_sha256=hashlib.sha256(previous).hexdigest())
    wanted = frozenset(listed - retracted)
    return fault, lg.served(listed=frozenset(listed), retracted=frozenset(retracted), wanted=wanted, held=held)


@pytest.mark.parametrize("seed", range(6))
def test_leaf_checks_name_the_first_failure(seed: int) -> None:
    rng = random.Random(seed)
    lg = Log()
    m = witness_mirror()
    faults = set()
    for _ in range(40):
        previous = lg.index_payload
        retract = [b for b in lg.listed if b not in lg.retracted and rng.random() < 0.05]
        note = lg.round(rng.choice([0, 1, 2, 5, 30, 100]), retract=retract)
        if rng.random() < 0.8:  # sometimes the mirror misses a round
            m.feed(note, lg.tiles)
        else:
            continue
        fault, served = faulty(lg, rng, previous)
        got, want = verdict(m, served), plain_verdict(lg, served)
        if want == STEP_ONE:
            assert got is not None and got[0] in want[0].split("|"), (fault, got)
        elif want is None:
            assert got is None, (fault, got)
        else:  # the same first failure, naming the same (smallest) id
            assert got is not None and got[0] == want[0] and want[1] in got[1], (fault, got, want)
        faults.add((fault, None if got is None else got[0]))
    assert ("none", None) in faults and len({code for _, code in faults}) >= 4, faults


# -- proofs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [*range(1, 34), 255, 256, 257, 511, 512, 513, 65_536, 65_793])
def test_path_proofs_equal_proofs_from_tiles(size: int) -> None:
    tree = TreeBuilder()
    tree.extend(bundle_leaf(_id(i)).to_bytes() for i in range(size))
    files = dict(tree.flush().files())

    def read(tile: TileId) -> bytes:
        return files.get(tile.path()) or files[tile.full().path()]

    prove = ProofMaker(size, read)
    edges = {0, 1, size - 1, size - 2, 255, 256, 257, 65_535, 65_536, size // 2}
    picks = range(size) if size < 600 else sorted({*edges, *random.Random(size).sample(range(size), 300)})
    for i in picks:
        if 0 <= i < size:
            assert prove(i) == inclusion_proof_from_tiles(i, size, read), i
    with pytest.raises(ValueError):
        prove(size)


def test_backlog_writes_bounded_batches_in_leaf_order(tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    ids = [_id(f"b{i}") for i in range(10)]
    bundles = {bid: 2 * i for i, bid in enumerate(ids)}  # leaf index of each
    (folder / f"{ids[3]}.tlog-proof").write_bytes(b"kept")  # written before a restart: never rewritten
    (folder / f"{ids[9]}.tlog-proof").write_bytes(b"orphan")  # its bundle is not held: removed
    (folder / "notes.txt").write_bytes(b"")
    backlog = ProofBacklog(folder)
    held = frozenset(ids[:8])
    assert backlog.update(bundles, ids, held) == 1 and not (folder / f"{ids[9]}.tlog-proof").exists()
    assert backlog.pending == 7
    seen: list[int] = []

    def prove(index: int) -> bytes:
        seen.append(index)
        return b"proof %d" % index

    assert backlog.write(prove, limit=3) == 3 and seen == [0, 2, 4]
    assert backlog.pending == 4
    # A round later: bundle 5 left (retracted), bundle 8 arrived, two new leaves were logged.
    more = [_id("b10"), _id("b11")]
    bundles.update({more[0]: 30, more[1]: 31})
    held = (held - {ids[5]}) | {ids[8], *more}
    assert backlog.update(bundles, [*ids, *more], held) == 0
    assert backlog.write(prove, limit=100) == 6
    assert seen == [0, 2, 4, 8, 12, 14, 16, 30, 31] and backlog.pending == 0
    assert (folder / f"{ids[3]}.tlog-proof").read_bytes() == b"kept"
    # Bundle 0 leaves: its proof goes; nothing else is written again.
    assert backlog.update(bundles, [*ids, *more], held - {ids[0]}) == 1
    assert not (folder / f"{ids[0]}.tlog-proof").exists() and backlog.write(prove, limit=100) == 0
    assert backlog.write(prove, limit=100, deadline=0.0) == 0


async def test_mirror_writes_proofs_over_several_syncs(tmp_path: Path, make_mirror: MirrorFactory) -> None:
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(5)
    sim.publish()
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        m.logsync.max_proofs = 2
        join(sim, {"a": (m, None)}, "quorum a\n")
        pending = []
        for _ in range(3):
            s = await m.sync()
            assert s.ok and s.log is not None and s.log["state"] == "ok" and s.log["quorum"], s.log
            pending.append((s.log["proofs"], s.log["proofs_pending"]))
        assert pending == [(2, 3), (2, 1), (1, 0)]
        assert assert_proofs(m, sim) == 5  # every held bundle has a proof the readers accept
        s = await m.sync()
        assert s.log is not None and (s.log["proofs"], s.log["proofs_pending"]) == (0, 0)


# -- the setting -------------------------------------------------------------------------------------


def test_partial_grace_is_a_mirror_setting(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(3)
    sim.publish()
    data = tmp_path / "m"
    partial = data / "public" / "tlog" / "tile" / "entries" / "000.p"

    def sync(*extra: str) -> dict[str, object]:
        args = ["mirror", "sync", "--once", "--json", "--data", str(data), *extra]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        doc: dict[str, object] = json.loads(result.output)
        return doc

    with sim.serve() as url:
        sync("--root-key", sim.root_keyid, "--upstream", url)
        assert partial.is_dir()
        settings = data / "settings.toml"
        settings.write_text(settings.read_text() + "tlog_partial_grace = 0\n")
        fake = [bundle_leaf(_id(f"fake {i}")) for i in range(300)]  # fills the first tile (refused: unlisted)
        sim.publish(log_extra=fake)
        log = sync()["log"]
        assert isinstance(log, dict) and log["size"] == sim.tree.size > 256
        assert not partial.exists()  # collected in the same round: no grace
        assert (data / "public" / "tlog" / "tile" / "entries" / "000").is_file()

    settings.write_text(settings.read_text().replace("tlog_partial_grace = 0", "tlog_partial_grace = -1"))
    result = CliRunner().invoke(main, ["mirror", "sync", "--once", "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 1 and "tlog_partial_grace must not be negative" in result.output
    assert "Traceback" not in result.output
