"""``tamizdat fetch`` and the bundle's log proof: checked, saved beside the file, or left out with a reason."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from reader_sample import Site
from tlog.logkit import LogKit

from tamizdat.bundles.cli import verify_cmd
from tamizdat.server.datadir import DataDir
from tamizdat.server.reader import links
from tamizdat.server.reader.cli import register

NOW = int(time.time())


def fetch(args: list[str]) -> Any:
    @click.group()
    def group() -> None:
        pass

    register(group)
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(CliRunner().invoke(group, ["fetch", *args])))
    worker.start()
    worker.join(timeout=300)
    assert out, "fetch did not finish"
    return out[0]


@pytest.fixture
def proofs(site: Site) -> Iterator[tuple[LogKit, Path]]:
    """The publisher's log with the sample's bundles; proofs go on server B only (removed afterwards)."""
    kd = site.sample.keydir
    tlog = kd.chain().newest.tlog
    assert tlog is not None and tlog.policy == "quorum none\n"
    kit = LogKit(now=NOW, origin=tlog.origin, log_key=kd.signer("log"))
    kit.add_round(sorted(site.ids.values()))
    folder = DataDir(site.b_data).public / "bundles"
    yield kit, folder
    for p in folder.glob("*.tlog-proof"):
        p.unlink()


def test_fetch_saves_a_good_proof(site: Site, proofs: tuple[LogKit, Path], tmp_path: Path) -> None:
    kit, folder = proofs
    bid = site.ids["en"]
    (folder / f"{bid}.tlog-proof").write_bytes(kit.proof(kit.index_of(bid), note=kit.note(cosigners=())))
    out = tmp_path / "out"
    res = fetch([str(links.build_link(site.b.url, bid, site.keyid, [])), "-o", str(out), "--yes", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["log"]["status"] == "logged" and doc["log"]["index"] == kit.index_of(bid)
    assert sorted(p.name for p in out.iterdir()) == [f"{bid}.tlog-proof", f"{bid}.zip"]
    assert (out / f"{bid}.tlog-proof").read_bytes() == (folder / f"{bid}.tlog-proof").read_bytes()
    assert f"The file is in the publisher’s log as entry {kit.index_of(bid)} of {kit.tree.size}." in res.stderr
    check = CliRunner().invoke(verify_cmd, [str(out / f"{bid}.zip"), "--root-key", site.keyid, "--require-log"])
    assert check.exit_code == 0 and "logged as #" in check.stdout


def test_fetch_without_a_proof_on_the_mirror(site: Site, proofs: tuple[LogKit, Path], tmp_path: Path) -> None:
    bid = site.ids["en"]
    out = tmp_path / "out"
    res = fetch([str(links.build_link(site.a.url, bid, site.keyid, [])), "-o", str(out), "--yes", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["log"] == {"status": "no-proof"}
    assert [p.name for p in out.iterdir()] == [f"{bid}.zip"]
    assert "no proof that the file is in the publisher’s log. That is not an error." in res.stderr


@pytest.mark.parametrize("damage", ["tampered", "other-bundle", "garbage"])
def test_fetch_discards_a_bad_proof(site: Site, proofs: tuple[LogKit, Path], tmp_path: Path, damage: str) -> None:
    kit, folder = proofs
    bid, other = site.ids["ru"], site.ids["en"]
    good = kit.proof(kit.index_of(bid), note=kit.note(cosigners=()))
    data = {
        "tampered": good.replace(b"index ", b"index 1", 1),
        "other-bundle": kit.proof(kit.index_of(other), note=kit.note(cosigners=())),
        "garbage": b"\x00" * 100,
    }[damage]
    (folder / f"{bid}.tlog-proof").write_bytes(data)
    out = tmp_path / "out"
    res = fetch(
        [str(links.build_link(site.b.url, bid, site.keyid, [])), "-o", str(out), "--yes", "--json", "--lang", "ru"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["log"]["status"] == "bad-proof"
    assert [p.name for p in out.iterdir()] == [f"{bid}.zip"]
    assert "Внимание: доказательство этого зеркала" in res.stderr and "(bad-proof)" in res.stderr


def test_declined_fetch_saves_no_proof(site: Site, proofs: tuple[LogKit, Path], tmp_path: Path) -> None:
    kit, folder = proofs
    bid = site.ids["en"]
    (folder / f"{bid}.tlog-proof").write_bytes(kit.proof(kit.index_of(bid), note=kit.note(cosigners=())))
    out = tmp_path / "out"
    res = fetch([str(links.build_link(site.b.url, bid, site.keyid, [])), "-o", str(out)])
    assert res.exit_code == 1  # no terminal to ask: nothing saved, neither file
    assert list(out.iterdir()) == []
