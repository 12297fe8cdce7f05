"""Deployment smoke test: the shipped deploy/ files, run for real on loopback.

systemd is not PID 1 here, so each unit's ExecStart runs by hand with the unit's
paths mapped into a temp dir (same arguments, same umask), and the unit files
are checked with `systemd-analyze verify`. A real nginx runs the shipped site
config in front: it must serve the static paths itself (they keep working with
the app stopped) and proxy the rest. No container engine runs here: the
Dockerfile and compose file are checked for what can be checked without one.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from static_paths import NOT_SERVED, OH, SECRETS, SERVED, body_of, make_log_tree

from tamizdat.demo.run import prepare_sample
from tamizdat.netutil import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TAMIZDAT = str(Path(sys.executable).with_name("tamizdat"))


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.access(f"/usr/sbin/{tool}", os.X_OK) else None)
    if path is None:
        message = f"{tool} is not installed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def fetch(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_for(check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([TAMIZDAT, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    return result


def unit(name: str) -> dict[str, list[str]]:
    """The [Service] keys of a shipped unit (repeated keys kept in order)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def exec_start(name: str, mapping: dict[str, str]) -> list[str]:
    """The unit's ExecStart with its paths and ports mapped for this test."""
    (command,) = unit(name)["ExecStart"]
    for old, new in mapping.items():
        command = command.replace(old, new)
    return shlex.split(command)


