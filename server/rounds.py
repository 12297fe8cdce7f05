"""Publishing rounds: every change of a round becomes one new signed index version.

A round (docs/operator-origin.md, "Rounds"):

1. copy ``root.json`` and ``roots/<N>.json`` from the key directory into the
   public tree when they changed;
2. re-sign what is still published if its signing key was revoked;
3. rename the round's new bundles from ``tmp/`` into ``public/bundles/``;
4. give new bundles a shard (creation order, at most 1,024 per shard) and
   re-render only the shards whose entries changed (content-addressed files
   ``public/index/<sha256>.json``; untouched shards keep their stored hash);
5. one filesystem sync (server.datadir.sync_filesystem);
6. record the index version in SQLite (with the round's transparency-log
   leaves, server.tlog), then switch ``index.json`` atomically, last;
7. publish the log: tiles, then the signed checkpoint (server.tlog.keeper);
8. remove the files of retracted bundles and shards no index has listed for a while.

A round also runs, without changes, when less than half of the index
lifetime is left, when the key directory changed, and at start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamizdat.aioutil import cancel_and_wait
from tamizdat.bundles.index import (
    SHARD_CAPACITY,
    ArticleInfo,
    BundleEntry,
    Index,
    Retraction,
    Shard,
    ShardRef,
    shard_sha256,
    sign_index,
)
from tamizdat.errors import TamizdatError
from tamizdat.fsutil import atomic_write
from tamizdat.keys import dsse, timefmt

from . import packager
from .datadir import DataDir, sync_filesystem
from .keyring import Keyring, KeySnapshot
from .store import Store, Tx
from .tlog import proofs
from .tlog.keeper import LogKeeper

log = logging.getLogger("tamizdat.server.rounds")


@dataclass(frozen=True)
class RoundConfig:
    round_seconds: float
    index_lifetime: int
    mirrors: tuple[str, ...]
    shard_grace: int


@dataclass(frozen=True)
class RoundResult:
    index_version: int
    bundles_listed: int
    shards_written: int


def entry_from_row(row: Any) -> BundleEntry:
    retracted = None
    if row["retracted_at"]:
        retracted = Retraction(timefmt.parse(row["retracted_at"]), row["retract_reason"] or "")
    return BundleEntry(
        id=row["id"],
        sha256=row["sha256"],
        size=row["size"],
        created=timefmt.parse(row["created"]),
        kind=row["kind"],
        articles=tuple(ArticleInfo(a["id"], a["version"], a["lang"], a["title"]) for a in json.loads(row["articles"])),
        supersedes=tuple(json.loads(row["supersedes"])),
        retracted=retracted,
    )


def render_shard(rows: Sequence[Any]) -> tuple[ShardRef, bytes]:
    data = Shard(tuple(entry_from_row(r) for r in rows)).to_bytes()
    return ShardRef(shard_sha256(data), len(data), len(rows)), data


def publish_roots(data: DataDir, documents: Sequence[bytes]) -> bool:
    """Mirror the key directory's public roots into the static tree; True if anything changed."""
    changed = False
    for version, doc in enumerate(documents, 1):
        path = data.roots / f"{version}.json"
        if not path.exists() or path.read_bytes() != doc:
            atomic_write(path, doc, durable=False)
            changed = True
    latest = data.public / "root.json"
    if not latest.exists() or latest.read_bytes() != documents[-1]:
        atomic_write(latest, documents[-1], durable=False)
        changed = True
    return changed


def disk_index_version(data: DataDir) -> tuple[int, bytes | None]:
    """The version of ``public/index.json`` as it is on disk (0 if none or unreadable)."""
    path = data.public / "index.json"
    try:
        raw = path.read_bytes()
        env = dsse.Envelope.from_bytes(raw, expected_type=dsse.INDEX_TYPE)
        return Index.from_payload(env.payload).version, raw
    except (OSError, TamizdatError):
        return 0, None


def _move_into_place(src: Path, dst: Path) -> bool:
    if src.exists():
        os.replace(src, dst)
        return True
    return dst.exists()  # moved by a round that stopped before recording it


