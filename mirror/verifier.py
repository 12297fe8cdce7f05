"""Bundle verification off the event loop.

A few bundles are checked in a worker thread. Many (a first sync, a big
import) go to worker processes, which also write the verified bytes into
place, so file creation runs in parallel too: verification is CPU work, and a busy thread
holding the GIL would stall the event loop's socket and file calls (measured:
2,000 bundles took 4x longer with verification in threads). Workers get only
a path, the trusted root bytes and the listed id, and answer with the
rejection (code, message, step) or nothing, so the decision rules stay those
of :mod:`mirror.trust`. Workers start from a forkserver, which imports the
main module again: a program embedding a mirror needs the usual
``if __name__ == "__main__":`` guard (the ``tamizdat`` command has it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import io
import multiprocessing
import os
from types import TracebackType

from tamizdat.errors import RejectedError

from .trust import check_bundle


def check_file(path: str, root_bytes: bytes, bundle_id: str, size: int | None, sha256: str | None) -> dict[str, str]:
    """Runs in a worker: ``{}`` if the file verifies, ``{"differs": ...}`` if its bytes are not the
    listed ones (local files only), else the rejection as a dict."""
    try:
        with open(path, "rb") as fh:
            listed = size is not None and sha256 is not None
            if listed and (
                os.fstat(fh.fileno()).st_size != size or hashlib.file_digest(fh, "sha256").hexdigest() != sha256
            ):
                return {"differs": "1"}
            check_bundle(bundle_id, fh, root_bytes)
    except RejectedError as err:
        return err.to_dict()
    return {}


def write_file(data: bytes, tmp: str, final: str | None, root_bytes: bytes, bundle_id: str) -> dict[str, str]:
    """Runs in a worker: verify ``data``; if it verifies, write it to ``tmp`` and rename it to ``final``
    (if given). Returns ``{}`` or the rejection as a dict; nothing is written for a rejected bundle."""
    try:
        check_bundle(bundle_id, io.BytesIO(data), root_bytes)
    except RejectedError as err:
        return err.to_dict()
    with open(tmp, "wb") as fh:
        fh.write(data)
    if final is not None:
        os.replace(tmp, final)
    return {}


_CONTEXT: multiprocessing.context.BaseContext | None = None


def _context() -> multiprocessing.context.BaseContext:
    """forkserver: workers fork from a clean server process, never from our threads."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["tamizdat.mirror.verifier"])
        _CONTEXT = ctx
    return _CONTEXT


def prewarm() -> None:
    """Start the forkserver (a fresh interpreter importing the verifier) ahead of a big batch."""
    _context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


class Verifier:
    """``async with Verifier(jobs) as v: await v.check(...)``: threads or processes by ``jobs``."""

    def __init__(self, jobs: int, *, workers: int = 0, threshold: int = 500):
        self.jobs = jobs
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.threshold = threshold
        self._pool: concurrent.futures.Executor | None = None

    async def __aenter__(self) -> Verifier:
        if self.jobs >= self.threshold and self.workers > 1:
            self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=_context())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def check(
        self, path: str, root_bytes: bytes, bundle_id: str, *, size: int | None = None, sha256: str | None = None
    ) -> bool:
        """True if it verifies; False if a local file's bytes are not the listed ones; else raises."""
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pool, check_file, path, root_bytes, bundle_id, size, sha256)
        if "differs" in answer:
            return False
        _raise(answer)
        return True

    async def write(self, data: bytes, tmp: str, final: str | None, root_bytes: bytes, bundle_id: str) -> None:
        """Verify bytes held in memory, then write them (into place, when ``final`` is given)."""
        loop = asyncio.get_running_loop()
        _raise(await loop.run_in_executor(self._pool, write_file, data, tmp, final, root_bytes, bundle_id))


def _raise(answer: dict[str, str]) -> None:
    if answer:
        raise RejectedError(answer["message"], code=answer["code"], step=answer.get("step"))
