"""Real processes for the reliability tests: an origin (`tamizdat serve`), mirrors (`tamizdat mirror run`,
`mirror sync --once`), a publishing client, and the invariant every kill must leave intact.

Every server binds 127.0.0.1 on a free port. Each process starts in its own
session (process group), so a kill -9 of the main process can be followed by
a clean-up of the workers it started (packaging and verification processes
from a forkserver): :meth:`Proc.kill9` kills the process by its id first (the
fault under test), then its group (what systemd does with the unit's cgroup).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamizdat.bundles.index import Index, Shard, SignedIndex, check_shard, verify_index
from tamizdat.bundles.tlog.errors import TileError
from tamizdat.bundles.tlog.tiles import TileId
from tamizdat.bundles.verify import verify_bundle
from tamizdat.errors import TamizdatError
from tamizdat.keys import dsse
from tamizdat.keys.keydir import KeyDir
from tamizdat.keys.root import Root
from tamizdat.netutil import free_port

REPO = Path(__file__).resolve().parents[2]  # the repository root (for python -m tests.reliability....)
FULL = os.environ.get("TAMIZDAT_FULL", "") not in ("", "0")
TAMIZDAT = [sys.executable, "-c", "from tamizdat.cli import main; main()"]
_WORDS = (
    "court report city people election minister police protest news official state law journalist week "
    "country independent sources investigation regional council budget water prices energy winter school "
    "hospital doctors workers factory river border village families children statement evidence archive"
)
WORDS = _WORDS.split()


def http(
    method: str, url: str, body: Any = None, *, token: str | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    """One request; (status, body). Connection trouble raises OSError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


