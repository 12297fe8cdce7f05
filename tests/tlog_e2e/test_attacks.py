"""The transparency log's attack table over real processes on loopback.

One origin (`tamizdat serve`), two witness mirrors (`tamizdat mirror run`;
the root's policy names both with their URLs, quorum 2) and a hostile
upstream in this process. mirror-1 syncs from the hostile upstream (by default
a faithful copy of the origin's public tree), mirror-2 from the origin. The
attacker holds copies of the origin's online keys (bundle, index, log).

Each row attacks, then the same checks run: the node that must notice shows
the row's ``log.state`` in /healthz; evidence files are exactly the row's
(the same names in ``DATA/state/tlog-evidence/`` and under
``tlog/witness/<oh>/evidence/``); what must stay served is still served
byte for byte (checkpoint, witness view, index) and every served bundle still
verifies; no witness quorum ever cosigned a bad tree. Before each row both
mirrors go back to a baseline copy of their data and everything settles on a
quorum-cosigned checkpoint again.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tamizdat.bundles.index import Index
from tamizdat.bundles.tlog.leaf import bundle_leaf, index_leaf
from tamizdat.bundles.tlog.note import Note
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.reader import LogProofError, check_index_proof
from tamizdat.keys.keydir import KeyDir

from .forgery import (
    Forger,
    Read,
    backdated,
    checkpoint_of,
    index_payload,
    leaves,
    must,
    other_index_leaf,
    with_checkpoint,
    witness_signer,
)
from .hostile import HostileUpstream
from .world import MAX_AGE, Mirror, Node, World, cli, fetch, wait_for

pytestmark = pytest.mark.slow


@dataclass
class Stage:
    """The shared setup: the world, the hostile upstream, the attacker, an honest older checkpoint."""

    world: World
    hostile: HostileUpstream
    forger: Forger
    old_checkpoint: bytes  # the origin's first quorum-cosigned checkpoint (smaller than the baseline's)
    first: dict[str, str]  # article id -> bundle id of the first round
    dirty: bool = False


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    base = tmp_path_factory.mktemp("attacks")
    world = World.create(base)
    hostile = HostileUpstream(world.origin.public)
    try:
        world.origin.start()
        world.origin.wait_up()
        hostile.start()
        first = world.origin.publish(3)
        world.m1.upstream, world.m2.upstream = hostile.url, world.origin.url
        world.start_mirrors()
        world.wait_settled(timeout=90)
        old = must(world.origin.read, "tlog/checkpoint")
        world.origin.publish(2)
        world.wait_signed(checkpoint_of(old).size + 1)
        world.wait_settled()
        world.save_baseline()
        world.wait_settled()
        yield Stage(world, hostile, Forger(world.keys, base / "forger"), old, first)
    finally:
        world.stop()
        hostile.stop()


@pytest.fixture
def fresh(stage: Stage) -> Stage:
    """The stage at its baseline: a faithful upstream, both mirrors from their baseline copy, settled."""
    if stage.dirty:
        stage.hostile.reset()
        stage.world.restore_baseline()
        stage.world.wait_settled()
    stage.dirty = True
    stage.hostile.requests.clear()
    stage.hostile.ranged.clear()
    return stage


# -- what a row returns ------------------------------------------------------------------------


@dataclass
class Attack:
    """What the attack did: bad checkpoints it signed, files that must stay served, extra checks."""

    bad: list[bytes] = field(default_factory=list)
    kept: dict[str, dict[str, bytes]] = field(default_factory=dict)  # node name -> path -> bytes
    check: Callable[[], None] | None = None
    cleanup: Callable[[], None] | None = None


def keep(node: Node, *rels: str) -> dict[str, bytes]:
    return {rel: must(node.read, rel) for rel in rels}


def same_served(rel: str, before: bytes, now: bytes | None) -> bool:
    """The same checkpoint (its cosignatures may have been renewed), the same proof of it, the same bytes."""
    if now is None:
        return False
    if rel.endswith(".tlog-proof"):
        a, b = ProofFile.parse(before), ProofFile.parse(now)
        return (a.index, a.proof, Note.parse(a.checkpoint).text) == (b.index, b.proof, Note.parse(b.checkpoint).text)
    if rel.endswith("checkpoint"):
        return Note.parse(before).text == Note.parse(now).text
    return before == now


def index_version(read: Read) -> int:
    return Index.from_payload(index_payload(must(read, "index.json"))).version


def verify_cli(world: World, path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    out = cli("verify", path, "--root-key", world.root_keyid, "--json", *extra, code=None)
    return out.returncode, json.loads(out.stdout or out.stderr)


def monitor(world: World, upstream: str) -> tuple[int, dict[str, object]]:
    out = cli(
        "log",
        "monitor",
        "--root-key",
        world.root_keyid,
        "--upstream",
        upstream,
        "--store",
        world.origin.data,
        "--json",
        code=None,
    )
    return out.returncode, json.loads(out.stdout or out.stderr)


def flip_last_byte(_rel: str, data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def syncs_of(m: Mirror) -> str | None:
    return (m.health().get("last_sync") or {}).get("at")


def next_sync(m: Mirror) -> None:
    seen = syncs_of(m)
    wait_for(f"{m.name} syncs again", lambda: syncs_of(m) != seen, timeout=20)


# -- the attacks ---------------------------------------------------------------------------------


def fork_to_one_mirror(s: Stage) -> Attack:
    """Same size, another root, signed with the stolen log key, shown to mirror-1 only."""
    w, h, m1 = s.world, s.hostile, s.world.m1
    kept = keep(m1, "tlog/checkpoint", m1.view_path(w.log_origin), "index.json")
    real = s.forger.entries(h.get)
    forged = s.forger.log([*real[:-1], other_index_leaf("an index the publisher never signed")])
    assert forged.size == len(real)
    h.show({"tlog/checkpoint": forged.checkpoint})

    def check() -> None:
        assert forged.checkpoint in m1.evidence(w.log_origin)["state"].values()  # theirs, verbatim
        h.reset()  # the upstream behaves again: the alarm stays until the operator clears it
        next_sync(m1)
        next_sync(m1)
        assert m1.log()["state"] == "fork"
        cleared = json.loads(cli("mirror", "witness-clear", "--data", m1.data, "--json").stdout)
        assert cleared["cleared"] == "fork"
        wait_for("mirror-1 cosigns again after witness-clear", lambda: m1.log().get("state") == "ok")
        assert len(m1.evidence(w.log_origin)["state"]) == 2  # the evidence stays

    return Attack(bad=[forged.checkpoint], kept={m1.name: kept}, check=check)


def rollback(s: Stage) -> Attack:
    """The origin's older checkpoint (honestly signed and cosigned) served again."""
    w, h, m1 = s.world, s.hostile, s.world.m1
    kept = keep(m1, "tlog/checkpoint", m1.view_path(w.log_origin), "index.json")
    h.show({"tlog/checkpoint": s.old_checkpoint})

    def check() -> None:
        assert s.old_checkpoint in m1.evidence(w.log_origin)["state"].values()
        h.reset()  # not sticky: the next good round is ok again
        wait_for("mirror-1 is ok once the upstream serves the current checkpoint", lambda: m1.log()["state"] == "ok")

    return Attack(kept={m1.name: kept}, check=check)


