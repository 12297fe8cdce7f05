"""`tamizdat mirror witness-key` and `witness-clear` as an operator runs them (real processes)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tamizdat.bundles.tlog.cosignature import CosignatureVerifier
from tamizdat.server.datadir import DataDir

from .conftest import TAMIZDAT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TAMIZDAT, "mirror", *args], capture_output=True, text=True, timeout=60)


def test_witness_key_is_created_once_and_printed(tmp_path: Path) -> None:
    data = tmp_path / "m"
    first = run("witness-key", "--data", str(data))
    assert first.returncode == 0, first.stderr
    vkey = first.stdout.strip()
    verifier = CosignatureVerifier.from_vkey(vkey)  # a valid type 0x04 vkey
    assert verifier.name.startswith("mirror-")
    assert (data / "state" / "witness.key").stat().st_mode & 0o777 == 0o600
    again = run("witness-key", "--data", str(data), "--json")
    doc = json.loads(again.stdout)
    assert doc == {"ok": True, "name": verifier.name, "vkey": vkey, "created": False}
    assert DataDir(data).settings()["role"] == "mirror"


def test_witness_key_name(tmp_path: Path) -> None:
    data = tmp_path / "m"
    out = run("witness-key", "--data", str(data), "--name", "witness.example.org", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["vkey"].startswith("witness.example.org+")
    renamed = run("witness-key", "--data", str(data), "--name", "other.example.org")
    assert renamed.returncode == 1
    assert renamed.stderr.startswith("error: the witness key is already named") and "Traceback" not in renamed.stderr
    bad = run("witness-key", "--data", str(tmp_path / "n"), "--name", "has space")
    assert bad.returncode == 1 and "not a valid key name" in bad.stderr
    assert not (tmp_path / "n" / "state" / "witness.key").exists()


def test_witness_key_name_from_public_url(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "m").create()
    data.save_settings({**data.settings(), "role": "mirror", "public_url": "https://news-mirror.example.net/"})
    out = run("witness-key", "--data", str(data.root))
    assert out.stdout.startswith("news-mirror.example.net+")
    assert data.settings()["witness_name"] == "news-mirror.example.net"


def test_witness_commands_refuse_an_origin_directory(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "o").create()
    data.save_settings({**data.settings(), "role": "origin"})
    for args in (("witness-key",), ("witness-clear",)):
        out = run(*args, "--data", str(data.root))
        assert out.returncode == 2 and "not a mirror" in out.stderr
    assert not (data.state / "witness.key").exists()


def test_witness_clear_without_alarm(tmp_path: Path) -> None:
    out = run("witness-clear", "--data", str(tmp_path / "m"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": True, "cleared": None, "forgot": False, "size": 0}
    assert run("witness-clear", "--data", str(tmp_path / "m")).stdout.strip() == "no alarm was set"
