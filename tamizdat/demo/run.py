"""`tamizdat demo`: an origin and two chained mirrors on loopback, with sample articles.

It makes demo keys (the root private key is moved aside, as an operator would
move it offline), starts an origin on the embedded SQLite store, publishes the
sample articles (English and Russian, with a legal-risk notice, an image with a
caption, sections and a byline) through the publishing API, starts mirror A
syncing from the origin and mirror B syncing from A, waits until B serves
verified copies, prints the addresses, the root key id and a share link, and
runs until Ctrl-C.

Both mirrors are the publisher's log witnesses (policy: 2 of mirror-a and
mirror-b): the demo also waits until mirror B serves a log proof of the first
bundle that both witnessed, and checks it as a reader would.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from tamizdat.bundles.tlog.reader import check_log_proof
from tamizdat.bundles.verify import verify_bundle
from tamizdat.clikit import emit, guarded, json_option
from tamizdat.errors import TamizdatError
from tamizdat.keys.keydir import ROOT_PRIVATE, KeyDir
from tamizdat.netutil import free_port as _free_port

from .sample_image import draw_sampling_map

PUBLISHER = "Demo Newsroom"
READY_TIMEOUT = 120.0


def prepare_sample(folder: Path) -> Path:
    """Copy the sample articles into ``folder`` with their image; return the JSON path."""
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("tamizdat.demo").joinpath("articles.json").read_bytes()
    target = folder / "articles.json"
    target.write_bytes(source)
    draw_sampling_map(folder / "sampling.png")
    return target


@dataclass
class Node:
    name: str
    url: str
    runner: web.AppRunner


async def _start(app: web.Application, port: int, name: str) -> Node:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Node(name, f"http://127.0.0.1:{port}", runner)


async def _until(check: Any, what: str, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise TamizdatError(f"demo: {what} did not happen within {timeout:.0f} s", code="demo-timeout")


@contextlib.asynccontextmanager
async def run_demo(work: Path, *, port: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """Start the demo network under ``work``; yield what it printed; stop it on exit."""
    from tamizdat.mirror.app import make_app as mirror_app
    from tamizdat.mirror.sync import Mirror
    from tamizdat.server import tokens
    from tamizdat.server.app import make_app as origin_app
    from tamizdat.server.appkeys import ORIGIN
    from tamizdat.server.datadir import DataDir
    from tamizdat.server.ingest import publish_files
    from tamizdat.server.reader.links import build_link

    started = time.monotonic()
    ports = [port, port + 1, port + 2] if port else [_free_port(), _free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    keydir = KeyDir(work / "keys")
    if not (keydir.path / "root.json").exists():
        keydir.init(PUBLISHER)
        witness_policy(keydir, work, urls[1:])
        shutil.move(keydir.path / ROOT_PRIVATE, work / "offline-root-keys")
    root_id = keydir.root_keyid()
    nodes: list[Node] = []
    try:
        origin = origin_app(work / "origin", keydir.path, round_seconds=0.5, mirrors=urls[1:], tlog_gather_interval=1.0)
        nodes.append(await _start(origin, ports[0], "origin"))
        service = origin[ORIGIN]
        token = await tokens.create(service.store, f"demo-{int(time.time())}")
        published = await publish_files([prepare_sample(work / "sample")], server=urls[0], token=token)
        await service.publisher.flush()

        wanted = {r["bundle_id"] for r in published}
        mirrors = []
        for name, data, upstream, p in (
            ("mirror A", "mirror-a", urls[0], ports[1]),
            ("mirror B", "mirror-b", urls[1], ports[2]),
        ):
            mirror = Mirror(DataDir(work / data), root_keyid=root_id, upstreams=[upstream + "/"], witness_name=data)
            mirrors.append(mirror)
            nodes.append(await _start(mirror_app(mirror, interval=2.0), p, name))
            await _until(lambda m=mirror: _holds(m, wanted), f"{name} syncing")

        first = published[0]["bundle_id"]
        held = mirrors[-1].data.bundle_path(first)
        checked = await asyncio.to_thread(verify_bundle, held, root_keyid=root_id)
        proof_path = held.with_name(held.name.removesuffix(".zip") + ".tlog-proof")
        await _until(lambda: _witnessed(proof_path, checked), "mirror B serving a witnessed log proof")
        logged = check_log_proof(first, proof_path.read_bytes(), checked.root, now=int(time.time()))
        link = build_link(urls[2], first, root_id, [urls[1], urls[0]])
        yield {
            "ok": True,
            "root_keyid": root_id,
            "origin": urls[0],
            "mirrors": urls[1:],
            "articles": [{"id": r["id"], "bundle_id": r["bundle_id"]} for r in published],
            "share_link": str(link),
            "verified_on_mirror_b": checked.bundle_id == first,
            "log": logged.line(),
            "ready_seconds": round(time.monotonic() - started, 2),
            "workdir": str(work),
        }
    finally:
        for node in reversed(nodes):
            await node.runner.cleanup()


def witness_policy(keydir: KeyDir, work: Path, urls: list[str]) -> None:
    """Make the two mirrors' witness keys and a root whose log needs both of them."""
    from tamizdat.bundles.tlog.trust import LogTrust
    from tamizdat.mirror.witnesskey import ensure_witness_key
    from tamizdat.server.datadir import DataDir

    lines = []
    for name, url in zip(("mirror-a", "mirror-b"), urls, strict=True):
        wkey = ensure_witness_key(DataDir(work / name).create(), name=name)
        lines.append(f"witness {name} {wkey.vkey()} {url}/")
    policy = "\n".join([*lines, "group mirrors 2 mirror-a mirror-b", "quorum mirrors"]) + "\n"
    keydir.set_log_policy(policy, check=LogTrust.from_root)


