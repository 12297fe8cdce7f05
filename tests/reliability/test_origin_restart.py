"""kill -9 of the origin (`tamizdat serve`) while articles are being published loses no acknowledged article.

Four publishing clients post new articles and updates as fast as the origin
takes them; at a random moment the origin is killed with SIGKILL (then its
packaging workers, as systemd would clean the unit's group) and started again
on the same data directory. Every article version whose API call answered 2xx
before the kill must, after the restart: be returned by the API with that
version and bundle id, end up listed in a signed index (verified against the
publisher's root, its shards against the index), and be served as a bundle
that verifies and carries that article version. The index version never goes
back across restarts, and the origin's static tree stays consistent.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from tamizdat.bundles.verify import verify_bundle

from .conftest import Figures
from .support import (
    FULL,
    Origin,
    article,
    check_store,
    fetch_index,
    get,
    http,
    index_version_of,
    wait_until,
)

KILLS = 5 if FULL else 2
CLIENTS = 4


@dataclass
class Ledger:
    """What the origin acknowledged: (article id, version) -> bundle id."""

    acked: dict[tuple[str, int], str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # answers that were neither 2xx nor a connection error
    cut: int = 0  # requests cut off by the kill (no answer: not acknowledged)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grew(self, since: int) -> bool:
        return len(self.acked) > since

    def record(self, doc: dict[str, object]) -> None:
        versions = doc["versions"]
        assert isinstance(versions, list)
        current = doc["current_version"]
        [v] = [v for v in versions if v["version"] == current]
        with self.lock:
            self.acked[(str(doc["id"]), int(v["version"]))] = str(v["bundle_id"])


def _client(origin: Origin, ledger: Ledger, worker: int, generation: int, stop: threading.Event) -> None:
    rng = random.Random(worker * 1000 + generation)
    mine: list[str] = []
    n = 0
    while not stop.is_set():
        try:
            if mine and rng.random() < 0.25:  # an update: a new version of one of ours
                aid = rng.choice(mine)
                doc = article(n, prefix=f"w{worker}", seed=generation * 7 + n)
                doc["id"] = aid
                status, body = http("PUT", f"{origin.url}/api/v1/articles/{aid}", doc, token=origin.token, timeout=30)
            else:
                aid = f"g{generation}-w{worker}-{n}"
                doc = article(n, prefix=f"w{worker}", seed=generation)
                doc["id"] = aid
                status, body = http("POST", f"{origin.url}/api/v1/articles", doc, token=origin.token, timeout=30)
        except OSError:
            ledger.cut += 1
            return  # the origin is down: this client's generation ends
        n += 1
        if 200 <= status < 300:
            ledger.record(json.loads(body))
            if aid not in mine:
                mine.append(aid)
        else:
            ledger.refused.append(f"{status} {body[:200]!r}")


def _check_acknowledged(origin: Origin, ledger: Ledger) -> int:
    """Every acknowledged version is in the API, in a signed index, and in a verifying bundle."""
    for (aid, version), bundle_id in ledger.acked.items():
        status, body = http("GET", f"{origin.url}/api/v1/articles/{aid}", token=origin.token, timeout=30)
        assert status == 200, f"acknowledged article {aid} is gone after the restart ({status})"
        doc = json.loads(body)
        listed = {v["version"]: v["bundle_id"] for v in doc["versions"]}
        assert listed.get(version) == bundle_id, f"{aid} v{version} lost or changed: {listed}"
    wanted = set(ledger.acked.values())

    def all_listed() -> bool:
        return wanted <= set(origin.listed())

    wait_until(all_listed, 120, "every acknowledged bundle to be listed in a signed index")
    _, shards = fetch_index(origin.url, origin.root())
    entries = {e.id: e for s in shards for e in s.bundles}
    by_bundle = {bid: key for key, bid in ledger.acked.items()}
    for bid in wanted:
        status, body = get(f"{origin.url}/bundles/{bid}.zip")
        assert status == 200, f"bundle {bid[:16]} listed but not served ({status})"
        assert hashlib.sha256(body).hexdigest() == entries[bid].sha256
        verified = verify_bundle(io.BytesIO(body), root_keyid=origin.root_keyid)
        assert verified.bundle_id == bid
        aid, version = by_bundle[bid]
        assert [(a.id, a.version) for a in verified.manifest.articles] == [(aid, version)]
    return len(wanted)


@pytest.mark.slow
def test_kill9_origin_while_publishing(origin: Origin, figures: Figures) -> None:
    rng = random.Random(1917)
    ledger = Ledger()
    versions: list[int] = [index_version_of(origin.index_raw())]
    work_files: set[str] = set()  # atomic_write's temp files a kill left in public/ (cleared at the next start)
    for generation in range(KILLS):
        stop = threading.Event()
        clients = [
            threading.Thread(target=_client, args=(origin, ledger, w, generation, stop), name=f"client-{w}")
            for w in range(CLIENTS)
        ]
        before = len(ledger.acked)
        for c in clients:
            c.start()
        # The kill lands while articles flow: after the first acknowledgement of this generation
        # (packaging workers start lazily after a restart), plus a random 0.2-2 s.
        wait_until(functools.partial(ledger.grew, before), 60, "a first acknowledged article", step=0.01)
        time.sleep(rng.uniform(0.2, 2.0))
        origin.kill9()
        stop.set()
        for c in clients:
            c.join(60)
        assert len(ledger.acked) > before, "nothing was acknowledged before the kill"
        left = check_store(origin.data / "public", origin.root(), origin.root_keyid, allow_work_files=True)
        work_files |= set(left.work_files)
        origin.start()
        versions.append(index_version_of(origin.index_raw()))
        assert versions[-1] > versions[-2], f"index version went back after a restart: {versions}"
    checked = _check_acknowledged(origin, ledger)
    report = check_store(origin.data / "public", origin.root(), origin.root_keyid)  # restarted: no temp files
    assert report.extra == 0, report
    figures.add(
        f"{KILLS} kills -9 of `tamizdat serve` while {CLIENTS} clients published: {len(ledger.acked)} acknowledged "
        f"article versions, 0 lost; {checked} bundles listed in a signed index and verified; {ledger.cut} requests "
        f"cut off by the kills (unacknowledged); index versions across restarts {versions}; "
        f"{len(work_files)} temp files left in public/ by kills",
        kills=KILLS,
        acknowledged=len(ledger.acked),
        cut=ledger.cut,
        index_versions=versions,
        work_files=sorted(work_files),
    )
    assert not ledger.refused, ledger.refused[:5]


@pytest.mark.slow
def test_restart_clears_work_files_a_kill_left_in_public(origin: Origin) -> None:
    """A round writes index.json, root.json, roots/ and shards with fsutil.atomic_write, whose temp file
    (``.tmp-XXXXXXXX``) sits beside the target in public/: a kill -9 mid-write leaves it there, in the
    tree that nginx, rsync and `mirror export` take as exactly the static tree. A restart clears them."""
    public = origin.data / "public"
    origin.stop()
    leftovers = [public / ".tmp-k1ll3d00", public / "index" / ".tmp-k1ll3d01", public / "roots" / ".tmp-k1ll3d02"]
    for p in leftovers:
        p.write_bytes(b'{"partial": ')
    origin.start()
    wait_until(lambda: origin.status()["pending_changes"] == 0, 30, "the first round after the restart")
    remaining = [str(p.relative_to(public)) for p in leftovers if p.exists()]
    assert not remaining, f"a restart kept atomic_write temp files in public/: {remaining}"
