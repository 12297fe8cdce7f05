"""The served index's sets per index version, the bundle files' listing per change of ``bundles/``.

- :class:`BundleFiles` lists the folder again whenever its mtime moved, and
  never reuses a listing taken within ``RACY_NS`` of the folder's last change
  (two changes in one clock tick leave one mtime).
- A sync that commits an index leaves its sets for the witness round (no
  second plan); an unchanged index and folder cost no plan and no listing; a
  restart, another index or another superseded rule build them again; what
  the leaf checks get always equals the sets built from scratch.
- With the same leaves and the very same sets the leaf checks, which passed
  already, are not run again.
- A bundle file removed behind the mirror's back is still noticed by the
  next round (``bundle-missing``).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tamizdat.keys import dsse
from tamizdat.mirror.served import RACY_NS, BundleFiles, held_ids
from tamizdat.mirror.sync import Mirror
from tamizdat.mirror.trust import TrustedState
from tamizdat.mirror.witness import LogWitness, ServedIndex

from .conftest import MirrorFactory
from .simulator import Simulator
from .test_witness_sync import join


def _zip(folder: Path, n: int) -> str:
    bid = hashlib.sha256(str(n).encode()).hexdigest()
    (folder / f"{bid}.zip").write_bytes(b"")
    return bid


def age(folder: Path, seconds: float = 10) -> None:
    """Pretend the folder last changed ``seconds`` ago (outside the racy window)."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(folder, ns=(then, then))


