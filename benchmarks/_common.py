"""Shared helpers for benchmarks: timing (minimum of repeats, or ratios within interleaved
rounds), and result files."""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
from scipy.stats import binom

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks"
# --quick (smoke) runs write here, never over the published results and pages
QUICK = ROOT / "benchmarks" / "_scratch" / "quick"


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def min_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    """Minimum wall time (s) of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    block(fn())
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def interleaved_times(fns: dict[str, Callable[[], Any]], repeats: int = 5,
                      min_seconds: float = 0.0) -> dict[str, list[float]]:
    """Every round's time of several functions (seconds per call), interleaved: each round
    calls each function once, in order, so that machine noise hits all alike.

    With ``min_seconds > 0`` each timed sample is a batch of calls lasting at least that
    long (the count set from a warm-up call), blocked once at its end: a single call of a
    millisecond is at the mercy of one scheduling delay.
    """
    counts = {}
    for k, f in fns.items():
        t0 = time.perf_counter()
        block(f())
        counts[k] = max(1, math.ceil(min_seconds / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(counts[k]):
                out = f()
            block(out)
            times[k].append((time.perf_counter() - t0) / counts[k])
    return times


def interleaved_min_times(fns: dict[str, Callable[[], Any]], repeats: int = 5,
                          min_seconds: float = 0.0) -> dict[str, float]:
    """Minimum over the rounds of :func:`interleaved_times` (seconds per call)."""
    return {k: min(v) for k, v in interleaved_times(fns, repeats, min_seconds).items()}


def median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """The median and a distribution-free ``level`` interval for it (order statistics
    ``x_(j)``, ``x_(n-1-j)`` with ``j`` the ``(1 - level) / 2`` quantile of Bin(n, 1/2))."""
    x = sorted(values)
    j = max(int(binom.ppf((1 - level) / 2, len(x), 0.5)) - 1, 0)
    return statistics.median(x), x[j], x[len(x) - 1 - j]


def round_ratios(times: dict[str, list[float]], base: str) -> dict[str, dict]:
    """Each function's time over ``base``'s within every round of :func:`interleaved_times`:
    ``{"median", "ci95", "rounds"}``, the median of the rounds' ratios and its binomial
    interval (:func:`median_interval`; rounds of one process are treated as independent, so
    the interval is a lower bound on the uncertainty between processes). ``ci95`` is
    ``None`` below 6 rounds, where no pair of order statistics covers the median with 95%."""
    out = {}
    for k, ts in times.items():
        r = [t / b for t, b in zip(ts, times[base], strict=True)]
        med, lo, hi = median_interval(r)
        # below 6 rounds even [min, max] covers the median with less than 95% (5: 93.75%)
        out[k] = {"median": med, "ci95": [lo, hi] if len(r) >= 6 else None,
                  "rounds": len(r)}
    return out


def machine() -> str:
    return f"{platform.machine()}, {jax.devices()[0].platform}, jax {jax.__version__}"


def accelerator() -> str | None:
    """The JAX backend when it is not the CPU (``"gpu"``, ``"tpu"``), else ``None``."""
    backend = jax.default_backend()
    return None if backend == "cpu" else backend


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, title: str, data: Any, markdown_body: str, *,
                  measured: str | None = None, rebuilt_by: str | None = None,
                  quick_means: str = "a smoke run: small sizes, few repeats",
                  command: str | None = None) -> None:
    """Write ``benchmarks/results/<name>.json`` and ``docs/benchmarks/<name>.md``.

    On an accelerator (JAX's default backend is not the CPU) the files are
    ``<name>_<backend>`` (e.g. ``score_matching_gpu``): a GPU run adds its own rows beside
    the CPU ones instead of replacing them, and the scorecard lists them.
    ``measured`` (the stored date) and ``rebuilt_by`` (the command) are for a page rebuilt
    from stored results without measuring: the page keeps the measurement's date.
    ``quick_means`` says in the page's header what ``--quick`` left out of this run.
    ``command``: the command that measured, where it is not ``run.py --only <name>``.
    A ``--quick`` run (``data["quick"]``, or ``--quick`` on the command line) writes under
    ``benchmarks/_scratch/quick/`` (``results/`` and ``docs/``) instead: a smoke run never
    replaces the published numbers or the scorecard's inputs.
    """
    quick = (isinstance(data, dict) and bool(data.get("quick"))) or "--quick" in sys.argv
    results, docs = (QUICK / "results", QUICK / "docs") if quick else (RESULTS, DOCS)
    results.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    device = accelerator()
    override, command = command, f"python benchmarks/run.py --only {name}"
    if device is not None:
        name, title = f"{name}_{device}", f"{title} ({device.upper()})"
        command += f" (on a machine whose JAX backend is {device})"
    stamp = measured or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (results / f"{name}.json").write_text(
        json.dumps({"name": name, "date": stamp, "machine": machine(), "data": data}, indent=2)
    )
    command += " --quick" if quick else ""
    if override is not None:
        by = f"`{override}`"
    else:
        by = f"`{command}` ({quick_means})" if quick else f"`{command}` (part of `make bench`)"
    if rebuilt_by:
        stamp += f" (page rebuilt by `{rebuilt_by}`)"
    (docs / f"{name}.md").write_text(
        f"# {title}\n\n_Measured {stamp} on {machine()} by {by}._\n\n{markdown_body}\n"
    )
    if quick:
        print(f"smoke run: wrote {results / (name + '.json')} and {docs / (name + '.md')} "
              "(the published results are unchanged)", flush=True)


def rows_cli(doc: str, main: Callable[..., None]) -> None:
    """The command line of a benchmark whose rows can be re-run alone: ``--quick`` and
    ``--rows NAME ...`` (the others kept from its results file), passed to ``main``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes")
    parser.add_argument("--rows", nargs="+", default=None,
                        help="objective names to run (others kept from the results file)")
    cli = parser.parse_args()
    main(quick=cli.quick, rows=None if cli.rows is None else tuple(cli.rows))


def study_clock(row: dict) -> str:
    """``"wall"`` where a ``fit_scheduler`` study row holds wall time, else ``"cpu"`` (rows
    stored before 2026-11-30 15:25 UTC hold process CPU time only)."""
    return "wall" if "steady_ratio_wall" in row else "cpu"


def pairs_covering(objectives: Sequence[str], study: str = "fit_steady_pairs") -> list[dict]:
    """A pairs study's rows (``<study>.json``; each objective's newest) for ``objectives``,
    in their order, if the study covers every one, else ``[]``: the target it measures is
    judged on them then (scorecard and the fit_overhead page). ``study``:
    ``"fit_steady_pairs"`` (steady state) or ``"fit_run_pairs"`` (whole runs)."""
    path = RESULTS / f"{study}.json"
    rows = json.loads(path.read_text()).get("rows", []) if path.exists() else []
    newest = {r["objective"]: r for r in sorted(rows, key=lambda r: r.get("measured", ""))}
    return [newest[k] for k in objectives] if objectives and set(objectives) <= set(newest) \
        else []


def pairs_worst(rows: Sequence[dict], ratio: str, limit: float) -> tuple[dict, list[str]]:
    """The row of a pairs study with the largest median of ``ratio``, and the objectives
    whose 95% intervals reach past ``limit`` (how the scorecard and the fit_overhead page
    read a study)."""
    worst = max(rows, key=lambda r: r[ratio]["median"])
    return worst, [r["objective"] for r in rows if r[ratio]["ci95"][1] > limit]


def check_flags(argv: Sequence[str], flags: Sequence[str], options: Sequence[str] = ()
                ) -> None:
    """Exit naming every command-line argument that is neither one of ``flags`` (e.g.
    ``--quick``) nor ``--option=value`` for one of ``options``: a mistyped flag, or
    ``--objectives FCE`` with a space, would otherwise be ignored and the whole benchmark
    run (tens of minutes)."""
    bad = [a for a in argv if a not in flags and not any(a.startswith(o + "=")
                                                         for o in options)]
    if bad:
        raise SystemExit(f"unknown argument(s) {bad}; known: "
                         f"{[*flags, *(o + '=...' for o in options)]}")
