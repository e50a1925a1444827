"""Run every benchmark (``benchmarks/bench_*.py``): ``make bench`` or ``python benchmarks/run.py``.

Each module exposes ``main(quick: bool = False) -> None`` and writes its results with
:func:`_common.write_results` to ``benchmarks/results/<name>.json`` and
``docs/benchmarks/<name>.md`` (shown in the docs). Ratios are measured side by side in the
same run, so they survive noisy shared machines; absolute times are reported only for context.
The studies in ``benchmarks/studies/`` are run by their own commands, not from here.

Usage: ``python benchmarks/run.py [--quick] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (bench_NAME)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    names = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {names}")
        names = [n for n in names if n in args.only]
    for name in names:
        t0 = time.perf_counter()
        print(f"== bench_{name}", flush=True)
        importlib.import_module(f"bench_{name}").main(quick=args.quick)
        print(f"== bench_{name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    if args.quick:  # smoke runs wrote under benchmarks/_scratch/quick/; nothing to rescore
        print("smoke run: the published results and the scorecard are unchanged", flush=True)
    else:
        importlib.import_module("scorecard").main()  # docs/benchmarks/scorecard.md
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
