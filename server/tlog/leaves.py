"""The log's leaves in the state database (table ``tlog_leaves``).

A publishing round appends, inside the transaction that records its index
version (so a crash never loses an appended leaf and never appends one twice):

1. a bundle leaf for each bundle the new index lists that was never logged, in
   creation order;
2. a retraction leaf for each listed bundle the new index marks retracted whose
   retraction was never logged;
3. the new index's leaf, last.

``bundles.leaf`` and ``bundles.retraction_leaf`` remember what was logged, so a
re-signed bundle (same id) appends nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tamizdat.bundles.tlog import Leaf, LeafKind, bundle_leaf, index_leaf, retraction_leaf
from tamizdat.bundles.tlog.leaf import LEAF_SIZE

from ..store import Tx


@dataclass(frozen=True)
class Appended:
    """What one round appended: leaves ``first .. first + len(leaves) - 1``."""

    first: int
    leaves: tuple[Leaf, ...]

    @property
    def size(self) -> int:
        """The log's size after the append."""
        return self.first + len(self.leaves)


async def log_size(tx: Tx) -> int:
    """How many leaves the database holds."""
    return int(await tx.value("SELECT COALESCE(MAX(n) + 1, 0) FROM tlog_leaves"))


async def append_round(
    tx: Tx, *, index_version: int, index_payload: bytes, rendered_retracted: Collection[int]
) -> Appended:
    """Append the round's leaves (bundles, retractions, the index last) in ``tx``.

    ``rendered_retracted`` holds the ``seq`` of the bundles this round's shards
    render as retracted: a retraction recorded after the shards were rendered is
    not in this index yet and waits for the next round. Rows that no round has
    to publish any more (``dirty = 0``) are listed as they are.
    """
    first = await log_size(tx)
    n = first
    leaves: list[Leaf] = []
    rows = []
    for row in await tx.all("SELECT seq, id FROM bundles WHERE leaf IS NULL AND shard IS NOT NULL ORDER BY seq"):
        leaves.append(bundle_leaf(row["id"]))
        rows.append((n, LeafKind.BUNDLE, row["id"], index_version))
        await tx.run("UPDATE bundles SET leaf = ? WHERE seq = ?", (n, row["seq"]))
        n += 1
    retracted = await tx.all(
        "SELECT seq, id, dirty FROM bundles "
        "WHERE retraction_leaf IS NULL AND retracted_at IS NOT NULL AND shard IS NOT NULL ORDER BY seq"
    )
    for row in retracted:
        if row["dirty"] and row["seq"] not in rendered_retracted:
            continue  # retracted after this round rendered its shards
        leaves.append(retraction_leaf(row["id"]))
        rows.append((n, LeafKind.RETRACTION, row["id"], index_version))
        await tx.run("UPDATE bundles SET retraction_leaf = ? WHERE seq = ?", (n, row["seq"]))
        n += 1
    leaf = index_leaf(index_payload)
    leaves.append(leaf)
    rows.append((n, LeafKind.INDEX, leaf.id_hex, index_version))
    await tx.many("INSERT INTO tlog_leaves (n, kind, id, index_version) VALUES (?, ?, ?, ?)", rows)
    return Appended(first, tuple(leaves))


_PREFIX = {kind: Leaf(kind, bytes(32)).to_bytes()[:2] for kind in LeafKind}


async def read_entries(tx: Tx, start: int, end: int) -> list[bytes]:
    """The 34-byte entries of leaves ``start .. end - 1`` (all of them must exist)."""
    rows = await tx.all("SELECT n, kind, id FROM tlog_leaves WHERE n >= ? AND n < ? ORDER BY n", (start, end))
    if len(rows) != end - start or (rows and (rows[0][0] != start or rows[-1][0] != end - 1)):
        raise RuntimeError(f"log leaves {start}..{end - 1} are not all in the database")
    try:
        entries = [_PREFIX[row[1]] + bytes.fromhex(row[2]) for row in rows]
    except (KeyError, ValueError):
        entries = []
    if len(entries) != len(rows) or any(len(e) != LEAF_SIZE for e in entries):
        raise RuntimeError("a log leaf in the state database is malformed")
    return entries


PROOF_PENDING, PROOF_WRITTEN, PROOF_STALE = 0, 1, 2
"""``tlog_leaves.proof_done`` of a bundle leaf: no proof yet; written (or none needed); written under a
checkpoint the newest root no longer accepts (:mod:`.stale`), to be rewritten."""


async def proofless_bundles(
    tx: Tx, size: int, limit: int, *, state: int = PROOF_PENDING
) -> list[tuple[int, str, bool]]:
    """Bundle leaves below ``size`` whose proof is in ``state`` (default: none yet): (leaf, bundle id, retracted)."""
    rows = await tx.all(
        "SELECT l.n, l.id, b.retracted_at FROM tlog_leaves l LEFT JOIN bundles b ON b.id = l.id "
        "WHERE l.kind = 1 AND l.proof_done = ? AND l.n < ? ORDER BY l.n LIMIT ?",
        (state, size, limit),
    )
    return [(int(r["n"]), str(r["id"]), r["retracted_at"] is not None) for r in rows]


async def mark_proofs_done(tx: Tx, leaves: Collection[int]) -> None:
    await tx.many("UPDATE tlog_leaves SET proof_done = 1 WHERE n = ?", [(n,) for n in leaves])


async def written_proofs(tx: Tx, after: int, limit: int) -> list[tuple[int, str]]:
    """Bundle leaves after ``after`` whose proof was written: (leaf, bundle id), in leaf order."""
    rows = await tx.all(
        "SELECT n, id FROM tlog_leaves WHERE n > ? AND kind = 1 AND proof_done = 1 ORDER BY n LIMIT ?",
        (after, limit),
    )
    return [(int(r["n"]), str(r["id"])) for r in rows]


async def mark_proofs_stale(tx: Tx, leaves: Collection[int]) -> None:
    await tx.many("UPDATE tlog_leaves SET proof_done = 2 WHERE n = ? AND proof_done = 1", [(n,) for n in leaves])


async def count_stale_proofs(tx: Tx) -> int:
    return int(await tx.value("SELECT COUNT(*) FROM tlog_leaves WHERE kind = 1 AND proof_done = 2"))
