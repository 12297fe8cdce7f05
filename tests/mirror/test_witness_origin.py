"""Witnesses on the real chain: `tamizdat serve` -> `mirror run` A -> `mirror run` B, processes on loopback.

The publisher's policy names both mirrors (group of 2, with their URLs). Each
mirror checks the origin's log and cosigns it; A reads B's view as a peer's,
B reads A's checkpoint as its upstream's; both reach the quorum and serve
proofs that the readers' code accepts against the root alone.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tamizdat.bundles.tlog.reader import check_index_proof, check_log_proof
from tamizdat.keys import dsse
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.netutil import free_port
from tamizdat.server import settings as settings_mod

from .conftest import TAMIZDAT, Daemon, check_served, get_json, wait_for


class PortDaemon(Daemon):
    """`mirror run` on a port chosen in advance (the policy names its URL before it starts)."""

    def __init__(self, data: Path, root_keyid: str, upstreams: list[str], port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.data = data
        args = [*TAMIZDAT, "mirror", "run", "--data", str(data), "--root-key", root_keyid]
        for u in upstreams:
            args += ["--upstream", u]
        args += ["--listen", f"127.0.0.1:{port}", "--interval", "1"]
        self.log = (data.parent / f"{data.name}.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, timeout=30)


def api(url: str, token: str, path: str, body: Any) -> Any:
    req = urllib.request.Request(
        url + "api/v1/" + path,
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def witnessed(d: Daemon) -> bool:
    report = d.health().get("log") or {}
    return report.get("state") == "ok" and bool(report.get("quorum"))


@pytest.mark.slow
def test_real_origin_witnessed_by_a_and_b(tmp_path: Path, daemons: list[Daemon]) -> None:
    keys, data = tmp_path / "keys", tmp_path / "origin"
    KeyDir(keys).init("Real News")
    root_keyid = KeyDir(keys).root_keyid()
    ports = {"a": free_port(), "b": free_port()}
    lines = []
    for name, port in ports.items():
        out = subprocess.run(
            [*TAMIZDAT, "mirror", "witness-key", "--data", str(tmp_path / name), "--name", f"mirror-{name}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        lines.append(f"witness {name} {out.stdout.strip()} http://127.0.0.1:{port}/")
    policy = tmp_path / "policy.txt"
    policy.write_text("\n".join(lines) + "\ngroup mirrors 2 a b\nquorum mirrors\n")
    out = subprocess.run(
        [*TAMIZDAT, "keys", "log-policy", "--dir", str(keys), "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr

    data.mkdir()
    values = settings_mod.load(data / "settings.toml")
    values.update(round_seconds=0.2, keys=str(keys), tlog_gather_interval=1.0)
    settings_mod.save(data / "settings.toml", values)
    token = json.loads(
        subprocess.run(
            [*TAMIZDAT, "tokens", "create", "desk", "--data", str(data), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["token"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with (tmp_path / "origin.log").open("wb") as logf:
        origin = subprocess.Popen(
            [*TAMIZDAT, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: fetch(url + "healthz") is not None, timeout=30)
            for n in range(3):
                body = {
                    "id": f"s{n}",
                    "lang": "en",
                    "title": f"Story {n}",
                    "body": "Text.",
                    "published": "2026-01-05T10:00:00Z",
                }
                api(url, token, "articles", body)
            a = PortDaemon(tmp_path / "a", root_keyid, [url], ports["a"])
            daemons.append(a)
            b = PortDaemon(tmp_path / "b", root_keyid, [a.url], ports["b"])
            daemons.append(b)
            wait_for(lambda: witnessed(a) and witnessed(b), timeout=90, step=0.5)

            for d in (a, b):
                public = d.data / "public"
                listed = check_served(public, root_keyid)
                assert len(listed) == 3
                root_env = dsse.Envelope.from_bytes((public / "root.json").read_bytes(), expected_type=dsse.ROOT_TYPE)
                root = Root.from_payload(root_env.payload)
                now = int(time.time())
                for bid in listed:
                    verdict = check_log_proof(
                        bid, (public / "bundles" / f"{bid}.tlog-proof").read_bytes(), root, now=now
                    )
                    assert sorted(verdict.witnesses) == ["a", "b"]
                index = dsse.Envelope.from_bytes((public / "index.json").read_bytes(), expected_type=dsse.INDEX_TYPE)
                check_index_proof(index.payload, (public / "tlog" / "index.tlog-proof").read_bytes(), root, now=now)
                report = get_json(d.url + "healthz")["log"]
                assert report["witness"] == d.data.name and report["evidence"] == 0
        finally:
            origin.terminate()
            try:
                origin.wait(10)
            except subprocess.TimeoutExpired:
                origin.kill()
                origin.wait(10)