async def _witnessed(proof: Path, checked: Any) -> bool:
    if not proof.exists():
        return False
    try:
        verdict = check_log_proof(checked.bundle_id, proof.read_bytes(), checked.root, now=int(time.time()))
    except TamizdatError:
        return False
    return len(verdict.witnesses) == 2


async def _holds(mirror: Any, wanted: set[str]) -> bool:
    return all(mirror.data.bundle_path(b).exists() for b in wanted) and (mirror.data.public / "index.json").exists()


async def _serve(work: Path, port: int | None, as_json: bool, wait: bool) -> None:
    async with run_demo(work, port=port) as info:
        lines = [
            f"origin:    {info['origin']}/   (publishing API under /api/v1/)",
            f"mirror A:  {info['mirrors'][0]}/   (syncs from the origin)",
            f"mirror B:  {info['mirrors'][1]}/   (syncs from mirror A)",
            f"root key id (what readers pin): {info['root_keyid']}",
            f"share link: {info['share_link']}",
            f"log proof on mirror B: {info['log']}",
            f"ready in {info['ready_seconds']} s; every bundle on mirror B verified.",
        ]
        if wait:
            lines.append("Press Ctrl-C to stop.")
        emit(as_json, info, "\n".join(lines))
        if not wait:
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if not as_json:
            click.echo("stopping...")


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's keys and data here (default: a temporary folder, removed at the end).",
)
@click.option(
    "--port",
    type=click.IntRange(1024, 65533),
    default=None,
    help="Origin port; the mirrors take the next two (default: free ports).",
)
@click.option("--no-wait", is_flag=True, help="Start everything, check it, then stop (for scripts and tests).")
@json_option
@guarded
def demo_cmd(directory: Path | None, port: int | None, no_wait: bool, as_json: bool) -> None:
    """Run the demo: an origin and two chained mirrors with sample articles, on loopback."""
    work = directory or Path(tempfile.mkdtemp(prefix="demo-"))
    try:
        asyncio.run(_serve(work, port, as_json, wait=not no_wait))
    finally:
        if directory is None:
            shutil.rmtree(work, ignore_errors=True)
