"""``tamizdat verify`` with log proofs: where proofs are found, what is printed, ``--require-log``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tamizdat.cli import main

from .logkit import Publisher, make_publisher, proof_cases

NOW = int(time.time())


@pytest.fixture(scope="module")
def pub(tmp_path_factory: pytest.TempPathFactory) -> Publisher:
    return make_publisher(tmp_path_factory.mktemp("pub"), now=NOW)


@pytest.fixture
def bundle(pub: Publisher, tmp_path: Path) -> tuple[str, Path]:
    """A copy of one bundle alone in a folder (no proof beside it)."""
    bid = pub.ids[1]
    dest = tmp_path / "news.zip"
    shutil.copyfile(pub.bundles[bid], dest)
    return bid, dest


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["verify", *(str(a) for a in args)])


def log_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    return dict(doc["log"])


def one_line_error(result: Result, code: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: log proof required: " + code), result.stderr


def test_proof_beside_the_file(pub: Publisher, bundle: tuple[str, Path]) -> None:
    bid, path = bundle
    index = pub.kit.index_of(bid)
    (path.parent / "news.zip.tlog-proof").write_bytes(pub.kit.proof(index))
    res = run(path, "--root-key", pub.root_keyid)
    assert res.exit_code == 0, res.output
    assert f"log:         logged as #{index} of {pub.kit.tree.size}, witnessed by mirror-a, mirror-b at " in res.stdout
    log = log_json(run(path, "--root-key", pub.root_keyid, "--json", "--require-log"))
    assert log["status"] == "logged" and log["index"] == index and log["size"] == pub.kit.tree.size
    assert log["proof"] == "news.zip.tlog-proof" and set(log["witnesses"]) == {"mirror-a", "mirror-b"}
    assert log["as_of"] == log["witnesses"]["mirror-a"]


def test_proof_named_by_bundle_id(pub: Publisher, bundle: tuple[str, Path]) -> None:
    bid, path = bundle
    (path.parent / f"{bid}.tlog-proof").write_bytes(pub.kit.proof(pub.kit.index_of(bid)))
    assert log_json(run(path, "--root-key", pub.root_keyid, "--json"))["proof"] == f"{bid}.tlog-proof"


def test_explicit_proof_wins(pub: Publisher, bundle: tuple[str, Path], tmp_path: Path) -> None:
    bid, path = bundle
    (path.parent / "news.zip.tlog-proof").write_bytes(b"garbage")
    elsewhere = tmp_path / "p" / "x.tlog-proof"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(pub.kit.proof(pub.kit.index_of(bid)))
    assert log_json(run(path, "--root-key", pub.root_keyid, "--proof", elsewhere, "--json"))["status"] == "logged"


def test_no_proof_is_not_an_error_unless_required(pub: Publisher, bundle: tuple[str, Path]) -> None:
    _, path = bundle
    res = run(path, "--root-key", pub.root_keyid)
    assert res.exit_code == 0 and "VALID" in res.stdout
    assert "log:         not checked: no proof" in res.stdout
    assert log_json(run(path, "--root-key", pub.root_keyid, "--json")) == {"status": "no-proof", "proof": None} | {
        "code": "no-proof",
        "reason": "no-proof",
        "message": "no log proof was given",
    }
    one_line_error(run(path, "--root-key", pub.root_keyid, "--require-log"), "no-proof")
    res = run(path, "--root-key", pub.root_keyid, "--require-log", "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["error"]["code"] == "no-proof"


@pytest.mark.parametrize(
    "case", [c for c in proof_cases() if c.expect in ("bad-proof", "no-quorum")], ids=lambda c: c.name
)
def test_bad_proof_warns_or_fails(pub: Publisher, bundle: tuple[str, Path], case: Any) -> None:
    bid, path = bundle
    (path.parent / "news.zip.tlog-proof").write_bytes(case.make(pub.kit, bid))
    res = run(path, "--root-key", pub.root_keyid)
    assert res.exit_code == 0, res.output  # the signature is valid: say so, and warn
    assert res.stdout.startswith("VALID")
    warning = [line for line in res.stdout.splitlines() if line.startswith("log:")]
    assert len(warning) == 1 and warning[0].startswith(f"log:         WARNING: {case.expect} (")
    assert log_json(run(path, "--root-key", pub.root_keyid, "--json"))["status"] == case.expect
    one_line_error(run(path, "--root-key", pub.root_keyid, "--require-log"), case.expect)
    res = run(path, "--root-key", pub.root_keyid, "--require-log", "--json")
    error = json.loads(res.stdout)["error"]
    assert res.exit_code == 1 and error["code"] == case.expect
    assert error["reason"] == log_json(run(path, "--root-key", pub.root_keyid, "--json"))["reason"]


def test_publisher_without_log(tmp_path: Path) -> None:
    p = make_publisher(tmp_path, now=NOW, log=False, count=1)
    bid, path = next(iter(p.bundles.items()))
    (path.parent / f"{bid}.tlog-proof").write_bytes(p.kit.proof(p.kit.index_of(bid)))
    res = run(path, "--root-key", p.root_keyid)
    assert res.exit_code == 0 and "log:         not checked: the publisher keeps no log" in res.stdout
    one_line_error(run(path, "--root-key", p.root_keyid, "--require-log"), "no-log")


def test_a_bad_bundle_fails_before_its_proof(pub: Publisher, bundle: tuple[str, Path]) -> None:
    bid, path = bundle
    (path.parent / "news.zip.tlog-proof").write_bytes(pub.kit.proof(pub.kit.index_of(bid)))
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    res = run(path, "--root-key", pub.root_keyid, "--require-log")
    assert res.exit_code == 1 and "log proof" not in res.stderr


def test_proof_of_another_publishers_log(pub: Publisher, bundle: tuple[str, Path], tmp_path: Path) -> None:
    """A genuine, witnessed proof from another log (other origin and key) is a bad proof here."""
    other = make_publisher(tmp_path / "other", now=NOW, count=1, label="another publisher")
    bid, path = bundle
    other.kit.add_round([bid])
    (path.parent / "news.zip.tlog-proof").write_bytes(other.kit.proof(other.kit.index_of(bid)))
    assert log_json(run(path, "--root-key", pub.root_keyid, "--json"))["reason"] == "origin-mismatch"
