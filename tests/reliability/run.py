"""Run the reliability tests, short or long, and print their figures.

    python -m tests.reliability.run            # the short version (what CI runs inside pytest), ~2 minutes
    python -m tests.reliability.run --full     # 15 s of load, 20 kills, 5 origin kills, 10 minutes of
                                               # schemathesis, 10,000 mutations, 2,000 fuzz examples each
    python -m tests.reliability.run --full --json figures.json -k load    # extra pytest arguments pass through

From the repository root. The figures (latency percentiles, kill outcomes,
fuzz counts) are printed in pytest's terminal summary and, with ``--json``,
written to a file (docs/reliability.md quotes them).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the long version (TAMIZDAT_FULL=1)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the figures as JSON to FILE")
    args, rest = parser.parse_known_args(argv)
    if args.full:
        os.environ["TAMIZDAT_FULL"] = "1"
    if args.json:
        os.environ["TAMIZDAT_RELIABILITY_JSON"] = str(args.json.resolve())
    os.chdir(REPO)
    import pytest

    return int(pytest.main([str(REPO / "tests" / "reliability"), "-p", "no:cacheprovider", "-rxs", "-q", *rest]))


if __name__ == "__main__":
    sys.exit(main())