class Proc:
    def __init__(self, argv: list[str], umask: int, log: Path):
        self.log = log.open("wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(umask))

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


def nginx_site(public: Path, app_port: int, port: int, prefix: Path) -> Path:
    """The shipped site with its root, proxy target and listen address mapped, in a test nginx.conf."""
    site = (DEPLOY / "nginx" / "tamizdat-site.conf").read_text()
    site = site.replace("root /srv/tamizdat/public;", f"root {public};")
    site = site.replace("proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{app_port};")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;", "")
    site = site.replace("/var/log/nginx/tamizdat-error.log", str(prefix / "error.log"))
    (prefix / "site.conf").write_text(site)
    temp = " ".join(f"{k}_temp_path {prefix / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = prefix / "nginx.conf"
    conf.write_text(
        "user root;\nworker_processes 2;\n"
        f"pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'main-error.log'} emerg;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n include /etc/nginx/mime.types;\n access_log off;\n {temp}\n include {prefix / 'site.conf'};\n}}\n"
    )
    return conf


def test_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    for name in ("tamizdat-origin.service", "tamizdat-mirror.service"):
        text = (DEPLOY / "systemd" / name).read_text().replace("/opt/tamizdat/bin/tamizdat", TAMIZDAT)
        copy = tmp_path / name
        copy.write_text(text)
        result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
        problems = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
        assert result.returncode == 0 and not problems, result.stdout + result.stderr
        keys = unit(name)
        assert keys["DynamicUser"] == ["yes"] and keys["ProtectSystem"] == ["strict"]
        assert keys["StateDirectory"] == [name.removesuffix(".service")]
        assert keys["NoNewPrivileges"] == ["yes"] and keys["CapabilityBoundingSet"] == [""]


def test_nginx_site_config_is_valid(tmp_path: Path) -> None:
    nginx = need("nginx")
    (tmp_path / "public").mkdir()
    conf = nginx_site(tmp_path / "public", 8080, free_port(), tmp_path)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    site = (DEPLOY / "nginx" / "tamizdat-site.conf").read_text()
    assert "access_log off;" in site and "X-Forwarded-For" in site


def raw_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """Send the path exactly as written (urllib would normalise '..' away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def test_nginx_serves_the_log_paths_with_the_contract_headers(tmp_path: Path, procs: list[Proc]) -> None:
    nginx = need("nginx")
    public = make_log_tree(tmp_path)
    os.symlink(tmp_path / "settings.toml", public / "tlog" / "tile" / "0" / "001")
    outside = tmp_path / "outside-witness"
    (public / "tlog" / "witness").rename(outside)
    os.symlink(outside, public / "tlog" / "witness")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = nginx_site(public, free_port(), port, prefix)  # no app behind it: proxied paths answer 502
    procs.append(
        Proc(
            [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "e.log"), "-g", "daemon off;"],
            0o022,
            tmp_path / "nginx.log",
        )
    )
    wait_for(lambda: raw_get(port, "/tlog/checkpoint")[0] == 200)
    for rel, (cache_control, ctype) in SERVED.items():
        if rel.startswith("tlog/witness/"):
            continue
        status, headers, body = raw_get(port, f"/{rel}")
        assert status == 200 and body == body_of(rel), rel
        assert headers["Cache-Control"] == cache_control and headers["Content-Type"] == ctype, rel
        assert headers["X-Content-Type-Options"] == "nosniff"
    decoys = {body_of(rel) for rel in SECRETS} | {b"secret settings\n", body_of(f"tlog/witness/{OH}/checkpoint")}
    for path in [*NOT_SERVED, "/tlog/tile/0/001", f"/tlog/witness/{OH}/checkpoint"]:
        status, _, body = raw_get(port, path)
        # nginx normalises "a/../b" first: a 200 is fine when it is a served file's own bytes.
        assert status in (200, 400, 403, 404, 502), path  # 502: the (absent) app would answer
        assert body not in decoys and b"secret" not in body, path
        assert status != 200 or body in {body_of(rel) for rel in SERVED}, path


def test_origin_and_mirror_as_the_units_start_them_behind_nginx(tmp_path: Path, procs: list[Proc]) -> None:
    nginx = need("nginx")
    origin_state, mirror_state = tmp_path / "var/lib/tamizdat-origin", tmp_path / "var/lib/tamizdat-mirror"
    origin_state.mkdir(parents=True)
    # Keys as docs/deploy.md says: made elsewhere, root-private moved offline, the rest copied in.
    made = tmp_path / "made-keys"
    init = json.loads(cli("keys", "init", "--dir", str(made), "--publisher", "Smoke Desk", "--json").stdout)
    root_id = init["root_keyid"]
    shutil.move(made / "root-private", tmp_path / "offline-root-private")
    shutil.copytree(made, origin_state / "keys")
    (origin_state / "settings.toml").write_text("round_seconds = 0.2\n")

    origin_port, mirror_port, nginx_port = free_port(), free_port(), free_port()
    umask = int(unit("tamizdat-origin.service")["UMask"][0], 8)
    origin = Proc(
        exec_start(
            "tamizdat-origin.service",
            {
                "/opt/tamizdat/bin/tamizdat": TAMIZDAT,
                "/var/lib/tamizdat-origin": str(origin_state),
                "127.0.0.1:8080": f"127.0.0.1:{origin_port}",
            },
        ),
        umask,
        tmp_path / "origin.log",
    )
    procs.append(origin)
    app = f"http://127.0.0.1:{origin_port}"
    wait_for(lambda: fetch(f"{app}/healthz")[0] == 200)
    log = (tmp_path / "origin.log").read_text()
    assert "root private keys" not in log  # root-private was moved offline

    token = cli("tokens", "create", "smoke", "--data", str(origin_state), "--json")
    secret = json.loads(token.stdout)["token"]
    sample = prepare_sample(tmp_path / "sample")
    cli("publish", str(sample), "--server", app, env={**os.environ, "TAMIZDAT_TOKEN": secret})
    wait_for(lambda: json.loads(fetch(f"{app}/healthz")[2])["bundles"] >= 2)

    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = nginx_site(origin_state / "public", origin_port, nginx_port, prefix)
    front = Proc(
        [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "e.log"), "-g", "daemon off;"],
        0o022,
        tmp_path / "nginx.log",
    )
    procs.append(front)
    site = f"http://127.0.0.1:{nginx_port}"
    wait_for(lambda: fetch(f"{site}/index.json")[0] == 200)

    # Proxied: the reader's home page comes from the app.
    status, headers, _ = fetch(f"{site}/")
    assert status == 200 and "no-store" in headers.get("Cache-Control", "")

    # Static paths, with the shipped headers.
    status, headers, index = fetch(f"{site}/index.json")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert headers["Content-Type"].startswith("application/json")
    bundle_id = _first_bundle(site)
    status, headers, body = fetch(f"{site}/bundles/{bundle_id}.zip")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    saved = tmp_path / f"{bundle_id}.zip"
    saved.write_bytes(body)
    cli("verify", str(saved), "--root-key", root_id)
    assert fetch(f"{site}/bundles/{'0' * 64}.zip")[0] == 404
    assert fetch(f"{site}/bundles/../settings.toml")[0] in (400, 404)

    # nginx serves the static tree itself: stop the app, the tree stays up, pages go.
    origin.stop()
    assert fetch(f"{site}/bundles/{bundle_id}.zip")[2] == body
    assert fetch(f"{site}/index.json")[2] == index
    assert fetch(f"{site}/")[0] == 502

    # A mirror, recorded as docs/deploy.md says, syncing through nginx alone.
    cli("mirror", "sync", "--once", "--data", str(mirror_state), "--root-key", root_id, "--upstream", f"{site}/")
    mirror = Proc(
        exec_start(
            "tamizdat-mirror.service",
            {
                "/opt/tamizdat/bin/tamizdat": TAMIZDAT,
                "/var/lib/tamizdat-mirror": str(mirror_state),
                "127.0.0.1:8081": f"127.0.0.1:{mirror_port}",
            },
        ),
        umask,
        tmp_path / "mirror.log",
    )
    procs.append(mirror)
    mirror_url = f"http://127.0.0.1:{mirror_port}"
    wait_for(lambda: fetch(f"{mirror_url}/healthz")[0] == 200)
    status, _, copy = fetch(f"{mirror_url}/bundles/{bundle_id}.zip")
    assert status == 200 and copy == body
    assert fetch(f"{mirror_url}/index.json")[2] == index

    # Privacy: no access log anywhere, and nothing that names the client.
    for path in [*prefix.rglob("*.log"), *origin_state.rglob("*"), *mirror_state.rglob("*")]:
        if path.is_file() and path.suffix not in (".zip",):
            assert b"127.0.0.1 -" not in path.read_bytes(), path
    assert not (prefix / "access.log").exists()


def _first_bundle(site: str) -> str:
    from tamizdat.bundles.index import Shard

    index = json.loads(fetch(f"{site}/index.json")[2])
    import base64

    payload = json.loads(base64.b64decode(index["payload"]))
    ref = payload["shards"][0]
    shard = Shard.from_bytes(fetch(f"{site}/index/{ref['sha256']}.json")[2])
    return shard.bundles[0].id


# -- files no container engine here can run ------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _help_mentions(args: list[str], flags: list[str]) -> None:
    help_text = cli(*args, "--help").stdout
    for flag in flags:
        assert flag in help_text, (args, flag)


def test_dockerfile_builds_a_small_non_root_image_with_a_healthcheck() -> None:
    steps = _dockerfile()
    words = [w for w, _ in steps]
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "CMD", "ARG", "LABEL"}
    assert set(words) <= known
    stages = [rest for w, rest in steps if w == "FROM"]
    assert len(stages) == 2 and all("slim" in s for s in stages)
    final = steps[len(steps) - 1 - words[::-1].index("FROM") :]
    user = [rest for w, rest in final if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert any(w == "HEALTHCHECK" and "/healthz" in rest for w, rest in final)
    for w, rest in steps:
        if w == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), src
    cmd = json.loads(next(rest for w, rest in reversed(final) if w == "CMD"))
    assert cmd[:2] == ["tamizdat", "serve"]
    _help_mentions(cmd[1:2], [a for a in cmd if a.startswith("--")])


def test_compose_file_is_consistent() -> None:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"origin", "mirror", "nginx"}
    assert (DEPLOY / services["origin"]["build"]["dockerfile"].removeprefix("deploy/")).exists()
    for name in ("origin", "mirror"):
        svc = services[name]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        command = svc["command"]
        sub = command[1:2] if command[1] == "serve" else command[1:3]
        _help_mentions(sub, [a for a in command if isinstance(a, str) and a.startswith("--")])
    nginx_volumes = services["nginx"]["volumes"]
    assert any(v.startswith("origin-data:") and v.endswith(":ro") for v in nginx_volumes)
    site = next(v for v in nginx_volumes if "tamizdat-site.conf" in v).split(":")[0]
    assert (DEPLOY / site).exists()


def test_torrc_snippet_uses_known_directives() -> None:
    known = {"HiddenServiceDir", "HiddenServiceVersion", "HiddenServicePort"}
    lines = [
        line.split()[0]
        for line in (DEPLOY / "tor" / "torrc-tamizdat").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert set(lines) == known
    assert re.search(r"HiddenServicePort 80 127\.0\.0\.1:80", (DEPLOY / "tor" / "torrc-tamizdat").read_text())
