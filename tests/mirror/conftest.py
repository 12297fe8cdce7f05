"""Fixtures of the mirror tests: a simulated upstream, mirrors with small limits, invariants."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.index import Index, Shard
from tamizdat.bundles.verify import verify_bundle
from tamizdat.keys import dsse
from tamizdat.mirror.config import SyncConfig
from tamizdat.mirror.sync import Mirror
from tamizdat.netutil import free_port
from tamizdat.server.datadir import DataDir

from .simulator import Simulator

FAST = SyncConfig(  # small limits, with room for a loaded CI machine
    connect_timeout=10.0,
    read_timeout=10.0,
    document_timeout=10.0,
    bundle_timeout=20.0,
    min_rate=1 << 20,
)
TIGHT = replace(FAST, document_timeout=2.0)  # for the trickling upstream: hit the total deadline quickly
TAMIZDAT = [sys.executable, "-c", "from tamizdat.cli import main; main()"]


@pytest.fixture
def sim(tmp_path: Path) -> Simulator:
    """A publisher with three bundles published at index version 1."""
    s = Simulator(tmp_path / "sim")
    s.add(3)
    s.publish()
    return s


MirrorFactory = Callable[..., Mirror]


@pytest.fixture
def make_mirror(tmp_path: Path) -> MirrorFactory:
    counter = iter(range(1000))

    def make(root_keyid: str, upstreams: list[str], **kw: Any) -> Mirror:
        kw.setdefault("config", FAST)
        return Mirror(DataDir(tmp_path / f"mirror{next(counter)}"), root_keyid=root_keyid, upstreams=upstreams, **kw)

    return make


def served_index(public: Path) -> Index | None:
    path = public / "index.json"
    if not path.exists():
        return None
    return Index.from_payload(dsse.Envelope.from_bytes(path.read_bytes(), expected_type=dsse.INDEX_TYPE).payload)


def check_served(public: Path, root_keyid: str, *, allowed_extra: set[str] | None = None) -> dict[str, str]:
    """The invariant: the served index's shards are present and match, every bundle it asks for is
    present with the listed hash, and every bundle file verifies. Returns id -> sha of the index."""
    import hashlib

    index = served_index(public)
    listed: dict[str, str] = {}
    retracted: set[str] = set()
    if index is not None:
        for ref in index.shards:
            data = (public / "index" / f"{ref.sha256}.json").read_bytes()
            assert hashlib.sha256(data).hexdigest() == ref.sha256
            for e in Shard.from_bytes(data).bundles:
                listed[e.id] = e.sha256
                if e.retracted is not None:
                    retracted.add(e.id)
    files = {p.stem: p for p in (public / "bundles").glob("*.zip")} if (public / "bundles").exists() else {}
    for bid, sha in listed.items():
        if bid in retracted:
            continue
        assert bid in files, f"served index lists {bid[:12]} but it is absent"
        assert hashlib.sha256(files[bid].read_bytes()).hexdigest() == sha
    for bid, path in files.items():
        assert verify_bundle(path, root_keyid=root_keyid).bundle_id == bid
        if bid not in listed:
            assert allowed_extra is not None and bid in allowed_extra, f"unlisted bundle {bid[:12]} served"
    return listed


def get_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(step)
    raise AssertionError("condition not reached in time")


class Daemon:
    """A `tamizdat mirror run` subprocess on a free loopback port."""

    def __init__(self, data: Path, root_keyid: str, upstreams: list[str], interval: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.data = data
        args = [*TAMIZDAT, "mirror", "run", "--data", str(data), "--root-key", root_keyid]
        for u in upstreams:
            args += ["--upstream", u]
        args += ["--listen", f"127.0.0.1:{self.port}", "--interval", str(interval)]
        self.log = (data.parent / f"{data.name}.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._up(), timeout=30)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"mirror exited: {(self.data.parent / f'{self.data.name}.log').read_text()}")
        try:
            get_json(self.url + "healthz", timeout=1)
            return True
        except (OSError, ValueError):
            return False

    def health(self) -> Any:
        return get_json(self.url + "healthz")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()


def nginx_binary() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
