"""``numpyro_ebm.fit`` against the machine's limit: a plain jitted ``lax.scan`` + optax loop.

Both minimise the same objective on the same data (two moons, N=4000) with the same network
(MLP 2 -> 128 -> 128 -> 1, SiLU), the same optimizer (Adam 1e-3) and batch size (256). The
plain loop is what a hand-written script does at best: one jitted ``lax.scan`` over all steps,
batches drawn with replacement and fresh objective noise each step, no checks, no history
but the loss. ``fit`` runs with its defaults (NaN guard, per-step history, shuffling without
replacement, chunks of 50 steps, no progress bar).

Reported per objective:

* steady state: seconds per step from the difference of two run lengths (``T2 - T1``
  steps), minimum over interleaved repeats, compilation cached; ratio fit / plain;
* whole run of ``T_RUN`` steps from cold caches (``jax.clear_caches()``), compilation
  included; ratio fit / plain, and each one's compile time (cold run minus warm run).

Usage: ``python benchmarks/run.py --only fit_overhead [--quick]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import block, markdown_table, write_results  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

N, BATCH, HIDDEN, LR = 4000, 256, (128, 128), 1e-3


def objectives(quick: bool) -> dict[str, ebm.Objective]:
    """The objectives compared (built once: ``fit`` reuses its compilation for each)."""
    objs = {
        "NCE": ebm.noise_contrastive_estimation(dist.Normal(jnp.zeros(2), 2.0).to_event(1)),
        "exact SM": ebm.exact_score_matching(),
        "sliced SM": ebm.sliced_score_matching(),
        "denoising SM": ebm.denoising_score_matching(0.1),
    }
    if not quick:
        objs["CD-5"] = ebm.contrastive_divergence(num_steps=5, step_size=0.01)
        objs["PCD-5"] = ebm.persistent_contrastive_divergence(num_steps=5, step_size=0.01)
    return objs


def plain_loop(energy_fn, objective, optimizer, data, init_key):
    """``run(params, num_steps, key, start=None) -> (params, losses)``: the baseline.

    ``objective.init`` runs outside the compiled loop, like ``fit``'s, unless ``start``
    gives ``(extras, objective_state)``.
    """
    n = data.shape[0]

    def init(params):
        extras, state = objective.init(init_key, energy_fn, params, data[:BATCH])
        return (params, extras), state

    @jax.jit
    def scan(trainable, state, key, steps):
        def body(carry, t):
            trainable, opt_state, state = carry
            kb, kl = jax.random.split(jax.random.fold_in(key, t))
            batch = data[jax.random.randint(kb, (BATCH,), 0, n)]

            def loss_fn(tr):
                return objective.loss(energy_fn, tr[0], tr[1], state, batch, kl)

            (loss, (state, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            return (optax.apply_updates(trainable, updates), opt_state, state), loss

        carry = (trainable, optimizer.init(trainable), state)
        (trainable, _, _), losses = jax.lax.scan(body, carry, steps)
        return trainable, losses

    def run(params, num_steps, key, start=None):
        trainable, state = init(params) if start is None else ((params, start[0]), start[1])
        return scan(trainable, state, key, jnp.arange(num_steps))

    return run


def _time(fn) -> float:
    t0 = time.perf_counter()
    block(fn())
    return time.perf_counter() - t0


def measure(name, objective, data, energy_fn, params, t1, t2, t_run, repeats) -> dict:
    optimizer = optax.adam(LR)
    key = jax.random.key(1)
    plain = plain_loop(energy_fn, objective, optimizer, data, jax.random.key(2))

    def run_fit(steps, start=(None, None)):
        return ebm.fit(energy_fn, params, data, objective, key=key, optimizer=optimizer,
                       num_steps=steps, batch_size=BATCH, progress_bar=False,
                       extras=start[0], objective_state=start[1]).params

    cold = {}  # whole runs from cold caches: objective.init and compilation included
    for k, f in {"plain": lambda s: plain(params, s, key)[0], "fit": run_fit}.items():
        jax.clear_caches()
        cold[k] = _time(lambda f=f: f(t_run))
    # steady state: objective.init done once (its cost, and NCE's compilation inside it,
    # would only add noise to the difference of two run lengths)
    start = objective.init(jax.random.key(2), energy_fn, params, data[:BATCH])
    runs = {"plain": lambda s: plain(params, s, key, start)[0],
            "fit": lambda s: run_fit(s, start)}
    best = {(k, s): float("inf") for k in runs for s in (t1, t2, t_run)}
    for _ in range(repeats):  # warm, interleaved
        for s in (t1, t2, t_run):
            for k, f in runs.items():
                best[k, s] = min(best[k, s], _time(lambda f=f, s=s: f(s)))
    per_step = {k: (best[k, t2] - best[k, t1]) / (t2 - t1) for k in runs}
    compile_s = {k: cold[k] - best[k, t_run] for k in runs}
    row = {
        "objective": name,
        "plain_us_per_step": 1e6 * per_step["plain"],
        "fit_us_per_step": 1e6 * per_step["fit"],
        "steady_ratio": per_step["fit"] / per_step["plain"],
        "plain_run_s": cold["plain"],
        "fit_run_s": cold["fit"],
        "run_ratio": cold["fit"] / cold["plain"],
        "plain_compile_s": compile_s["plain"],
        "fit_compile_s": compile_s["fit"],
    }
    print("  " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else str(v)
                           for k, v in row.items()), flush=True)
    return row


def main(quick: bool = False) -> None:
    t1, t2, t_run, repeats = (200, 1000, 2000, 2) if quick else (500, 2500, 6000, 3)
    data = ebm.datasets.two_moons().sample(jax.random.key(0), N)
    energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, HIDDEN, dtype=jnp.float32)
    rows = [measure(name, obj, data, energy_fn, params, t1, t2, t_run, repeats)
            for name, obj in objectives(quick).items()]
    table = markdown_table(
        ["objective", "plain µs/step", "fit µs/step", "fit/plain (steady)",
         f"plain run {t_run} (s)", f"fit run {t_run} (s)", "fit/plain (run)",
         "plain compile (s)", "fit compile (s)"],
        [[r["objective"], r["plain_us_per_step"], r["fit_us_per_step"], r["steady_ratio"],
          r["plain_run_s"], r["fit_run_s"], r["run_ratio"], r["plain_compile_s"],
          r["fit_compile_s"]] for r in rows])
    body = f"""Setup: two moons (N={N}), MLP 2 -> 128 -> 128 -> 1 (SiLU, float32), Adam
{LR:g}, batch {BATCH}. The plain loop is one jitted `lax.scan` + optax loop of the same
objective (batches drawn with replacement, fresh noise each step, no checks). `fit` runs with
its defaults (NaN guard with rollback, per-step history, shuffled epochs, 50 steps per chunk).
Steady state: per-step time from runs of {t1} and {t2} steps (difference, minimum of
{repeats} interleaved repeats, compiled). Run: {t_run} steps from cold caches, compilation
included; compile time = cold run minus warm run. Targets: steady <= 1.05, run <= 1.15.

{table}
"""
    write_results("fit_overhead", "fit against a plain jitted loop",
                  {"t1": t1, "t2": t2, "t_run": t_run, "repeats": repeats, "rows": rows},
                  body)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
