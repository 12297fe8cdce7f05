"""Hard limits of a mirror sync, as one typed value (like python-tuf's ngclient config).

Every size cap and timeout the sync applies lives here; tests pass a config
with small timeouts, operators never need to touch it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamizdat.bundles.index import MAX_INDEX_BYTES, MAX_SHARD_BYTES
from tamizdat.bundles.limits import DEFAULT_LIMITS
from tamizdat.keys.root import MAX_ROOT_BYTES, MAX_ROOT_CHAIN
from tamizdat.server.httpclient import ClientConfig


@dataclass(frozen=True)
class SyncConfig:
    """Limits of one sync. Sizes in bytes, times in seconds."""

    max_root_bytes: int = MAX_ROOT_BYTES
    max_index_bytes: int = MAX_INDEX_BYTES
    max_shard_bytes: int = MAX_SHARD_BYTES
    max_bundle_bytes: int = DEFAULT_LIMITS.max_bundle_bytes
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    document_timeout: float = 30.0  # whole transfer of root, index or shard
    bundle_timeout: float = 60.0  # whole transfer of a bundle, plus size / min_rate
    min_rate: int = 32 * 1024  # bytes per second a bundle transfer may not fall below on average
    concurrency: int = 8  # bundle transfers at once
    verify_workers: int = 0  # worker processes for big batches (0: one per CPU)
    process_threshold: int = 500  # bundles to verify in one sync before worker processes pay off (start-up ~0.5 s)
    root_probe_interval: float = 3600.0  # fetch root.json at least this often, even if nothing hints at a new root
    max_root_steps: int = MAX_ROOT_CHAIN  # root versions walked in one sync

    def bundle_deadline(self, size: int) -> float:
        """Seconds allowed for a bundle of ``size`` bytes."""
        return self.bundle_timeout + size / max(1, self.min_rate)

    def client_config(self) -> ClientConfig:
        """The bounded HTTP client's limits for this sync (total time is enforced per transfer)."""
        longest = self.bundle_deadline(self.max_bundle_bytes)
        return ClientConfig(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            total_timeout=longest,
            max_document_bytes=max(self.max_index_bytes, self.max_shard_bytes, self.max_root_bytes),
        )


DEFAULT_CONFIG = SyncConfig()
