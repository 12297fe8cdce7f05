"""Access logging is off by default; when on, it never records a client address or headers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tamizdat.server.accesslog import LOGGER_NAME, PrivateAccessLogger


async def test_access_log_has_no_address(aiohttp_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    caplog.set_level(logging.INFO, logger=LOGGER_NAME)  # aiohttp checks the level when the server starts
    app = web.Application()
    app.router.add_get("/x", hello)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=logging.getLogger(LOGGER_NAME), access_log_class=PrivateAccessLogger)
    client = await aiohttp_client(server)
    resp = await client.get("/x?who=me", headers={"User-Agent": "ReaderPhone/1.0", "X-Forwarded-For": "10.1.2.3"})
    assert resp.status == 200
    await resp.read()
    for _ in range(100):  # the access log line is written after the response went out
        if any(r.name == LOGGER_NAME for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert lines and lines[0].startswith("GET /x 200 ")
    for line in lines:
        assert "127.0.0.1" not in line and "ReaderPhone" not in line and "10.1.2.3" not in line and "who" not in line


def test_access_log_off_by_default() -> None:
    from tamizdat.server.settings import BY_NAME

    assert BY_NAME["access_log"].default is False
