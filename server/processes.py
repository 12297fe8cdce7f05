"""Serve one aiohttp app from several processes on one port (``SO_REUSEPORT``).

The first process runs its own app (:func:`serve`) and a :class:`Workers`
supervisor that starts ``count - 1`` serving processes, each a clean
interpreter (``python -P -m tamizdat.server.processes``, never a fork of a
running event loop) that builds its app with an *app factory* named
``module:function`` (called with one JSON argument; importable without the
working directory on ``sys.path``) and binds the same
host:port with ``reuse_port``; the kernel spreads new connections over them.

- A child exits when its parent dies, even by ``kill -9``: its standard input
  is a pipe only the parent holds; end of file there stops it (a hard exit
  follows if a clean stop takes too long).
- A child that dies is restarted with a one-line warning, after a backoff that
  doubles from 0.5 s up to 30 s and resets once a child has served 60 s.
- Stopping the parent (SIGTERM, SIGINT) stops every child: SIGTERM, then
  SIGKILL for one that has not left after 10 s.
- Children run in their own process group, so a terminal's Ctrl-C reaches the
  parent only, and the parent stops them in order. They log to the same stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tamizdat.aioutil import cancel_and_wait
from tamizdat.errors import TamizdatError

from .accesslog import PrivateAccessLogger, access_logger

log = logging.getLogger("tamizdat.server.processes")

MAX_PROCESSES = 64
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # a child that served this long starts the backoff over
STOP_GRACE = 10.0  # seconds a child gets to stop before SIGKILL
POLL = 0.2
ORPHAN_GRACE = 10.0  # a child whose parent died exits by force after this long

AppFactory = Callable[[Any], web.Application]


def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    access_log: bool = False,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (no access log unless asked; never a client address)."""
    web.run_app(
        app,
        host=host,
        port=port,
        reuse_port=reuse_port or None,
        access_log=access_logger() if access_log else None,
        access_log_class=PrivateAccessLogger,
        print=(lambda _text: announce()) if announce is not None else None,
        handle_signals=True,
    )


def load_factory(spec: str) -> AppFactory:
    """``package.module:function`` -> the function (the app factory)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"an app factory is module:function, not {spec!r}")
    factory = getattr(importlib.import_module(module), name)
    if not callable(factory):
        raise ValueError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


@dataclass
class _Child:
    slot: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float = 0.0
    backoff: float = BACKOFF_FIRST


@dataclass
class Workers:
    """Starts, watches and stops the serving children of one parent (slots 1..count-1)."""

    factory: str
    argument: Any
    host: str
    port: int
    count: int
    access_log: bool = False
    children: list[_Child] = field(default_factory=list, init=False)
    stopping: bool = field(default=False, init=False)

    def command(self, slot: int) -> list[str]:
        # -P: never the working directory on sys.path (a source checkout's tamizdat/ would shadow the install)
        args = [sys.executable, "-P", "-m", "tamizdat.server.processes", "--factory", self.factory]
        args += ["--argument", json.dumps(self.argument), "--host", self.host, "--port", str(self.port)]
        args += ["--slot", str(slot)]
        return args + (["--access-log"] if self.access_log else [])

    def _spawn(self, child: _Child) -> None:
        now = time.monotonic()
        try:
            child.proc = subprocess.Popen(
                self.command(child.slot), stdin=subprocess.PIPE, start_new_session=True, close_fds=True
            )
        except OSError as exc:  # out of processes or descriptors: try again after the backoff
            log.warning("cannot start serving process %d: %s; retrying in %.1f s", child.slot, exc, child.backoff)
            child.restart_at = now + child.backoff
            child.backoff = min(BACKOFF_MAX, child.backoff * 2)
            return
        child.started = now

    def start(self) -> None:
        """Start the children (slots 1..count-1)."""
        self.children = [_Child(slot) for slot in range(1, self.count)]
        for child in self.children:
            self._spawn(child)

    def check(self, now: float) -> None:
        """Restart every child that died (after its backoff)."""
        if self.stopping:
            return
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                lived = now - child.started
                if lived >= HEALTHY_AFTER:
                    child.backoff = BACKOFF_FIRST
                child.restart_at = now + child.backoff
                log.warning(
                    "serving process %d (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                    child.slot,
                    proc.pid,
                    code,
                    lived,
                    child.backoff,
                )
                child.backoff = min(BACKOFF_MAX, child.backoff * 2)
                if proc.stdin is not None:
                    proc.stdin.close()
                child.proc = None
            elif proc is None and now >= child.restart_at:
                self._spawn(child)

    async def watch(self) -> None:
        while True:
            self.check(time.monotonic())
            await asyncio.sleep(POLL)

    async def stop(self) -> None:
        """SIGTERM to every child, SIGKILL after :data:`STOP_GRACE`; waits for all of them."""
        self.stopping = True
        live = [c.proc for c in self.children if c.proc is not None]
        for proc in live:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(p.poll() is None for p in live) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for proc in live:
            if proc.poll() is None:
                log.warning("serving process pid %d did not stop in %g s: killed", proc.pid, STOP_GRACE)
                proc.kill()
                proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()

    def cleanup_ctx(self) -> Callable[[web.Application], AsyncIterator[None]]:
        """For ``app.cleanup_ctx``: the children live as long as the parent's app."""

        async def ctx(_app: web.Application) -> AsyncIterator[None]:
            self.start()
            task = asyncio.create_task(self.watch(), name="tamizdat-serving-processes")
            try:
                yield
            finally:
                await cancel_and_wait(task)
                await self.stop()

        return ctx


def _exit_with_parent() -> None:
    """Stop this process when standard input (the parent's pipe) closes: the parent is gone."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        log.warning("serving process %d: the parent is gone, stopping", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def child_main(argv: list[str] | None = None) -> None:
    """A serving child: build the app with the factory, serve it on the shared port."""
    parser = argparse.ArgumentParser(prog="python -m tamizdat.server.processes")
    parser.add_argument("--factory", required=True)
    parser.add_argument("--argument", required=True, help="JSON given to the factory")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slot", type=int, default=1)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _exit_with_parent()
    try:
        factory = load_factory(args.factory)
    except (ImportError, AttributeError, ValueError) as exc:
        log.error("serving process %d: no app factory %s (%s)", args.slot, args.factory, exc)
        sys.exit(1)
    try:
        app = factory(json.loads(args.argument))
        serve(
            app,
            args.host,
            args.port,
            reuse_port=True,
            access_log=args.access_log,
            announce=lambda: log.info("serving process %d (pid %d) ready", args.slot, os.getpid()),
        )
    except (TamizdatError, OSError) as err:
        message = err.message if isinstance(err, TamizdatError) else (err.strerror or str(err))
        log.error("serving process %d cannot serve: %s", args.slot, message)
        sys.exit(1)


if __name__ == "__main__":
    child_main()
