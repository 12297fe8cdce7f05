"""Serving bundles: the app's StaticTree against nginx, on the same files, with wrk, in the same run.

Files: content-addressed ``bundles/<64 hex>.zip`` of 16 KiB (64 files) and of
1 MiB (16 files), random bytes, in a temp ``public/`` tree. Two servers on
127.0.0.1 serve that tree:

- the app: one process running an aiohttp application with exactly the
  static routes origin and mirror mount (``server.static.StaticTree``), no
  access log, as `tamizdat serve` / `mirror run` run it (``web.run_app``);
- nginx, the baseline: 2 worker processes, ``sendfile on``, no access log,
  the ``/bundles/`` location of deploy/nginx/tamizdat-site.conf (same headers),
  started from a temp directory with ``user root;``.

wrk (2 threads, 64 keep-alive connections, each request a random file of the
size class) loads one server at a time; app and nginx alternate round by
round; each figure is the median of the rounds (3 of 4 s in full mode, 2 of
1 s in quick mode). Every answer must be 200 (wrk's error counts must be 0).
Goals (DESIGN, "Serving goals"): app >= 0.2x nginx at 16 KiB, >= 0.8x at 1 MiB.
Both servers and wrk share the machine's CPUs (2 here), as they would in
production on a small VPS; nothing is pinned. Also reported: the CPU time
each server spends per response (user + system, from /proc, nginx's workers
included), a figure that moves less than req/s when other work shares the
machine.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tamizdat.netutil import free_port

from .common import Context, Result

KIB = 1024
SIZES = {"16 KiB": (16 * KIB, 64), "1 MiB": (1024 * KIB, 16)}
GOALS = {"16 KiB": 0.2, "1 MiB": 0.8}
CONNECTIONS = 64
THREADS = 2

_APP = r"""
import sys
from pathlib import Path
from aiohttp import web
from tamizdat.server.static import StaticTree

app = web.Application()
app.add_routes(StaticTree(Path(sys.argv[1])).routes())
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""

_NGINX = """
user root;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    server_tokens off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {public};
        disable_symlinks on;
        location ~ "^/bundles/([0-9a-f]{{64}})\\.zip$" {{
            types {{ }}
            default_type application/zip;
            add_header Cache-Control "public, max-age=31536000, immutable" always;
            add_header Content-Disposition "attachment; filename=\\"$1.zip\\"" always;
            add_header X-Content-Type-Options "nosniff" always;
            add_header Referrer-Policy "no-referrer" always;
            try_files $uri =404;
        }}
    }}
}}
"""

