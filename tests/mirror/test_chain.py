"""Mirrors chain: origin -> mirror A -> mirror B, real `tamizdat mirror run` processes on loopback."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from .conftest import Daemon, check_served, wait_for
from .simulator import Simulator


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def same_index(daemon: Daemon, expected: bytes) -> bool:
    return fetch(daemon.url + "index.json") == expected


@pytest.mark.slow
def test_chain_origin_a_b(sim: Simulator, tmp_path: Path, daemons: list[Daemon]) -> None:
    with sim.serve() as origin:
        a = Daemon(tmp_path / "a", sim.root_keyid, [origin])
        daemons.append(a)
        b = Daemon(tmp_path / "b", sim.root_keyid, [a.url])
        daemons.append(b)
        wait_for(lambda: same_index(b, sim.files["index.json"]), timeout=60)
        check_served(b.data / "public", sim.root_keyid)

        # A retraction and an update travel down the chain.
        first, second, _ = sim.listed_ids()
        sim.retract(first)
        newer = sim.supersede(second)
        sim.publish()
        # The commit serves the new index first and drops what it no longer lists right after it.
        gone = b.data / "public" / "bundles" / f"{first}.zip"
        wait_for(lambda: same_index(b, sim.files["index.json"]) and not gone.exists(), timeout=60)
        check_served(b.data / "public", sim.root_keyid)
        assert fetch(b.url + f"bundles/{newer}.zip") == sim.bundles[newer]
        assert fetch(b.url + "root.json") == sim.roots[-1]

        health = b.health()
        assert health["ok"] is True and health["role"] == "mirror"
        assert health["index"]["version"] == sim.index_version
        assert health["index"]["expired"] is False and health["index"]["stale"] is False
        assert health["bundles"] == 3  # three listed, one retracted, one superseded but kept
        assert health["last_sync"]["ok"] is True
        assert health["upstreams"][0]["upstream"] == a.url
        assert health["upstreams"][0]["consecutive_failures"] == 0

    # The origin is gone: A keeps serving the last good state and says why it cannot sync.
    def origin_down() -> bool:
        up = a.health()["upstreams"][0]
        return bool(up["consecutive_failures"] >= 1 and up["last_error"]["kind"] == "network")

    wait_for(origin_down, timeout=30)
    assert same_index(a, sim.files["index.json"])
    for d in (a, b):
        d.stop()
        log = (d.data.parent / f"{d.data.name}.log").read_text()
        assert "GET /" not in log  # no access log by default, so no request (and no address) is written
