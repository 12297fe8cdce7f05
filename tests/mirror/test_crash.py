"""Crash safety: `tamizdat mirror sync --once` killed with SIGKILL mid-sync, again and again.

After every kill nothing partial is served: index.json is absent or one of
the indexes the publisher signed, complete; every bundle it asks for is
present with the listed hash; every file under public/bundles verifies. After
a restart the work files are gone and the sync completes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import TAMIZDAT, check_served
from .simulator import Simulator


class Run:
    """One `mirror sync --once` process, optionally frozen at a test pause point."""

    def __init__(self, data: Path, sim: Simulator, url: str, **pause: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAMIZDAT_TEST_")}
        env["TAMIZDAT_TEST_PROCESS_THRESHOLD"] = "1"  # worker processes verify and write, as in a big first sync
        env.update(pause)
        args = [*TAMIZDAT, "mirror", "sync", "--once", "--json", "--data", str(data)]
        args += ["--root-key", sim.root_keyid, "--upstream", url]
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_paused(self, timeout: float = 60.0) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode()
            if line.startswith("TAMIZDAT-PAUSED"):
                return line.strip()
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"sync ended (rc {self.proc.returncode}) before pausing")
        raise AssertionError("no pause seen")

    def kill(self) -> None:
        children = _children(self.proc.pid)  # verifier worker processes, if any
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in children):  # they see their stdin close and exit
            assert time.monotonic() < deadline, "worker processes outlived the killed mirror"
            time.sleep(0.05)

    def finish(self) -> int:
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, (out, err)
        return self.proc.returncode


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def check_after_kill(data: Path, sim: Simulator, signed: list[bytes]) -> None:
    public = data / "public"
    index = public / "index.json"
    if index.exists():
        assert index.read_bytes() in signed, "a served index.json is not one the publisher signed"
    check_served(public, sim.root_keyid, allowed_extra=set(sim.bundles))


def work_files(data: Path) -> list[str]:
    tmp = data / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


@pytest.mark.slow
def test_kill_mid_sync_never_serves_partial_state(tmp_path: Path) -> None:
    sim = Simulator(tmp_path / "sim", shard_capacity=8)
    sim.add(40)
    signed = [sim.publish()]
    data = tmp_path / "mirror"
    rng = random.Random(2026)
    with sim.serve() as url:
        # Deterministic kills: after some bundles, then at each commit point.
        for pause in (
            {"TAMIZDAT_TEST_PAUSE_AFTER": "5"},
            {"TAMIZDAT_TEST_PAUSE_AFTER": "3"},
            {"TAMIZDAT_TEST_PAUSE_AT": "shards"},
            {"TAMIZDAT_TEST_PAUSE_AT": "synced"},
            {"TAMIZDAT_TEST_PAUSE_AT": "index"},
        ):
            run = Run(data, sim, url, **pause)
            run.wait_paused()
            run.kill()
            check_after_kill(data, sim, signed)
        Run(data, sim, url).finish()
        assert (data / "public" / "index.json").read_bytes() == signed[-1]
        assert work_files(data) == []
        check_served(data / "public", sim.root_keyid)

        # A second round: new bundles, a retraction; kills at random moments.
        sim.add(30)
        sim.retract(sim.listed_ids()[0])
        signed.append(sim.publish())
        run = Run(data, sim, url, TAMIZDAT_TEST_PAUSE_AFTER="2")
        run.wait_paused()
        run.kill()
        leftovers = work_files(data)
        check_after_kill(data, sim, signed)
        sim.bundle_delay = 0.1  # 8 at a time: the rest of the sync lasts about 0.4 s after start-up (~0.6 s)
        for _ in range(4):
            run = Run(data, sim, url)
            time.sleep(rng.uniform(0.4, 1.4))
            run.kill()
            check_after_kill(data, sim, signed)
        Run(data, sim, url).finish()
        assert (data / "public" / "index.json").read_bytes() == signed[-1]
        assert work_files(data) == [], f"work files left behind (had {leftovers})"
        listed = check_served(data / "public", sim.root_keyid)
        assert not (data / "public" / "bundles" / f"{sim.listed_ids()[0]}.zip").exists()
        assert len(listed) == 70
