"""Format constants shared by the Python and browser verifiers (docs/format.md)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Hard limits a bundle must respect; the verifier refuses anything beyond them."""

    max_bundle_bytes: int = 256 * MiB
    max_entry_bytes: int = 32 * MiB
    max_total_bytes: int = 256 * MiB
    max_ratio: int = 100
    max_entries: int = 10_000
    max_name_length: int = 255
    max_control_bytes: int = 1 * MiB
    max_articles: int = 1_000


DEFAULT_LIMITS = Limits()
