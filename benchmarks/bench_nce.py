"""NCE and FCE against score matching on two moons: cost per step and quality at a budget.

1. One jitted training step (loss, gradient, Adam update) of the same MLP energy
   ``2 -> 64 -> 64 -> 1`` (float32, batch 256) for NCE (nu = 1 and 4, Gaussian noise fitted
   to the data's moments), FCE (nu = 1, a 4-layer coupling flow), conditional NCE
   (s = 0.2, kappa = 4), energy discrepancy (s = 0.2, M = 16), denoising score matching
   (sigma = 0.1, the baseline) and sliced score matching: steps/s and time / DSM time; and
   NCE nu = 4 with the same noise as a full-covariance ``MultivariateNormal``.
2. Each objective fitted with ``numpyro_ebm.fit`` for the same number of steps (same
   initial energy, Adam with cosine decay); held-out log-likelihood with log Z from a
   256 x 256 grid (all objectives) and with the learned log Z (NCE, FCE).

Usage: ``python benchmarks/run.py --only nce [--quick]``. Some rows only (with the DSM
baseline timed again beside them, the other rows kept from the results file):
``python benchmarks/bench_nce.py --rows "ED s=0.2 M=16"``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS,
    interleaved_min_times,
    markdown_table,
    rows_cli,
    write_results,
)

import numpyro_ebm as ebm  # noqa: E402
from numpyro_ebm.energy import batched_energy  # noqa: E402
from numpyro_ebm.partition import grid_log_normalizer  # noqa: E402

BATCH = 256
HIDDEN = (64, 64)
F32 = jnp.float32
BASELINE = "DSM (baseline)"


def _objectives(x: jax.Array) -> dict[str, ebm.Objective]:
    noise = dist.Normal(x.mean(0), 1.2 * x.std(0)).to_event(1)
    mvn = dist.MultivariateNormal(x.mean(0), jnp.diag((1.2 * x.std(0)) ** 2))  # the same
    flow_fn, flow_params = ebm.coupling_flow(jax.random.key(7), 2, 4, (32, 32), loc=x.mean(0),
                                             scale=x.std(0), dtype=F32)
    return {
        "DSM (baseline)": ebm.denoising_score_matching(0.1),
        "SSM": ebm.sliced_score_matching(),
        "NCE nu=1": ebm.noise_contrastive_estimation(noise, 1),
        "NCE nu=4": ebm.noise_contrastive_estimation(noise, 4),
        "NCE nu=4, MultivariateNormal noise": ebm.noise_contrastive_estimation(mvn, 4),
        "NCE nu=1, poor noise N(0, 9 I)": ebm.noise_contrastive_estimation(
            dist.Normal(jnp.zeros(2), 3.0).to_event(1), 1),
        "FCE nu=1": ebm.flow_contrastive_estimation(flow_fn, flow_params, 1),
        "CNCE s=0.2 kappa=4": ebm.conditional_noise_contrastive_estimation(0.2, 4),
        "ED s=0.2 M=16": ebm.energy_discrepancy(0.2, 16),
    }


def _train_step(energy_fn, objective, optimizer):
    @jax.jit
    def step(trainable, opt_state, state, batch, key):
        def loss_fn(tr):
            value, (new_state, _) = objective.loss(energy_fn, tr[0], tr[1], state, batch, key)
            return value, new_state

        (_, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, state

    return step


def step_cost(x: jax.Array, repeats: int, names) -> dict[str, float]:
    energy_fn, params = ebm.mlp_energy(jax.random.key(0), 2, HIDDEN, dtype=F32)
    optimizer = optax.adam(1e-3)
    batch = x[:BATCH]
    fns = {}
    for name, obj in _objectives(x).items():
        if name not in names:
            continue
        extras, state = obj.init(jax.random.key(1), energy_fn, params, batch)
        trainable = (params, extras)
        args = (trainable, optimizer.init(trainable), state, batch, jax.random.key(2))
        step = _train_step(energy_fn, obj, optimizer)
        fns[name] = lambda step=step, args=args: step(*args)
    return interleaved_min_times(fns, repeats=repeats)


def quality(x, x_test, num_steps: int, names) -> dict[str, dict]:
    energy_fn, params = ebm.mlp_energy(jax.random.key(0), 2, HIDDEN, dtype=F32)
    out = {}
    for name, obj in _objectives(x).items():
        if name not in names:
            continue
        t0 = time.perf_counter()
        r = ebm.fit(energy_fn, params, x, obj, key=jax.random.key(3), num_steps=num_steps,
                    batch_size=BATCH, progress_bar=False,
                    optimizer=optax.adam(optax.cosine_decay_schedule(1e-2, num_steps)))
        wall = time.perf_counter() - t0
        e_test = batched_energy(energy_fn, r.params, x_test, 1)
        row = {"fit_s": wall, "stopped": r.stopped_reason,
               "ll_grid": float(jnp.mean(-e_test) - grid_log_normalizer(
                   energy_fn, r.params, [-6.0, -6.0], [6.0, 6.0], num_points=256))}
        log_z = getattr(r.extras, "log_normalizer", None)
        row["ll_learned"] = None if log_z is None else float(jnp.mean(-e_test) - log_z)
        out[name] = row
        print(f"  {name}: held-out LL (grid) {row['ll_grid']:.3f}, learned "
              f"{row['ll_learned']}, fit {wall:.1f}s", flush=True)
    return out


def main(quick: bool = False, rows: tuple[str, ...] | None = None) -> None:
    """Every row, or only ``rows`` (timed beside the DSM baseline again; the other rows are
    kept from the previous results file)."""
    repeats = 3 if quick else 7
    num_steps = 300 if quick else 2000
    toy = ebm.datasets.two_moons()
    x = toy.sample(jax.random.key(10), 4000).astype(F32)
    x_test = toy.sample(jax.random.key(11), 4000).astype(F32)
    true_ll = float(jnp.mean(toy.log_prob(x_test)))
    every = list(_objectives(x))
    unknown = set(rows or ()) - set(every)
    if unknown:
        raise SystemExit(f"unknown rows {sorted(unknown)}; available: {every}")
    names = every if rows is None else [BASELINE, *rows]

    times = step_cost(x, repeats, names)
    base = times[BASELINE]
    for k, v in times.items():
        print(f"  {k}: {v * 1e3:.2f} ms/step ({v / base:.2f}x DSM)", flush=True)
    qual = quality(x, x_test, num_steps, [n for n in names if rows is None or n in rows])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if rows is None:
        data = {"step_seconds": times, "ratio_to_dsm": {k: v / base for k, v in times.items()},
                "num_steps": num_steps, "true_heldout_ll": true_ll, "quality": qual,
                "batch": BATCH, "hidden": list(HIDDEN), "repeats": repeats, "partial_runs": []}
    else:
        old = json.loads((RESULTS / "nce.json").read_text())
        data = old["data"]
        data.setdefault("partial_runs", [])
        data["partial_runs"].append({"date": stamp, "rows": list(rows), "dsm_step_seconds": base,
                                     "repeats": repeats, "load_average": os.getloadavg()})
        for k in rows:
            data["step_seconds"][k] = times[k]
            data["ratio_to_dsm"][k] = times[k] / base
            data["quality"][k] = qual[k]
    if "NCE nu=4, MultivariateNormal noise" in times and "NCE nu=4" in times:
        data["mvn_over_diagonal_nce"] = (times["NCE nu=4, MultivariateNormal noise"]
                                         / times["NCE nu=4"])
    write_results("nce", "NCE and FCE vs score matching (two moons)", data,
                  _markdown(data, every))


def _markdown(data: dict, every: list[str]) -> str:
    times, ratio, qual = data["step_seconds"], data["ratio_to_dsm"], data["quality"]
    mvn = data.get("mvn_over_diagonal_nce")
    mvn_text = "not measured" if mvn is None else f"{mvn:.2f}x here"
    cost_table = markdown_table(
        ["objective", "ms / step", "steps / s", "time / DSM time"],
        [[k, v * 1e3, 1.0 / v, ratio[k]] for k, v in times.items()])
    qual_table = markdown_table(
        ["objective", "held-out LL, grid log Z", "held-out LL, learned log Z", "fit wall (s)"],
        [[k, q["ll_grid"], "-" if q["ll_learned"] is None else q["ll_learned"], q["fit_s"]]
         for k, q in qual.items()])
    partial = "".join(
        f"\n\nMeasured later, in a partial run on {run['date']}: {', '.join(run['rows'])} "
        f"(`python benchmarks/bench_nce.py --rows ...`; load average "
        f"{tuple(round(v, 1) for v in run['load_average'])}): their time / DSM is against DSM "
        f"timed again in that run ({run['dsm_step_seconds'] * 1e3:.2f} ms / step), their "
        "quality from the same seeds and settings as the other rows."
        for run in data.get("partial_runs", []))
    missing = [k for k in every if k not in qual]
    if missing:
        partial += ("\n\nNot yet measured (added after the last full run): "
                    + ", ".join(missing) + ".")
    return f"""Two moons (noise 0.1), 4000 training and 4000 held-out points; the same MLP energy
