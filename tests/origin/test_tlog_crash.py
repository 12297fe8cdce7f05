"""kill -9 of a real `tamizdat serve` between appending log leaves and signing them loses nothing.

The origin pauses at a named point of its log step (``TAMIZDAT_TEST_PAUSE_AT``,
server/tlog/keeper.py) with the round's leaves committed in SQLite: after the
index switch and before any tile (``tlog-appended``), after the tiles are
written and synced (``tlog-tiles``), or after the new checkpoint was recorded
as signed but before it was published (``tlog-signed``). The test kills it
there (SIGKILL, then its worker processes), starts it again and checks: every
leaf is still in the database, none twice; the checkpoint it signs covers all
of them; it is consistent with the checkpoint signed before the kill; the tiles
are the ones a TreeBuilder makes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog import Checkpoint, LeafKind, TreeBuilder, check_extends, consistency_proof_from_tiles
from tamizdat.keys.keydir import KeyDir
from tamizdat.netutil import free_port as _free_port
from tamizdat.server.tlog import signed
from tamizdat.server.tlog.tree import TileFiles

from .tlog_support import checkpoint_of, db_leaves, entries_of, replay, tlog_files, trust_of

TAMIZDAT = [sys.executable, "-c", "from tamizdat.cli import main; main()"]


def _http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Serve:
    """`tamizdat serve` in its own session (so its bundle workers can be killed with it)."""

    def __init__(self, data: Path, keys: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full = {k: v for k, v in os.environ.items() if not k.startswith("TAMIZDAT_TEST_")}
        full.update(env or {})
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*TAMIZDAT, "serve", "--data", str(data), "--keys", str(keys), "--listen", f"127.0.0.1:{self.port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full,
                start_new_session=True,
            )

    def healthz_log(self) -> dict[str, Any]:
        status, body = _http("GET", f"{self.url}/healthz")
        return dict(json.loads(body)["log"]) if status in (200, 503) else {}

    def wait_signed(self) -> dict[str, Any]:
        def signed_all() -> bool:
            log = self.healthz_log()
            return log.get("state") == "ok" and log["signed_size"] == log["size"] > 0

        _wait(signed_all, f"the origin to sign its log ({self.log.read_text(errors='replace')[-2000:]})")
        return self.healthz_log()

    def wait_paused(self, point: str) -> None:
        _wait(lambda: f"TAMIZDAT-PAUSED {point}" in self.log.read_text(errors="replace"), f"the pause at {point}")

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Path, list[Serve]]]:
    keys, data = tmp_path / "keys", tmp_path / "data"
    KeyDir(keys).init("Crash Desk")
    data.mkdir()
    (data / "settings.toml").write_text("round_seconds = 3600.0\ntlog_gather_interval = 0.2\n")
    started: list[Serve] = []
    yield keys, data, started
    for s in started:
        s.stop()


def _token(data: Path) -> str:
    made = subprocess.run(
        [*TAMIZDAT, "tokens", "create", f"t{time.monotonic_ns()}", "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["token"])


def _post(origin: Serve, token: str, aid: str) -> str:
    doc = {"id": aid, "lang": "en", "title": f"Story {aid}", "body": "Text.", "published": "2026-01-01T10:00:00Z"}
    status, body = _http("POST", f"{origin.url}/api/v1/articles", doc, token)
    assert status == 201, body
    return str(json.loads(body)["versions"][0]["bundle_id"])


@pytest.mark.parametrize("point", ["tlog-appended", "tlog-tiles", "tlog-signed"])
def test_kill9_between_append_and_sign(site: tuple[Path, Path, list[Serve]], tmp_path: Path, point: str) -> None:
    keys, data, started = site
    trust = trust_of(keys)
    token = _token(data)
    # 1. a running origin signs its log; an article waits for the next round (rounds are an hour apart)
    first = Serve(data, keys, tmp_path / "first.log")
    started.append(first)
    first.wait_signed()
    before = checkpoint_of(data, trust).checkpoint
    pending = _post(first, token, "c1")
    first.stop()
    # 2. the next start's round lists it, appends its leaves, and the process is killed at `point`
    paused = Serve(data, keys, tmp_path / "paused.log", env={"TAMIZDAT_TEST_PAUSE_AT": point})
    started.append(paused)
    paused.wait_paused(point)
    paused.kill9()
    rows = db_leaves(data)
    new = rows[before.size :]
    assert [r[1] for r in new] == [LeafKind.BUNDLE, LeafKind.INDEX] and new[0][2] == pending
    on_disk = checkpoint_of(data, trust).checkpoint
    assert on_disk == before  # not published yet
    last = signed.load(data / "state")
    assert last is not None
    assert last.checkpoint.size == (len(rows) if point == "tlog-signed" else before.size)
    # 3. the origin starts again: nothing lost, nothing twice, one consistent log
    again = Serve(data, keys, tmp_path / "again.log")
    started.append(again)
    status = again.wait_signed()
    after_rows = db_leaves(data)
    assert after_rows[: len(rows)] == rows
    assert len({(r[1], r[2]) for r in after_rows if r[1] != LeafKind.INDEX}) == sum(
        1 for r in after_rows if r[1] != LeafKind.INDEX
    )
    after = checkpoint_of(data, trust).checkpoint
    assert after.size == len(after_rows) == status["signed_size"]
    builder = TreeBuilder()
    builder.extend(entries_of(after_rows))
    assert after == Checkpoint(trust.origin, builder.size, builder.root())
    files = TileFiles.in_public(data / "public")
    check_extends(before, after, consistency_proof_from_tiles(before.size, after.size, files.read))
    if point == "tlog-signed":  # the checkpoint signed before the kill is in the same log
        check_extends(
            last.checkpoint, after, consistency_proof_from_tiles(last.checkpoint.size, after.size, files.read)
        )
    expected, _ = replay(after_rows)
    disk = tlog_files(data)
    assert {p: disk[p] for p in disk} == {p: expected[p] for p in disk}  # every tile on disk is the right one
    final = TreeBuilder()
    final.extend(entries_of(after_rows))
    assert {p for p, _ in final.flush().files()} <= set(disk)
