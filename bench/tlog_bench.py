"""Transparency log (bundles/tlog): building tiles, proof sizes, catching up, storage.

For ``N`` synthetic 34-byte tamizdat leaves (1,000,000; quick mode 50,000),
appended in publishing rounds of 1,000 leaves, each round flushed to an
in-memory file tree with partial-tile collection:

- time to append every leaf and build all tiles and entry bundles, against a
  raw ``hashlib`` loop over the same number of leaf and node hashes (N leaf
  hashes, N - 1 node hashes: the internal nodes of any tree of N leaves);
- the largest inclusion proof over sampled leaves (goal <= 20 hashes at 1M) and
  the size of a ``.tlog-proof`` file with a log signature and four cosignatures
  (goal <= 2 KB);
- catching up 1,000 leaves: a consistency proof computed from the new tree's
  tiles and verified (a light witness), and, for a full mirror, resuming the tree
  state from tiles, appending the 1,000 entries and checking the root;
- bytes a mirror downloads per sync for the log, as ``mirror/logsync.py``
  fetches them: the checkpoint with a log signature and four cosignatures,
  then the new entries only (the first entry bundle as a byte range from the
  first new entry, the others whole), for 1 to 1,000 new leaves: bodies, and on
  the wire with each response's headers (about ``HEADER_BYTES``, as
  ``server.static.StaticTree`` sends them; tests/mirror/test_witness_range.py
  counts the real bytes through a relay), the mean and worst over every
  position of the old size in its entry bundle (goal <= 3 KB + 36 B per new
  leaf);
- a mirror witness's round at N leaves with 1,000 new (in memory, as
  ``mirror/logsync.py`` drives ``mirror/witness.py``): resuming the tree from
  its own tiles, appending and checking the root, the incremental leaf check
  against a served index of N bundles and the proof backlog's bookkeeping,
  against the full leaf check every round used to run; the one-time rebuild of
  the log's contents at start; proofs for a first quorum (CPU per proof, file
  writes per proof, rounds of ``MAX_PROOFS`` / ``PROOF_SECONDS`` it takes);
- bytes on disk after collection: full tiles, entry bundles and the current
  partials (goal <= 32.2 B + 36 B per leaf + 64 KB); then the older partials that
  checkpoints of earlier sizes still need (tlog-tiles lets a log delete a partial
  only once its full tile exists), and what collection removed.

Times are CPU seconds of this process (medians), so that other work on a
shared machine does not skew them; the baselines are measured the same way.
``main(quick)`` returns plain rows (name, value, unit, baseline, ratio, goal,
met); ``run(ctx)`` adapts them for ``bench/run``.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from tamizdat.bundles.index import Index, SignedIndex
from tamizdat.bundles.tlog.builder import TreeBuilder
from tamizdat.bundles.tlog.checkpoint import Checkpoint, sign_checkpoint
from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.hashing import leaf_hash
from tamizdat.bundles.tlog.leaf import Leaf, LeafKind, log_origin
from tamizdat.bundles.tlog.note import Ed25519Signer, Note
from tamizdat.bundles.tlog.policy import Policy
from tamizdat.bundles.tlog.proof_file import ProofFile
from tamizdat.bundles.tlog.proofs import (
    nodes_for_consistency,
    prove_consistency,
    prove_inclusion,
    verify_consistency,
)
from tamizdat.bundles.tlog.tiles import TILE_WIDTH, TileId, tile_hash_reader, tile_layout, tiles_for_inclusion
from tamizdat.bundles.tlog.trust import LogTrust
from tamizdat.fsutil import atomic_write
from tamizdat.keys import dsse
from tamizdat.keys.ed25519 import SigningKey
from tamizdat.mirror.logproofs import ProofBacklog, ProofMaker, proof_bytes
from tamizdat.mirror.logsync import MAX_PROOFS, PROOF_SECONDS
from tamizdat.mirror.monitor import entry_tiles
from tamizdat.mirror.served import IndexSets
from tamizdat.mirror.trust import Listing, TrustedState
from tamizdat.mirror.witness import ENTRY_BYTES, LogContents, LogWitness, ServedIndex, WitnessState

if TYPE_CHECKING:
    from .common import Context, Result

ROUND = 1_000  # leaves per publishing round (one flush, one checkpoint)
CATCH_UP = 1_000
NOW = 1_767_225_600
HEADER_BYTES = 370  # status line and headers of one StaticTree response (checkpoint or entry bundle range)
Row = dict[str, Any]


def _entries(n: int) -> list[bytes]:
    """Synthetic leaves: bundles, with an index leaf closing each round."""
    out = []
    for i in range(n):
        kind = LeafKind.INDEX if i % ROUND == ROUND - 1 else LeafKind.BUNDLE
        out.append(Leaf(kind, hashlib.sha256(i.to_bytes(8, "big")).digest()).to_bytes())
    return out


class Store:
    """The static file tree, in memory, with partial-tile collection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.partials: dict[str, list[str]] = {}  # "<full tile path>.p" -> partial paths under it
        self.collected_bytes = 0

    def write(self, path: str, data: bytes) -> None:
        self.files[path] = data
        if ".p/" in path:
            self.partials.setdefault(path.rsplit("/", 1)[0], []).append(path)

    def remove_dir(self, directory: str) -> None:
        for p in self.partials.pop(directory, []):
            self.collected_bytes += len(self.files.pop(p))

    def read(self, tile: TileId) -> bytes:
        return self.files[tile.path()]

    def size(self) -> int:
        return sum(len(d) for d in self.files.values())


