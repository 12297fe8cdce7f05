"""The verifier's worker processes: many requests at once, answered in order; a dying worker fails its callers.

Requests made in one turn of the event loop leave in one pipe write, so the
order of answers must still match the order of callers exactly: a table of
good bundles and bundles listed under another id, interleaved, each caller
must get its own verdict and its own file.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tamizdat.errors import RejectedError
from tamizdat.mirror.verifier import PIPE_BYTES, Verifier

from .simulator import Simulator


@pytest.fixture
def sim(tmp_path: Path) -> Simulator:
    s = Simulator(tmp_path / "sim")
    s.add(6)
    s.publish()
    return s


async def test_many_requests_at_once_get_their_own_answers(sim: Simulator, tmp_path: Path) -> None:
    root = sim.roots[-1]
    ids = sim.listed_ids()
    out = tmp_path / "out"
    out.mkdir()
    # (listed id, bytes sent): every second request carries another bundle's bytes.
    table = [(bid, sim.bundles[ids[(n + n % 2) % len(ids)]]) for n, bid in enumerate(ids * 8)]

    async def one(n: int, bid: str, data: bytes, v: Verifier) -> str:
        try:
            await v.write(data, str(out / f"{n}.part"), str(out / f"{n}.zip"), root, bid)
        except RejectedError as err:
            return err.code
        return "ok"

    async with Verifier(len(table), workers=2, threshold=1) as v:
        assert len(v._all) == 2
        got = await asyncio.gather(*(one(n, bid, data, v) for n, (bid, data) in enumerate(table)))
    for n, ((bid, data), verdict) in enumerate(zip(table, got, strict=True)):
        if data == sim.bundles[bid]:
            assert verdict == "ok" and (out / f"{n}.zip").read_bytes() == data, n
        else:
            assert verdict == "bundle-id-mismatch" and not (out / f"{n}.zip").exists(), n
    assert not list(out.glob("*.part"))


async def test_the_pipe_to_a_worker_is_widened(sim: Simulator) -> None:
    import fcntl

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    async with Verifier(2, workers=2, threshold=1) as v:
        assert len(v._all) == 2
        for worker in v._all:
            assert worker.proc.stdin is not None
            pipe = worker.proc.stdin.transport.get_extra_info("pipe")
            assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == min(PIPE_BYTES, limit)


async def test_a_worker_that_dies_fails_its_callers(sim: Simulator, tmp_path: Path) -> None:
    root = sim.roots[-1]
    bid = sim.listed_ids()[0]
    async with Verifier(2, workers=2, threshold=1) as v:
        for worker in v._all:
            worker.proc.send_signal(signal.SIGKILL)
            await worker.proc.wait()
        calls = [v.write(sim.bundles[bid], str(tmp_path / f"{n}.part"), None, root, bid) for n in range(5)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
    assert all(isinstance(r, OSError) for r in results), results


async def test_workers_started_for_nothing_are_stopped_at_once() -> None:
    """The sync starts workers early, on the index's hint; unused, they are killed, not waited for."""
    loop = asyncio.get_running_loop()
    async with Verifier(2, workers=2, threshold=1) as v:
        procs = [w.proc for w in v._all]
        started = loop.time()
    assert loop.time() - started < 5
    assert all(p.returncode is not None for p in procs)
