"""Where ``fit``'s per-step excess over the plain loop goes on XLA:CPU: compiled work, or
the order XLA's scheduler gives the chunk's operations.

    python benchmarks/studies/fit_scheduler.py ["--objectives=FCE,NCE"]
        ["--settings=one core"] [--quick]
    # about 9 minutes per objective on 2 cores (3 settings; --quick: about 3)

Each objective of ``benchmarks/bench_fit_overhead.py`` named (default: FCE and multi-sigma
DSM, the two that missed the target there) is measured by that benchmark's own ``measure``
(steady state and whole run, ``fit`` against the plain ``lax.scan`` loop, same settings) in
a fresh process per setting, the settings in turn:

* ``default``: XLA's defaults, as ``fit`` runs for a user;
* ``scheduler off``: ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``
  (XLA:CPU then orders each program's operations by its plain list scheduler; the flag is
  process-wide and applies to the plain loop too);
* ``one core``: the process pinned to one CPU (``os.sched_setaffinity``), so that neither
  program can run two operations at once: the ratio is that of the compiled work alone.

Each row records ``fit``'s default ``steps_per_chunk`` when measured (``None``: paced), and
wall and process CPU time (rows stored before 2026-11-30 15:25 UTC hold CPU time only).
Rows measured replace the stored rows of the same objective, setting and chunking; the
others are kept with their own date. Writes ``benchmarks/results/fit_scheduler.json``;
``bench_fit_overhead.py`` shows it on docs/benchmarks/fit_overhead.md (``--rescore``
rebuilds that page without measuring).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "benchmarks" / "results" / "fit_scheduler.json"
SCHEDULER_OFF = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
SETTINGS = ("default", "scheduler off", "one core")

CHILD = r'''
import json, os, sys
setting, name, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if setting == "one core":
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("the 'one core' setting pins the process with os.sched_setaffinity, "
                         "which this platform lacks (Linux has it)")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
sys.path.insert(0, "benchmarks")
import jax, jax.numpy as jnp
import bench_fit_overhead as b
import numpyro_ebm as ebm
t1, t2, t_run, repeats = (200, 1000, 2000, 2) if quick else (500, 2500, 6000, 3)
data = ebm.datasets.two_moons().sample(jax.random.key(0), b.N)
cond = name == b.MULTI_SIGMA
energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, b.HIDDEN, dtype=jnp.float32,
                                   **({"context_dim": 1} if cond else {}))
row = b.measure(name, b.objectives(quick)[name], data, energy_fn, params, t1, t2, t_run,
                repeats)
print("ROW " + json.dumps(row))
'''


def _child(setting: str, name: str, quick: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if setting == "scheduler off":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + SCHEDULER_OFF).strip()
    out = subprocess.run([sys.executable, "-c", CHILD, setting, name, "1" if quick else "0"],
                         check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    line = next(x for x in out.stdout.splitlines() if x.startswith("ROW "))
    return json.loads(line[4:])


def main(names: list[str], quick: bool, settings: tuple[str, ...] = SETTINGS) -> dict:
    import inspect

    import numpyro_ebm
    from numpyro_ebm.training import pacing

    chunks = inspect.signature(numpyro_ebm.fit).parameters["steps_per_chunk"].default
    paced = {} if chunks is not None else {"fit_pacing_s": pacing.SECONDS}
    rows = []
    for i, name in enumerate(names):
        # the settings' order alternates between objectives (drift of the machine's load
        # then does not favour one setting)
        order = settings if i % 2 == 0 else settings[::-1]
        for setting in order:
            load = os.getloadavg()[0]
            r = _child(setting, name, quick)
            keep = {f"{k}_{clock}": r[f"{k}_{clock}"] for clock in ("wall", "cpu")
                    for k in ("plain_us_per_step", "fit_us_per_step", "steady_ratio",
                              "plain_run_s", "fit_run_s", "run_ratio")}
            # the drift of identical runs (bench_fit_overhead rows since 2026-11-30 21:30)
            keep.update({k: r[k] for k in ("plain_spread_wall", "fit_spread_wall")})
            rows.append({"objective": name, "setting": setting, **keep,
                         "load_average": (load, os.getloadavg()[0]),
                         "fit_steps_per_chunk": chunks, **paced,
                         "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            print(name, setting, {k: round(v, 3) for k, v in keep.items()}, flush=True)
    if RESULT.exists():  # keep the stored rows not measured now
        def same(r):  # one row per objective, setting and fit's chunking
            return (r["objective"], r["setting"], r.get("fit_steps_per_chunk"),
                    r.get("fit_pacing_s"))

        new = {same(r) for r in rows}
        old = json.loads(RESULT.read_text())
        if old.get("quick", False) == quick:
            rows = [r for r in old["rows"] if same(r) not in new] + rows
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": quick,
           "scheduler_flag": SCHEDULER_OFF, "rows": rows}
    RESULT.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import check_flags
    check_flags(sys.argv[1:], ("--quick",), ("--objectives", "--settings"))
    arg = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--objectives=")),
               "FCE,multi-sigma DSM (NCSN)")
    chosen = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--settings=")), None)
    settings = SETTINGS if chosen is None else tuple(x.strip() for x in chosen.split(","))
    if set(settings) - set(SETTINGS):
        raise SystemExit(f"unknown setting(s) {sorted(set(settings) - set(SETTINGS))}; "
                         f"known: {list(SETTINGS)}")
    main([n.strip() for n in arg.split(",")], "--quick" in sys.argv, settings)