def build(entries: list[bytes], collect: bool = True) -> tuple[TreeBuilder, Store]:
    builder = TreeBuilder()
    store = Store()
    for start in range(0, len(entries), ROUND):
        builder.extend(entries[start : start + ROUND])
        batch = builder.flush()
        for path, data in batch.files():
            store.write(path, data)
        if collect:
            for d in batch.garbage_dirs():
                store.remove_dir(d)
    return builder, store


def raw_hashes(entries: list[bytes]) -> None:
    """The baseline: N leaf hashes and N - 1 node hashes with hashlib, nothing else."""
    sha = hashlib.sha256
    hashes = [sha(b"\x00" + e).digest() for e in entries]
    node = b"\x01" + bytes(64)
    for _ in range(len(entries) - 1):
        sha(node).digest()
    del hashes


def _median(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of ``fn`` (process time: other load on the machine does not count)."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def _row(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    goal: str = "-",
    met: bool | None = None,
    ratio: str = "-",
) -> Row:
    return {"name": name, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio, "goal": goal, "met": met}


def _ratio(baseline: float, value: float) -> str:
    return f"{baseline / value:.2f}x" if value else "-"


def main(quick: bool) -> list[Row]:
    n = 50_000 if quick else 1_000_000
    repeats = 1 if quick else 3
    label = f"{n // 1000}k leaves"
    entries = _entries(n)
    rows: list[Row] = []

    # 1. Append and build tiles (rounds of 1,000 with flushes and collection).
    result: dict[str, tuple[TreeBuilder, Store]] = {}

    def run_build() -> None:
        result["x"] = build(entries)

    t_build = _median(run_build, repeats)
    t_raw = _median(lambda: raw_hashes(entries), repeats)
    builder, store = result["x"]
    rows.append(
        _row(
            f"tlog: append + tiles, {label}",
            t_build * 1000,
            "ms",
            baseline=t_raw * 1000,
            ratio=_ratio(t_raw, t_build),
            goal="info: baseline = raw hashlib, 2N-1 hashes",
        )
    )

    # 2. Inclusion proof size and a .tlog-proof with a log signature and four cosignatures.
    size, root = builder.size, builder.root()
    read = tile_hash_reader(size, store.read)
    sample = sorted({*range(0, n, max(1, n // 997)), n - 1, n - 2, n - 257})
    longest, worst = max((len(prove_inclusion(i, size, read)), i) for i in sample)
    most_tiles = max(len(tiles_for_inclusion(i, size)) for i in sample)
    rows.append(_row(f"tlog: inclusion proof, {label}", longest, "hashes", goal="<= 20", met=longest <= 20))
    rows.append(_row(f"tlog: tiles to build one proof, {label}", most_tiles, "tiles", goal="<= 5", met=most_tiles <= 5))

    origin = log_origin(hashlib.sha256(b"root key").hexdigest())
    log = Ed25519Signer(origin, SigningKey.from_seed(b"\x01" * 32))
    seeds = [bytes([2 + i]) * 32 for i in range(4)]
    mirrors = [
        CosignatureSigner(f"mirror{i}.example.org/tamizdat", SigningKey.from_seed(sd)) for i, sd in enumerate(seeds)
    ]
    cp = Checkpoint(origin, size, root)
    note = Note.parse(sign_checkpoint(cp, [log])).with_signatures(m.cosign(cp.text(), NOW) for m in mirrors).to_bytes()
    pf = ProofFile(worst, tuple(prove_inclusion(worst, size, read)), note)
    policy = Policy.parse(
        f"log {log.verifier.vkey()}\n"
        + "".join(f"witness m{i} {m.verifier.vkey()}\n" for i, m in enumerate(mirrors))
        + "group mirrors 2 m0 m1 m2 m3\nquorum mirrors\n"
    )
    ProofFile.parse(pf.to_bytes()).verify(leaf_hash(entries[worst]), policy, origin=origin)
    t_verify = _median(lambda: ProofFile.parse(pf.to_bytes()).verify(leaf_hash(entries[worst]), policy), 5)
    proof_bytes = len(pf.to_bytes())
    rows.append(_row(f"tlog: .tlog-proof file, {label}", proof_bytes, "B", goal="<= 2048 B", met=proof_bytes <= 2048))
    rows.append(_row("tlog: verify .tlog-proof (log sig + 4 cosigs)", t_verify * 1000, "ms", goal="info"))

    # 3. Catching up 1,000 leaves.
    old = n - CATCH_UP
    old_store = _snapshot(entries[:old])  # the mirror's own tiles at its last size
    old_root = TreeBuilder.resume(old, old_store.read).root()

    def light() -> None:
        proof = prove_consistency(old, size, tile_hash_reader(size, store.read))
        verify_consistency(old, size, proof, old_root, root)

    nodes = nodes_for_consistency(old, size)
    light_hashes = sum((1 << (lv % 8)) - 1 for lv, _ in nodes) + 3 * len(nodes)
    t_light = _median(light, 5)
    t_light_raw = _median(lambda: raw_hashes([b"x" * 34] * (light_hashes // 2 + 1)), 5)
    rows.append(
        _row(
            f"tlog: consistency check, {CATCH_UP} new leaves (from tiles)",
            t_light * 1000,
            "ms",
            baseline=t_light_raw * 1000,
            ratio=_ratio(t_light_raw, t_light),
            goal="info",
        )
    )

    def full_mirror() -> None:
        b = TreeBuilder.resume(old, old_store.read, root=old_root)
        b.extend(entries[old:])
        if b.root() != root:
            raise AssertionError("mirror rebuilt another root")
        b.flush()

    t_mirror = _median(full_mirror, 5)
    t_mirror_raw = _median(lambda: raw_hashes(entries[old:]), 5)
    rows.append(
        _row(
            f"tlog: mirror catch-up, {CATCH_UP} entries (resume, append, tiles)",
            t_mirror * 1000,
            "ms",
            baseline=t_mirror_raw * 1000,
            ratio=_ratio(t_mirror_raw, t_mirror),
            goal="info",
        )
    )

    # 4. What a mirror downloads for the log per sync (mirror/logsync.py): the checkpoint, then
    # only the new entries (a byte range of the first entry bundle, the next ones whole).
    rows.extend(sync_rows(len(note)))

    # 6. A witness round at this size with 1,000 new leaves, and the proofs of a first quorum.
    rows.extend(witness_rows(entries, store, builder, note, log, policy, origin, label))

    # 5. Disk after partial-tile collection, and what collection saved.
    total = store.size()
    current = {t.path() for t in tile_layout(size, entries=True)}
    layout = sum(len(d) for p, d in store.files.items() if p in current)
    budget = int(32.2 * n + 36 * n + 64 * 1024)
    rows.append(
        _row(
            f"tlog: full tiles + entries + current partials, {label}",
            layout / 1e6,
            "MB",
            goal=f"<= {budget / 1e6:.2f} MB",
            met=layout <= budget,
        )
    )
    rows.append(
        _row(
            "tlog: + older partials that older checkpoints still need",
            (total - layout) / 1e3,
            "KB",
            goal="info: kept until their full tile exists",
        )
    )
    rows.append(_row(f"tlog: total kept on disk, {label}", total / 1e6, "MB", goal="info"))
    collected = store.collected_bytes / 1e6
    rows.append(_row(f"tlog: dead partials collected, {label}, rounds of {ROUND}", collected, "MB", goal="info"))
    return rows


def sync_bytes(old: int, new: int, checkpoint_bytes: int) -> tuple[int, int]:
    """Bodies and responses of one mirror sync from size ``old`` to ``new``: the checkpoint, the new entries."""
    if new <= old:
        return checkpoint_bytes, 1
    return checkpoint_bytes + ENTRY_BYTES * (new - old), 1 + len(entry_tiles(old, new))


def sync_rows(checkpoint_bytes: int) -> list[Row]:
    """Bytes per sync, bodies and on the wire, mean and worst over every position of the old size in its bundle."""
    rows = []
    base = 10 * TILE_WIDTH  # any old size: only old mod 256 matters
    for k in (1, 10, 100, 1_000):
        runs = [sync_bytes(base + r, base + r + k, checkpoint_bytes) for r in range(TILE_WIDTH)]
        wire = [body + HEADER_BYTES * responses for body, responses in runs]
        goal = 3 * 1024 + 36 * k
        rows.append(
            _row(
                f"tlog: mirror sync download, {k} new leaves (bodies)",
                runs[0][0],
                "B",
                goal=f"info: checkpoint {checkpoint_bytes} B + {ENTRY_BYTES} B/leaf, any position",
            )
        )
        rows.append(
            _row(
                f"tlog: mirror sync download, {k} new leaves (wire, worst over old % 256)",
                max(wire),
                "B",
                goal=f"<= {goal} B (3 KB + 36 B/leaf)",
                met=max(wire) <= goal,
                ratio=f"mean {statistics.mean(wire):.0f} B",
            )
        )
    return rows


def witness_rows(
    entries: list[bytes],
    store: Store,
    builder: TreeBuilder,
    note: bytes,
    log: Ed25519Signer,
    policy: Policy,
    origin: str,
    label: str,
) -> list[Row]:
    """One witness round at ``len(entries)`` leaves with 1,000 new, after a round at the old size."""
    n = len(entries)
    old = n - CATCH_UP
    rows: list[Row] = []
    ids = [e[2:].hex() for e in entries]
    index_at = {i for i in range(n) if entries[i][1] == LeafKind.INDEX}

    def served(size: int) -> ServedIndex:
        """As mirror/sync.py builds it every sync: distinct sets, every listed bundle held."""
        listed = [ids[i] for i in range(size) if i not in index_at]
        return ServedIndex(ids[size - 1], frozenset(listed), frozenset(), frozenset(listed), frozenset(listed))

    view_old = served(old)
    view_new = served(n)
    old_store = _snapshot(entries[:old])
    old_root = TreeBuilder.resume(old, old_store.read).root()

    # Once per process: the contents from the mirror's own entry bundles (mirror/logsync.py _contents_for).
    t = time.process_time()
    contents = LogContents.rebuild(entries[:old])
    t_rebuild = time.process_time() - t

    trust = LogTrust(origin, policy, 7 * 24 * 3600)
    state = WitnessState(origin, size=old, root=old_root)
    w = LogWitness(trust, state, contents, lambda: NOW)
    w.check_leaves(view_old)  # the round at the old size: the one full pass
    with tempfile.TemporaryDirectory() as tmp:
        backlog = ProofBacklog(Path(tmp))
        backlog.update(contents.bundles, contents.bundle_order, view_old.held)
        offer = w.offer(note, root_at=lambda size: old_root, primary=True)
        fetched = {tile: store.read(tile) for tile in w.entry_tiles(n)}

        t = time.process_time()
        resumed = TreeBuilder.resume(old, old_store.read, root=old_root)
        w.accept(offer, w.extend(offer, fetched, resumed))
        t_extend = time.process_time() - t
        t = time.process_time()
        w.check_leaves(view_new)
        t_check = time.process_time() - t
        t = time.process_time()
        backlog.update(contents.bundles, contents.bundle_order, view_new.held)
        t_backlog = time.process_time() - t
    if contents.size != n or state.root != builder.root():
        raise AssertionError("the witness did not reach the new tree")
    t_before = _median(lambda: _check_with_new_sets(contents, view_new), 1)
    rows.append(
        _row(
            f"tlog: witness leaf check, {label}",
            t_check * 1000,
            "ms",
            baseline=t_before * 1000,
            ratio=_ratio(t_before, t_check),
            goal="info: baseline = the same check building sets (until 2026-11)",
        )
    )
    t_round = t_extend + t_check + t_backlog
    rows.append(
        _row(
            f"tlog: witness round, {label}, {CATCH_UP} new (extend + leaf check + proof backlog)",
            t_round * 1000,
            "ms",
            goal=f"info: {t_extend * 1000:.0f} + {t_check * 1000:.0f} + {t_backlog * 1000:.0f} ms",
        )
    )
    rows.append(_row(f"tlog: witness start, {label} (contents from own entries, once)", t_rebuild, "s", goal="info"))
    rows.extend(served_rows([ids[i] for i in range(n) if i not in index_at], label))

    # Proofs for a first quorum: CPU per proof in leaf order, the file write per proof, rounds needed.
    sample = min(n, 100_000)
    prove = ProofMaker(n, store.read)
    make = proof_bytes(prove, note)
    t = time.process_time()
    for i in range(sample):
        prove(i)
    t_prove = (time.process_time() - t) / sample
    t = time.process_time()
    for i in range(min(sample, 20_000)):
        make(i)
    t_make = (time.process_time() - t) / min(sample, 20_000)
    body = make(n // 2)
    writes = 2_000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i in range(writes):
            atomic_write(Path(tmp) / f"{i:064x}.tlog-proof", body, durable=False)
        t_write = (time.perf_counter() - t) / writes
    per_round = min(MAX_PROOFS, int(PROOF_SECONDS / (t_make + t_write)))
    bundles = n - len(index_at)
    rows.append(_row(f"tlog: witness proof, {label} (path from tile levels)", t_prove * 1e6, "us", goal="info"))
    rows.append(
        _row(
            "tlog: witness proof file (proof + .tlog-proof bytes) / its write",
            t_make * 1e6,
            "us",
            goal=f"info: write (tmp + rename, wall) {t_write * 1e6:.0f} us",
        )
    )
    rows.append(
        _row(
            f"tlog: first quorum, {label}: rounds of bundle proofs",
            math.ceil(bundles / per_round),
            "rounds",
            goal=f"info: {per_round} proofs a round (<= {MAX_PROOFS}, <= {PROOF_SECONDS:.0f} s)",
        )
    )
    return rows


def served_rows(ids: list[str], label: str) -> list[Row]:
    """mirror/sync.py's served index for the leaf checks: the plan and sets once per index version.

    Before, every round built them (a plan over every shard entry, the sets);
    now the commit leaves them and an unchanged index costs a lookup. The
    listing of ``bundles/`` (reused while the folder is unchanged) is not in
    these rows: it needs the files (docs/performance.md has it measured).
    """
    shards: dict[str, tuple[Listing, ...]] = {}
    for k in range(0, len(ids), 1000):
        shards[f"{k:064x}"] = tuple(Listing(i, i, 1000, False, ()) for i in ids[k : k + 1000])
    index = cast(Index, SimpleNamespace(shards=[SimpleNamespace(sha256=sha) for sha in shards]))
    raw = dsse.sign(dsse.INDEX_TYPE, b'{"synthetic": true}', [SigningKey.from_seed(b"\x05" * 32)]).to_bytes()
    signed = cast(SignedIndex, SimpleNamespace(raw=raw, index=index))
    held = frozenset(ids)
    kept: list[IndexSets] = []

    def build() -> None:  # a new index (before: every round)
        plan = TrustedState.plan(index, shards, keep_superseded=True)
        kept[:] = [IndexSets.of(signed, plan, keep_superseded=True)]

    t_build = _median(build, 1)
    sets = kept[0]

    def lookup() -> None:  # an unchanged index
        if not sets.describes(signed, keep_superseded=True):
            raise AssertionError("the kept sets do not describe the index")
        sets.served(held)

    t_same = _median(lookup, 5)
    return [
        _row(
            f"tlog: served index sets, {label} bundles, unchanged index (mirror/sync.py)",
            t_same * 1000,
            "ms",
            baseline=t_build * 1000,
            ratio=_ratio(t_build, t_same),
            goal="info: baseline = a new index: plan + sets (every round until 2026-11)",
        )
    ]


def _check_with_new_sets(c: LogContents, served: ServedIndex) -> list[str]:
    """The leaf checks as they were: a new set per comparison, sorted (the baseline)."""
    return [
        *sorted(c.bundles.keys() - served.listed),
        *sorted((c.bundles.keys() & served.wanted) - served.held),
        *sorted(c.retractions.keys() - served.retracted),
        *sorted(served.listed - c.bundles.keys()),
        *sorted(served.retracted - c.retractions.keys()),
    ]


def _snapshot(entries: list[bytes]) -> Store:
    """The tiles of a tree of these entries, as a mirror stored them at that size."""
    return build(entries, collect=True)[1]


def run(ctx: Context) -> list[Result]:
    """Adapter for ``bench/run``."""
    from .common import Result

    out = []
    for r in main(ctx.quick):
        out.append(Result(r["name"], r["value"], r["unit"], r["baseline"], r["ratio"], r["goal"], r["met"]))
    return out


if __name__ == "__main__":
    import sys

    for row in main("--quick" in sys.argv):
        print(row)
