"""Mirror sync against an rsync daemon on the same bundles, in the same run.

Figures (medians of several runs):

- full sync, files/s: an empty mirror syncs N bundles (~20 KiB each) over HTTP
  with full verification, against ``rsync -a`` from an rsync daemon into an
  empty folder (goal: >= 0.5x rsync);
- no-op sync: a mirror that is up to date syncs again, in the daemon (state
  loaded), against rsync's no-op run (goal: one request, <= 0.1x rsync's time);
- one new bundle among 10,000: requests and bytes of the incremental sync
  (goal: <= 3 requests, bytes <= 1.2x the bundle plus one shard);
- verification floor (info): the least CPU work any verifying sync must do for
  the same files on this machine's CPUs, in the same run: one process per CPU,
  each for its share of the bundles already in memory reads every ZIP entry
  (inflate and CRC), hashes it (SHA-256), checks the manifest's one Ed25519
  signature, writes the file to a fresh folder and renames it; no HTTP, no
  pipe, no index. Its ratio to rsync says whether a goal is reachable at all
  with a signature check per bundle.

The upstream is nginx when installed (as in production), else the app's own
static tree. Fixtures are built once and cached under the temp folder.
Run: ``python -m bench.mirror_bench [--quick]``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as dt
import hashlib
import io
import json
import multiprocessing
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.bundles.build import build_bundle
from tamizdat.bundles.content import ArticleInput, BundleInput
from tamizdat.bundles.index import ArticleInfo, BundleEntry, Index, ShardedList, sign_index
from tamizdat.bundles.manifest import MANIFEST_NAME
from tamizdat.keys import timefmt
from tamizdat.keys.dsse import INDEX_TYPE, ROOT_TYPE, Envelope, pae
from tamizdat.keys.ed25519 import PublicKey
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.mirror.sync import Mirror
from tamizdat.netutil import free_port
from tamizdat.server.datadir import DataDir

CACHE = Path(tempfile.gettempdir()) / "tamizdat-bench-mirror"
SEEDS = [bytes([7]) * 32, bytes([8]) * 32]
WORDS = [
    "the",
    "government",
    "court",
    "said",
    "report",
    "city",
    "people",
    "election",
    "minister",
    "police",
    "protest",
    "news",
    "year",
    "official",
    "state",
    "law",
    "journalist",
    "week",
    "country",
    "after",
    "before",
    "during",
    "against",
    "independent",
    "according",
    "sources",
    "investigation",
    "regional",
    "council",
    "budget",
    "water",
    "prices",
    "energy",
    "winter",
    "school",
    "hospital",
    "doctors",
    "workers",
    "factory",
    "river",
    "border",
    "village",
    "families",
    "children",
    "elders",
    "statement",
    "evidence",
    "documents",
    "archive",
]


# -- fixtures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A publisher's static tree (what an origin serves) and what built it."""

    public: Path
    keys: Path
    root_keyid: str
    entries: list[BundleEntry]


