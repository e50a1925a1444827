"""How ``fit``'s chunk takes each batch: slices of a per-epoch reordered copy of the data,
or rows gathered through the permutation, against the plain loop's per-step gather.

    python benchmarks/studies/fit_batch_rows.py ["--objectives=FCE,NCE"] [--repeats 6]
    # about 1 minute per objective on 2 cores

``fit``'s chunk runner (``numpyro_ebm.training.chunk.run_chunk_unguarded``, the loop every
good chunk runs) is compiled twice per objective: with the default
``SHUFFLED_COPY_MAX_BYTES`` (the two-moons data, 32 KB, is copied: *copy*) and with it set
to 0 (*gather*, the path of data sets over the limit). Both give the same batches (tested in
``tests/test_fit.py``). Each is timed against ``benchmarks/bench_fit_overhead.py``'s plain
``lax.scan`` loop on the same objective, data, network and optimizer: per-step time from
runs of 100 and 600 steps, difference of the minimums of ``repeats`` interleaved repeats,
XLA's defaults (two threads on this machine). Writes
``benchmarks/results/fit_batch_rows.json``; ``bench_fit_overhead.py`` shows it on
docs/benchmarks/fit_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_fit_overhead as b  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402
from numpyro_ebm.training import chunk  # noqa: E402
from numpyro_ebm.training.state import init_train_state  # noqa: E402
from numpyro_ebm.training.step import make_train_step  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "fit_batch_rows.json"
T1, T2 = 100, 600


def _compiled(state, data, step_fn, steps: int, limit: int):
    """``run_chunk_unguarded`` for ``steps`` steps, compiled with the copy limit ``limit``."""
    saved = chunk.SHUFFLED_COPY_MAX_BYTES
    chunk.SHUFFLED_COPY_MAX_BYTES = limit
    try:
        jax.clear_caches()  # the limit is read when tracing
        exe = chunk.run_chunk_unguarded.lower(
            state, data, jnp.int32(steps), step_fn=step_fn, length=steps,
            batch_size=b.BATCH, legacy=False).compile()
    finally:
        chunk.SHUFFLED_COPY_MAX_BYTES = saved
    return lambda: exe(state, data, jnp.int32(steps)).state.params


def measure(name: str, repeats: int) -> dict:
    """Per-step wall time (µs) of the plain loop and of the two batch paths."""
    data = ebm.datasets.two_moons().sample(jax.random.key(0), b.N)
    energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, b.HIDDEN, dtype=jnp.float32,
                                       **({"context_dim": 1} if name == b.MULTI_SIGMA else {}))
    objective, optimizer, key = b.objectives(False)[name], optax.adam(b.LR), jax.random.key(1)
    start = objective.init(jax.random.key(2), energy_fn, params, data[:b.BATCH])
    step_fn = make_train_step(energy_fn, objective, optimizer)
    state = jax.device_put(init_train_state(energy_fn, params, objective, step_fn.optimizer,
                                            key, data[:b.BATCH], extras=start[0],
                                            objective_state=start[1]))
    plain = b.plain_loop(energy_fn, objective, optimizer, data, jax.random.key(2))
    runs = {(k, s): f for s in (T1, T2) for k, f in {
        "plain": lambda s=s: plain(params, s, key, start)[0],
        "copy": _compiled(state, data, step_fn, s, chunk.SHUFFLED_COPY_MAX_BYTES),
        "gather": _compiled(state, data, step_fn, s, 0)}.items()}
    best = {}
    for f in runs.values():  # compile the plain loop, warm every program
        jax.block_until_ready(f())
    for _ in range(repeats):
        for k, f in runs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            best[k] = min(best.get(k, float("inf")), time.perf_counter() - t0)
    us = {k: 1e6 * (best[k, T2] - best[k, T1]) / (T2 - T1) for k in ("plain", "copy", "gather")}
    return {"objective": name, **{f"{k}_us_per_step": v for k, v in us.items()},
            "copy_over_plain": us["copy"] / us["plain"],
            "gather_over_plain": us["gather"] / us["plain"],
            "gather_over_copy": us["gather"] / us["copy"]}


def main(names: list[str], repeats: int) -> dict:
    load0, rows = os.getloadavg()[0], []
    for name in names:
        rows.append(measure(name, repeats))
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()},
              flush=True)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeats": repeats,
           "steps": [T1, T2], "load_average": [load0, os.getloadavg()[0]], "rows": rows}
    RESULT.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", default="FCE,NCE,CD-5,energy discrepancy")
    ap.add_argument("--repeats", type=int, default=6)
    a = ap.parse_args()
    main([n.strip() for n in a.objectives.split(",")], a.repeats)