def tampered_hash_tile(s: Stage) -> Attack:
    """Every hash tile flipped: a mirror never fetches hash tiles, it builds (and serves) its own."""
    w, h, m1 = s.world, s.hostile, s.world.m1
    h.tamper("tlog/tile/0/", flip_last_byte)
    size = w.origin.signed_size()
    w.origin.publish(1)
    w.wait_signed(size + 2)
    w.wait_settled()  # mirror-1 extended through the hostile upstream and cosigned

    def check() -> None:
        assert not [r for r in h.requests if r.startswith("tlog/tile/0/")]
        served = sorted(
            p.relative_to(m1.public).as_posix() for p in (m1.public / "tlog/tile/0").rglob("*") if p.is_file()
        )
        assert served
        for rel in served:
            assert m1.read(rel) == w.origin.read(rel) != h.get(rel), rel

    return Attack(check=check)


def tampered_entry(s: Stage) -> Attack:
    """The new entries changed in transit: the rebuilt root is not the signed one."""
    w, h, m1, m2 = s.world, s.hostile, s.world.m1, s.world.m2
    kept = keep(m1, "tlog/checkpoint", m1.view_path(w.log_origin))
    size = w.origin.signed_size()
    h.tamper("tlog/tile/entries/", flip_last_byte)
    new = w.origin.publish(1)
    w.wait_signed(size + 2)

    def check() -> None:
        assert m1.log()["size"] == size  # the accepted view did not move
        wait_for("mirror-2 cosigns the real checkpoint", lambda: m2.log().get("size") == w.origin.signed_size())
        bid = next(iter(new.values()))
        time.sleep(2)  # a few gathering passes: the quorum cannot be met without mirror-1
        assert not w.origin.log()["quorum_met"] and w.origin.read(f"bundles/{bid}.tlog-proof") is None

    return Attack(kept={m1.name: kept}, check=check)


