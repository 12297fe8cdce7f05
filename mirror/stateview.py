"""A serving-only process's view of the state the syncing process writes.

With ``mirror run --workers N`` only process 0 syncs; the others answer
``/healthz`` from ``DATA/state/mirror/`` (``trust.json``, ``index.json``,
``roots/``, ``health.json``), which the sync replaces atomically. Before each
answer :meth:`StateView.refresh` compares a few ``stat`` results (inode, size,
mtime) with the last ones and reloads what moved: the trusted state (roots and
index verified again, in a thread) or the health record. It never writes.
A reload that fails (a file caught between two replacements) keeps the
previous view and is tried again at the next request.
"""

from __future__ import annotations

import asyncio
import logging
import os

from tamizdat.errors import TamizdatError

from .sync import Mirror

log = logging.getLogger("tamizdat.mirror")

StatKey = tuple[int, int, int] | None  # inode, size, mtime (ns); None: absent


def _stat(path: str) -> StatKey:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class StateView:
    """Keeps ``mirror``'s trust and health in step with the files another process writes."""

    def __init__(self, mirror: Mirror):
        self.mirror = mirror
        folder = mirror.store.dir
        self._trust_paths = [str(folder / "trust.json"), str(folder / "index.json"), str(folder / "roots")]
        self._health_path = str(folder / "health.json")
        # Nothing seen yet: the first request reloads (the files may have moved since the Mirror read them).
        self._trust_key: tuple[StatKey, ...] = ()
        self._health_key: StatKey | bool = False
        self._lock = asyncio.Lock()

    def _trust_keys(self) -> tuple[StatKey, ...]:
        return tuple(_stat(p) for p in self._trust_paths)

    async def refresh(self) -> None:
        """Reload what changed on disk since the last call (cheap when nothing did)."""
        if self._trust_keys() == self._trust_key and _stat(self._health_path) == self._health_key:
            return
        async with self._lock:
            trust_key = self._trust_keys()
            if trust_key != self._trust_key:
                mirror = self.mirror
                try:
                    mirror.trust = await asyncio.to_thread(mirror.store.load_trust, mirror.root_keyid)
                    self._trust_key = trust_key
                except (TamizdatError, OSError, ValueError) as exc:
                    log.warning("serving process: the mirror state is being replaced, keeping the last view (%s)", exc)
            health_key = _stat(self._health_path)
            if health_key != self._health_key:
                records, last, last_ok = self.mirror.store.load_health()
                self.mirror.records, self.mirror.last_summary, self.mirror.last_ok = records, last, last_ok
                self._health_key = health_key
