"""Real processes on loopback: an origin (`tamizdat serve`), two witness mirrors (`tamizdat mirror run`).

The publisher's root names both mirrors as witnesses with their URLs (a group
of 2, quorum 2, ``max_age`` one hour), so each mirror's port is chosen before
it starts. :class:`World` builds that, waits with deadlines (polling
``/healthz``), keeps a baseline copy of the mirrors' data to go back to, and
reads what every node serves (checkpoints, witness views, proofs) from its
public tree on disk. Processes are stopped by their own pid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tamizdat.bundles.tlog.checkpoint import open_checkpoint
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.bundles.tlog.witness import origin_hash
from tamizdat.bundles.verify import verify_bundle
from tamizdat.errors import RejectedError
from tamizdat.keys.keydir import KeyDir
from tamizdat.netutil import free_port
from tamizdat.server import settings as settings_mod

TAMIZDAT = [sys.executable, "-c", "from tamizdat.cli import main; main()"]
MAX_AGE = 3600  # the root's max_age: cosignatures older than an hour do not make a checkpoint fresh
WITNESSES = ("mirror-1", "mirror-2")


# -- small tools -------------------------------------------------------------------------------


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 45.0, step: float = 0.25) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(step)
    raise AssertionError(f"not reached within {timeout:g} s: {what}")


def get_json(url: str, timeout: float = 5.0) -> Any:
    """A JSON answer, also from a 4xx/5xx (health says 503 when not ok)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def cli(*args: str | Path, code: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``tamizdat ARGS``; check the exit code unless ``code`` is None."""
    out = subprocess.run([*TAMIZDAT, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if code is not None:
        assert out.returncode == code, f"tamizdat {' '.join(map(str, args))}: exit {out.returncode}\n{out.stderr}"
    return out


class Proc:
    """A `tamizdat` subprocess, its output appended to a log file."""

    def __init__(self, args: list[str], log: Path):
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen([*TAMIZDAT, *self.args], stdout=self._out, stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.args[0]} exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None


# -- nodes -------------------------------------------------------------------------------------


class Node:
    """Something on loopback with a public tree and a /healthz."""

    name: str
    port: int
    public: Path
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def health(self) -> Any:
        self.proc.check_alive()
        return get_json(self.url + "healthz", timeout=3)

    def log(self) -> dict[str, Any]:
        """The ``log`` object of /healthz ({} before the first report)."""
        return self.health().get("log") or {}

    def up(self) -> bool:
        try:
            self.health()
            return True
        except (OSError, ValueError):
            return False

    def start(self) -> None:
        self.proc.start()

    def wait_up(self) -> None:
        wait_for(f"{self.name} answers /healthz", self.up, timeout=30, step=0.1)

    def stop(self) -> None:
        self.proc.stop()

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.public / rel).read_bytes()
        except FileNotFoundError:
            return None


class Origin(Node):
    """`tamizdat serve` over ``base/origin`` with the keys in ``keys``; rounds of 0.2 s, gathering every 1 s."""

    def __init__(self, base: Path, keys: Path):
        self.name = "origin"
        self.data = base / "origin"
        self.keys = keys
        self.port = free_port()
        self.public = self.data / "public"
        self.proc = Proc(["serve", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}"], base / "origin.log")
        self.data.mkdir()
        values = settings_mod.load(self.data / "settings.toml")
        values.update(round_seconds=0.2, keys=str(keys), tlog_gather_interval=1.0)
        settings_mod.save(self.data / "settings.toml", values)
        self.token = json.loads(cli("tokens", "create", "desk", "--data", self.data, "--json").stdout)["token"]
        self._articles = 0

    def api(self, path: str, body: Any) -> Any:
        req = urllib.request.Request(
            self.url + "api/v1/" + path,
            method="POST",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def publish(self, count: int = 1) -> dict[str, str]:
        """``count`` new articles; returns article id -> bundle id (published by the next round)."""
        out = {}
        for _ in range(count):
            self._articles += 1
            n = self._articles
            body = {
                "id": f"story-{n}",
                "lang": "en",
                "title": f"Story {n}",
                "body": f"Text {n}.",
                "published": "2026-01-05T10:00:00Z",
            }
            out[body["id"]] = self.api("articles", body)["versions"][-1]["bundle_id"]
        return out

    def retract(self, article_id: str) -> None:
        self.api(f"articles/{article_id}/retraction", {"reason": "court order"})

    def signed_size(self) -> int:
        return int(self.log().get("signed_size") or 0)


class Mirror(Node):
    """`tamizdat mirror run` on a port chosen in advance, syncing every second from ``upstream``."""

    def __init__(self, base: Path, name: str, root_keyid: str):
        self.name = name
        self.data = base / name
        self.public = self.data / "public"
        self.port = free_port()
        self.root_keyid = root_keyid
        self.upstream = ""
        self.proc = Proc([], base / f"{name}.log")
        vkey = cli("mirror", "witness-key", "--data", self.data, "--name", name).stdout.strip()
        self.policy_line = f"witness {name} {vkey} {self.url}"

    def start(self) -> None:
        self.proc.args = ["mirror", "run", "--data", str(self.data), "--root-key", self.root_keyid]
        self.proc.args += ["--upstream", self.upstream, "--listen", f"127.0.0.1:{self.port}", "--interval", "1"]
        super().start()

    def view_path(self, origin: str) -> str:
        return f"tlog/witness/{origin_hash(origin)}/checkpoint"

    def evidence(self, origin: str) -> dict[str, dict[str, bytes]]:
        """Evidence files kept in DATA/state/tlog-evidence and published under tlog/witness/<oh>/evidence."""
        where = {
            "state": self.data / "state" / "tlog-evidence",
            "public": self.public / "tlog" / "witness" / origin_hash(origin) / "evidence",
        }
        return {k: {p.name: p.read_bytes() for p in d.iterdir()} if d.is_dir() else {} for k, d in where.items()}


@dataclass
class World:
    """The origin, mirror-1 and mirror-2 (both witnesses), their keys, and a baseline to go back to."""

    base: Path
    keys: Path
    root_keyid: str
    origin: Origin
    mirrors: dict[str, Mirror]
    baseline: Path | None = None
    extra: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, base: Path) -> World:
        """Keys with a witness policy naming both mirrors (URLs, quorum 2, max_age 1 h); nothing started."""
        keys = base / "keys"
        KeyDir(keys).init("Attack Table News")
        root_keyid = KeyDir(keys).root_keyid()
        mirrors = {name: Mirror(base, name, root_keyid) for name in WITNESSES}
        policy = base / "policy.txt"
        lines = [m.policy_line for m in mirrors.values()]
        policy.write_text("\n".join(lines) + f"\ngroup mirrors 2 {' '.join(WITNESSES)}\nquorum mirrors\n")
        cli("keys", "log-policy", "--dir", keys, "--policy", policy, "--max-age", str(MAX_AGE))
        return cls(base, keys, root_keyid, Origin(base, keys), mirrors)

    @property
    def log_origin(self) -> str:
        return f"{self.root_keyid}/log"

    @property
    def m1(self) -> Mirror:
        return self.mirrors["mirror-1"]

    @property
    def m2(self) -> Mirror:
        return self.mirrors["mirror-2"]

    def nodes(self) -> list[Node]:
        return [self.origin, *self.mirrors.values()]

    def trust(self) -> LogTrust:
        trust = LogTrust.from_root(KeyDir(self.keys).chain().newest)
        assert trust is not None
        return trust

    # -- processes --------------------------------------------------------------------
    def start_mirrors(self) -> None:
        for m in self.mirrors.values():
            m.start()
        for m in self.mirrors.values():
            m.wait_up()

    def stop(self) -> None:
        for node in reversed(self.nodes()):
            node.stop()
        for p in self.extra:
            p.stop()

    def settled(self) -> bool:
        """The origin signs and has its quorum; both mirrors accepted its checkpoint, cosigned, have the quorum."""
        o = self.origin.log()
        if o.get("state") != "ok" or not o.get("quorum_met") or o.get("size") != o.get("signed_size"):
            return False
        for m in self.mirrors.values():
            r = m.log()
            if r.get("state") != "ok" or not r.get("quorum") or r.get("size") != o["signed_size"]:
                return False
        return True

    def wait_settled(self, timeout: float = 60.0) -> None:
        wait_for("origin and both mirrors agree on a quorum-cosigned checkpoint", self.settled, timeout=timeout)

    def wait_signed(self, size: int, timeout: float = 30.0) -> None:
        """Until the origin's signed checkpoint is at least ``size`` (its rounds are done)."""
        wait_for(f"origin signs size >= {size}", lambda: self.origin.signed_size() >= size, timeout=timeout)

    def wait_for_file(self, node: Node, rel: str, timeout: float = 30.0) -> bytes:
        wait_for(f"{node.name} serves {rel}", lambda: node.read(rel) is not None, timeout=timeout)
        data = node.read(rel)
        assert data is not None
        return data

    def save_baseline(self) -> None:
        """Stop the mirrors, copy their data directories, start them again."""
        for m in self.mirrors.values():
            m.stop()
        self.baseline = self.base / "baseline"
        shutil.rmtree(self.baseline, ignore_errors=True)
        for m in self.mirrors.values():
            shutil.copytree(m.data, self.baseline / m.name, symlinks=True)
        self.start_mirrors()

    def restore_baseline(self) -> None:
        """Both mirrors back to their baseline data (they catch up with the origin from there)."""
        assert self.baseline is not None
        for m in self.mirrors.values():
            m.stop()
        for m in self.mirrors.values():
            shutil.rmtree(m.data)
            shutil.copytree(self.baseline / m.name, m.data, symlinks=True)
        self.start_mirrors()

    # -- what is served -----------------------------------------------------------------
    def served_notes(self) -> Iterator[tuple[str, bytes]]:
        """Every checkpoint note any node serves: tlog/checkpoint, witness views, evidence aside, proofs."""
        for node in self.nodes():
            tlog = node.public / "tlog"
            paths = [tlog / "checkpoint", *tlog.glob("witness/*/checkpoint")]
            for p in paths:
                if p.is_file():
                    yield f"{node.name}:{p.relative_to(node.public)}", p.read_bytes()
            for p in [tlog / "index.tlog-proof", *(node.public / "bundles").glob("*.tlog-proof")]:
                if p.is_file():
                    yield f"{node.name}:{p.relative_to(node.public)}", ProofFile.parse(p.read_bytes()).checkpoint

    def cosigners(self, note: bytes) -> tuple[str, ...]:
        """Policy witnesses whose cosignature on ``note`` verifies."""
        trust = self.trust()
        policy = trust.policy
        signed = open_checkpoint(
            note, policy.log_verifiers(trust.origin), policy.witness_verifiers(), origin=trust.origin
        )
        return trust.witness_names(signed)

    def verified_bundles(self, node: Node) -> set[str]:
        """Every bundle file ``node`` serves verifies against the root key id; returns their ids."""
        ids = set()
        for path in (node.public / "bundles").glob("*.zip"):
            try:
                assert verify_bundle(path, root_keyid=self.root_keyid).bundle_id == path.stem
            except RejectedError as exc:
                raise AssertionError(f"{node.name} serves {path.name}, which does not verify: {exc}") from None
            ids.add(path.stem)
        return ids