def lying_byte_range(s: Stage) -> Attack:
    """The new entries asked for as a byte range; the answer is labelled right but starts one entry early."""
    w, h, m1 = s.world, s.hostile, s.world.m1
    kept = keep(m1, "tlog/checkpoint", m1.view_path(w.log_origin))
    size = w.origin.signed_size()
    h.lie_about_ranges(2 + 34)  # one entry (uint16 length + 34-byte leaf)
    w.origin.publish(1)
    w.wait_signed(size + 2)

    def check() -> None:
        assert m1.log()["size"] == size
        assert any(r.startswith("tlog/tile/entries/") for r in h.ranged)

    return Attack(kept={m1.name: kept}, check=check)


def hidden_retraction(s: Stage) -> Attack:
    """A logged retraction, then an index (stolen index key) that lists the bundle as live, logged
    last by a checkpoint signed with the stolen log key."""
    w, h, f, m1 = s.world, s.hostile, s.forger, s.world.m1
    article, bid = next(iter(s.first.items()))
    zip_bytes = must(w.origin.read, f"bundles/{bid}.zip")
    w.origin.retract(article)
    wait_for("the retraction is logged", lambda: w.origin.read(f"bundles/{bid}.zip") is None)
    w.wait_settled()
    kept = keep(m1, m1.view_path(w.log_origin))
    files, payload = f.index(h.get, version=index_version(h.get) + 1, unretract=[bid])
    forged = f.log([*f.entries(h.get), index_leaf(payload).to_bytes()])
    h.show({**files, **forged.files, f"bundles/{bid}.zip": zip_bytes})

    def check() -> None:
        assert m1.read("index.json") == files["index.json"]  # validly signed: served, and flagged
        proof = m1.read("tlog/index.tlog-proof")
        with pytest.raises(LogProofError):  # readers get no witnessed proof of the forged index
            check_index_proof(payload, proof, KeyDir(w.keys).chain().newest, now=int(time.time()))

    return Attack(bad=[forged.checkpoint], kept={m1.name: kept}, check=check)


def stale_cosignatures(s: Stage) -> Attack:
    """An upstream frozen on a checkpoint whose cosignatures are older than max_age."""
    w, h, m1 = s.world, s.hostile, s.world.m1
    h.freeze()
    old = int(time.time()) - MAX_AGE - 3600
    signers = [witness_signer(m.data) for m in w.mirrors.values()]
    note = backdated(must(h.get, "tlog/checkpoint"), signers, [old, old + 60])
    proof = with_checkpoint(must(h.get, "tlog/index.tlog-proof"), note)
    h.show({"tlog/checkpoint": note, "tlog/index.tlog-proof": proof})
    rels = ("tlog/checkpoint", m1.view_path(w.log_origin), "index.json", "tlog/index.tlog-proof")
    kept = keep(m1, *rels)

    def check() -> None:
        root = KeyDir(w.keys).chain().newest
        payload = index_payload(must(h.get, "index.json"))
        now = int(time.time())
        with pytest.raises(LogProofError) as err:
            check_index_proof(payload, proof, root, now=now)
        assert err.value.code == "stale"
        check_index_proof(payload, must(m1.read, "tlog/index.tlog-proof"), root, now=now)  # its own is fresh

    return Attack(kept={m1.name: kept}, check=check)


def restored_from_backup(s: Stage) -> Attack:
    """The origin's data copied, later rounds cosigned, then the old copy started again."""
    w, o = s.world, s.world.origin
    backup, current = w.base / "origin-backup", w.base / "origin-current"
    shutil.copytree(o.data, backup, symlinks=True)  # settled and idle: a consistent copy
    size = o.signed_size()
    o.publish(1)
    w.wait_signed(size + 2)
    w.wait_settled()  # both witnesses cosigned the round the backup lacks
    kept = {m.name: keep(m, "tlog/checkpoint", m.view_path(w.log_origin), "index.json") for m in w.mirrors.values()}
    o.stop()
    o.data.rename(current)
    shutil.copytree(backup, o.data, symlinks=True)
    o.start()
    o.wait_up()
    kept[o.name] = keep(o, "tlog/checkpoint")
    assert checkpoint_of(kept[o.name]["tlog/checkpoint"]).size == size

    def check() -> None:
        o.publish(1)  # a round on the restored origin appends leaves, and signs nothing
        wait_for("the restored origin's round appends", lambda: o.log()["size"] > size)
        report = o.log()
        assert report["signed_size"] == size and report["state"] == "restored-from-backup"
        wait_for("both mirrors refuse the restored origin's older index", mirrors_refuse)

    def mirrors_refuse() -> bool:
        return all(m.health()["last_sync"]["ok"] is False for m in w.mirrors.values())

    def cleanup() -> None:
        o.stop()
        shutil.rmtree(o.data)
        current.rename(o.data)
        shutil.rmtree(backup)
        o.start()
        o.wait_up()

    return Attack(kept=kept, check=check, cleanup=cleanup)


