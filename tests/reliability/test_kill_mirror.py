"""kill -9 of a mirror (`tamizdat mirror run`) in the middle of a sync, again and again, restarting it each time.

Before each kill the origin publishes a new batch of articles, so the restarted
mirror has a sync to do; the kill lands at a random point of it, drawn each
time from three kinds:

- ``time``: as soon as the sync is seen writing (a work file in ``tmp/`` or a
  new bundle file), plus a random 0-300 ms;
- ``bundle``: right after the k-th new bundle was renamed into place (k random;
  the mirror's test hook ``TAMIZDAT_TEST_PAUSE_AFTER`` freezes it there);
- ``commit``: at a random commit point (``TAMIZDAT_TEST_PAUSE_AT``: shards
  renamed, filesystem synced, index switched).

After every kill the store on disk is checked (support.check_store: a complete
signed index whose every listed bundle is present and verifies, no partial
file in the served tree), and a watcher thread reads what the mirror serves
over HTTP the whole time (index, shards and sampled bundles must verify). At
the end a clean start must converge to exactly the origin's listing.
"""

from __future__ import annotations

import functools
import random
import time
from pathlib import Path

import pytest

from .conftest import Figures
from .support import FULL, MirrorDaemon, Origin, ServedWatcher, article, check_store, get, wait_until

KILLS = 20 if FULL else 3
BATCH = (15, 40)  # articles published before each restart
CHARS = 14_000  # about 8 KiB per bundle
COMMIT_POINTS = ("shards", "synced", "index")


def _publish_batch(origin: Origin, start: int, count: int) -> int:
    for n in range(start, start + count):
        status, body = origin.publish(article(n, prefix="kill", chars=CHARS))
        assert status == 201, body
    return start + count


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def _writing(data: Path, before: set[str]) -> bool:
    """A work file or a bundle file that was not there before this process started."""
    now = {f"tmp/{n}" for n in _names(data / "tmp") if n.startswith("bundle-")}
    now |= {f"bundles/{n}" for n in _names(data / "public" / "bundles")}
    return bool(now - before)


def _paused(mirror: MirrorDaemon) -> bool:
    if not mirror.proc.alive():
        raise AssertionError(f"mirror exited before its pause:\n{mirror.proc.log()[-3000:]}")
    return "TAMIZDAT-PAUSED" in mirror.proc.log()


@pytest.mark.slow
def test_kill9_mirror_mid_sync(origin: Origin, tmp_path: Path, figures: Figures) -> None:
    rng = random.Random(20260101)
    data = tmp_path / "mirror"
    root, keyid = origin.root(), origin.root_keyid
    next_n = _publish_batch(origin, 0, 20)
    current: list[MirrorDaemon] = []
    outcomes: list[str] = []
    mid_sync = 0

    def base() -> str | None:
        return current[-1].url if current else None

    with ServedWatcher(base, root, keyid) as watcher:
        for k in range(KILLS):
            count = rng.randint(*BATCH)
            next_n = _publish_batch(origin, next_n, count)
            wanted = origin.listed()
            kind = rng.choice(("time", "bundle", "commit"))
            env: dict[str, str] = {}
            if kind == "bundle":
                env["TAMIZDAT_TEST_PAUSE_AFTER"] = str(rng.randint(1, count))
            elif kind == "commit":
                env["TAMIZDAT_TEST_PAUSE_AT"] = rng.choice(COMMIT_POINTS)
            before = {f"tmp/{n}" for n in _names(data / "tmp")} | {
                f"bundles/{n}" for n in _names(data / "public" / "bundles")
            }
            log = tmp_path / f"mirror-run-{k}.log"
            mirror = MirrorDaemon(data, keyid, origin.url, env=env, log=log, wait=False)
            current.append(mirror)
            if kind == "time":
                wait_until(functools.partial(_writing, data, before), 60, "the sync to start writing", step=0.005)
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                wait_until(functools.partial(_paused, mirror), 60, "the mirror to pause", step=0.01)
            point = env.get("TAMIZDAT_TEST_PAUSE_AFTER") or env.get("TAMIZDAT_TEST_PAUSE_AT") or "random"
            current.clear()
            mirror.proc.kill9()
            report = check_store(data / "public", root, keyid)
            held = {p.name[:-4] for p in (data / "public" / "bundles").glob("*.zip")}
            complete = set(wanted) <= held and report.listed == len(wanted)
            mid = kind != "time" or not complete  # a pause hook is inside the sync by construction
            mid_sync += mid
            outcomes.append(f"{kind}:{point}:{'mid-sync' if mid else 'after-sync'}")

        # A clean start converges to exactly the origin's listing.
        final = MirrorDaemon(data, keyid, origin.url, log=tmp_path / "mirror-final.log")
        current.append(final)
        wanted = origin.listed()
        try:
            wait_until(
                lambda: (
                    all(get(f"{final.url}/bundles/{b}.zip", timeout=5)[0] == 200 for b in wanted)
                    and final.health()["bundles"] == len(wanted)
                ),
                120,
                "the restarted mirror to hold everything",
            )
            time.sleep(0.5)  # a few more watcher rounds on the final state
        finally:
            current.clear()
            final.proc.stop()
    report = check_store(data / "public", root, keyid)
    assert report.listed == len(wanted) and report.extra == 0, report
    assert not [p for p in (data / "tmp").iterdir() if p.name.startswith(("bundle-", "shard-", "public-"))]
    figures.add(
        f"{KILLS} kills -9 of `mirror run` ({mid_sync} landed mid-sync): store consistent after every one; "
        f"{watcher.indexes} served indexes and {watcher.bundles} served bundles checked over HTTP, "
        f"{len(watcher.failures)} bad; final store {report.listed} bundles = the origin's listing",
        kills=KILLS,
        mid_sync=mid_sync,
        outcomes=outcomes,
        served_indexes=watcher.indexes,
        served_bundles=watcher.bundles,
    )
    assert not watcher.failures, watcher.failures[:5]
    assert watcher.indexes > 0 and watcher.bundles > 0
