"""The origin's aiohttp application: publishing API, publishing rounds, static tree.

:func:`make_app` builds the app for a data directory and a key directory; the
state database and the publisher's background rounds start and stop with the
app (``cleanup_ctx``). :func:`run` serves it (``tamizdat serve``).

Programmatic use (tests, the mirror's test harness, benchmarks)::

    app = make_app(data_dir, keys_dir, round_seconds=0.05)
    # aiohttp_client(app), or web.AppRunner(app) + web.TCPSite(runner, "127.0.0.1", port)
    origin = app[ORIGIN]            # after startup: the service, its store and publisher
    await origin.publisher.flush()  # run a publishing round now

Bundles are built in worker processes started by a ``forkserver``, so a script
that embeds the app needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tamizdat.errors import UsageError
from tamizdat.fsutil import remove_stale_temp
from tamizdat.keys import timefmt

from . import settings as settings_mod
from .accesslog import PrivateAccessLogger, access_logger
from .api import routes as api_routes
from .api_errors import error_middleware
from .appkeys import ORIGIN, SETTINGS
from .auth import auth_middleware
from .datadir import DataDir
from .keyring import Keyring
from .origin import Origin
from .reader.routes import add_reader_routes
from .rounds import Publisher, RoundConfig
from .static import StaticTree
from .store import Store
from .tlog.keeper import LogConfig, LogKeeper

log = logging.getLogger("tamizdat.server")

ROOT_PRIVATE_WARNING = (
    "WARNING: root private keys sit in {path}. The server does not read them, but an online machine "
    "must not hold them: move that folder offline (docs/operator-origin.md)."
)


def resolve_settings(data: DataDir, overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings from DATA/settings.toml, then ``overrides`` (checked against the registry)."""
    values = data.settings()
    for name, value in overrides.items():
        setting = settings_mod.BY_NAME.get(name)
        if setting is None:
            raise UsageError(f"unknown setting {name!r}", code="bad-settings")
        values[name] = settings_mod._check(setting, value)
    if values["role"] != "origin":
        raise UsageError(f"{data.root} is a {values['role']} data directory, not an origin", code="bad-settings")
    if values["round_seconds"] <= 0 or values["index_lifetime"] <= 0:
        raise UsageError("round_seconds and index_lifetime must be positive", code="bad-settings")
    if values["tlog_gather_interval"] <= 0 or values["tlog_partial_grace"] < 0:
        raise UsageError(
            "tlog_gather_interval must be positive and tlog_partial_grace not negative", code="bad-settings"
        )
    return values


def _origin_ctx(data: DataDir, keys_dir: Path, values: dict[str, Any]) -> Callable[[web.Application], Any]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        keyring = Keyring(keys_dir)
        if keyring.root_private_present():
            message = ROOT_PRIVATE_WARNING.format(path=keys_dir / "root-private")
            log.warning(message)
        keyring.snapshot()  # fail at start, not at the first request, if the key directory is unusable
        remove_stale_temp(data.public)  # what a crash (kill -9) left half-written; never served
        store = await Store.in_state_dir(data.state).open()
        config = RoundConfig(
            round_seconds=float(values["round_seconds"]),
            index_lifetime=int(values["index_lifetime"]),
            mirrors=tuple(values["mirrors"]),
            shard_grace=int(values["shard_grace"]),
        )
        keeper = LogKeeper(
            store,
            data,
            keyring,
            LogConfig(
                gather_interval=float(values["tlog_gather_interval"]),
                partial_grace=float(values["tlog_partial_grace"]),
            ),
        )
        publisher = Publisher(store, data, keyring, config, log=keeper)
        origin = app[ORIGIN] = Origin(data, values, store, keyring, publisher)
        try:
            await keeper.start()
            await publisher.start()
            await keeper.run()  # gathering cosignatures in the background (first pass: now)
            yield
        finally:
            await publisher.stop()
            await keeper.stop()
            origin.close()
            await store.close()

    return ctx


async def healthz(request: web.Request) -> web.Response:
    """Public health for load balancers and container healthchecks: index state, no secrets."""
    status = await request.app[ORIGIN].status()
    expires = status["index_expires"]
    expired = expires is None or timefmt.parse(expires) <= timefmt.now()
    body = {
        "ok": status["index_version"] > 0 and not expired and status["last_round_error"] is None,
        "role": "origin",
        "index": {
            "version": status["index_version"],
            "created": status["index_created"],
            "expires": expires,
            "expired": expired,
        },
        "bundles": status["bundles"],
        "pending_changes": status["pending_changes"],
        "last_round_error": status["last_round_error"],
        "log": request.app[ORIGIN].publisher.log_status(),
    }
    return web.json_response(body, status=200 if body["ok"] else 503, headers={"Cache-Control": "no-store"})


def make_app(data_dir: Path, keys_dir: Path, **overrides: Any) -> web.Application:
    """The origin app for ``data_dir`` signing with ``keys_dir``; ``overrides`` are settings for this run."""
    data = DataDir(Path(data_dir)).create()
    values = resolve_settings(data, overrides)
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=int(values["max_request_bytes"]),
    )
    app[SETTINGS] = values
    app.cleanup_ctx.append(_origin_ctx(data, Path(keys_dir), values))
    app.add_routes(api_routes())
    app.add_routes(StaticTree(data.public).routes())
    app.router.add_get("/healthz", healthz)
    add_reader_routes(app, data, settings=values)  # reader pages over the same public tree
    return app


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen wants HOST:PORT, not {listen!r}", code="usage")
    return host.strip("[]"), int(port)


def run(app: web.Application, listen: str) -> None:
    """Serve until interrupted. Access logging only if the ``access_log`` setting is on."""
    host, port = parse_listen(listen)
    enabled = bool(app[SETTINGS]["access_log"])
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=access_logger() if enabled else None,
        access_log_class=PrivateAccessLogger,
        print=lambda text: log.info("serving on http://%s:%d/", host, port),
        handle_signals=True,
    )
