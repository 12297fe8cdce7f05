"""A real origin: `tamizdat serve` as a process on 127.0.0.1, fed by `tamizdat publish`, read over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamizdat.bundles.index import check_shard, verify_index
from tamizdat.keys.keydir import KeyDir
from tamizdat.netutil import free_port

from .support import TAMIZDAT


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TAMIZDAT, *args], capture_output=True, text=True, timeout=180, env=env)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def poll(check: object, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[str]]]:
    keys, data = tmp_path / "keys", tmp_path / "data"
    assert cli("keys", "init", "--dir", str(keys), "--publisher", "Process Desk").returncode == 0
    data.mkdir()
    (data / "settings.toml").write_text("round_seconds = 0.1\n")
    port = free_port()
    proc = subprocess.Popen(
        [TAMIZDAT, "serve", "--data", str(data), "--keys", str(keys), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: get(f"{url}/index.json")[0] == 200)
        yield url, keys, data, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_serve_publish_fetch_verify(origin: tuple[str, Path, Path, subprocess.Popen[str]], tmp_path: Path) -> None:
    url, keys, data, proc = origin
    settings = (data / "settings.toml").read_text()
    assert "keys = " in settings and "listen = " in settings and "round_seconds = 0.1" in settings
    made = cli("tokens", "create", "desk", "--data", str(data), "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    (tmp_path / "token").write_text(token + "\n")
    story = tmp_path / "story.md"
    story.write_text("---\nid: proc-1\nlang: en\ntitle: Process story\npublished: 2026-01-04T00:00:00Z\n---\nHello.\n")
    pub = cli("publish", str(story), "--server", url, "--token-file", str(tmp_path / "token"), "--json")
    assert pub.returncode == 0, pub.stderr
    bundle_id = json.loads(pub.stdout)["results"][0]["bundle_id"]
    root = KeyDir(keys).chain().newest

    def listed() -> bool:
        _status, raw = get(f"{url}/index.json")
        index = verify_index(raw, root).index
        ids = set()
        for ref in index.shards:
            ids |= {e.id for e in check_shard(ref, get(f"{url}/index/{ref.sha256}.json")[1]).bundles}
        return bundle_id in ids

    poll(listed)
    status, body = get(f"{url}/bundles/{bundle_id}.zip")
    assert status == 200
    saved = tmp_path / f"{bundle_id}.zip"
    saved.write_bytes(body)
    verified = cli("verify", str(saved), "--root-key", KeyDir(keys).root_keyid(), "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["articles"][0]["id"] == "proc-1"
    # the token from the environment works too; a revoked one is refused with a one-line reason
    env = {**os.environ, "TAMIZDAT_TOKEN": token}
    assert cli("publish", str(story), "--server", url, env=env).returncode == 0
    listing = cli("tokens", "list", "--data", str(data), "--json")
    assert [t["name"] for t in json.loads(listing.stdout)["tokens"]] == ["desk"]
    assert token not in listing.stdout
    assert cli("tokens", "revoke", "desk", "--data", str(data)).returncode == 0
    refused = cli("publish", str(story), "--server", url, env=env)
    assert refused.returncode == 1 and "revoked" in refused.stderr
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert "root private keys sit in" in err  # the warning at start (keys init left them in --keys)
    assert "127.0.0.1" not in "".join(line for line in err.splitlines() if "GET /" in line)
