"""Run every benchmark in bench/ (modules named ``*_bench.py``) and print one table.

    python -m bench.run            # full mode (figures for bench/README.md)
    python -m bench.run --quick    # small sizes, 2 rounds: CI runs this so the benchmark cannot rot
    python -m bench.run --json out.json

Each module exposes ``run(ctx: Context) -> list[Result]``, or ``main(quick: bool)``
returning rows as dicts (name, value, unit, baseline, ratio, goal, met). Unmet goals are
reported, never fatal: the exit status is non-zero only if a benchmark fails
to run (for example a fixture that no longer verifies); the other modules
still run and print their figures.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .common import Context, Result, machine_info, table, to_json

FULL_REPEATS = 7
QUICK_REPEATS = 2


def discover(only: str | None = None) -> list[str]:
    """Names of the benchmark modules of this package, optionally filtered by a substring."""
    package = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(package)]) if m.name.endswith("_bench"))
    return [n for n in names if only is None or only in n]


def run_module(name: str, ctx: Context) -> list[Result]:
    """``run(ctx)`` if the module has it, else ``main(quick)`` and its rows (dicts) as Results."""
    module = importlib.import_module(f"{__package__}.{name}")
    if hasattr(module, "run"):
        results: list[Result] = module.run(ctx)
        return results
    return [as_result(row) for row in module.main(ctx.quick)]


_FIELDS = ("name", "value", "unit", "baseline", "ratio", "goal", "met")


def as_result(row: Result | dict[str, Any]) -> Result:
    """A row as the older modules return it: {name, value, unit, baseline, ratio, goal, met, ...}."""
    if isinstance(row, Result):
        return row
    extra = dict(row.get("extra") or {})
    extra.update({k: v for k, v in row.items() if k not in (*_FIELDS, "extra")})
    ratio = row.get("ratio")
    return Result(
        name=str(row["name"]),
        value=float(row["value"]),
        unit=str(row.get("unit", "")),
        baseline=None if row.get("baseline") is None else float(row["baseline"]),
        ratio="-" if ratio is None else (f"{ratio:.2f}x" if isinstance(ratio, float) else str(ratio)),
        goal=str(row.get("goal", "-")),
        met=row.get("met"),
        extra=extra,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 rounds (CI smoke run, < 30 s)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the figures as JSON to FILE")
    parser.add_argument("--only", metavar="NAME", help="run only benchmark modules whose name contains NAME")
    args = parser.parse_args(argv)

    machine = machine_info()  # load average taken before the run: other work on the machine skews timings
    mode = "quick" if args.quick else "full"
    repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    names = discover(args.only)
    if not names:
        parser.error(f"no benchmark module matches {args.only!r}")
    results: list[Result] = []
    notes: list[str] = []
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}  # wall time per module (the --quick run should stay under ~30 s in all)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tamizdat-bench-") as tmp:
        for name in names:
            print(f"{name} ({mode})", file=sys.stderr, flush=True)
            ctx = Context(quick=args.quick, workdir=Path(tmp) / name, repeats=repeats)
            ctx.workdir.mkdir()
            module_started = time.perf_counter()
            try:
                results.extend(run_module(name, ctx))
            except Exception as exc:  # one broken module must not hide the others' figures
                traceback.print_exc()
                failed[name] = f"{type(exc).__name__}: {exc}"
            seconds[name] = time.perf_counter() - module_started
            notes.extend(ctx.notes)
    elapsed = time.perf_counter() - started
    sys.stderr.flush()

    print(
        f"tamizdat benchmarks, {mode} mode: {machine['cpu']}, {machine['nproc']} CPUs, "
        f"Python {machine['python']}, load {' '.join(f'{x:.2f}' for x in machine['loadavg'] or ())} "
        f"({elapsed:.1f} s; medians of {repeats}+ rounds)"
    )
    print()
    print(table(results))
    print()
    for note in notes:
        print(f"- {note}")
    unmet = [r.name for r in results if r.met is False]
    print(f"\ngoals met: {sum(r.met is True for r in results)}/{sum(r.met is not None for r in results)}")
    if unmet:
        print("not met: " + "; ".join(unmet))
    print("time per module: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    for name, error in failed.items():
        print(f"FAILED {name}: {error}")
    if args.json:
        meta = {
            "mode": mode,
            "machine": machine,
            "elapsed_s": round(elapsed, 2),
            "module_seconds": {name: round(s, 2) for name, s in seconds.items()},
            "repeats": repeats,
            "notes": notes,
            "failed": failed,
        }
        args.json.write_text(to_json(results, meta) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