def unlogged_bundle(*, log_index: bool) -> Callable[[Stage], Attack]:
    """A bundle signed with the stolen bundle key, listed by an index signed with the stolen index key,
    never logged; with ``log_index`` the forged index is logged (stolen log key) but the bundle is not."""

    def attack(s: Stage) -> Attack:
        w, h, f, m1 = s.world, s.hostile, s.forger, s.world.m1
        entry, zip_bytes = f.bundle("forged-unlogged", "Forged story")
        files, payload = f.index(h.get, version=index_version(h.get) + 1, add=[entry])
        show = {**files, f"bundles/{entry.id}.zip": zip_bytes}
        rels = [m1.view_path(w.log_origin)]
        bad = []
        if log_index:
            forged = f.log([*f.entries(h.get), index_leaf(payload).to_bytes()])
            show.update(forged.files)
            bad.append(forged.checkpoint)
        else:
            rels.append("tlog/checkpoint")
        kept = keep(m1, *rels)
        h.show(show)

        def check() -> None:
            saved = w.base / "reader" / f"{entry.id}.zip"
            saved.parent.mkdir(exist_ok=True)
            saved.write_bytes(fetch(f"{m1.url}bundles/{entry.id}.zip"))  # mirror-1 serves it: it verifies
            assert m1.read(f"bundles/{entry.id}.tlog-proof") is None
            code, doc = verify_cli(w, saved)
            assert code == 0 and doc["log"]["status"] == "no-proof"  # type: ignore[index]
            code, doc = verify_cli(w, saved, "--require-log")
            assert code == 1 and doc["error"]["code"] == "no-proof", doc  # type: ignore[index]
            saved.unlink()

        return Attack(bad=bad, kept={m1.name: kept}, check=check)

    return attack


def split_view(s: Stage) -> Attack:
    """A forged bundle logged (stolen log key) in a view shown to mirror-1 only; mirror-2 follows the origin."""
    w, h, f, m1, m2 = s.world, s.hostile, s.forger, s.world.m1, s.world.m2
    h.freeze()  # mirror-1 stays on the tree as it is now
    size = w.origin.signed_size()
    w.origin.publish(2)  # the real log grows past the forged view's size
    w.wait_signed(size + 3)
    wait_for("mirror-2 cosigns the real round", lambda: m2.log().get("size") == w.origin.signed_size())
    real = must(m2.read, m2.view_path(w.log_origin))
    served = must(m1.read, "tlog/checkpoint")
    kept = {
        m1.name: keep(m1, m1.view_path(w.log_origin)),
        m2.name: keep(m2, "tlog/checkpoint", m2.view_path(w.log_origin), "index.json"),
    }
    entry, zip_bytes = f.bundle("forged-split", "Split story")
    files, payload = f.index(h.get, version=index_version(h.get) + 1, add=[entry])
    forged = f.log(f.entries(h.get) + leaves(bundle_leaf(entry.id), index_leaf(payload)))
    assert size < forged.size < w.origin.signed_size()
    h.show({**files, **forged.files, f"bundles/{entry.id}.zip": zip_bytes})

    def check() -> None:
        # mirror-1 extends to what it was shown, then proves mirror-2's larger view from mirror-2's hash tiles:
        # under mirror-2's signed root the tree at the forged size has another root. Both notes are kept, and
        # the forged view is never cosigned (its witness view and checkpoint stay as they were).
        report = m1.log()
        peer = {"source": "witness mirror-2", "size": checkpoint_of(real).size, "status": "fork"}
        assert peer in report["sources"], report
        ev = m1.evidence(w.log_origin)["state"]
        assert forged.checkpoint in ev.values(), list(ev)  # ours as accepted: the forged note, verbatim
        assert Note.parse(real).text in {Note.parse(n).text for n in ev.values()}  # mirror-2's view
        assert same_served("tlog/checkpoint", served, m1.read("tlog/checkpoint"))
        # Nobody else saw a split: mirror-1 published nothing forged, so mirror-2 and the origin stay calm.
        next_sync(m2)
        assert m2.log()["state"] == "ok" and w.origin.log()["state"] != "fork-seen"
        origin_evidence = w.origin.data / "state" / "tlog-evidence"
        assert not origin_evidence.is_dir() or not list(origin_evidence.iterdir())
        # The publisher's monitor run against the hostile upstream lists the forged bundle; the origin is clean.
        code, doc = monitor(w, h.url)
        assert code == 3, doc
        alarms = doc["alarms"]
        assert isinstance(alarms, list) and ("unknown-bundle", entry.id) in [(a["kind"], a["id"]) for a in alarms]
        code, doc = monitor(w, w.origin.url)
        assert code == 0, doc

    return Attack(bad=[forged.checkpoint], kept=kept, check=check)


