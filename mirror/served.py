"""The served index as the log's leaf checks see it, without rebuilding it every sync.

A mirror with a million bundles spent seconds a sync on this: a plan over
every shard entry and four sets (about 1.7 s), and a listing of ``bundles/``
(about 3 s, one directory entry at a time). Now:

- :class:`IndexSets`: the index's sets, an immutable snapshot per index
  version (taken from the sync's own plan when it commits the index, or
  built once after a restart);
- :class:`BundleFiles`: the ids of the bundle files, listed again only when
  the folder changed. A folder's mtime moves when an entry is added, removed
  or renamed in, but two changes in one clock tick leave one mtime; so a
  listing is reused only when the folder had not changed for ``RACY_NS``
  before it was taken (git treats its "racy" index entries the same way).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tamizdat.bundles.index import SignedIndex
from tamizdat.keys.dsse import INDEX_TYPE, Envelope

from .trust import Plan
from .witness import ServedIndex

HEX_ZIP = re.compile(r"\A([0-9a-f]{64})\.zip\Z")
HEX_ZIP_LINES = re.compile(r"^([0-9a-f]{64})\.zip$", re.MULTILINE)
RACY_NS = 2_000_000_000  # a listing is reused only if the folder had not changed for this long before it was taken


@dataclass(frozen=True)
class IndexSets:
    """An index's sets of bundle ids for the leaf checks (for one ``raw`` index and superseded rule)."""

    raw: bytes
    keep_superseded: bool
    payload_sha256: str
    listed: frozenset[str]
    retracted: frozenset[str]
    wanted: frozenset[str]

    @classmethod
    def of(cls, signed: SignedIndex, plan: Plan, *, keep_superseded: bool) -> IndexSets:
        payload = Envelope.from_bytes(signed.raw, expected_type=INDEX_TYPE).payload
        return cls(
            raw=signed.raw,
            keep_superseded=keep_superseded,
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            listed=plan.listed,
            retracted=plan.retracted,
            wanted=frozenset(plan.wanted),
        )

    def describes(self, signed: SignedIndex, *, keep_superseded: bool) -> bool:
        return self.keep_superseded == keep_superseded and self.raw == signed.raw

    def served(self, held: frozenset[str]) -> ServedIndex:
        return ServedIndex(self.payload_sha256, self.listed, self.retracted, self.wanted, held)


class BundleFiles:
    """The ids of the ``<id>.zip`` files in a folder; the last listing is reused while the folder is unchanged."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._kept: tuple[tuple[int, int, int], frozenset[str]] | None = None
        self.listings = 0  # how many times the folder was read (tests, benchmarks)

    def ids(self) -> frozenset[str]:
        try:
            st = os.stat(self.folder)
        except FileNotFoundError:
            self._kept = None
            return frozenset()
        key = (st.st_dev, st.st_ino, st.st_mtime_ns)
        kept = self._kept
        if kept is not None and kept[0] == key:
            return kept[1]
        started = time.time_ns()
        ids = frozenset(held_ids(self.folder))
        self.listings += 1
        try:
            after = os.stat(self.folder)
        except FileNotFoundError:
            after = None
        unchanged = after is not None and (after.st_dev, after.st_ino, after.st_mtime_ns) == key
        self._kept = (key, ids) if unchanged and started - st.st_mtime_ns > RACY_NS else None
        return ids


def held_ids(folder: Path) -> list[str]:
    """Bundle ids with a ``<id>.zip`` file in ``folder`` (none when it does not exist).

    One regular-expression pass over all the names joined by newlines (about
    twice as fast as a match per name at a million files); a name holding a
    newline falls back to a match per name.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    text = "\n".join(names)
    if text.count("\n") == max(len(names) - 1, 0):
        return HEX_ZIP_LINES.findall(text)
    return [m.group(1) for name in names if (m := HEX_ZIP.match(name))]


__all__ = ["RACY_NS", "BundleFiles", "IndexSets", "held_ids"]
