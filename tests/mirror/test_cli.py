"""`tamizdat mirror sync|import|export` from the command line: settings, JSON summary, exit codes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from tamizdat.cli import main

from .conftest import check_served
from .simulator import Simulator


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_first_run_records_settings_then_reuses_them(sim: Simulator, tmp_path: Path) -> None:
    data = tmp_path / "m"
    with sim.serve() as url:
        code, out = run("mirror", "sync", "--once", "--data", str(data), "--upstream", url, "--json")
        assert code == 2 and "--root-key" in out  # usage: the first run needs the root key id

        code, out = run(
            "mirror", "sync", "--once", "--data", str(data), "--root-key", sim.root_keyid, "--upstream", url, "--json"
        )
        assert code == 0, out
        doc = json.loads(out)
        assert doc["ok"] and doc["new"] == 3 and doc["code"] == "ok"
        for name in ("new", "retracted", "rejected", "bytes", "seconds", "requests", "errors"):
            assert name in doc
        settings = tomllib.loads((data / "settings.toml").read_text())
        assert settings["root_keyid"] == sim.root_keyid
        assert settings["upstreams"] == [url]
        assert settings["role"] == "mirror"

        sim.add(1)
        sim.publish()
        code, out = run("mirror", "sync", "--once", "--data", str(data))
        assert code == 0, out
        assert "sync ok" in out and "new 1" in out

        code, out = run("mirror", "sync", "--once", "--data", str(data), "--root-key", "ab" * 32)
        assert code == 2  # another publisher's key on this data directory

    # The upstream is gone now: the sync fails (exit 1) with a stable code; the old state stays.
    code, out = run("mirror", "sync", "--once", "--data", str(data), "--json")
    assert code == 1
    doc = json.loads(out)
    assert not doc["ok"] and doc["code"] == "unreachable" and doc["index_version"] == 2
    check_served(data / "public", sim.root_keyid)


def test_export_then_import(sim: Simulator, tmp_path: Path) -> None:
    a, b, stick = tmp_path / "a", tmp_path / "b", tmp_path / "stick"
    with sim.serve() as url:
        code, out = run("mirror", "sync", "--once", "--data", str(a), "--root-key", sim.root_keyid, "--upstream", url)
        assert code == 0, out
    code, out = run("mirror", "export", str(stick), "--data", str(a), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["bundles"] == 3 and doc["linked"] + doc["copied"] >= 3
    assert (stick / "index.json").read_bytes() == (a / "public" / "index.json").read_bytes()

    code, out = run("mirror", "import", str(stick), "--data", str(b), "--root-key", sim.root_keyid, "--json")
    assert code == 0, out
    assert json.loads(out)["new"] == 3
    check_served(b / "public", sim.root_keyid)

    # A tampered stick is refused, and what b serves stays as it was.
    bundle = next((stick / "bundles").glob("*.zip"))
    bundle.unlink()
    bundle.write_bytes(b"PK" + b"\0" * 100)
    sim_other = (stick / "index.json").read_bytes()
    code, out = run("mirror", "import", str(stick), "--data", str(tmp_path / "c"), "--root-key", sim.root_keyid)
    assert code == 1 and "bundle-mismatch" in out
    assert (b / "public" / "index.json").read_bytes() == sim_other

    # Export again after a retraction upstream: the retracted file leaves the stick.
    gone = sim.listed_ids()[0]
    sim.retract(gone)
    sim.publish()
    with sim.serve() as url:
        code, out = run("mirror", "sync", "--once", "--data", str(a), "--upstream", url)
        assert code == 0, out
    code, out = run("mirror", "export", str(stick), "--data", str(a), "--json")
    assert code == 0, out
    assert not (stick / "bundles" / f"{gone}.zip").exists()
    assert json.loads(out)["removed"] >= 1


def test_export_of_empty_mirror_fails(tmp_path: Path, sim: Simulator) -> None:
    code, _ = run("mirror", "export", str(tmp_path / "x"), "--data", str(tmp_path / "m"))
    assert code == 2  # no root key recorded yet: a usage error
