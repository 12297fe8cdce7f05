"""The data directory, the same for origin and mirror (one publisher per directory)::

DATA/settings.toml   operator settings (server.settings)
DATA/state/          SQLite, sync and log state (never served)
DATA/tmp/            work files on the same filesystem (never served)
DATA/public/         exactly the static tree served at / by the app, nginx
                     and `mirror export`: root.json, roots/<N>.json,
                     index.json (switched in last), index/<sha256>.json,
                     bundles/<bundle id>.zip
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import settings as settings_mod


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.toml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def bundles(self) -> Path:
        return self.public / "bundles"

    @property
    def shards(self) -> Path:
        return self.public / "index"

    @property
    def roots(self) -> Path:
        return self.public / "roots"

    def bundle_path(self, bundle_id: str) -> Path:
        return self.bundles / f"{bundle_id}.zip"

    def shard_path(self, sha256: str) -> Path:
        return self.shards / f"{sha256}.json"

    def create(self) -> DataDir:
        """Make the folders (state and tmp private to the service user)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.state, self.tmp):
            folder.mkdir(mode=0o700, exist_ok=True)
        for folder in (self.public, self.bundles, self.shards, self.roots):
            folder.mkdir(exist_ok=True)
        return self

    def settings(self) -> dict[str, Any]:
        return settings_mod.load(self.settings_path)

    def save_settings(self, values: dict[str, Any]) -> None:
        settings_mod.save(self.settings_path, values)


_libc = None


def sync_filesystem(path: Path) -> None:
    """Flush every pending write on ``path``'s filesystem (``syncfs(2)``, else ``sync``).

    One call after a batch of renames replaces a per-file fsync (DESIGN: durability).
    """
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()
