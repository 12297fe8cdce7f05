"""``tamizdat log monitor``: unknown bundle and retraction leaves, forks and rollbacks, state, HTTP and directories."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tlog.logkit import Publisher, make_publisher

from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.leaf import Leaf, bundle_leaf, index_leaf, retraction_leaf
from tamizdat.bundles.tlog.note import Ed25519Signer
from tamizdat.cli import main
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.mirror.monitor import MonitorState, entry_tiles
from tamizdat.server.store import Store

NOW = int(time.time())
TAMIZDAT = [sys.executable, "-c", "from tamizdat.cli import main; main()"]


def forged(i: int) -> str:
    return hashlib.sha256(b"forged %d" % i).hexdigest()


class LogSite:
    """The publisher's static tree in a folder: roots, then the log's tiles and checkpoint."""

    def __init__(self, public: Path, pub: Publisher) -> None:
        self.public, self.pub = public, pub
        self.builder = TreeBuilder()
        self.leaves: list[Leaf] = []
        (public / "roots").mkdir(parents=True)
        docs = pub.keydir.root_documents()
        for version, doc in enumerate(docs, 1):
            (public / "roots" / f"{version}.json").write_bytes(doc)
        (public / "root.json").write_bytes(docs[-1])

    def publish(self, leaves: Sequence[Leaf], *, signer: Ed25519Signer | None = None) -> bytes:
        """Append a round, write its tiles, sign and write the checkpoint; returns the note."""
        self.leaves.extend(leaves)
        self.builder.extend([leaf.to_bytes() for leaf in leaves])
        batch = self.builder.flush()
        for rel, data in batch.files():
            path = self.public / "tlog" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.sign(batch.size, signer=signer)

    def sign(self, size: int, *, signer: Ed25519Signer | None = None, root: bytes | None = None) -> bytes:
        builder = self.builder
        cp = Checkpoint(self.pub.kit.origin, size, root or (builder.root() if size == builder.size else b""))
        note = sign_checkpoint(cp, [signer or Ed25519Signer(self.pub.kit.origin, self.pub.kit.log_key)])
        (self.public / "tlog" / "checkpoint").write_bytes(note)
        return note

    def round(self, bundle_ids: Sequence[str], retracted: Sequence[str] = ()) -> bytes:
        leaves = [bundle_leaf(b) for b in bundle_ids] + [retraction_leaf(r) for r in retracted]
        leaves.append(index_leaf(b"index %d" % (len(self.leaves) + len(leaves))))
        return self.publish(leaves)


@pytest.fixture(scope="module")
def pub(tmp_path_factory: pytest.TempPathFactory) -> Publisher:
    return make_publisher(tmp_path_factory.mktemp("monitor-pub"), now=NOW, count=4, label="monitor test")


@pytest.fixture
def site(tmp_path: Path, pub: Publisher) -> LogSite:
    s = LogSite(tmp_path / "public", pub)
    s.round(pub.ids[:2])
    return s


@pytest.fixture
def ids_file(tmp_path: Path, pub: Publisher) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("# the publisher's bundles\n" + "\n".join(pub.ids) + "\n\n")
    return path


def monitor(site: LogSite | str, *args: str | Path) -> Result:
    upstream = site if isinstance(site, str) else str(site.public)
    root = site.pub.root_keyid if isinstance(site, LogSite) else args[0]
    rest = args if isinstance(site, LogSite) else args[1:]
    return CliRunner().invoke(
        main, ["log", "monitor", "--root-key", str(root), "--upstream", upstream, *map(str, rest), "--json"]
    )


def report(result: Result, exit_code: int) -> dict[str, Any]:
    assert result.exit_code == exit_code, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is (exit_code == 0)
    return dict(doc)


def test_clean_log(site: LogSite, ids_file: Path) -> None:
    doc = report(monitor(site, "--ids", ids_file), 0)
    assert doc["size"] == 3 and doc["counts"] == {"bundle": 2, "retraction": 0, "index": 1} and doc["alarms"] == []
    text = CliRunner().invoke(
        main, ["log", "monitor", "--root-key", site.pub.root_keyid, "--upstream", str(site.public), "--ids", ids_file]
    )
    assert text.exit_code == 0 and "ok: every logged bundle and retraction is one the publisher made" in text.stdout


def test_unknown_bundle_and_retraction_are_alarms(site: LogSite, ids_file: Path, pub: Publisher) -> None:
    site.round([pub.ids[2], forged(1)], retracted=[forged(2), pub.ids[0]])
    doc = report(monitor(site, "--ids", ids_file), 3)
    assert [(a["kind"], a["index"], a["id"]) for a in doc["alarms"]] == [
        ("unknown-bundle", 4, forged(1)),
        ("unknown-retraction", 5, forged(2)),
    ]
    res = CliRunner().invoke(
        main, ["log", "monitor", "--root-key", pub.root_keyid, "--upstream", str(site.public), "--ids", ids_file]
    )
    assert res.exit_code == 3
    assert "ALARM: 2 problem(s)" in res.stdout and f"unknown-bundle #4 {forged(1)}" in res.stdout


def test_state_reads_only_new_leaves_and_reports_once(
    site: LogSite, ids_file: Path, pub: Publisher, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    assert report(monitor(site, "--ids", ids_file, "--state", state), 0)["old_size"] == 0
    site.round([forged(3)])
    doc = report(monitor(site, "--ids", ids_file, "--state", state), 3)
    assert (doc["old_size"], doc["size"], doc["leaves_read"]) == (3, 5, 2)
    assert [a["id"] for a in doc["alarms"]] == [forged(3)]
    # The state moved past the unknown leaf: the next round is read alone, and is clean.
    site.round([pub.ids[2]])
    doc = report(monitor(site, "--ids", ids_file, "--state", state), 0)
    assert (doc["old_size"], doc["size"]) == (5, 7)
    saved = MonitorState.from_bytes(state.read_bytes())
    assert saved.size == 7 and saved.root == site.builder.root()


def test_catch_up_across_tiles_reads_only_the_needed_bundles(
    site: LogSite, ids_file: Path, pub: Publisher, tmp_path: Path
) -> None:
    state = tmp_path / "monitor.json"
    for _ in range(130):  # 3 + 130 * 2 = 263 leaves: one full entry bundle and a partial one
        site.round([pub.ids[3]])
    report(monitor(site, "--ids", ids_file, "--state", state), 0)
    for _ in range(200):
        site.round([pub.ids[1]])
    doc = report(monitor(site, "--ids", ids_file, "--state", state), 0)
    assert (doc["old_size"], doc["size"], doc["counts"]["bundle"]) == (263, 663, 200)
    assert [t.index for t in entry_tiles(263, 663)] == [1, 2]


def test_rollback_and_fork_keep_the_old_state(site: LogSite, ids_file: Path, pub: Publisher, tmp_path: Path) -> None:
    state = tmp_path / "monitor.json"
    site.round([pub.ids[2]])
    report(monitor(site, "--ids", ids_file, "--state", state), 0)
    before = state.read_bytes()
    old_note = (site.public / "tlog" / "checkpoint").read_bytes()
    site.sign(3, root=_root_of(site, 3))
    doc = report(monitor(site, "--ids", ids_file, "--state", state), 3)
    assert [a["kind"] for a in doc["alarms"]] == ["rollback"] and doc["evidence"]["old"] == old_note.decode()
    assert state.read_bytes() == before
    site.sign(5, root=hashlib.sha256(b"another tree").digest())
    doc = report(monitor(site, "--ids", ids_file, "--state", state), 3)
    assert [a["kind"] for a in doc["alarms"]] == ["fork"] and state.read_bytes() == before
    # A larger tree whose history differs: new leaves do not lead from the saved tree to the signed root.
    other = LogSite(tmp_path / "other", pub)
    other.round([pub.ids[0], pub.ids[2]])
    other.round([pub.ids[1]])
    other.round([pub.ids[3]])
    doc = report(monitor(other, "--ids", ids_file, "--state", state), 3)
    assert [a["kind"] for a in doc["alarms"]] == ["inconsistent"] and state.read_bytes() == before
    # Once the upstream serves the log we know again, the monitor goes on from the saved state.
    site.sign(5)
    assert report(monitor(site, "--ids", ids_file, "--state", state), 0)["old_size"] == 5


def _root_of(site: LogSite, size: int) -> bytes:
    b = TreeBuilder()
    b.extend([leaf.to_bytes() for leaf in site.leaves[:size]])
    return b.root()


def test_tampered_entries_are_an_alarm(site: LogSite, ids_file: Path) -> None:
    bundle = site.public / "tlog" / "tile" / "entries" / "000.p" / "3"
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))
    doc = report(monitor(site, "--ids", ids_file), 3)
    assert [a["kind"] for a in doc["alarms"]] == ["inconsistent"]


def test_vanished_partial_falls_back_to_the_full_bundle(site: LogSite, ids_file: Path, pub: Publisher) -> None:
    for _ in range(150):
        site.round([pub.ids[1]])
    site.sign(200, root=_root_of(site, 200))  # a stale view: size 200, whose partial 000.p/200 is gone
    shutil.rmtree(site.public / "tlog" / "tile" / "entries" / "000.p")
    assert report(monitor(site, "--ids", ids_file), 0)["size"] == 200


@pytest.mark.parametrize(
    "damage,code",
    [
        ("foreign-log-key", "unverified-note"),
        ("garbage-checkpoint", "bad-note"),
        ("no-checkpoint", "not-found"),
        ("malformed-entries", "bad-entry-bundle"),
    ],
)
def test_bad_upstream_data_fails_in_one_line(site: LogSite, ids_file: Path, damage: str, code: str) -> None:
    cp = site.public / "tlog" / "checkpoint"
    if damage == "foreign-log-key":
        site.sign(3, signer=Ed25519Signer(site.pub.kit.origin, SigningKey.from_seed(b"\x42" * 32)))
    elif damage == "garbage-checkpoint":
        cp.write_bytes(b"not a note")
    elif damage == "no-checkpoint":
        cp.unlink()
    else:
        (site.public / "tlog" / "tile" / "entries" / "000.p" / "3").write_bytes(b"\x00\x22short")
    res = monitor(site, "--ids", ids_file)
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["error"]["code"] == code
    assert len(res.stderr.splitlines()) == 1


def test_bad_options(site: LogSite, ids_file: Path, tmp_path: Path) -> None:
    assert monitor(site).exit_code == 2  # neither --store nor --ids
    assert monitor(site, "--ids", ids_file, "--store", tmp_path).exit_code == 2
    bad_ids = tmp_path / "bad.txt"
    bad_ids.write_text("not-an-id\n")
    res = monitor(site, "--ids", bad_ids)
    assert res.exit_code == 1 and json.loads(res.stdout)["error"]["code"] == "bad-ids"
    damaged = tmp_path / "state.json"
    damaged.write_text("{}")
    res = monitor(site, "--ids", ids_file, "--state", damaged)
    assert res.exit_code == 1 and json.loads(res.stdout)["error"]["code"] == "bad-state"
    assert damaged.read_text() == "{}"  # never overwritten
    assert monitor(site, "--ids", ids_file, "--store", tmp_path).exit_code == 2
    res = monitor(site, "--store", tmp_path)
    assert res.exit_code == 1 and json.loads(res.stdout)["error"]["code"] == "no-store"


def test_publisher_without_log(tmp_path: Path, ids_file: Path) -> None:
    p = make_publisher(tmp_path / "nolog", now=NOW, log=False, count=1, label="monitor no log")
    s = LogSite(tmp_path / "nolog-public", p)
    res = monitor(s, "--ids", ids_file)
    assert res.exit_code == 1 and json.loads(res.stdout)["error"]["code"] == "no-log"


def test_ids_from_the_origin_store(site: LogSite, pub: Publisher, tmp_path: Path) -> None:
    import asyncio

    data = tmp_path / "origin"
    (data / "state").mkdir(parents=True)

    async def create() -> Path:
        store = await Store.in_state_dir(data / "state").open()
        await store.close()
        return store.path

    db_path = asyncio.run(create())
    db = sqlite3.connect(db_path)
    for bid in pub.ids[:3]:
        db.execute(
            "INSERT INTO bundles (id, kind, created, sha256, size, articles, supersedes, signer, file) "
            "VALUES (?, 'article', '2026-01-01T00:00:00Z', ?, 1, '[]', '[]', ?, 'public')",
            (bid, "0" * 64, "0" * 64),
        )
    db.commit()
    db.close()
    site.round([pub.ids[2], pub.ids[3]])
    doc = report(monitor(site, "--store", data), 3)
    assert [(a["kind"], a["id"]) for a in doc["alarms"]] == [("unknown-bundle", pub.ids[3])]


# -- over a real loopback HTTP server, and as a real process ---------------------------------------


@pytest.fixture
def http_site(site: LogSite) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site.public)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "root.json", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_over_http(site: LogSite, http_site: str, ids_file: Path, pub: Publisher, tmp_path: Path) -> None:
    state = tmp_path / "monitor.json"
    doc = report(monitor(http_site, pub.root_keyid, "--ids", ids_file, "--state", state), 0)
    assert doc["upstream"] == http_site and doc["size"] == 3
    for _ in range(140):
        site.round([pub.ids[0]])
    site.round([forged(9)])
    args = ["log", "monitor", "--root-key", pub.root_keyid, "--upstream", http_site, "--ids", str(ids_file)]
    proc = subprocess.run([*TAMIZDAT, *args, "--state", str(state), "--json"], capture_output=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["old_size"] == 3 and doc["size"] == 285
    assert [(a["kind"], a["index"]) for a in doc["alarms"]] == [("unknown-bundle", 283)]
