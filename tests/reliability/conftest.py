"""Fixtures of the reliability tests; their figures are printed at the end of the run.

Short by default (CI runs them in every build so they cannot rot); the long
versions run with ``TAMIZDAT_FULL=1`` or ``python -m tests.reliability.run --full``.
Each test records its figures with the ``figures`` fixture; they appear in the
terminal summary (and in ``$TAMIZDAT_RELIABILITY_JSON`` when set).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import FULL, Origin

FIGURES: list[tuple[str, str, dict[str, Any]]] = []  # (test, line, data)


class Figures:
    def __init__(self, test: str):
        self.test = test

    def add(self, line: str, **data: Any) -> None:
        FIGURES.append((self.test, line, data))


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.name)


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Origin]:
    """A started origin (`tamizdat serve` on 127.0.0.1) with a token; stopped at the end."""
    o = Origin(tmp_path / "origin").start()
    try:
        yield o
    finally:
        o.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    mode = "full" if FULL else "short (TAMIZDAT_FULL=1 for the long version)"
    terminalreporter.section(f"reliability figures, {mode}")
    for test, line, _ in FIGURES:
        terminalreporter.write_line(f"{test}: {line}")
    out = os.environ.get("TAMIZDAT_RELIABILITY_JSON")
    if out:
        doc = {"full": FULL, "figures": [{"test": t, "line": line, **data} for t, line, data in FIGURES]}
        Path(out).write_text(json.dumps(doc, indent=2) + "\n")