# -- the table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    attack: Callable[[Stage], Attack]
    noticed_by: str  # the node whose /healthz log state shows it
    state: str
    evidence: tuple[str, ...] = ()  # codes of the evidence files the noticing mirror keeps
    bad_cosigners: int = 0  # witnesses that may cosign a bad tree (always below the quorum of 2)


ROWS = [
    Row("fork-shown-to-one-mirror", fork_to_one_mirror, "mirror-1", "fork", ("fork", "fork")),
    Row("rollback", rollback, "mirror-1", "rollback", ("rollback", "rollback")),
    Row("tampered-hash-tile", tampered_hash_tile, "mirror-1", "ok"),
    Row("tampered-entry", tampered_entry, "mirror-1", "bad-tile"),
    Row("lying-byte-range", lying_byte_range, "mirror-1", "bad-tile"),
    Row("index-hides-retraction", hidden_retraction, "mirror-1", "hidden-retraction"),
    Row("stale-cosignatures", stale_cosignatures, "mirror-1", "stale"),
    Row("origin-restored-from-backup", restored_from_backup, "origin", "restored-from-backup"),
    Row("unlogged-bundle-and-index", unlogged_bundle(log_index=False), "mirror-1", "index-unlogged"),
    Row("unlogged-bundle", unlogged_bundle(log_index=True), "mirror-1", "unlogged-bundle"),
    Row("split-view", split_view, "mirror-1", "fork", ("fork", "fork")),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_attack(fresh: Stage, row: Row) -> None:
    w = fresh.world
    nodes = {n.name: n for n in w.nodes()}
    attack = row.attack(fresh)
    try:
        noticing = nodes[row.noticed_by]
        wait_for(f"{row.noticed_by} reports log state {row.state}", lambda: noticing.log().get("state") == row.state)
        if attack.check is not None:
            attack.check()

        # Evidence: exactly the row's, the same files kept and published; none elsewhere.
        for m in w.mirrors.values():
            ev = m.evidence(w.log_origin)
            want = row.evidence if m.name == row.noticed_by else ()
            assert sorted(name.rsplit("-", 2)[0] for name in ev["state"]) == sorted(want), (m.name, list(ev["state"]))
            assert ev["public"] == ev["state"]
            ours = attack.kept.get(m.name, {}).get("tlog/checkpoint")
            if want and ours is not None:  # both notes: ours as accepted, and theirs
                assert Note.parse(ours).text in {Note.parse(n).text for n in ev["state"].values()}

        # The good state is still served, and every served bundle verifies.
        for name, files in attack.kept.items():
            for rel, before in files.items():
                now = nodes[name].read(rel)
                assert same_served(rel, before, now), f"{name} no longer serves its {rel}"
                if rel == "tlog/checkpoint":  # still cosigned by (at least) the same witnesses
                    assert now is not None and set(w.cosigners(before)) <= set(w.cosigners(now)), (name, rel)
        for node in w.nodes():
            assert node.read("index.json") is not None
            w.verified_bundles(node)

        # No quorum ever cosigned a bad tree, wherever a checkpoint is served.
        bad = {Note.parse(n).text for n in attack.bad}
        policy = w.trust().policy
        for where, note in w.served_notes():
            if Note.parse(note).text in bad:
                names = w.cosigners(note)
                assert len(names) <= row.bad_cosigners and not policy.satisfied(names), (where, names)
    finally:
        if attack.cleanup is not None:
            attack.cleanup()
