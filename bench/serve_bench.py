"""Serving bundles: the app's StaticTree against nginx, on the same files, with wrk, in the same run.

Files: content-addressed ``bundles/<64 hex>.zip`` of 16 KiB (64 files) and of
1 MiB (16 files), random bytes, in a temp ``public/`` tree. Three servers on
127.0.0.1 serve that tree:

- the app, as ``mirror run --workers 2`` serves: two processes on one port
  (``SO_REUSEPORT``), the product's multi-process path
  (``tamizdat.server.processes``: the parent serves and starts one serving
  child, a clean interpreter), each running an aiohttp application with exactly
  the static routes origin and mirror mount (``server.static.StaticTree``,
  built by :func:`static_app`), no access log. The generic module is used with
  a StaticTree-only app factory rather than a real ``mirror run`` on a data
  directory, so the figure measures serving only (no sync, no signed index);
- the app in one process (as ``--workers 1``, ``tamizdat serve``): an extra
  row for information, no goal;
- nginx, the baseline: 2 worker processes, ``sendfile on``, no access log,
  the ``/bundles/`` location of deploy/nginx/tamizdat-site.conf (same headers),
  started from a temp directory with ``user root;``.

wrk (2 threads, 64 keep-alive connections, each request a random file of the
size class) loads one server at a time; the three servers take turns round by
round (the order rotates); each figure is the median of the rounds (3 of 4 s in
full mode, 2 of 1 s in quick mode). Every answer must be 200 (wrk's error counts
must be 0). Goals (DESIGN, "Serving goals"): app >= 0.2x nginx at 16 KiB,
>= 0.8x at 1 MiB, each with as many processes as nginx has workers.
The servers and wrk share the machine's CPUs (2 here), as they would in
production on a small VPS; nothing is pinned. Also reported: the CPU time
each server spends per response (user + system, from /proc, nginx's workers
and the app's serving child included), a figure that moves less than req/s
when other work shares the machine.
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

from aiohttp import web

from tamizdat.netutil import free_port
from tamizdat.server.static import StaticTree

from .common import Context, Result

REPO = Path(__file__).resolve().parents[1]  # on PYTHONPATH: the serving children import FACTORY from here
KIB = 1024
SIZES = {"16 KiB": (16 * KIB, 64), "1 MiB": (1024 * KIB, 16)}
GOALS = {"16 KiB": 0.2, "1 MiB": 0.8}
CONNECTIONS = 64
THREADS = 2
PROCESSES = 2  # the app's serving processes, as nginx's worker_processes

_APP = r"""
import sys
from tamizdat.server import processes
from bench.serve_bench import FACTORY, static_app

public, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = static_app(public)
if count > 1:
    app.cleanup_ctx.append(processes.Workers(FACTORY, public, "127.0.0.1", port, count).cleanup_ctx())
processes.serve(app, "127.0.0.1", port, reuse_port=count > 1)
"""
FACTORY = "bench.serve_bench:static_app"


def static_app(public: str) -> web.Application:
    """The app factory of every app process: the static routes only."""
    app = web.Application()
    app.add_routes(StaticTree(Path(public)).routes())
    return app


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


def listeners(port: int) -> int:
    """Listening TCP sockets on ``port`` (one per serving process), from /proc."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        count += int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A"
    return count


@contextmanager
def app_server(public: Path, count: int) -> Iterator[Server]:
    """The app in ``count`` processes on one port (the parent and ``count - 1`` children)."""
    port = free_port()
    args = [sys.executable, "-c", _APP, str(public), str(port), str(count)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, cwd=REPO, env=env)
    try:
        _wait(f"http://127.0.0.1:{port}{first_file(public)}", proc)
        deadline = time.monotonic() + 60
        while listeners(port) < count:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the app's {count} processes did not all listen on port {port}")
            time.sleep(0.05)
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


def _row(name: str, app: dict[str, float], ngx: dict[str, float], goal: float | None) -> Result:
    ratio = app["rps"] / ngx["rps"]
    return Result(
        name=name,
        value=round(app["rps"]),
        unit="req/s",
        baseline=round(ngx["rps"]),
        ratio=f"{ratio:.2f}x",
        goal=f">= {goal}x nginx" if goal is not None else "info",
        met=ratio >= goal if goal is not None else None,
        extra={"app": app, "nginx": ngx, "connections": CONNECTIONS},
    )


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
        with (
            app_server(public, PROCESSES) as multi,
            app_server(public, 1) as single,
            nginx_server(public, work) as nginx,
        ):
            servers = [("app", multi), ("nginx", nginx), ("app1", single)]
            for label, files in paths.items():
                ctx.log(f"serve {label}: {rounds} rounds of {seconds:g} s per server")
                for _, server in servers:  # warm: the app's memory cache, nginx's page cache
                    wrk(server, files, 1.0, work, 0)
                for i in range(rounds):
                    shift = i % len(servers)
                    for name, server in servers[shift:] + servers[:shift]:
                        figures.setdefault((label, name), []).append(wrk(server, files, seconds, work, i + 1))
    results = []
    keys = ("rps", "mbps", "p50_ms", "p99_ms", "cpu_us")
    for label in SIZES:
        med = {
            name: {k: statistics.median(f[k] for f in figures[(label, name)]) for k in keys}
            for name in ("app", "nginx", "app1")
        }
        app, ngx, one = med["app"], med["nginx"], med["app1"]
        name = f"serve {label} bundles: app StaticTree ({PROCESSES} processes) vs nginx (req/s)"
        results.append(_row(name, app, ngx, GOALS[label]))
        results.append(_row(f"serve {label} bundles: app in 1 process vs nginx (req/s)", one, ngx, None))
        results.append(
            Result(
                name=f"serve {label}: server CPU per response, app ({PROCESSES} processes) vs nginx",
                value=round(app["cpu_us"]),
                unit="us",
                baseline=round(ngx["cpu_us"]),
                ratio=f"{app['cpu_us'] / ngx['cpu_us']:.2f}x",
                goal="info",
            )
        )
        ctx.note(
            f"serve {label}: app x{PROCESSES} {app['mbps']:.0f} MB/s, p50 {app['p50_ms']:.1f} ms, "
            f"p99 {app['p99_ms']:.1f} ms; app x1 {one['mbps']:.0f} MB/s, {one['cpu_us']:.0f} us CPU/response; "
            f"nginx {ngx['mbps']:.0f} MB/s, p50 {ngx['p50_ms']:.1f} ms, p99 {ngx['p99_ms']:.1f} ms "
            f"({CONNECTIONS} connections, wrk {THREADS} threads, {rounds} rounds)"
        )
    return results
