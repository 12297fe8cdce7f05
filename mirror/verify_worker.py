"""The verifying side of :mod:`mirror.verifier`: what a worker process (or thread) runs.

Kept apart so that a worker process imports only what verifying needs (no
asyncio, no HTTP client): its start-up is part of every big sync. A worker
reads length-prefixed pickled requests from stdin and writes one answer per
request, in order; it exits when stdin closes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import struct
import sys
from collections.abc import Callable

from tamizdat.errors import RejectedError

from .trust import check_bundle

HEAD = struct.Struct(">I")
READ_ONCE = 4 * 1024 * 1024  # a held file up to this size is read once into memory to be checked


def check_file(path: str, root_bytes: bytes, bundle_id: str, size: int | None, sha256: str | None) -> dict[str, str]:
    """``{}`` if the file verifies, ``{"differs": ...}`` if its bytes are not the listed ones (local
    files only), else the rejection as a dict."""
    try:
        with open(path, "rb") as fh:
            listed = size is not None and sha256 is not None
            if listed and os.fstat(fh.fileno()).st_size != size:
                return {"differs": "1"}
            if listed and size is not None and size <= READ_ONCE:  # hash and verify the same bytes, read once
                data = fh.read(size + 1)
                if hashlib.sha256(data).hexdigest() != sha256:
                    return {"differs": "1"}
                check_bundle(bundle_id, io.BytesIO(data), root_bytes)
                return {}
            if listed and hashlib.file_digest(fh, "sha256").hexdigest() != sha256:
                return {"differs": "1"}
            check_bundle(bundle_id, fh, root_bytes)
    except RejectedError as err:
        return err.to_dict()
    return {}


def write_file(data: bytes, tmp: str, final: str | None, root_bytes: bytes, bundle_id: str) -> dict[str, str]:
    """Verify ``data``; if it verifies, write it to ``tmp`` and rename it to ``final`` (if given).
    Returns ``{}`` or the rejection as a dict; nothing is written for a rejected bundle."""
    try:
        check_bundle(bundle_id, io.BytesIO(data), root_bytes)
    except RejectedError as err:
        return err.to_dict()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        _start_writeback(fd)
    finally:
        os.close(fd)
    if final is not None:
        os.replace(tmp, final)
    return {}


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file out now, without waiting (not an fsync).

    The sync's one filesystem sync before the index switches then finds most
    bytes already on disk instead of flushing the whole batch at the end.
    (Linux starts writeback of dirty pages on ``POSIX_FADV_DONTNEED``.)
    """
    if _FADVISE is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, _FADVISE)


_FADVISE = getattr(os, "POSIX_FADV_DONTNEED", None) if sys.platform.startswith("linux") else None

TASKS: dict[str, Callable[..., dict[str, str]]] = {"check": check_file, "write": write_file}


def serve() -> None:
    """A worker process: answer requests from stdin until it closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(HEAD.size)
        if len(head) < HEAD.size:
            # The mirror is gone (or done): so are we, at once. Every answer is flushed, every
            # file closed; the interpreter's teardown would only hold up the sync's commit.
            os._exit(0)
        name, args = pickle.loads(stdin.read(HEAD.unpack(head)[0]))
        try:
            answer = TASKS[name](*args)
        except OSError as exc:
            answer = {"oserror": str(exc)}
        body = pickle.dumps(answer)
        stdout.write(HEAD.pack(len(body)) + body)
        stdout.flush()
