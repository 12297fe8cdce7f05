"""The origin's SQLite schema, versioned with ``PRAGMA user_version``.

``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``. A migration
is only ever appended, never edited: databases in the field have run the old
ones. :func:`migrate` applies what is missing, each step in one transaction.
"""

from __future__ import annotations

import aiosqlite

from tamizdat.errors import UsageError

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema.
    """
    CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the 32 token bytes
        created TEXT NOT NULL,
        revoked TEXT                        -- time of revocation, NULL while valid
    );
    CREATE TABLE media (
        id TEXT PRIMARY KEY,                -- hex SHA-256 of the cleaned bytes
        type TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE notices (
        id TEXT PRIMARY KEY,
        regions TEXT NOT NULL,              -- JSON list
        text TEXT NOT NULL,                 -- JSON object lang -> text
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE articles (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        current_version INTEGER NOT NULL,
        retracted_at TEXT,
        retract_reason TEXT
    );
    CREATE TABLE article_versions (
        article_id TEXT NOT NULL REFERENCES articles(id),
        version INTEGER NOT NULL,
        created TEXT NOT NULL,
        doc TEXT NOT NULL,                  -- the API article document (JSON)
        content_sha256 TEXT NOT NULL,       -- of the content and its notices
        bundle_id TEXT NOT NULL,            -- the bundle now carrying this version
        PRIMARY KEY (article_id, version)
    );
    CREATE TABLE editions (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        title TEXT,
        lang TEXT,
        articles TEXT NOT NULL,             -- JSON [[article id, version], ...]
        bundle_id TEXT NOT NULL,
        retracted_at TEXT,
        retract_reason TEXT
    );
    CREATE TABLE bundles (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        created TEXT NOT NULL,
        sha256 TEXT NOT NULL,               -- of the ZIP file
        size INTEGER NOT NULL,
        articles TEXT NOT NULL,             -- JSON [{id, version, lang, title}]
        supersedes TEXT NOT NULL,           -- JSON [bundle id]
        signer TEXT NOT NULL,               -- key id that signed the manifest
        shard INTEGER,                      -- NULL until a round lists it
        file TEXT NOT NULL,                 -- 'tmp' (built), 'public' (served), 'gone' (removed)
        retracted_at TEXT,
        retract_reason TEXT,
        dirty INTEGER NOT NULL DEFAULT 1,   -- > 0: changed since the last round (a change counter)
        index_version INTEGER               -- first index version listing it
    );
    CREATE INDEX bundles_dirty ON bundles(dirty) WHERE dirty > 0;
    CREATE INDEX bundles_shard ON bundles(shard, seq);
    CREATE TABLE bundle_articles (
        bundle_id TEXT NOT NULL REFERENCES bundles(id),
        article_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (bundle_id, article_id)
    );
    CREATE INDEX bundle_articles_article ON bundle_articles(article_id);
    CREATE TABLE shards (
        n INTEGER PRIMARY KEY,              -- position in the index
        count INTEGER NOT NULL,
        sha256 TEXT,
        size INTEGER
    );
    CREATE TABLE shard_files (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        last_listed TEXT NOT NULL           -- created time of the newest index listing it
    );
    CREATE TABLE index_versions (
        version INTEGER PRIMARY KEY,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        root_version INTEGER NOT NULL,
        signer TEXT NOT NULL,
        sha256 TEXT NOT NULL,               -- of the index.json envelope bytes
        shards TEXT NOT NULL                -- JSON [shard sha256]
    );
    """,
    # 1 -> 2: the transparency log (server/tlog, docs/transparency.md). Leaves are
    # recorded in the transaction that records the index version of their round.
    """
    CREATE TABLE tlog_leaves (
        n INTEGER PRIMARY KEY,              -- position in the log, from 0
        kind INTEGER NOT NULL,              -- 1 bundle, 2 retraction, 3 index
        id TEXT NOT NULL,                   -- hex of the leaf's 32-byte id
        index_version INTEGER NOT NULL,     -- the index version whose round appended it
        proof_done INTEGER NOT NULL DEFAULT 0  -- kind 1: bundles/<id>.tlog-proof written (or not needed)
    );
    CREATE UNIQUE INDEX tlog_leaves_once ON tlog_leaves(kind, id) WHERE kind IN (1, 2);
    CREATE INDEX tlog_leaves_proofless ON tlog_leaves(n) WHERE kind = 1 AND proof_done = 0;
    ALTER TABLE bundles ADD COLUMN leaf INTEGER;             -- its kind-1 leaf, NULL until logged
    ALTER TABLE bundles ADD COLUMN retraction_leaf INTEGER;  -- its kind-2 leaf, NULL until logged
    CREATE INDEX bundles_unlogged ON bundles(seq) WHERE leaf IS NULL AND shard IS NOT NULL;
    CREATE INDEX bundles_unlogged_retraction ON bundles(seq)
        WHERE retraction_leaf IS NULL AND retracted_at IS NOT NULL AND shard IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring ``db`` to :data:`SCHEMA_VERSION`; refuse a database from a newer release."""
    current = await schema_version(db)
    if current > SCHEMA_VERSION:
        raise UsageError(
            f"the state database has schema {current}, this release knows up to {SCHEMA_VERSION}: upgrade tamizdat",
            code="schema-too-new",
        )
    for version in range(current, SCHEMA_VERSION):
        statements = [s.strip() for s in MIGRATIONS[version].split(";") if s.strip()]
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
    return SCHEMA_VERSION
