"""Readers and the monitor against a real origin (`tamizdat serve` on loopback, processes only).

The origin logs its rounds (policy ``quorum none``: it signs and writes proofs
at once); ``tamizdat log monitor`` over HTTP with the origin's own store finds
nothing, then alarms once the origin's store no longer knows a logged bundle;
``tamizdat fetch`` saves the bundle's proof and ``tamizdat verify
--require-log`` accepts it.
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

from .conftest import TAMIZDAT, free_port, wait_for


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def tamizdat(*args: str | Path, code: int = 0) -> Any:
    out = subprocess.run([*TAMIZDAT, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == code, out.stderr + out.stdout
    return json.loads(out.stdout) if "--json" in args else out


def has_proofs(url: str, ids: list[str]) -> bool:
    try:
        return all(fetch(f"{url}bundles/{i}.tlog-proof") for i in ids)
    except OSError:
        return False


@pytest.mark.slow
def test_origin_log_monitor_fetch_and_verify(tmp_path: Path) -> None:
    keys, data = tmp_path / "keys", tmp_path / "origin"
    KeyDir(keys).init("Real News")
    root_keyid = KeyDir(keys).root_keyid()
    data.mkdir()
    values = settings_mod.load(data / "settings.toml")
    values.update(round_seconds=0.2, keys=str(keys), tlog_gather_interval=1.0)
    settings_mod.save(data / "settings.toml", values)
    token = tamizdat("tokens", "create", "desk", "--data", data, "--json")["token"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with (tmp_path / "origin.log").open("wb") as logf:
        origin = subprocess.Popen(
            [*TAMIZDAT, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"], stdout=logf, stderr=logf
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
                req = urllib.request.Request(
                    url + "api/v1/articles",
                    method="POST",
                    data=json.dumps(body).encode(),
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                urllib.request.urlopen(req, timeout=10).close()
            wait_for(lambda: len(list((data / "public" / "bundles").glob("*.zip"))) == 3, timeout=60)
            ids = [p.name[:-4] for p in (data / "public" / "bundles").glob("*.zip")]
            wait_for(lambda: has_proofs(url, ids), timeout=60, step=0.3)

            # The monitor, over HTTP, with the origin's own store: every leaf is the publisher's.
            state = tmp_path / "monitor.json"
            doc = tamizdat(
                "log",
                "monitor",
                "--root-key",
                root_keyid,
                "--upstream",
                url,
                "--store",
                data,
                "--state",
                state,
                "--json",
            )
            assert doc["ok"] is True and doc["counts"]["bundle"] == 3 and doc["counts"]["index"] >= 1

            # A reader fetches one bundle with its proof and requires the log.
            out = tmp_path / "reader"
            link = f"{url}b/{ids[0]}#k={root_keyid}"
            got = tamizdat("fetch", link, "-o", out, "--yes", "--json")
            assert got["log"]["status"] == "logged"
            assert sorted(p.name for p in out.iterdir()) == sorted([f"{ids[0]}.zip", f"{ids[0]}.tlog-proof"])
            checked = tamizdat("verify", out / f"{ids[0]}.zip", "--root-key", root_keyid, "--require-log", "--json")
            assert checked["log"]["status"] == "logged" and checked["log"]["proof"] == f"{ids[0]}.tlog-proof"

            # Against a list of ids that lacks one logged bundle (as if it were signed behind the
            # publisher's back), the monitor alarms with exit 3, reading the whole log again.
            known = tmp_path / "ids.txt"
            known.write_text("\n".join(ids[1:]) + "\n")
            proc = subprocess.run(
                [
                    *TAMIZDAT,
                    "log",
                    "monitor",
                    "--root-key",
                    root_keyid,
                    "--upstream",
                    url,
                    "--ids",
                    str(known),
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 3, proc.stderr
            alarms = json.loads(proc.stdout)["alarms"]
            assert [(a["kind"], a["id"]) for a in alarms] == [("unknown-bundle", ids[0])]
        finally:
            origin.terminate()
            origin.wait(timeout=30)