def get(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    return http("GET", url, timeout=timeout)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    """Poll ``predicate`` (connection errors count as not yet) until it holds, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def article(n: int, *, prefix: str = "rel", chars: int = 6000, seed: int = 0) -> dict[str, Any]:
    """An article document for the API (about ``chars`` characters of Markdown)."""
    rng = random.Random(seed * 1_000_003 + n)
    words = []
    size = 0
    while size < chars:
        w = rng.choice(WORDS)
        words.append(w)
        size += len(w) + 1
    paras = [" ".join(words[i : i + 60]) + "." for i in range(0, len(words), 60)]
    return {
        "id": f"{prefix}-{n}",
        "lang": "en",
        "title": f"Report number {n} from the regional council",
        "body": "\n\n".join(paras),
        "published": "2026-01-01T10:00:00Z",
    }


# -- processes -------------------------------------------------------------------------------------


class Proc:
    """A subprocess in its own session, its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.args = args
        self.log_path = log
        self._log = log.open("ab")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAMIZDAT_TEST_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True, cwd=REPO
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _reap_group(self) -> None:
        """Workers the main process left behind (same process group, which this test created)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill9(self) -> None:
        """The fault: SIGKILL to the main process, then the group's leftovers."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._reap_group()
        self._log.close()

    def stop(self, timeout: float = 20.0) -> int | None:
        """A clean stop (SIGINT, as Ctrl-C or systemd's KillSignal would), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._reap_group()
        self._log.close()
        return self.proc.returncode


def run_cli(*args: str, timeout: float = 120.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAMIZDAT_TEST_")}
    full_env.update(env or {})
    return subprocess.run([*TAMIZDAT, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


@dataclass
class Origin:
    """A publisher: key directory, data directory and (when started) a `tamizdat serve` process."""

    workdir: Path
    round_seconds: float = 0.2
    port: int = field(default_factory=free_port)
    proc: Proc | None = None
    token: str = ""
    starts: int = 0

    def __post_init__(self) -> None:
        self.keys = self.workdir / "keys"
        self.data = self.workdir / "data"
        if not self.keys.exists():
            kd = KeyDir(self.keys)
            kd.init("Reliability Desk")
            (self.keys / "root-private").rename(self.workdir / "offline-root")
        self.data.mkdir(parents=True, exist_ok=True)
        settings = self.data / "settings.toml"
        if not settings.exists():
            settings.write_text(f"round_seconds = {self.round_seconds}\n")
        self.root_keyid = KeyDir(self.keys).root_keyid()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def root(self) -> Root:
        return KeyDir(self.keys).chain().newest

    def start(self, timeout: float = 60.0) -> Origin:
        self.starts += 1
        args = [*TAMIZDAT, "serve", "--data", str(self.data), "--keys", str(self.keys)]
        args += ["--listen", f"127.0.0.1:{self.port}"]
        self.proc = Proc(args, self.workdir / f"origin-{self.starts}.log")
        proc = self.proc

        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"origin exited:\n{proc.log()[-4000:]}")
            return get(f"{self.url}/index.json", timeout=2)[0] == 200

        wait_until(up, timeout, "the origin to serve index.json")
        if not self.token:
            made = run_cli("tokens", "create", "reliability", "--data", str(self.data), "--json")
            assert made.returncode == 0, made.stderr
            self.token = json.loads(made.stdout)["token"]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()
        self.proc = None

    def publish(self, doc: dict[str, Any], timeout: float = 60.0) -> tuple[int, Any]:
        status, body = http("POST", f"{self.url}/api/v1/articles", doc, token=self.token, timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def status(self) -> dict[str, Any]:
        status, body = http("GET", f"{self.url}/api/v1/status", token=self.token, timeout=10)
        assert status == 200, body
        doc: dict[str, Any] = json.loads(body)
        return doc

    def listed(self) -> dict[str, str]:
        """Bundle id -> file SHA-256 of every non-retracted bundle in the served, verified index."""
        _, shards = fetch_index(self.url, self.root())
        return {e.id: e.sha256 for s in shards for e in s.bundles if e.retracted is None}

    def index_raw(self) -> bytes:
        status, raw = get(f"{self.url}/index.json", timeout=10)
        assert status == 200
        return raw


def fetch_index(base: str, root: Root) -> tuple[SignedIndex, list[Shard]]:
    """``/index.json`` verified against ``root`` and its shards checked against it, over HTTP."""
    status, raw = get(f"{base}/index.json", timeout=10)
    assert status == 200, status
    signed = verify_index(raw, root)
    shards = []
    for ref in signed.index.shards:
        st, data = get(f"{base}/index/{ref.sha256}.json", timeout=10)
        assert st == 200, (ref.sha256, st)
        shards.append(check_shard(ref, data))
    return signed, shards


class MirrorDaemon:
    """`tamizdat mirror run` on a free port over ``data``."""

    def __init__(
        self,
        data: Path,
        root_keyid: str,
        upstream: str,
        *,
        interval: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        wait: bool = True,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        args = [*TAMIZDAT, "mirror", "run", "--data", str(data), "--root-key", root_keyid, "--upstream", upstream]
        args += ["--listen", f"127.0.0.1:{self.port}", "--interval", str(interval)]
        self.proc = Proc(args, log or data.parent / f"{data.name}.log", env=env)
        if wait:
            self.wait_up()

    def wait_up(self, timeout: float = 60.0) -> None:
        def up() -> bool:
            if not self.proc.alive():
                raise AssertionError(f"mirror exited:\n{self.proc.log()[-4000:]}")
            return get(f"{self.url}/healthz", timeout=2)[0] in (200, 503)

        wait_until(up, timeout, "the mirror to answer /healthz")

    def health(self) -> dict[str, Any]:
        _, body = get(f"{self.url}/healthz", timeout=10)
        doc: dict[str, Any] = json.loads(body)
        return doc

    def index_version(self) -> int:
        index = self.health().get("index") or {}
        return int(index.get("version") or 0)


# -- the invariant -----------------------------------------------------------------------------------


@dataclass
class StoreReport:
    index_version: int  # 0: no index served yet
    listed: int
    files: int
    extra: int  # verified bundle files the served index does not list yet (renamed in before a kill)
    work_files: list[str]  # files in the served tree that are not part of it (only when allowed)


def check_store(
    public: Path, root: Root, root_keyid: str, *, signed: Iterable[bytes] = (), allow_work_files: bool = False
) -> StoreReport:
    """What a killed or failed sync must leave: ``index.json`` absent, or a complete index signed by
    the publisher (one of ``signed`` if given) whose shards are present and match, and whose every
    listed bundle is present with the listed hash; every bundle file verifies under its own id; no
    work file in the served tree."""
    known = set(signed)
    path = public / "index.json"
    listed: dict[str, str] = {}
    version = 0
    if path.exists():
        raw = path.read_bytes()
        if known:
            assert raw in known, "the served index.json is not one the publisher signed"
        index = verify_index(raw, root).index
        version = index.version
        for ref in index.shards:
            data = (public / "index" / f"{ref.sha256}.json").read_bytes()
            shard = check_shard(ref, data)
            listed.update((e.id, e.sha256) for e in shard.bundles if e.retracted is None)
    files = {p.name[:-4]: p for p in (public / "bundles").glob("*.zip")}
    for bid, sha in listed.items():
        assert bid in files, f"the served index lists bundle {bid[:16]} but its file is absent"
        assert hashlib.sha256(files[bid].read_bytes()).hexdigest() == sha, f"bundle {bid[:16]} differs from its entry"
    for bid, p in files.items():
        assert verify_bundle(p, root_keyid=root_keyid).bundle_id == bid, f"{p.name} holds another bundle"
    stray = [
        str(p.relative_to(public)) for p in public.rglob("*") if p.is_file() and not _served_name(p.relative_to(public))
    ]
    assert allow_work_files or not stray, f"work files in the served tree: {stray}"
    return StoreReport(version, len(listed), len(files), len(set(files) - set(listed)), stray)


def _served_name(rel: Path) -> bool:
    parts = rel.parts
    name = parts[-1]
    if len(parts) == 1:
        return name in ("index.json", "root.json")
    folder = parts[0]
    if folder == "bundles":
        return (name.endswith(".zip") and len(name) == 68) or (name.endswith(".tlog-proof") and len(name) == 75)
    if folder == "tlog":  # the transparency log's static paths (docs/transparency.md)
        return _log_name(parts[1:])
    if folder == "index":
        return name.endswith(".json") and len(name) == 69
    if folder == "roots":
        return name.endswith(".json") and name[:-5].isdigit()
    return False


def _log_name(parts: tuple[str, ...]) -> bool:
    if parts in (("checkpoint",), ("index.tlog-proof",)):
        return True
    if len(parts) == 2 and parts[0] == "index":  # the archive of logged indexes
        return parts[1].endswith(".json") and len(parts[1]) == 69
    if parts[0] == "tile":
        try:
            TileId.parse("/".join(parts))
        except TileError:
            return False
        return True
    return parts[0] == "witness" and len(parts) >= 3 and len(parts[1]) == 64 and not parts[-1].startswith(".tmp-")


class ServedWatcher:
    """Reads what a mirror serves over HTTP while it syncs (and is killed): every ``index.json`` it
    answers must verify, its shards must match, and the bundles it lists must verify byte for byte.

    Connection errors (the process is down) are counted, not failures; anything served that does
    not check out is a failure."""

    def __init__(self, base: Callable[[], str | None], root: Root, root_keyid: str, seed: int = 7):
        self.base = base
        self.root = root
        self.root_keyid = root_keyid
        self.rng = random.Random(seed)
        self.failures: list[str] = []
        self.indexes = 0
        self.bundles = 0
        self.down = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="served-watcher", daemon=True)

    def __enter__(self) -> ServedWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        seen: set[str] = set()
        while not self._stop.is_set():
            base = self.base()
            if base is None:
                time.sleep(0.05)
                continue
            try:
                self._once(base, seen)
            except OSError:
                self.down += 1
                time.sleep(0.05)
            except (AssertionError, TamizdatError) as err:
                self.failures.append(f"{type(err).__name__}: {err}")

    def _once(self, base: str, seen: set[str]) -> None:
        status, raw = get(f"{base}/index.json", timeout=10)
        if status == 404:
            return  # nothing served yet: allowed
        assert status == 200, f"index.json answered {status}"
        signed = verify_index(raw, self.root)
        self.indexes += 1
        entries = []
        for ref in signed.index.shards:
            st, data = get(f"{base}/index/{ref.sha256}.json", timeout=10)
            assert st == 200, f"shard {ref.sha256[:16]} of the served index answered {st}"
            entries += [e for e in check_shard(ref, data).bundles if e.retracted is None]
        fresh = [e for e in entries if e.id not in seen]
        for e in self.rng.sample(fresh or entries, min(4, len(fresh or entries))):
            st, body = get(f"{base}/bundles/{e.id}.zip", timeout=10)
            assert st == 200, f"bundle {e.id[:16]} listed by the served index answered {st}"
            assert hashlib.sha256(body).hexdigest() == e.sha256, f"bundle {e.id[:16]} served with other bytes"
            assert verify_bundle(io.BytesIO(body), root_keyid=self.root_keyid).bundle_id == e.id
            seen.add(e.id)
            self.bundles += 1


def index_version_of(raw: bytes) -> int:
    return Index.from_payload(dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE).payload).version
