"""`tamizdat mirror run --workers 2` as real processes on 127.0.0.1: one port, two serving processes.

- both processes accept connections (24 new connections held open at once:
  each process owns some of them, seen in /proc), and every one of them sees
  the same new content after a sync (the home page lists the new article,
  ``/healthz`` the same index);
- kill -9 of the serving child: it is restarted, serving goes on meanwhile;
- SIGTERM or SIGINT to the parent: every process gone in bounded time, the port closed;
- kill -9 of the parent: the children notice (stdin pipe) and leave;
- ``--workers 0``, ``--workers abc``, ``--workers 65``, ``workers = 0`` in settings.toml: usage error, exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tamizdat.netutil import free_port
from tamizdat.server import processes

from .support import TAMIZDAT, Origin, Proc, article, get, index_version_of, run_cli, wait_until

CONNECTIONS = 24
READY = re.compile(r"serving process 1 \(pid (\d+)\) ready")


def alive(pid: int) -> bool:
    """Any thread of ``pid`` still running (a zombie waiting for its reaper counts as gone)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return True
    return False


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    out.add(int(link[8:-1]))
    return out


def _established(port: int) -> set[int]:
    """Socket inodes of established TCP connections whose local port is ``port`` (the server side)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            out.add(int(fields[9]))
    return out


class Workers:
    """`mirror run --workers 2` over ``data``; ``child`` is the serving process's pid once it is ready."""

    def __init__(self, data: Path, origin: Origin, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [*TAMIZDAT, "mirror", "run", "--data", str(data), "--root-key", origin.root_keyid]
        args += ["--upstream", origin.url, "--listen", f"127.0.0.1:{self.port}", "--interval", "1", "--workers", "2"]
        self.proc = Proc(args, log)
        self.child = self.wait_child(0)

    def wait_child(self, known: int, timeout: float = 60.0) -> int:
        """The pid of a ready serving process other than ``known``."""
        found: list[int] = []

        def ready() -> bool:
            if not self.proc.alive():
                raise AssertionError(f"mirror exited:\n{self.proc.log()[-4000:]}")
            found[:] = [int(p) for p in READY.findall(self.proc.log()) if int(p) != known]
            return bool(found) and alive(found[-1])

        wait_until(ready, timeout, "a ready serving process")
        return found[-1]

    def health(self, conn: http.client.HTTPConnection) -> dict[str, Any]:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        doc: dict[str, Any] = json.loads(resp.read())
        return doc

    @contextlib.contextmanager
    def connections(self, count: int = CONNECTIONS) -> Iterator[list[http.client.HTTPConnection]]:
        conns = [http.client.HTTPConnection("127.0.0.1", self.port, timeout=10) for _ in range(count)]
        try:
            yield conns
        finally:
            for c in conns:
                c.close()

    def owners(self) -> dict[int, int]:
        """How many established connections of the port each process holds."""
        est = _established(self.port)
        return {pid: len(_socket_inodes(pid) & est) for pid in (self.proc.pid, self.child)}


@pytest.fixture
def workers(origin: Origin, tmp_path: Path) -> Iterator[Workers]:
    assert origin.publish(article(1, prefix="wk"))[0] == 201
    w = Workers(tmp_path / "mirror", origin, tmp_path / "mirror.log")
    try:
        yield w
    finally:
        pids = [w.proc.pid, w.child]
        w.proc.stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _version(doc: dict[str, Any]) -> int:
    return int((doc.get("index") or {}).get("version") or 0)


def test_two_processes_serve_the_same_new_content(workers: Workers, origin: Origin) -> None:
    wait_until(lambda: get(workers.url + "/healthz", 5)[0] == 200, 60, "the first sync")
    assert origin.publish(article(2, prefix="wk"))[0] == 201
    title = "Report number 2 from the regional council"
    wait_until(lambda: title.encode() in get(origin.url + "/", 10)[1], 60, "the origin's round")
    version = index_version_of(origin.index_raw())
    wait_until(lambda: _version(json.loads(get(workers.url + "/healthz", 5)[1])) >= version, 60, "the new index")
    with workers.connections() as conns:
        docs = []
        for conn in conns:  # every connection: a new one, kept open (keep-alive)
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 200 and title in resp.read().decode()
            docs.append(workers.health(conn))
        owners = workers.owners()
        assert sum(owners.values()) == CONNECTIONS, owners
        assert all(n > 0 for n in owners.values()), f"one process took every connection: {owners}"
    assert all(d["ok"] and _version(d) >= version for d in docs)
    same = {json.dumps((d["index"], d["bundles"], d["root_version"], d["log"] is None)) for d in docs}
    assert len(same) == 1, same
    assert all(d["last_sync"] and d["last_sync"]["ok"] and d["last_ok"] for d in docs)


def test_killed_child_is_restarted_and_serving_goes_on(workers: Workers) -> None:
    old = workers.child
    os.kill(old, signal.SIGKILL)
    # A connection the kernel queued for the killed process before its last thread was gone is reset
    # (as with any SO_REUSEPORT server); once the parent has reaped it, every new connection goes to
    # the live process(es), before and after the restart.
    exited = f"serving process 1 (pid {old}) exited with -9"
    wait_until(lambda: exited in workers.proc.log(), 10, "the parent to see the kill", step=0.01)
    for _ in range(CONNECTIONS):
        assert get(workers.url + "/healthz", 10)[0] in (200, 503)
    workers.child = workers.wait_child(old, timeout=30)
    assert workers.child != old and not alive(old)
    with workers.connections() as conns:
        for conn in conns:
            workers.health(conn)
        owners = workers.owners()
    assert all(n > 0 for n in owners.values()), owners


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_the_parent_stops_every_process(workers: Workers, sig: signal.Signals) -> None:
    parent, child = workers.proc.pid, workers.child
    started = time.monotonic()
    os.kill(parent, sig)
    wait_until(lambda: not alive(parent) and not alive(child), 20, "every process to stop")
    assert workers.proc.proc.wait(5) == 0
    assert _port_closed(workers.port)
    assert "parent is gone" not in workers.proc.log()  # stopped by the parent, not orphaned
    assert "Traceback" not in workers.proc.log()
    assert time.monotonic() - started < 20


def test_kill9_of_the_parent_leaves_no_orphan(workers: Workers) -> None:
    parent, child = workers.proc.pid, workers.child
    os.kill(parent, signal.SIGKILL)  # not the group: the child must leave on its own
    workers.proc.proc.wait(10)
    wait_until(lambda: not alive(child), 20, "the orphaned serving process to stop")
    assert _port_closed(workers.port)
    assert "parent is gone" in workers.proc.log()


@pytest.mark.parametrize("value", ["0", "abc", "65", "-1"])
def test_bad_workers_option_is_a_usage_error(tmp_path: Path, value: str) -> None:
    out = run_cli(
        "mirror", "run", "--data", str(tmp_path / "m"), "--root-key", "a" * 64, "--upstream", str(tmp_path),
        "--workers", value, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "--workers" in out.stderr and "Traceback" not in out.stderr
    assert (
        not (tmp_path / "m" / "settings.toml").exists()
        or "workers" not in (tmp_path / "m" / "settings.toml").read_text()
    )


def test_bad_workers_setting_is_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "m"
    data.mkdir()
    (data / "settings.toml").write_text(f'role = "mirror"\nroot_keyid = "{"a" * 64}"\nworkers = 0\n')
    out = run_cli("mirror", "run", "--data", str(data), "--upstream", str(tmp_path), timeout=60)
    assert out.returncode == 2, out
    assert "setting workers must be 1 to 64, not 0" in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.strip()]) <= 3  # usage, hint, reason


def test_a_failing_child_is_restarted_with_a_bounded_backoff(capfd: pytest.CaptureFixture[str]) -> None:
    pool = processes.Workers("tamizdat.server.processes:no_such_factory", None, "127.0.0.1", free_port(), 2)
    pool.start()
    [child] = pool.children
    delays = []
    now = 0.0  # a fake clock for the schedule; the children are real and fail at once
    try:
        for _ in range(8):
            assert child.proc is not None
            assert child.proc.wait(30) == 1
            pool.check(now)  # noticed: restart scheduled
            delays.append(child.restart_at - now)
            pool.check(child.restart_at - 0.01)  # not yet
            assert child.proc is None
            now = child.restart_at
            pool.check(now)  # restarted
    finally:
        asyncio.run(pool.stop())
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    err = capfd.readouterr().err
    assert "serving process 1: no app factory tamizdat.server.processes:no_such_factory" in err
    assert "Traceback" not in err
