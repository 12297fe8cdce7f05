"""Bundle verification off the event loop.

A few bundles are checked in a worker thread. Many (a first sync, a big
import) go to worker processes, which also write the verified bytes into
place, so file creation runs in parallel too: verification is CPU work, and a
thread holding the GIL stalls the event loop's socket and file calls
(measured: 2,000 bundles took twice as long with verification in threads).

Workers are plain child processes (``python -c ...serve()``) talking over
their stdin and stdout: one length-prefixed request, one answer. They get
only a path or bytes, the trusted root bytes and the listed id, and answer
with the rejection (code, message, step) or nothing, so the decision rules
stay those of :mod:`mirror.trust`. Requests are pipelined (answers come back
in order), so a worker never waits for the event loop; the requests made in
one turn of the event loop leave in one write, down a 1 MiB pipe. A worker exits when
its stdin closes, so a killed mirror (``kill -9``) leaves no process behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import pickle
import sys
from types import TracebackType
from typing import Any

from tamizdat.errors import RejectedError

from .verify_worker import HEAD, TASKS, check_file, serve, write_file

try:
    import fcntl
except ImportError:  # not a Unix: pipes keep their size
    fcntl = None  # type: ignore[assignment]

_HEAD = HEAD
# The worker imports only mirror.verify_worker (no asyncio, no bundle builder): it starts in ~0.15 s, not ~0.6 s.
_WORKER = "from tamizdat.mirror.verify_worker import serve; serve()"

__all__ = ["TASKS", "Verifier", "check_file", "serve", "write_file"]


PIPE_BYTES = 1024 * 1024  # Linux's default pipe (64 KiB) holds three small bundles; the sync keeps ~16 in flight


def _widen(transport: asyncio.BaseTransport) -> None:
    """Ask for a larger pipe (Linux, up to /proc/sys/fs/pipe-max-size), so requests rarely wait in our buffer."""
    pipe = transport.get_extra_info("pipe")
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is not None and setsize is not None:
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(pipe.fileno(), setsize, PIPE_BYTES)


class _Worker:
    """One worker process; requests are pipelined and answered in order."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.used = False
        self.pending: collections.deque[asyncio.Future[dict[str, str]]] = collections.deque()
        self.dead: BaseException | None = None
        self.reader = asyncio.create_task(self._read())
        self._out: list[bytes] = []  # requests of this event-loop turn, written together
        if proc.stdin is not None:
            _widen(proc.stdin.transport)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                size = _HEAD.unpack(await self.proc.stdout.readexactly(_HEAD.size))[0]
                answer = pickle.loads(await self.proc.stdout.readexactly(size))
                future = self.pending.popleft()
                if not future.done():  # a cancelled caller's answer is simply dropped
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.dead = OSError("a verifier worker process stopped")
            self.dead.__cause__ = exc
            while self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_exception(self.dead)

    async def call(self, name: str, args: tuple[Any, ...]) -> dict[str, str]:
        if self.dead is not None:
            raise self.dead
        assert self.proc.stdin is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        self.used = True
        body = pickle.dumps((name, args))
        self.pending.append(future)
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(_HEAD.pack(len(body)) + body)
        await self.proc.stdin.drain()
        return await future

    def _flush(self) -> None:
        """One pipe write for every request made since the last one (answers still come one by one)."""
        data, self._out = b"".join(self._out), []
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)

    async def close(self) -> None:
        if not self.used and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # started early for a batch that did not come: no need to wait for its imports
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class Verifier:
    """``async with Verifier(jobs) as v: await v.check(...)``: threads or processes by ``jobs``."""

    def __init__(self, jobs: int, *, workers: int = 0, threshold: int = 500):
        self.jobs = jobs
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.threshold = threshold
        self._all: list[_Worker] = []

    async def __aenter__(self) -> Verifier:
        if self.jobs >= self.threshold and self.workers > 1:
            for _ in range(min(self.workers, self.jobs)):
                proc = await asyncio.create_subprocess_exec(
                    # -P: never the working directory on sys.path (a source checkout would shadow the install)
                    sys.executable,
                    "-P",
                    "-c",
                    _WORKER,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                self._all.append(_Worker(proc))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        workers, self._all = self._all, []
        await asyncio.gather(*(w.close() for w in workers))

    async def _run(self, name: str, *args: Any) -> dict[str, str]:
        if not self._all:
            return await asyncio.to_thread(TASKS[name], *args)
        worker = min(self._all, key=lambda w: len(w.pending))  # the least busy one
        answer = await worker.call(name, args)
        if "oserror" in answer:
            raise OSError(answer["oserror"])
        return answer

    async def check(
        self, path: str, root_bytes: bytes, bundle_id: str, *, size: int | None = None, sha256: str | None = None
    ) -> bool:
        """True if it verifies; False if a local file's bytes are not the listed ones; else raises."""
        answer = await self._run("check", path, root_bytes, bundle_id, size, sha256)
        if "differs" in answer:
            return False
        _raise(answer)
        return True

    async def write(self, data: bytes, tmp: str, final: str | None, root_bytes: bytes, bundle_id: str) -> None:
        """Verify bytes held in memory, then write them (into place, when ``final`` is given)."""
        _raise(await self._run("write", data, tmp, final, root_bytes, bundle_id))


def _raise(answer: dict[str, str]) -> None:
    if answer:
        raise RejectedError(answer["message"], code=answer["code"], step=answer.get("step"))