_LUA = r"""
local paths = {}
for line in io.lines("%(paths)s") do table.insert(paths, line) end
math.randomseed(%(seed)d)
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK-JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\n', summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until ``url`` answers 200 (the server is up and serves the tree)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer {url}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


@dataclass(frozen=True)
class Server:
    base: str
    pid: int  # the process (nginx: its master) whose tree's CPU time is counted


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (nginx workers), from /proc; 0 where unreadable."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: parent pid
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def app_server(public: Path) -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _APP, str(public), str(port)], stdout=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}{first_file(public)}", proc)
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        _stop(proc)


@contextmanager
def nginx_server(public: Path, workdir: Path) -> Iterator[Server]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    folder = workdir / "nginx"
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(_NGINX.format(dir=folder, port=port, public=public))
    args = [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log"), "-g", "daemon off;"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}{first_file(public)}", proc)
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        _stop(proc, signal.SIGQUIT)


def wrk(server: Server, paths: list[str], seconds: float, workdir: Path, seed: int) -> dict[str, float]:
    """One wrk run over ``paths``: requests/s, MB/s, latency p50/p99 (ms), server CPU per request (us).

    Raises on any error.
    """
    base = server.base
    cpu_before = cpu_seconds(server.pid)
    listing = workdir / f"paths-{seed}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / f"wrk-{seed}.lua"
    script.write_text(_LUA % {"paths": listing, "seed": seed})
    args = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s"]
    args += ["--timeout", "30s", "-s", str(script), base + paths[0]]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    doc = json.loads(next(line for line in out.splitlines() if line.startswith("WRK-JSON "))[9:])
    if doc["errors"]:
        raise RuntimeError(f"wrk saw {doc['errors']} errors against {base}")
    secs = doc["duration_us"] / 1e6
    return {
        "cpu_us": (cpu_seconds(server.pid) - cpu_before) * 1e6 / max(1, doc["requests"]),
        "rps": doc["requests"] / secs,
        "mbps": doc["bytes"] / secs / 1e6,
        "p50_ms": doc["p50_us"] / 1000,
        "p99_ms": doc["p99_us"] / 1000,
    }


def first_file(public: Path) -> str:
    return "/bundles/" + min(p.name for p in (public / "bundles").iterdir())


def make_tree(public: Path) -> dict[str, list[str]]:
    rng = random.Random(16)
    (public / "bundles").mkdir(parents=True)
    paths: dict[str, list[str]] = {}
    for label, (size, count) in SIZES.items():
        paths[label] = []
        for _ in range(count):
            name = f"{rng.randbytes(32).hex()}.zip"
            (public / "bundles" / name).write_bytes(rng.randbytes(size))
            paths[label].append(f"/bundles/{name}")
    return paths


def run(ctx: Context) -> list[Result]:
    if shutil.which("wrk") is None or not (shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)):
        ctx.note("serve: wrk or nginx missing, skipped (Debian packages wrk, nginx)")
        return []
    public = ctx.workdir / "public"
    paths = make_tree(public)
    rounds, seconds = (2, 1.0) if ctx.quick else (3, 4.0)
    figures: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-", dir=ctx.workdir) as tmp:
        work = Path(tmp)
        with app_server(public) as app, nginx_server(public, work) as nginx:
            for label, files in paths.items():
                ctx.log(f"serve {label}: {rounds} rounds of {seconds:g} s per server")
                wrk(app, files, 1.0, work, 0)  # warm: the app's memory cache, nginx's page cache
                wrk(nginx, files, 1.0, work, 0)
                for i in range(rounds):
                    order = [("app", app), ("nginx", nginx)]
                    for name, base in order if i % 2 == 0 else order[::-1]:
                        figures.setdefault((label, name), []).append(wrk(base, files, seconds, work, i + 1))
    results = []
    for label in SIZES:
        app_rps = statistics.median(f["rps"] for f in figures[(label, "app")])
        ngx_rps = statistics.median(f["rps"] for f in figures[(label, "nginx")])
        ratio = app_rps / ngx_rps
        goal = GOALS[label]
        keys = ("mbps", "p50_ms", "p99_ms", "cpu_us")
        app_med = {k: statistics.median(f[k] for f in figures[(label, "app")]) for k in keys}
        ngx_med = {k: statistics.median(f[k] for f in figures[(label, "nginx")]) for k in keys}
        results.append(
            Result(
                name=f"serve {label} bundles: app StaticTree vs nginx (req/s)",
                value=round(app_rps),
                unit="req/s",
                baseline=round(ngx_rps),
                ratio=f"{ratio:.2f}x",
                goal=f">= {goal}x nginx",
                met=ratio >= goal,
                extra={"app": app_med, "nginx": ngx_med, "connections": CONNECTIONS, "rounds": rounds},
            )
        )
        results.append(
            Result(
                name=f"serve {label}: server CPU per response, app vs nginx",
                value=round(app_med["cpu_us"]),
                unit="us",
                baseline=round(ngx_med["cpu_us"]),
                ratio=f"{app_med['cpu_us'] / ngx_med['cpu_us']:.2f}x",
                goal="info",
            )
        )
        ctx.note(
            f"serve {label}: app {app_med['mbps']:.0f} MB/s, p50 {app_med['p50_ms']:.1f} ms, "
            f"p99 {app_med['p99_ms']:.1f} ms; nginx {ngx_med['mbps']:.0f} MB/s, p50 {ngx_med['p50_ms']:.1f} ms, "
            f"p99 {ngx_med['p99_ms']:.1f} ms ({CONNECTIONS} connections, wrk {THREADS} threads)"
        )
    return results
