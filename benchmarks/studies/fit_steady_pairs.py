"""``fit``'s steady-state cost against the plain loop, from back-to-back pairs of runs.

    python benchmarks/studies/fit_steady_pairs.py ["--objectives=energy discrepancy,FCE"] \\
        [--processes 3] [--rounds 30]     # about 2 minutes per objective and process

Why a second estimator: on this shared machine the speed of the two cores drifts by tens of
percent over seconds (``bench_fit_overhead.py``'s plain loop read 2.3-3.3 s for the same
500 energy-discrepancy steps, ten times in a row, on 2026-11-30). The main benchmark's
steady state is a difference of minimums over a few long runs, so one slow stretch can move
it by several percent. Here every round runs three programs back to back, in rotating
order, each for ``T`` steps (about 1 s, calibrated on the plain loop):

* *plain*: ``bench_fit_overhead.plain_loop``, the machine's limit;
* *fit*: ``numpyro_ebm.fit`` with its defaults (paced chunks, NaN guard, history);
* *chunk*: fit's compiled chunk loop alone (``run_chunk_unguarded``, compiled as ``fit``
  compiles it, called for all ``T`` steps in calls of up to its 1000 record slots): no host
  loop, no pacing.

A round's ratios (fit/plain, chunk/plain) see the same state of the machine. Each run's
per-call cost (argument checks, set-up: milliseconds; the intercept of the line through the
fastest of 10 runs of 10 steps and the fastest run of ``T`` steps) is subtracted first. The
estimate is the median over every round of every process (separate Python processes, so that
per-process effects are sampled too), with a 95% interval from a two-stage bootstrap
(processes, then their rounds): a process's rounds are not independent of each other.
fit/plain above chunk/plain means the cost is in ``fit``'s host loop; chunk/plain above 1,
in the compiled loop itself.

Writes ``benchmarks/results/fit_steady_pairs.json``; ``bench_fit_overhead.py --rescore``
shows it on docs/benchmarks/fit_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_fit_overhead as b  # noqa: E402
from _common import median_interval  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402
from numpyro_ebm.training import chunk, pacing  # noqa: E402
from numpyro_ebm.training.state import init_train_state  # noqa: E402
from numpyro_ebm.training.step import make_train_step  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "fit_steady_pairs.json"
DEFAULT = "energy discrepancy,FCE,CD-5"
RUN_SECONDS = 1.0  # the length of each timed run
T0 = 10  # steps of the short runs that give the per-call cost
PROGRAMS = ("plain", "fit", "chunk")


def _programs(name: str, steps: int | None) -> tuple[dict, int]:
    """The three programs at ``T`` steps (calibrated when ``steps`` is None), warm."""
    data = ebm.datasets.two_moons().sample(jax.random.key(0), b.N)
    energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, b.HIDDEN, dtype=jnp.float32,
                                       **({"context_dim": 1} if name == b.MULTI_SIGMA else {}))
    objective, optimizer, key = b.objectives(False)[name], optax.adam(b.LR), jax.random.key(1)
    start = objective.init(jax.random.key(2), energy_fn, params, data[:b.BATCH])
    plain = b.plain_loop(energy_fn, objective, optimizer, data, jax.random.key(2))
    step_fn = make_train_step(energy_fn, objective, optimizer)
    state = jax.device_put(init_train_state(energy_fn, params, objective, step_fn.optimizer,
                                            key, data[:b.BATCH], extras=start[0],
                                            objective_state=start[1]))
    exe = chunk.run_chunk_unguarded.lower(
        state, data, jnp.int32(0), step_fn=step_fn, length=pacing.compiled_length(None),
        batch_size=b.BATCH, legacy=False).compile()

    def programs(t: int) -> dict:
        return {
            "plain": lambda: plain(params, t, key, start)[0],
            "fit": lambda: ebm.fit(energy_fn, params, data, objective, key=key,
                                   optimizer=optimizer, num_steps=t, batch_size=b.BATCH,
                                   progress_bar=False, extras=start[0],
                                   objective_state=start[1]).params,
            "chunk": lambda: _chunk_steps(exe, state, data, t),
        }

    if steps is None:  # about RUN_SECONDS of the plain loop
        warm = programs(100)["plain"]
        b._time(warm)
        steps = int(min(3000, max(100, round(100 * RUN_SECONDS / b._time(warm)[0]))))
    for t in (T0, steps):
        for f in programs(t).values():
            b._time(f)
    return programs, steps


def _chunk_steps(exe, state, data, t: int):
    """``t`` steps of the compiled chunk, in calls of at most its record length."""
    length = pacing.compiled_length(None)
    while t > 0:
        state = exe(state, data, jnp.int32(min(t, length))).state
        t -= length
    return state.params


def worker(name: str, rounds: int, steps: int | None) -> dict:
    """One process's rounds: each program's per-call cost and the rounds' ratios."""
    programs, steps = _programs(name, steps)
    short, long = programs(T0), programs(steps)
    per_call = {k: min(b._time(short[k])[0] for _ in range(10)) for k in PROGRAMS}
    times = {k: [] for k in PROGRAMS}
    for r in range(rounds):
        for k in PROGRAMS[r % 3:] + PROGRAMS[:r % 3]:
            times[k].append(b._time(long[k])[0])
    # run time = fixed + steps * per_step, from the fastest short and long runs
    per_step = {k: (min(v) - per_call[k]) / (steps - T0) for k, v in times.items()}
    fixed = {k: per_call[k] - T0 * per_step[k] for k in PROGRAMS}
    ratios = {k: [(times[k][i] - fixed[k]) / (times["plain"][i] - fixed["plain"])
                  for i in range(rounds)] for k in ("fit", "chunk")}
    return {"steps": steps, "fixed_ms": {k: 1e3 * v for k, v in fixed.items()},
            "plain_us_per_step": 1e6 * per_step["plain"],
            "plain_spread": max(times["plain"]) / min(times["plain"]), "ratios": ratios}