def test_bundle_files_listed_again_only_when_the_folder_changes(tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    files = BundleFiles(folder)
    assert files.ids() == frozenset() and files.listings == 0  # no folder yet
    folder.mkdir()
    ids = {_zip(folder, n) for n in range(3)}
    (folder / f"{next(iter(ids))}.tlog-proof").write_bytes(b"")
    (folder / "README").write_bytes(b"")
    assert files.ids() == ids and files.ids() == ids
    assert files.listings == 2  # the folder changed just now: each listing is racy, none is reused
    age(folder)
    assert files.ids() == ids and files.ids() == ids and files.listings == 3  # reused
    ids.add(_zip(folder, 7))  # a bundle placed
    assert files.ids() == ids and files.listings == 4
    age(folder)
    gone = sorted(ids)[0]
    (folder / f"{gone}.zip").unlink()  # a bundle removed (by us, or behind our back)
    ids.discard(gone)
    assert files.ids() == ids and files.listings == 5
    age(folder)
    assert files.ids() == ids and files.listings == 6
    first = sorted(ids)[0]
    (folder / f"{first}.zip").rename(folder / f"{'f' * 64}.zip")  # renamed in place
    assert files.ids() == (ids - {first}) | {"f" * 64} and files.listings == 7


@pytest.mark.parametrize("newline", [False, True])
def test_held_ids_are_exactly_the_bundle_files(tmp_path: Path, newline: bool) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    good = {_zip(folder, n) for n in range(5)}
    other = hashlib.sha256(b"other").hexdigest()
    for name in [f"{other}.zip.part", f"{other.upper()}.zip", f"{other}.tlog-proof", f"{other[:63]}.zip", "x.zip"]:
        (folder / name).write_bytes(b"")
    (folder / f"{other}.zip.d").mkdir()
    if newline:  # a name holding a newline, whose second line looks like a bundle file: not one
        (folder / f"junk\n{other}.zip").write_bytes(b"")
    assert sorted(held_ids(folder)) == sorted(good)
    assert held_ids(tmp_path / "missing") == []


def test_a_change_in_the_same_tick_is_not_missed(tmp_path: Path) -> None:
    """Within the racy window a listing is never reused, even when the mtime did not move."""
    folder = tmp_path / "bundles"
    folder.mkdir()
    files = BundleFiles(folder)
    a = _zip(folder, 1)
    stamp = os.stat(folder).st_mtime_ns
    assert files.ids() == {a}
    b = _zip(folder, 2)
    os.utime(folder, ns=(stamp, stamp))  # the second change landed in the same tick: the mtime did not move
    assert files.ids() == {a, b}  # without the racy rule the first listing would have been reused
    assert files.listings == 2 and RACY_NS >= 1_000_000_000


REAL_PLAN = TrustedState.plan


def from_scratch(m: Mirror) -> ServedIndex:
    """The served index's sets as the witness round built them every sync before."""
    signed = m.trust.index
    assert signed is not None
    shards = {ref.sha256: m.trust.shards[ref.sha256] for ref in signed.index.shards}
    plan = REAL_PLAN(signed.index, shards, keep_superseded=m.keep_superseded)
    payload = dsse.Envelope.from_bytes(signed.raw, expected_type=dsse.INDEX_TYPE).payload
    held = frozenset(p.name[:-4] for p in m.data.bundles.glob("*.zip"))
    return ServedIndex(hashlib.sha256(payload).hexdigest(), plan.listed, plan.retracted, frozenset(plan.wanted), held)


class Calls:
    """Counts the calls of a method."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: type, name: str, *, static: bool = False) -> None:
        self.calls = 0
        real = getattr(owner, name)

        def counted(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(owner, name, staticmethod(counted) if static else counted)

    def take(self) -> int:
        n, self.calls = self.calls, 0
        return n


async def test_sets_per_index_version(
    tmp_path: Path, make_mirror: MirrorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(3)
    sim.publish()
    plans = Calls(monkeypatch, TrustedState, "plan", static=True)
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok", s.log
        assert plans.take() == 1  # the sync's plan; the witness round reused its sets
        assert m._served_index() == from_scratch(m)

        age(m.data.bundles)
        listings = m._bundle_files.listings
        checks = Calls(monkeypatch, LogWitness, "check_leaves")
        for _ in range(3):  # nothing new: no plan; the folder is listed once (no listing was kept: it was racy)
            s = await m.sync()
            assert s.log is not None and s.log["state"] == "ok", s.log
        assert plans.take() == 0 and m._bundle_files.listings == listings + 1
        assert checks.calls == 1  # then the same leaves and the same sets: the leaf checks passed already

        sim.retract(sim.listed_ids()[0])
        sim.add(2)
        sim.publish()
        s = await m.sync()
        assert s.log is not None and s.log["state"] == "ok", s.log
        assert plans.take() == 1 and m._served_index() == from_scratch(m)

        # A restart builds the sets once; so does another superseded rule.
        again = Mirror(m.data, root_keyid=sim.root_keyid, upstreams=[url], config=m.config)
        assert again._served_index() == from_scratch(again) and plans.take() == 1
        assert again._served_index() == from_scratch(again) and plans.take() == 0
        again.keep_superseded = not again.keep_superseded
        assert again._served_index() == from_scratch(again) and plans.take() == 1


async def test_a_bundle_removed_behind_the_mirrors_back_is_noticed(tmp_path: Path, make_mirror: MirrorFactory) -> None:
    sim = Simulator(tmp_path / "sim", log=True)
    sim.add(3)
    sim.publish()
    with sim.serve() as url:
        m = make_mirror(sim.root_keyid, [url])
        join(sim, {"a": (m, None)}, "quorum a\n")
        assert (await m.sync()).log["state"] == "ok"  # type: ignore[index]
        age(m.data.bundles)
        assert (await m.sync()).log["state"] == "ok"  # type: ignore[index]
        victim = sorted(m.data.bundles.glob("*.zip"))[0]
        victim.unlink()
        s = await m.sync()  # the index is unchanged: only the witness round looks at the folder
        assert s.log is not None and s.log["state"] == "bundle-missing" and victim.stem[:16] in s.log["message"]
        assert m.bundle_count() == len(list(m.data.bundles.glob("*.zip")))
