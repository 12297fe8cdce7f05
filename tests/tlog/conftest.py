"""Fixtures of the transparency-log tests (bundles/tlog)."""

from __future__ import annotations

import pytest

from tamizdat.bundles.tlog.cosignature import CosignatureSigner
from tamizdat.bundles.tlog.note import Ed25519Signer

from .util import key

ORIGIN = "example.com/tamizdat-test/log"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def log_signer() -> Ed25519Signer:
    return Ed25519Signer(ORIGIN, key(1))


@pytest.fixture
def witnesses() -> list[CosignatureSigner]:
    return [CosignatureSigner(f"witness{i}.example", key(10 + i), clock=lambda: NOW) for i in range(5)]
