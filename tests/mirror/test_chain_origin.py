"""The real chain: `tamizdat serve` (the origin) -> `mirror run` A -> `mirror run` B, all processes on loopback.

Articles are published, updated and retracted over the origin's API; the
change travels down to B, and every file B serves verifies against the root
key id alone.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tamizdat.keys.keydir import KeyDir
from tamizdat.server import settings as settings_mod

from .conftest import TAMIZDAT, Daemon, check_served, free_port, get_json, wait_for


class Origin:
    def __init__(self, workdir: Path):
        self.keys = workdir / "keys"
        self.data = workdir / "origin"
        KeyDir(self.keys).init("Real News")
        self.root_keyid = KeyDir(self.keys).root_keyid()
        self.data.mkdir(parents=True)
        values = settings_mod.load(self.data / "settings.toml")
        values.update(round_seconds=0.2, keys=str(self.keys))
        settings_mod.save(self.data / "settings.toml", values)
        out = subprocess.run(
            [*TAMIZDAT, "tokens", "create", "desk", "--data", str(self.data), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.token = json.loads(out)["token"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = (workdir / "origin.log").open("wb")
        self.proc = subprocess.Popen(
            [*TAMIZDAT, "serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, timeout=30)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("origin exited")
        return self.status() is not None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            self.url + "api/v1/" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def status(self) -> Any:
        try:
            return self.api("GET", "status")
        except OSError:
            return None

    def published(self) -> bytes:
        """index.json once nothing is pending."""
        wait_for(lambda: (s := self.status()) is not None and s["pending_changes"] == 0 and s["index_version"] > 0)
        with urllib.request.urlopen(self.url + "index.json", timeout=5) as resp:
            return bytes(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def article(aid: str, title: str) -> dict[str, Any]:
    return {"id": aid, "lang": "en", "title": title, "body": f"Body of **{aid}**.", "published": "2026-01-05T10:00:00Z"}


def index_of(daemon: Daemon) -> bytes:
    with urllib.request.urlopen(daemon.url + "index.json", timeout=5) as resp:
        return bytes(resp.read())


@pytest.mark.slow
def test_real_origin_to_a_to_b(tmp_path: Path, daemons: list[Daemon]) -> None:
    origin = Origin(tmp_path)
    try:
        for n in range(3):
            origin.api("POST", "articles", article(f"story-{n}", f"Story {n}"))
        first = origin.published()
        a = Daemon(tmp_path / "a", origin.root_keyid, [origin.url])
        daemons.append(a)
        b = Daemon(tmp_path / "b", origin.root_keyid, [a.url])
        daemons.append(b)
        wait_for(lambda: index_of(b) == first, timeout=60)
        assert len(check_served(b.data / "public", origin.root_keyid)) == 3

        # An update (a new version superseding the old) and a retraction travel down.
        old = origin.api("GET", "articles/story-1")["versions"][-1]["bundle_id"]
        gone = origin.api("GET", "articles/story-2")["versions"][-1]["bundle_id"]
        origin.api("PUT", "articles/story-1", article("story-1", "Story 1, corrected"))
        origin.api("POST", "articles/story-2/retraction", {"reason": "court order"})
        second = origin.published()
        assert second != first
        # The commit serves the new index first and drops what it no longer lists right after it.
        retracted = b.data / "public" / "bundles" / f"{gone}.zip"
        wait_for(lambda: index_of(b) == second and not retracted.exists(), timeout=60)
        listed = check_served(b.data / "public", origin.root_keyid)
        new = origin.api("GET", "articles/story-1")["versions"][-1]["bundle_id"]
        assert new != old and new in listed
        assert (b.data / "public" / "bundles" / f"{old}.zip").exists()  # superseded, kept by default
        assert not (b.data / "public" / "bundles" / f"{gone}.zip").exists()
        health = get_json(b.url + "healthz")
        assert health["ok"] and health["last_sync"]["ok"] and health["bundles"] == 3
    finally:
        origin.stop()
