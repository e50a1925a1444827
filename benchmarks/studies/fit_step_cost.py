"""The work of one step of ``fit``'s compiled chunk against one step of the plain loop, by
XLA's cost model: floating-point operations and bytes accessed, no clock involved.

    python benchmarks/studies/fit_step_cost.py ["--objectives=energy discrepancy,NCE"]
    # about 10 s per objective (compilation only; nothing is run)

The timings of ``bench_fit_overhead.py`` and ``fit_steady_pairs.py`` move by several percent
with the load of this shared machine. This study asks the question they cannot settle
below that noise: does ``fit``'s step *do* more than the plain loop's? Both programs are
compiled as the benchmarks run them (the plain ``lax.scan`` over 1000 steps and ``fit``'s
chunk loop, ``run_chunk_unguarded``, with its 1000 record slots) and XLA's
``cost_analysis()`` of each is read. It counts a loop's body once, so each number is one
step; the chunk's includes its epoch-reorder branch (an ``argsort`` of N random words and
the reordered copy of the data, which runs once per epoch of ``N // batch`` steps) and its
record writes. Writes ``benchmarks/results/fit_step_cost.json`` (``--objectives``
re-measures the named objectives and keeps the other rows); ``bench_fit_overhead.py
--rescore`` shows it on docs/benchmarks/fit_overhead.md.
"""

from __future__ import annotations

import argparse
import json
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
from numpyro_ebm.training import chunk, pacing  # noqa: E402
from numpyro_ebm.training.state import init_train_state  # noqa: E402
from numpyro_ebm.training.step import make_train_step  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "fit_step_cost.json"
STEPS = 1000  # the plain scan's length (a loop: its body is counted once)
KEYS = ("flops", "bytes accessed", "transcendentals")


def _cost(compiled) -> dict[str, float]:
    """``flops``, ``bytes accessed`` and ``transcendentals`` of a compiled program."""
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, list) else ca
    return {k: float(ca.get(k, 0.0)) for k in KEYS}


def measure(name: str, hidden: tuple[int, ...] = b.HIDDEN) -> dict:
    """One step's cost in each program, and fit's over the plain loop's (``hidden``: the
    MLP's widths; the benchmarks' by default)."""
    data = ebm.datasets.two_moons().sample(jax.random.key(0), b.N)
    energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, hidden, dtype=jnp.float32,
                                       **({"context_dim": 1} if name == b.MULTI_SIGMA else {}))
    objective, optimizer, key = b.objectives(False)[name], optax.adam(b.LR), jax.random.key(1)
    start = objective.init(jax.random.key(2), energy_fn, params, data[:b.BATCH])
    plain = b.plain_loop(energy_fn, objective, optimizer, data, jax.random.key(2))
    plain_cost = _cost(plain.scan.lower((params, start[0]), start[1], key,
                                        jnp.arange(STEPS)).compile())
    step_fn = make_train_step(energy_fn, objective, optimizer)
    state = init_train_state(energy_fn, params, objective, step_fn.optimizer, key,
                             data[:b.BATCH], extras=start[0], objective_state=start[1])
    fit_cost = _cost(chunk.run_chunk_unguarded.lower(
        state, data, jnp.int32(0), step_fn=step_fn, length=pacing.compiled_length(None),
        batch_size=b.BATCH, legacy=False).compile())
    # the epoch's reorder, alone: the chunk runs it once per epoch, the cost model counts it
    # in every step (the branch of a ``cond``)
    copy = data.size * data.dtype.itemsize <= chunk.SHUFFLED_COPY_MAX_BYTES
    reorder = _cost(jax.jit(lambda k, d: chunk.shuffled(k, jnp.int32(0), d, copy)).lower(
        jax.random.key(0), data).compile())
    per_epoch = b.N // b.BATCH
    amortized = {k: fit_cost[k] - reorder[k] * (1 - 1 / per_epoch) for k in KEYS}
    return {"objective": name, "plain": plain_cost, "fit": fit_cost, "reorder": reorder,
            "fit_amortized": amortized, "steps_per_epoch": per_epoch,
            **{f"{k.split()[0]}_ratio": fit_cost[k] / plain_cost[k]
               for k in KEYS if plain_cost[k]},
            **{f"{k.split()[0]}_ratio_amortized": amortized[k] / plain_cost[k]
               for k in KEYS if plain_cost[k]}}


def main(names: list[str]) -> dict:
    rows = []
    for name in names:
        rows.append(measure(name))
        r = rows[-1]
        print(f"{name}: flops {r['flops_ratio']:.4f} ({r['flops_ratio_amortized']:.4f} "
              f"amortized), bytes {r['bytes_ratio']:.4f} ({r['bytes_ratio_amortized']:.4f})",
              flush=True)
    if RESULT.exists():  # keep the stored rows of objectives not measured now, in order
        measured = {r["objective"]: r for r in rows}
        stored = {r["objective"]: r for r in json.loads(RESULT.read_text())["rows"]}
        rows = [measured.get(k) or stored[k] for k in b.objectives(False)
                if k in measured or k in stored]
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "jax": jax.__version__, "backend": jax.default_backend(), "plain_steps": STEPS,
           "rows": rows}
    RESULT.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objectives", default=",".join(b.objectives(False)))
    a = ap.parse_args()
    main([n.strip() for n in a.objectives.split(",")])
