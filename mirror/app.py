"""The mirror daemon: the static tree, ``/healthz``, and a background sync.

:func:`make_app` builds an aiohttp application over a :class:`~mirror.sync.Mirror`:

- the same static paths as the origin (``server.static.StaticTree`` over
  ``DATA/public``), so mirrors chain and any mirror is an upstream;
- ``/healthz``: JSON about the served index, the upstreams and, when the
  publisher keeps a transparency log, the witness (``log``: ``mirror.logsync``);
- a sync every ``interval`` seconds, started and stopped with the app
  (``cleanup_ctx``).

Reader pages (server.reader) are mounted in :func:`make_app`:
``app[MIRROR]`` gives the :class:`Mirror` (its ``data`` directory, the
``trust`` state with the served index and shards, ``health()``).

With ``workers > 1`` (:func:`run`), process 0 is this full app and
``server.processes`` starts ``workers - 1`` serving-only processes on the same
port, each built by :func:`serving_app`: the same routes, no sync, ``/healthz``
read from the state files process 0 writes (``mirror.stateview``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tamizdat.aioutil import cancel_and_wait
from tamizdat.errors import UsageError
from tamizdat.keys import timefmt
from tamizdat.server import processes
from tamizdat.server.datadir import DataDir
from tamizdat.server.reader.routes import add_reader_routes
from tamizdat.server.static import StaticTree

from .stateview import StateView
from .sync import Mirror

log = logging.getLogger("tamizdat.mirror")

MIRROR = web.AppKey("mirror", Mirror)
INTERVAL = web.AppKey("sync_interval", float)
MIRROR_SETTINGS = web.AppKey("mirror_settings", dict[str, Any])
STATE_VIEW = web.AppKey("state_view", StateView)
SERVING_APP = "tamizdat.mirror.app:serving_app"
STALE_AFTER_INTERVALS = 3


def health(mirror: Mirror, interval: float) -> dict[str, Any]:
    """What /healthz shows: never a client address, never a local path."""
    now = mirror.clock()
    trust = mirror.trust
    index: dict[str, Any] | None = None
    expired = True
    if trust.index is not None:
        idx = trust.index.index
        expired = idx.expires <= now
        index = {
            "version": idx.version,
            "created": timefmt.format(idx.created),
            "expires": timefmt.format(idx.expires),
            "expired": expired,
        }
    stale = expired
    if mirror.last_ok is None:
        stale = True
    else:
        age = (now - timefmt.parse(mirror.last_ok)).total_seconds()
        stale = stale or age > STALE_AFTER_INTERVALS * max(interval, 1.0)
    if index is not None:
        index["stale"] = stale
    last = mirror.last_summary or {}
    return {
        "ok": index is not None and not expired,
        "role": "mirror",
        "root_keyid": mirror.root_keyid,
        "root_version": trust.root_version,
        "index": index,
        "stale": stale,
        "bundles": mirror.bundle_count(),
        "last_sync": {
            "at": last.get("started"),
            "ok": last.get("ok"),
            "code": last.get("code"),
            "seconds": last.get("seconds"),
            "new": last.get("new"),
            "retracted": last.get("retracted"),
            "rejected": last.get("rejected"),
            "errors": last.get("errors", []),
        }
        if last
        else None,
        "last_ok": mirror.last_ok,
        "upstreams": [mirror.record(spec).public() for spec in mirror.upstreams],
        "log": mirror.log_health(),
    }


async def _healthz(request: web.Request) -> web.Response:
    view = request.app.get(STATE_VIEW)
    if view is not None:  # a serving-only process: the syncing one may have written new state
        await view.refresh()
    doc = health(request.app[MIRROR], request.app[INTERVAL])
    return web.json_response(
        doc,
        status=200 if doc["ok"] else 503,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def sync_forever(mirror: Mirror, interval: float) -> None:
    """Sync now, then every ``interval`` seconds; a failure is logged and retried next time."""
    while True:
        try:
            summary = await mirror.sync()
            if summary.ok:
                log.info("sync ok from %s (%d new, %.2f s)", summary.upstream, summary.new, summary.seconds)
            else:
                log.warning("sync failed: %s", summary.code)
        except asyncio.CancelledError:
            raise
        except UsageError as err:
            log.error("sync cannot run: %s", err.message)
        except Exception:
            log.exception("sync crashed; retrying in %g s", interval)
        await asyncio.sleep(interval)


def _sync_ctx(interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sync_forever(app[MIRROR], interval), name="tamizdat-mirror-sync")
        try:
            yield
        finally:
            await cancel_and_wait(task)

    return ctx


def make_app(
    mirror: Mirror,
    *,
    interval: float,
    background_sync: bool = True,
    settings: dict[str, Any] | None = None,
    follow_state: bool = False,
) -> web.Application:
    """The mirror app over ``mirror``'s data directory (``settings``: DATA/settings.toml as resolved).

    ``follow_state`` (a serving-only process, never with a sync of ``mirror`` in this process):
    ``/healthz`` reloads the state files another process writes.
    """
    app = web.Application(client_max_size=64 * 1024)
    app[MIRROR] = mirror
    if follow_state:
        app[STATE_VIEW] = StateView(mirror)
    app[INTERVAL] = float(interval)
    app[MIRROR_SETTINGS] = dict(settings or {})
    app.add_routes(StaticTree(mirror.data.public).routes())
    app.add_routes([web.get("/healthz", _healthz)])
    # Reader pages over the same verified public tree (the origin mounts the same routes).
    reader_settings = {**mirror.data.settings(), **(settings or {}), "root_keyid": mirror.root_keyid}
    add_reader_routes(app, mirror.data, settings=reader_settings)
    if background_sync:
        app.cleanup_ctx.append(_sync_ctx(float(interval)))
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen wants HOST:PORT, not {listen!r}", code="usage")
    return host.strip("[]"), int(port)


def serving_app(argument: Any) -> web.Application:
    """App factory of a serving-only process: ``{"data": DIR, "settings": resolved settings}``."""
    values: dict[str, Any] = argument["settings"]
    mirror = Mirror(
        DataDir(Path(argument["data"])),
        root_keyid=values["root_keyid"],
        upstreams=values["upstreams"],
        keep_superseded=bool(values["keep_superseded"]),
        witness_name=values.get("witness_name") or None,
    )
    interval = float(values["sync_interval"])
    return make_app(mirror, interval=interval, background_sync=False, settings=values, follow_state=True)


def _processes(workers: int) -> str:
    return f" ({workers} processes)" if workers > 1 else ""


def run(app: web.Application, listen: str, *, access_log: bool = False, workers: int = 1) -> None:
    """Serve until interrupted (no access log unless asked; never a client address).

    ``workers > 1``: also start ``workers - 1`` serving-only processes (:func:`serving_app`) on the
    same port; all of them bind with ``SO_REUSEPORT``.
    """
    host, port = parse_listen(listen)
    if workers > 1:
        mirror = app[MIRROR]
        argument = {"data": str(mirror.data.root), "settings": app[MIRROR_SETTINGS]}
        pool = processes.Workers(SERVING_APP, argument, host, port, workers, access_log=access_log)
        app.cleanup_ctx.append(pool.cleanup_ctx())
    processes.serve(
        app,
        host,
        port,
        reuse_port=workers > 1,
        access_log=access_log,
        announce=lambda: log.info("mirror serving on http://%s:%d/%s", host, port, _processes(workers)),
    )