def _article(i: int, chars: int, moment: dt.datetime) -> ArticleInput:
    rng = random.Random(i)
    body = " ".join(rng.choice(WORDS) for _ in range(chars // 6))
    return ArticleInput(id=f"bench-{i}", lang="en", title=f"Bench story {i}", body=body, published=moment)


def _build_range(args: tuple[str, int, int, int, str]) -> list[dict[str, Any]]:
    keys, start, stop, chars, out = args
    kd = KeyDir(Path(keys))
    chain = kd.chain()
    created = chain.newest.signing_keys[next(iter(chain.newest.signing_keys_for("bundle")))].not_before
    signer = kd.signer("bundle", at=created)
    rows = []
    for i in range(start, stop):
        tmp = Path(out) / f".build-{i}.zip"
        built = build_bundle(
            BundleInput(articles=(_article(i, chars, created),)),
            signer=signer,
            chain=chain,
            out=tmp,
            created=created,
            durable=False,
        )
        os.replace(tmp, Path(out) / f"{built.bundle_id}.zip")
        rows.append(
            {
                "i": i,
                "id": built.bundle_id,
                "sha256": built.sha256,
                "size": built.size,
                "created": timefmt.format(created),
            }
        )
    return rows


def _entry(row: dict[str, Any]) -> BundleEntry:
    return BundleEntry(
        id=row["id"],
        sha256=row["sha256"],
        size=row["size"],
        created=timefmt.parse(row["created"]),
        kind="article",
        articles=(ArticleInfo(f"bench-{row['i']}", 1, "en", f"Bench story {row['i']}"),),
    )


def publisher(keys: Path) -> str:
    if not (keys / "roots").exists():
        kd = KeyDir(keys)
        kd.init("Bench News", seeds=SEEDS, now=timefmt.now() - dt.timedelta(days=1))
    return KeyDir(keys).root_keyid()


def build_tree(name: str, count: int, chars: int) -> Tree:
    """``count`` bundles of about ``chars`` characters each, cached between runs."""
    base = CACHE / f"{name}-{count}-{chars}"
    keys = CACHE / "keys"
    root_keyid = publisher(keys)
    public = base / "public"
    manifest = base / "entries.json"
    if not manifest.exists():
        shutil.rmtree(base, ignore_errors=True)
        (public / "bundles").mkdir(parents=True)
        workers = max(1, min(4, os.cpu_count() or 1))
        step = max(1, count // (workers * 4))
        jobs = [(str(keys), s, min(count, s + step), chars, str(public / "bundles")) for s in range(0, count, step)]
        rows: list[dict[str, Any]] = []
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            for part in pool.map(_build_range, jobs):
                rows.extend(part)
        rows.sort(key=lambda r: r["i"])
        manifest.write_text(json.dumps(rows))
    rows = json.loads(manifest.read_text())
    tree = Tree(public, keys, root_keyid, [_entry(r) for r in rows])
    sign_tree(tree, version=1)
    return tree


def sign_tree(tree: Tree, *, version: int) -> None:
    """(Re-)write roots, shards and a fresh index over ``tree.entries`` (index.json last)."""
    kd = KeyDir(tree.keys)
    listing = ShardedList()
    for e in tree.entries:
        listing.append(e)
    public = tree.public
    (public / "index").mkdir(parents=True, exist_ok=True)
    (public / "roots").mkdir(parents=True, exist_ok=True)
    for v, doc in enumerate(kd.root_documents(), 1):
        (public / "roots" / f"{v}.json").write_bytes(doc)
    (public / "root.json").write_bytes(kd.root_documents()[-1])
    refs = []
    for ref, data in listing.render():
        path = public / "index" / f"{ref.sha256}.json"
        if not path.exists():
            path.write_bytes(data)
        refs.append(ref)
    now = timefmt.now()
    index = Index(version, now, now + dt.timedelta(days=1), kd.chain().newest.version, (), tuple(refs))
    (public / "index.json").write_bytes(sign_index(index, kd.signer("index", at=now)))
    os.chmod(public, 0o755)


def add_bundle(tree: Tree, i: int, chars: int, version: int) -> BundleEntry:
    row = _build_range((str(tree.keys), i, i + 1, chars, str(tree.public / "bundles")))[0]
    entry = _entry(row)
    tree.entries.append(entry)
    sign_tree(tree, version=version)
    return entry


# -- servers -------------------------------------------------------------------------------------


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


NGINX_CONF = """\
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
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

STATIC_SERVER = """
import sys
from aiohttp import web
from pathlib import Path
from tamizdat.server.static import StaticTree
app = web.Application()
app.add_routes(StaticTree(Path(sys.argv[1])).routes())
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


@contextmanager
def http_upstream(public: Path, workdir: Path) -> Iterator[tuple[str, str]]:
    """Serve ``public`` over HTTP on loopback: nginx if installed, else the app's StaticTree."""
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    workdir.mkdir(parents=True, exist_ok=True)
    if nginx:
        conf = workdir / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, dir=workdir, port=port, root=public))
        args = [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log"), "-g", "daemon off;"]
        kind = "nginx"
    else:
        args = [sys.executable, "-c", STATIC_SERVER, str(public), str(port)]
        kind = "aiohttp StaticTree"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(url + "root.json", proc)
        yield url, kind
    finally:
        _stop(proc)


@contextmanager
def rsync_daemon(public: Path, workdir: Path) -> Iterator[str]:
    """An rsync daemon exporting ``public`` as module ``tree`` on loopback."""
    rsync = shutil.which("rsync")
    if rsync is None:
        raise RuntimeError("rsync is not installed (apt package rsync)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "rsyncd.conf"
    conf.write_text(
        f"pid file = {workdir}/rsyncd.pid\nuse chroot = false\nreverse lookup = no\n"
        f"uid = {os.getuid()}\ngid = {os.getgid()}\n"
        f"[tree]\n    path = {public}\n    read only = true\n"
    )
    proc = subprocess.Popen(
        [rsync, "--daemon", "--no-detach", f"--config={conf}", f"--port={port}", "--address=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rsync://127.0.0.1:{port}/tree/"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run([rsync, url], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


def rsync_copy(url: str, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["rsync", "-a", url, str(dest) + "/"], check=True, capture_output=True)
    return time.perf_counter() - start


# -- verification floor --------------------------------------------------------------------------


def _floor_share(bundles: list[tuple[str, bytes]], keys: dict[str, PublicKey], out: str, go: Any, done: Any) -> None:
    """One process's share of the floor: ZIP read + SHA-256 of every entry, one Ed25519 check, write, rename."""
    go.wait()
    start = time.process_time()
    checked = 0
    for bundle_id, data in bundles:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                body = zf.read(info)  # inflate + CRC
                hashlib.sha256(body).digest()
                if info.filename == MANIFEST_NAME:
                    env = json.loads(body)
                    sig = env["signatures"][0]
                    message = pae(env["payloadType"], base64.b64decode(env["payload"]))
                    if not keys[sig["keyid"]].verify(base64.b64decode(sig["sig"]), message):
                        raise RuntimeError(f"floor: bad signature on {bundle_id}")
                    checked += 1
        tmp = f"{out}/.{bundle_id}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        os.rename(tmp, f"{out}/{bundle_id}.zip")
    if checked != len(bundles):
        raise RuntimeError("floor: a bundle without its manifest")
    done.put(time.process_time() - start)


def verification_floor(tree: Tree, workdir: Path) -> tuple[float, float]:
    """Seconds for the floor over ``tree``'s bundles on os.cpu_count() processes, and CPU seconds per bundle."""
    root = Root.from_payload(
        Envelope.from_bytes((tree.public / "root.json").read_bytes(), expected_type=ROOT_TYPE).payload
    )
    keys = root.signing_keys_for("bundle")
    bundles = [(e.id, (tree.public / "bundles" / f"{e.id}.zip").read_bytes()) for e in tree.entries]
    procs = max(1, os.cpu_count() or 1)
    methods = multiprocessing.get_all_start_methods()
    ctx: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")  # fork: the bytes are not copied
    go, done = ctx.Event(), ctx.Queue()
    out = workdir / f"floor-{time.monotonic_ns()}"
    out.mkdir(parents=True)
    workers = [
        ctx.Process(target=_floor_share, args=(bundles[n::procs], keys, str(out), go, done)) for n in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(0.2)  # every process started and waiting: their start-up is not part of the floor
    start = time.perf_counter()
    go.set()
    spent: list[float] = []
    while len(spent) < len(workers):
        try:
            spent.append(done.get(timeout=1))
        except queue.Empty:
            if any(w.exitcode not in (None, 0) for w in workers):
                raise RuntimeError("a verification floor process failed") from None
    seconds = time.perf_counter() - start
    cpu = sum(spent)
    for w in workers:
        w.join(30)
    return seconds, cpu / len(bundles)


# -- measurements --------------------------------------------------------------------------------


def _row(
    name: str,
    value: float,
    unit: str,
    baseline: float | None,
    ratio: float | None,
    goal: str,
    met: bool | None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        "ratio": "-" if ratio is None else f"{ratio:.2f}x",
        "goal": goal,
        "met": met,
        **({"extra": extra} if extra else {}),
    }


def _fresh(runs: Path, label: str, n: int) -> Path:
    path = runs / f"{label}-{n}"
    path.mkdir(parents=True)
    return path


def main(quick: bool = False) -> list[dict[str, Any]]:
    count = 200 if quick else 2000
    big = 1000 if quick else 10_000
    repeats = 3 if quick else 5
    chars = 30_000  # about 18-20 KiB per bundle once zipped
    CACHE.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="mirror-bench-", dir=CACHE))
    try:
        tree = build_tree("full", count, chars)
        size = sum(e.size for e in tree.entries) / len(tree.entries)
        runs = work / "runs"
        with (
            http_upstream(tree.public, work / "http") as (url, server),
            rsync_daemon(tree.public, work / "rsync") as rs,
        ):
            ours: list[float] = []
            theirs: list[float] = []
            last: Mirror | None = None
            for n in range(repeats):
                dest = _fresh(runs, "rsync", n)
                theirs.append(rsync_copy(rs, dest))
                m = Mirror(DataDir(_fresh(runs, "mirror", n)), root_keyid=tree.root_keyid, upstreams=[url])
                start = time.perf_counter()
                summary = asyncio.run(m.sync())
                ours.append(time.perf_counter() - start)
                if not summary.ok or summary.new != count:
                    raise RuntimeError(f"bench sync failed: {summary.to_json()}")
                last = m
            fps, base = count / statistics.median(ours), count / statistics.median(theirs)
            rows.append(
                _row(
                    f"full sync {count} x {size / 1024:.0f} KiB, verified",
                    fps,
                    "files/s",
                    base,
                    fps / base,
                    ">= 0.5x rsync",
                    fps >= 0.5 * base,
                    upstream=server,
                )
            )

            floor: list[float] = []
            floor_cpu: list[float] = []
            for _ in range(repeats):
                seconds, per_bundle = verification_floor(tree, runs)
                floor.append(seconds)
                floor_cpu.append(per_bundle)
            floor_fps = count / statistics.median(floor)
            rows.append(
                _row(
                    f"verification floor {count} (zip read, SHA-256, Ed25519, write; {os.cpu_count()} CPUs)",
                    floor_fps,
                    "files/s",
                    base,
                    floor_fps / base,
                    "-",
                    None,
                    cpu_ms_per_bundle=round(statistics.median(floor_cpu) * 1000, 3),
                    sync_vs_floor=f"{fps / floor_fps:.2f}x",
                )
            )

            # No-op: the daemon's periodic sync with nothing new, against rsync's no-op.
            assert last is not None
            noop: list[float] = []
            requests: list[int] = []
            rsync_noop: list[float] = []
            for _ in range(repeats):
                rsync_noop.append(rsync_copy(rs, runs / "rsync-0"))

                async def again(mirror: Mirror = last) -> tuple[float, int]:
                    start = time.perf_counter()
                    s = await mirror.sync()
                    return time.perf_counter() - start, s.requests

                t, r = asyncio.run(again())
                noop.append(t)
                requests.append(r)
            ours_noop, rs_noop = statistics.median(noop), statistics.median(rsync_noop)
            rows.append(
                _row(
                    f"no-op sync ({count} held)",
                    ours_noop * 1000,
                    "ms",
                    rs_noop * 1000,
                    ours_noop / rs_noop,
                    "1 request, <= 0.1x rsync",
                    max(requests) == 1 and ours_noop <= 0.1 * rs_noop,
                    requests=max(requests),
                    upstream=server,
                )
            )
            cli = []
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "from tamizdat.cli import main; main()",
                        "mirror",
                        "sync",
                        "--once",
                        "--data",
                        str(last.data.root),
                        "--root-key",
                        tree.root_keyid,
                        "--upstream",
                        url,
                    ],
                    check=True,
                    capture_output=True,
                )
                cli.append(time.perf_counter() - start)
            rows.append(
                _row(
                    "no-op `mirror sync --once` (new process)",
                    statistics.median(cli) * 1000,
                    "ms",
                    rs_noop * 1000,
                    statistics.median(cli) / rs_noop,
                    "-",
                    None,
                )
            )
        shutil.rmtree(runs, ignore_errors=True)

        # One new bundle among many: requests and bytes of the incremental sync.
        many = build_tree("many", big, 2_000)
        seeded = Mirror(DataDir(work / "many-mirror"), root_keyid=many.root_keyid, upstreams=[str(many.public)])
        start = time.perf_counter()
        s = asyncio.run(seeded.sync())
        seed_time = time.perf_counter() - start
        if not s.ok:
            raise RuntimeError(f"seeding failed: {s.to_json()}")
        rows.append(
            _row(f"full sync {big} from a directory, verified", big / seed_time, "files/s", None, None, "-", None)
        )
        req: list[int] = []
        ratios: list[float] = []
        nbytes: list[int] = []
        times: list[float] = []
        with http_upstream(many.public, work / "http-many") as (url, server):
            m = Mirror(DataDir(work / "many-mirror"), root_keyid=many.root_keyid, upstreams=[url])
            for n in range(repeats):
                entry = add_bundle(many, big + 1000 + n, 2_000, version=2 + n)
                raw = (many.public / "index.json").read_bytes()
                last_ref = Index.from_payload(Envelope.from_bytes(raw, expected_type=INDEX_TYPE).payload).shards[-1]
                start = time.perf_counter()
                s = asyncio.run(m.sync())
                times.append(time.perf_counter() - start)
                if not s.ok or s.new != 1:
                    raise RuntimeError(f"incremental sync failed: {s.to_json()}")
                req.append(s.requests)
                nbytes.append(s.bytes)
                ratios.append(s.bytes / (entry.size + last_ref.size))
            # The same from cron: a new process each time (loads the trusted state, re-reads held shards).
            cold: list[float] = []
            cold_req: list[int] = []
            for n in range(repeats):
                add_bundle(many, big + 2000 + n, 2_000, version=2 + repeats + n)
                args = [sys.executable, "-c", "from tamizdat.cli import main; main()", "mirror", "sync", "--once"]
                args += [
                    "--json",
                    "--data",
                    str(work / "many-mirror"),
                    "--root-key",
                    many.root_keyid,
                    "--upstream",
                    url,
                ]
                start = time.perf_counter()
                out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
                cold.append(time.perf_counter() - start)
                doc = json.loads(out)
                if not doc["ok"] or doc["new"] != 1:
                    raise RuntimeError(f"incremental sync failed: {doc}")
                cold_req.append(int(doc["requests"]))
            many.entries[:] = many.entries[:big]
        rows.append(
            _row(
                f"one new bundle among {big}: requests",
                statistics.median(req),
                "requests",
                None,
                None,
                "<= 3",
                max(req) <= 3,
                upstream=server,
            )
        )
        rows.append(
            _row(
                f"one new bundle among {big}: bytes / (bundle + shard)",
                statistics.median(ratios),
                "x",
                None,
                None,
                "<= 1.2x",
                max(ratios) <= 1.2,
                bytes=int(statistics.median(nbytes)),
            )
        )
        rows.append(
            _row(f"one new bundle among {big}: time", statistics.median(times) * 1000, "ms", None, None, "-", None)
        )
        rows.append(
            _row(
                f"one new bundle among {big}: `mirror sync --once` (new process)",
                statistics.median(cold) * 1000,
                "ms",
                None,
                None,
                "<= 3 requests",
                max(cold_req) <= 3,
                requests=max(cold_req),
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    head = ["name", "value", "unit", "baseline", "ratio", "goal", "met"]
    table = [head] + [[str(r[k]) for k in head] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    for line in table:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    result = main(quick="--quick" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