2 -> 64 -> 64 -> 1 (float32) for every objective.

**Cost of one training step** (loss, gradient, Adam update; batch {data['batch']}; minimum of
{data['repeats']} interleaved repeats after a warm-up; ratios to denoising score matching
measured in the same process). NCE noise: a Gaussian fitted to the data's moments, widened
by 1.2. FCE: a 4-layer affine-coupling flow (hidden 32, 32) as trainable noise; it runs the
flow forwards for its samples and backwards for the data's density, which dominates its
cost. CNCE: 4 Gaussian perturbations (s = 0.2) per data point, no noise density, no log Z.
ED: energy discrepancy (s = 0.2, M = 16 negatives per point, w = 1), no MCMC, no score.
"MultivariateNormal noise": the same noise as "NCE nu=4" written as a full-covariance
`dist.MultivariateNormal`; NCE evaluates its log density with the inverse Cholesky factor
(matrix products), so it should cost about the same as the diagonal form
(MultivariateNormal / diagonal = {mvn_text}; NumPyro's own `log_prob`, a batched
triangular solve, made this row about 8-11x slower before).
"poor noise": NCE with a Gaussian 3x wider than the data, to show what a bad noise costs.

{cost_table}

**Quality at a fixed budget of {data['num_steps']} steps** (`fit`, Adam with cosine decay
from 1e-2, same initial energy). Held-out log-likelihood in nats per point; the true density
scores {data['true_heldout_ll']:.3f}. "grid log Z" normalises each fitted energy on a
256 x 256 grid over [-6, 6]^2; "learned log Z" uses NCE's / FCE's own estimate (score
matching learns none). Fit wall time includes compilation.

{qual_table}{partial}
"""


if __name__ == "__main__":
    rows_cli(__doc__, main)
