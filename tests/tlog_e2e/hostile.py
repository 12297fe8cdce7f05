"""A hostile upstream on 127.0.0.1: the origin's public tree as the attacker chooses to show it.

By default it serves the origin's ``DATA/public`` live from disk (a faithful
copy). A test can :meth:`~HostileUpstream.freeze` it on the tree as it is now,
put forged bytes at any path (:meth:`~HostileUpstream.show`), pass every
matching file through a tampering function (:meth:`~HostileUpstream.tamper`),
or answer byte-range requests with bytes from elsewhere in the file
(:meth:`~HostileUpstream.lie_about_ranges`). Like nginx and the origin it
honours ``Range: bytes=N-`` (206). Every request path is recorded. The aiohttp server runs in a background
thread so the (synchronous) tests and the mirror subprocesses can use it alike.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

Tamper = Callable[[str, bytes], bytes]
_RANGE = re.compile(r"bytes=(\d+)-")


class HostileUpstream:
    """Serves ``public`` (an origin's public tree) with the attacker's changes on top."""

    def __init__(self, public: Path):
        self.public = public.resolve()
        self.requests: list[str] = []
        self.ranged: list[str] = []  # paths asked for with a byte range
        self._frozen: dict[str, bytes] | None = None
        self._shown: dict[str, bytes | None] = {}
        self._tamper: tuple[str, Tamper] | None = None
        self._range_shift = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # -- what it shows ----------------------------------------------------------------
    def reset(self) -> None:
        """Back to a faithful live copy of the origin's tree."""
        self._frozen, self._shown, self._tamper, self._range_shift = None, {}, None, 0

    def freeze(self) -> None:
        """Keep showing the tree as it is now, whatever the origin publishes later."""
        tree = {p.relative_to(self.public).as_posix(): p.read_bytes() for p in self.public.rglob("*") if p.is_file()}
        self._frozen = tree

    def show(self, files: Mapping[str, bytes | None]) -> None:
        """Serve these bytes at these paths (None: answer 404), on top of what was shown before."""
        self._shown = {**self._shown, **files}

    def tamper(self, prefix: str, change: Tamper) -> None:
        """Pass every file under ``prefix`` through ``change`` (path, bytes) -> bytes."""
        self._tamper = (prefix, change)

    def lie_about_ranges(self, shift: int) -> None:
        """Answer ``bytes=N-`` with as many bytes from ``N - shift`` on, labelled as the range asked for."""
        self._range_shift = shift

    def get(self, rel: str) -> bytes | None:
        """The bytes served at ``rel`` (None: 404)."""
        if rel in self._shown:
            return self._shown[rel]
        if self._frozen is not None:
            data = self._frozen.get(rel)
        else:
            path = (self.public / rel).resolve()
            if not path.is_relative_to(self.public) or not path.is_file():
                return None
            try:
                data = path.read_bytes()
            except OSError:
                return None
        tamper = self._tamper
        if data is not None and tamper is not None and rel.startswith(tamper[0]):
            data = tamper[1](rel, data)
        return data

    # -- serving ----------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["tail"]
        self.requests.append(rel)
        data = self.get(rel)
        if data is None:
            raise web.HTTPNotFound()
        m = _RANGE.fullmatch(request.headers.get("Range", ""))
        if m is None:
            return web.Response(body=data, content_type="application/octet-stream")
        start = int(m.group(1))
        self.ranged.append(rel)
        if start >= len(data):
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{len(data)}"})
        shift = min(self._range_shift, start)
        body = data[start - shift : len(data) - shift]
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        return web.Response(status=206, body=body, headers=headers, content_type="application/octet-stream")

    def start(self) -> str:
        ready = threading.Event()

        async def setup() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self._runner = runner
            self.port = runner.addresses[0][1]

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(setup())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="hostile-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the hostile upstream did not start")
        return self.url

    def stop(self) -> None:
        if self._thread is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._thread = None