class Publisher:
    """Runs rounds: a background loop (``start``/``stop``) and ``run_round`` on demand."""

    def __init__(
        self, store: Store, data: DataDir, keyring: Keyring, config: RoundConfig, log: LogKeeper | None = None
    ):
        self.store = store
        self.data = data
        self.keyring = keyring
        self.config = config
        self.log = log
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._keys_seen: KeySnapshot | None = None
        self._last_created: dt.datetime | None = None
        self._force = True  # the first round always runs (settings or keys may have changed)
        self.rounds = 0
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------
    def changed(self) -> None:
        """Something waits to be published: the next round will run."""
        self._changed.set()

    async def start(self) -> None:
        try:
            await self.run_round()
        except TamizdatError as exc:  # e.g. no valid signing key: keep serving what is published
            self.last_error = str(exc)
            log.error("first publishing round failed: %s", exc)
        self._task = asyncio.create_task(self._loop(), name="tamizdat-rounds")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        async with self._lock:  # let a running round finish
            pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.round_seconds)
            try:
                await self.run_round()
            except asyncio.CancelledError:
                raise
            except TamizdatError as exc:  # e.g. no signing key: one line, retried next round
                if str(exc) != self.last_error:
                    log.error("publishing round failed: %s", exc)
                self.last_error = str(exc)
            except Exception as exc:  # keep publishing later rounds; the next round retries
                self.last_error = str(exc)
                log.exception("publishing round failed")

    def log_status(self) -> dict[str, object]:
        """The transparency log's state for /healthz (``no-log`` when this publisher keeps none)."""
        if self.log is None:
            return {"state": "no-log"}
        return self.log.status()

    async def flush(self) -> RoundResult | None:
        """Run a round now (what the loop would do next); for tools, tests and benchmarks."""
        return await self.run_round()

    # -- one round -------------------------------------------------------
    def _resign_due(self, now: dt.datetime) -> bool:
        if self._last_created is None:
            return True
        return now >= self._last_created + dt.timedelta(seconds=self.config.index_lifetime / 2)

    async def run_round(self) -> RoundResult | None:
        async with self._lock:
            now = timefmt.now()
            keys = await asyncio.to_thread(self.keyring.snapshot)
            keys_changed = keys is not self._keys_seen
            force = self._force or keys_changed or self._resign_due(now)
            if not (force or self._changed.is_set()):
                return None
            self._changed.clear()
            roots_changed = await asyncio.to_thread(publish_roots, self.data, keys.documents)
            if keys_changed:
                await self._resign_revoked(keys, now)
            result = await self._publish(keys, now, force=force or roots_changed)
            self._keys_seen = keys
            self._force = False
            self.rounds += 1
            self.last_error = None
            return result

    async def _resign_revoked(self, keys: KeySnapshot, now: dt.datetime) -> None:
        """Re-sign (same id) or re-issue (new id, supersedes the old) bundles of revoked keys."""
        revoked = sorted(keys.root.revoked)
        if not revoked:
            return
        marks = ",".join("?" * len(revoked))
        async with self.store.tx(write=False) as tx:
            rows = await tx.all(
                f"SELECT * FROM bundles WHERE retracted_at IS NULL AND file != 'gone' AND signer IN ({marks}) "
                "ORDER BY seq",
                revoked,
            )
        if not rows:
            return
        signer = self.keyring.signer("bundle", now)
        for row in rows:
            src = self.data.bundle_path(row["id"]) if row["file"] == "public" else self.data.tmp / f"{row['id']}.zip"
            created = timefmt.parse(row["created"])
            if packager.can_resign(keys.chain, signer, created):
                packed = await asyncio.to_thread(
                    packager.resign,
                    src,
                    signer=signer,
                    chain=keys.chain,
                    root_keyid=keys.root_keyid,
                    tmp=self.data.tmp,
                )
                async with self.store.tx() as tx:
                    await tx.run(
                        "UPDATE bundles SET sha256 = ?, size = ?, signer = ?, file = 'tmp', dirty = dirty + 1 "
                        "WHERE seq = ?",
                        (packed.sha256, packed.size, packed.signer, row["seq"]),
                    )
                log.info("re-signed bundle %s with key %s", row["id"][:16], signer.keyid[:16])
                continue
            packed = await asyncio.to_thread(
                packager.reissue,
                src,
                signer=signer,
                chain=keys.chain,
                root_keyid=keys.root_keyid,
                tmp=self.data.tmp,
                created=now,
            )
            reason = f"signing key {row['signer'][:16]} revoked; re-issued as {packed.bundle_id}"
            async with self.store.tx() as tx:
                await insert_bundle(tx, packed)
                await tx.run(
                    "INSERT INTO bundle_articles (bundle_id, article_id, version) "
                    "SELECT ?, article_id, version FROM bundle_articles WHERE bundle_id = ?",
                    (packed.bundle_id, row["id"]),
                )
                await tx.run(
                    "UPDATE bundles SET retracted_at = ?, retract_reason = ?, dirty = dirty + 1 WHERE seq = ?",
                    (timefmt.format(now), reason, row["seq"]),
                )
                await tx.run(
                    "UPDATE article_versions SET bundle_id = ? WHERE bundle_id = ?", (packed.bundle_id, row["id"])
                )
                await tx.run("UPDATE editions SET bundle_id = ? WHERE bundle_id = ?", (packed.bundle_id, row["id"]))
            log.info("re-issued bundle %s as %s", row["id"][:16], packed.bundle_id[:16])

    async def _publish(self, keys: KeySnapshot, now: dt.datetime, *, force: bool) -> RoundResult | None:
        data = self.data
        async with self.store.tx(write=False) as tx:
            dirty = await tx.all(
                "SELECT seq, id, file, shard, dirty, retracted_at FROM bundles WHERE dirty > 0 ORDER BY seq"
            )
            last = await tx.one("SELECT * FROM index_versions ORDER BY version DESC LIMIT 1")
        disk_version, _ = await asyncio.to_thread(disk_index_version, data)
        if last is not None and self._last_created is None:
            self._last_created = timefmt.parse(last["created"])
        if not dirty and not force and last is not None:
            return None
        index_signer = self.keyring.signer("index", now)

        # Step 3: the round's new (or re-signed) files into the public tree.
        to_move = [r for r in dirty if r["file"] == "tmp"]
        moved = await asyncio.to_thread(self._move_files, [r["id"] for r in to_move])

        # Step 4: shard membership for new bundles, then render the touched shards only.
        async with self.store.tx() as tx:
            for r in to_move:
                if r["id"] in moved:
                    await tx.run("UPDATE bundles SET file = 'public' WHERE seq = ? AND file = 'tmp'", (r["seq"],))
            touched = await self._assign_shards(tx, [r for r in dirty if r["file"] != "tmp" or r["id"] in moved])
            shard_rows = {n: await tx.all("SELECT * FROM bundles WHERE shard = ? ORDER BY seq", (n,)) for n in touched}
        rendered = await asyncio.to_thread(self._write_shards, shard_rows)
        rendered_retracted = {int(r["seq"]) for rows in shard_rows.values() for r in rows if r["retracted_at"]}

        # Step 5: one sync for every file of the round, before the index can name them.
        await asyncio.to_thread(sync_filesystem, data.root)

        # Step 6: sign the index; record it; switch index.json last.
        async with self.store.tx() as tx:
            for n, (ref, _) in rendered.items():
                await tx.run(
                    "UPDATE shards SET sha256 = ?, size = ?, count = ? WHERE n = ?",
                    (ref.sha256, ref.size, ref.count, n),
                )
            refs = [
                ShardRef(r["sha256"], r["size"], r["count"])
                for r in await tx.all("SELECT * FROM shards WHERE sha256 IS NOT NULL ORDER BY n")
            ]
            version = max(int(last["version"]) if last else 0, disk_version) + 1
            index = Index(
                version=version,
                created=now,
                expires=now + dt.timedelta(seconds=self.config.index_lifetime),
                root_version=keys.root.version,
                mirrors=self.config.mirrors,
                shards=tuple(refs),
            )
            raw = await asyncio.to_thread(sign_index, index, index_signer)
            if self.log is not None:  # the round's log leaves, in the transaction recording the index
                await self.log.append(
                    tx, keys, index_version=version, index_raw=raw, rendered_retracted=rendered_retracted
                )
            await tx.run(
                "INSERT INTO index_versions (version, created, expires, root_version, signer, sha256, shards) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    version,
                    timefmt.format(index.created),
                    timefmt.format(index.expires),
                    index.root_version,
                    index_signer.keyid,
                    shard_sha256(raw),
                    json.dumps([r.sha256 for r in refs]),
                ),
            )
            await tx.many(
                "INSERT INTO shard_files (sha256, size, last_listed) VALUES (?, ?, ?) "
                "ON CONFLICT(sha256) DO UPDATE SET last_listed = excluded.last_listed",
                [(r.sha256, r.size, timefmt.format(now)) for r in refs],
            )
        await asyncio.to_thread(atomic_write, data.public / "index.json", raw)
        self._last_created = now
        # Only now do bundles count as published (a crash before this: they stay dirty and are listed again).
        listed = [r for r in dirty if r["file"] != "tmp" or r["id"] in moved]
        async with self.store.tx() as tx:
            await tx.many(
                "UPDATE bundles SET dirty = CASE WHEN dirty = ? THEN 0 ELSE dirty END, "
                "index_version = COALESCE(index_version, ?) WHERE seq = ?",
                [(r["dirty"], version, r["seq"]) for r in listed],
            )

        # Step 7: the log's tiles, then its checkpoint (after index.json, which its last leaf names).
        if self.log is not None:
            await self.log.after_round(keys)

        # Step 8: retracted files leave the tree; old shards go after a grace period.
        gone = [r for r in dirty if r["retracted_at"]]
        if gone:
            await asyncio.to_thread(self._remove_bundles, [r["id"] for r in gone])
            async with self.store.tx() as tx:
                await tx.many("UPDATE bundles SET file = 'gone' WHERE seq = ?", [(r["seq"],) for r in gone])
        await self._collect_shards(now, {r.sha256 for r in refs})
        return RoundResult(version, len(listed), len(rendered))

    async def _assign_shards(self, tx: Tx, rows: Sequence[Any]) -> set[int]:
        touched: set[int] = set()
        last = await tx.one("SELECT n, count FROM shards ORDER BY n DESC LIMIT 1")
        n, count = (int(last["n"]), int(last["count"])) if last else (-1, SHARD_CAPACITY)
        for r in rows:
            if r["shard"] is not None:
                touched.add(int(r["shard"]))
                continue
            if count >= SHARD_CAPACITY:
                n, count = n + 1, 0
                await tx.run("INSERT INTO shards (n, count) VALUES (?, 0)", (n,))
            count += 1
            await tx.run("UPDATE bundles SET shard = ? WHERE seq = ?", (n, r["seq"]))
            await tx.run("UPDATE shards SET count = ? WHERE n = ?", (count, n))
            touched.add(n)
        return touched

    def _move_files(self, ids: Sequence[str]) -> set[str]:
        moved = set()
        for bid in ids:
            if _move_into_place(self.data.tmp / f"{bid}.zip", self.data.bundle_path(bid)):
                moved.add(bid)
            else:
                log.error("bundle %s lost its file before publication", bid)
        return moved

    def _write_shards(self, shard_rows: dict[int, list[Any]]) -> dict[int, tuple[ShardRef, bytes]]:
        out = {}
        for n, rows in shard_rows.items():
            if not rows:
                continue
            ref, body = render_shard(rows)
            path = self.data.shard_path(ref.sha256)
            if not path.exists():
                atomic_write(path, body, durable=False)
            out[n] = (ref, body)
        return out

    def _remove_bundles(self, ids: Sequence[str]) -> None:
        for bid in ids:
            for path in (self.data.bundle_path(bid), self.data.tmp / f"{bid}.zip", proofs.proof_path(self.data, bid)):
                path.unlink(missing_ok=True)

    def _remove_shards(self, names: Sequence[str]) -> None:
        for sha in names:
            self.data.shard_path(sha).unlink(missing_ok=True)

    async def _collect_shards(self, now: dt.datetime, current: set[str]) -> None:
        cutoff = timefmt.format(now - dt.timedelta(seconds=self.config.shard_grace))
        async with self.store.tx(write=False) as tx:
            old = [r["sha256"] for r in await tx.all("SELECT sha256 FROM shard_files WHERE last_listed < ?", (cutoff,))]
        old = [s for s in old if s not in current]
        if not old:
            return
        await asyncio.to_thread(self._remove_shards, old)
        async with self.store.tx() as tx:
            await tx.many("DELETE FROM shard_files WHERE sha256 = ?", [(s,) for s in old])


async def insert_bundle(tx: Tx, packed: packager.Packed) -> None:
    """Record a bundle built into ``tmp`` (it joins the index at the next round)."""
    await tx.run(
        "INSERT INTO bundles (id, kind, created, sha256, size, articles, supersedes, signer, file) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'tmp')",
        (
            packed.bundle_id,
            packed.kind,
            timefmt.format(packed.created),
            packed.sha256,
            packed.size,
            json.dumps([a.to_json() for a in packed.articles]),
            json.dumps(list(packed.supersedes)),
            packed.signer,
        ),
    )
