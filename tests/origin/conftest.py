"""Fixtures for the origin server tests: a key directory, a data directory, an app, a client, a token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tamizdat.keys.keydir import KeyDir
from tamizdat.server import tokens
from tamizdat.server.app import make_app
from tamizdat.server.appkeys import ORIGIN

from .support import ROUND, Api
from .tlog_support import FakeWitness


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A key directory whose root private keys were moved offline (to ``offline_root``)."""
    path = tmp_path / "keys"
    KeyDir(path).init("Test Newsroom")
    (path / "root-private").rename(tmp_path / "offline-root")
    return path


@pytest.fixture
def offline_keydir(keys_dir: Path, tmp_path: Path) -> KeyDir:
    """The same key directory with access to the offline root keys (for `keys revoke` and friends)."""
    return KeyDir(keys_dir, root_private=tmp_path / "offline-root")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def root_keyid(keys_dir: Path) -> str:
    return KeyDir(keys_dir).root_keyid()


AppFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(aiohttp_client: Any, data_dir: Path, keys_dir: Path) -> AppFactory:
    """Start an origin app (settings overridable) and return an Api with a fresh token."""

    async def factory(*, token_name: str = "test", keys_dir: Path = keys_dir, **overrides: Any) -> Api:
        overrides.setdefault("round_seconds", ROUND)
        app = make_app(data_dir, keys_dir, **overrides)
        client = await aiohttp_client(app)
        token = await tokens.create(app[ORIGIN].store, token_name) if token_name else ""
        return Api(client, token)

    return factory


@pytest.fixture
async def api(make_api: AppFactory) -> Api:
    return await make_api()


LoggedOrigin = Callable[[], Awaitable[Api]]


@pytest.fixture
def start(make_api: AppFactory) -> LoggedOrigin:
    """Start an origin app on the test's data directory (rounds only on flush, log gathering every
    50 ms), with a fresh token each time (the app may be started again on the same store)."""
    count = iter(range(1_000_000))

    async def go() -> Api:
        return await make_api(round_seconds=3600.0, tlog_gather_interval=0.05, token_name=f"t{next(count)}")

    return go


@pytest.fixture
async def witness(aiohttp_server: Any) -> tuple[FakeWitness, str]:
    """A fake witness on loopback and its base URL."""
    fake = FakeWitness()
    server: TestServer = await aiohttp_server(fake.app, host="127.0.0.1")
    return fake, str(server.make_url("/"))
