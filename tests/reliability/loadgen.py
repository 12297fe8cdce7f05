"""Bounded HTTP load on loopback with wrk: many keep-alive connections, a path list, JSON results.

wrk (C, epoll) keeps ``connections`` requests in flight for ``seconds`` and
reports latency percentiles; a Lua script picks each request's path at random
from a list and prints the summary as one JSON line from ``done()``. Errors
counted: connect, read, write, timeout (no answer within ``timeout``) and
status (any answer >= 400; wrk counts 1xx-3xx as success). Loopback only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_SCRIPT = r"""
local paths = {}
for line in io.lines("%(paths)s") do table.insert(paths, line) end
math.randomseed(%(seed)d)
local statuses = {}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class LoadResult:
    label: str
    connections: int
    seconds: float
    requests: int
    bytes: int
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.label}: {self.connections} connections, {self.seconds:.1f} s, {self.requests} requests "
            f"({self.rate:.0f}/s), errors {self.error_count} {self.errors}, "
            f"latency p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.1f} ms"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1), "error_count": self.error_count}


def wrk_binary() -> str | None:
    return shutil.which("wrk")


class Wrk:
    """One wrk process over a list of paths (start, then :meth:`result`)."""

    def __init__(
        self,
        label: str,
        base: str,
        paths: list[str],
        *,
        connections: int,
        seconds: float,
        threads: int = 1,
        timeout: float = 30.0,
        seed: int = 1,
    ):
        binary = wrk_binary()
        if binary is None:
            raise RuntimeError("wrk is not installed (Debian package wrk)")
        host = urlsplit(base).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("load tests stay on loopback")
        self.label = label
        self.connections = connections
        self._dir = tempfile.TemporaryDirectory(prefix="wrk-")
        folder = Path(self._dir.name)
        (folder / "paths.txt").write_text("\n".join(paths) + "\n")
        script = folder / "script.lua"
        script.write_text(_SCRIPT % {"paths": folder / "paths.txt", "seed": seed})
        args = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"]
        args += ["--timeout", f"{max(1, round(timeout))}s", "-s", str(script), base.rstrip("/") + paths[0]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout: float = 120.0) -> LoadResult:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            self._dir.cleanup()
        lines = [line for line in out.splitlines() if line.startswith("WRK-JSON ")]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {out}\n{err}")
        doc = json.loads(lines[-1][len("WRK-JSON ") :])
        return LoadResult(
            label=self.label,
            connections=self.connections,
            seconds=doc["duration_us"] / 1e6,
            requests=doc["requests"],
            bytes=doc["bytes"],
            errors={k: int(doc[k]) for k in ("connect", "read", "write", "timeout", "status")},
            p50_ms=doc["p50_us"] / 1000,
            p90_ms=doc["p90_us"] / 1000,
            p99_ms=doc["p99_us"] / 1000,
            max_ms=doc["max_us"] / 1000,
        )
