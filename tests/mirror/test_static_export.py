"""`mirror export` is a static site: a real nginx serves it and a second mirror syncs from it over HTTP.

In CI (``CI`` set) a missing nginx fails the test; locally it is skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tamizdat.mirror.export import export_tree

from .conftest import MirrorFactory, check_served, free_port, nginx_binary, wait_for
from .simulator import Simulator

NGINX_CONF = """\
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ application/json json; application/zip zip; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def _nginx() -> str:
    binary = nginx_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (apt package nginx)")
        pytest.skip("nginx is not installed")
    return binary


@contextmanager
def nginx_serving(root: Path, workdir: Path) -> Iterator[str]:
    binary = _nginx()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, dir=workdir, port=port, root=root))
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        import urllib.request

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with urllib.request.urlopen(url + "root.json", timeout=1) as resp:
                return bool(resp.status == 200)

        wait_for(up, timeout=20)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


async def test_export_served_by_nginx(sim: Simulator, make_mirror: MirrorFactory, tmp_path: Path) -> None:
    _nginx()
    site = tmp_path / "site"
    with sim.serve() as origin:
        a = make_mirror(sim.root_keyid, [origin])
        assert (await a.sync()).ok
        export_tree(a.data, sim.root_keyid, site)

        with nginx_serving(site, tmp_path / "nginx") as url:
            b = make_mirror(sim.root_keyid, [url])
            s = await b.sync()
            assert s.ok and s.new == 3, s.errors
            assert (b.data.public / "index.json").read_bytes() == (a.data.public / "index.json").read_bytes()
            check_served(b.data.public, sim.root_keyid)

            # An update at the origin reaches B through A's re-export: index, one shard, one bundle.
            sim.add(1)
            sim.retract(sim.listed_ids()[0])
            sim.publish()
            assert (await a.sync()).ok
            export_tree(a.data, sim.root_keyid, site)
            s = await b.sync()
            assert s.ok and s.new == 1 and s.retracted == 1, s.errors
            assert s.requests <= 3
            check_served(b.data.public, sim.root_keyid)
            assert (b.data.public / "index.json").read_bytes() == sim.files["index.json"]
