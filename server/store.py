"""The origin's state database: one aiosqlite connection under ``DATA/state``.

One connection, one lock: every transaction (and every read, which then never
sees another task's half-done transaction) runs alone. SQLite runs in WAL mode
with a busy timeout, so ``tamizdat tokens`` may write from another process
while the server runs. The schema is migrated on open (server.migrations).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from .migrations import migrate

DB_NAME = "origin.sqlite3"


class Store:
    """The state database. Use ``async with store.tx() as db`` to read or write."""

    def __init__(self, path: Path):
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def in_state_dir(cls, state: Path) -> Store:
        return cls(state / DB_NAME)

    async def open(self) -> Store:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA foreign_keys = ON")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        db.row_factory = aiosqlite.Row
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            async with self._lock:
                await self._db.close()
                self._db = None

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def tx(self, *, write: bool = True) -> AsyncIterator[Tx]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error), or a read.

        A read holds the lock without BEGIN: every write of this process holds the
        same lock, so a read's statements see one state; it costs no round trips.
        """
        if self._db is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            db = self._db
            if not write:
                yield Tx(db)
                return
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(db)
            except BaseException:
                await db.rollback()
                raise
            await db.commit()


class Tx:
    """Helpers over the connection inside one transaction (one round trip to the database thread each)."""

    def __init__(self, db: aiosqlite.Connection):
        self.db = db

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    async def one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def value(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.one(sql, params)
        return None if row is None else row[0]

    async def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute one statement; returns the number of rows changed."""
        cur = await self.db.execute(sql, tuple(params))
        return int(cur.rowcount)

    async def many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        await self.db.executemany(sql, [tuple(r) for r in rows])