def clustered_interval(groups: list[list[float]], level: float = 0.95, draws: int = 4000,
                       seed: int = 0) -> tuple[float, float]:
    """A ``level`` interval for the median of pooled rounds that come in ``groups`` (one
    per process): a two-stage bootstrap, processes resampled with replacement, then each
    drawn process's rounds (Davison & Hinkley 1997, sec. 3.8).

    Rounds of one process share its state (buffer addresses, thread placement), and on
    this machine the processes' medians differed by up to 7% (energy discrepancy's chunk
    loop: 1.040-1.108 of the plain loop in a run stopped on 2026-12-01 to add this
    interval, not stored), so the binomial interval of
    :func:`median_interval`, which treats every round as independent, is too narrow.
    """
    rng = np.random.default_rng(seed)
    x = [np.asarray(g, float) for g in groups]
    meds = np.empty(draws)
    for i in range(draws):
        picked = rng.integers(len(x), size=len(x))
        meds[i] = np.median(np.concatenate([rng.choice(x[j], size=len(x[j])) for j in picked]))
    lo, hi = np.quantile(meds, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def row(name: str, runs: list[dict]) -> dict:
    """The pooled row of one objective from its processes' results: the median of every
    round's ratio, its interval over processes and rounds (``ci95``; the binomial one of
    the pooled rounds as ``ci95_rounds``), each process's median and every round's ratio."""
    out = {"objective": name, "rounds": sum(len(r["ratios"]["fit"]) for r in runs),
           "processes": len(runs), "steps": [r["steps"] for r in runs],
           "plain_us_per_step": [r["plain_us_per_step"] for r in runs],
           "plain_spread": [r["plain_spread"] for r in runs],
           "fixed_ms": [r["fixed_ms"] for r in runs], "pacing_s": pacing.SECONDS}
    for k in ("fit", "chunk"):
        groups = [r["ratios"][k] for r in runs]
        med, lo, hi = median_interval([x for g in groups for x in g])
        out[f"{k}_over_plain"] = {"median": med,
                                  "ci95": list(clustered_interval(groups)),
                                  "ci95_rounds": [lo, hi],
                                  "per_process": [statistics.median(g) for g in groups],
                                  "rounds": groups}
    return out


def main(names: list[str], processes: int, rounds: int) -> dict:
    load0, date, rows = os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M UTC",
                                                          time.gmtime()), []
    for name in names:
        runs = []
        for i in range(processes):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--rounds", str(rounds)],
                check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{name}: process {i + 1}/{processes}: fit/plain "
                  f"{statistics.median(runs[-1]['ratios']['fit']):.3f}, chunk/plain "
                  f"{statistics.median(runs[-1]['ratios']['chunk']):.3f}", flush=True)
        rows.append(dict(row(name, runs), rounds_per_process=rounds,
                         measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    measured = rows
    kept = []
    if RESULT.exists():  # keep the stored rows of objectives not measured now
        old = json.loads(RESULT.read_text())
        kept = [dict(r, measured=r.get("measured", old["date"])) for r in old["rows"]
                if r["objective"] not in names]
    res = {"date": date, "rounds_per_process": rounds, "processes": processes,
           "load_average": [load0, os.getloadavg()[0]], "rows": kept + measured}
    RESULT.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", default=DEFAULT)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.rounds, None)))
    else:
        main([n.strip() for n in a.objectives.split(",")], a.processes, a.rounds)
