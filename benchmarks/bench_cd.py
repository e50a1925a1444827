"""Contrastive divergence vs score matching and NCE on two moons: step cost, quality at a budget.

1. Training-step cost of the same MLP energy ``2 -> 64 -> 64 -> 1`` (float32, batch 128):
   CD-1, CD-10 (MALA, and ULA with and without its default acceptance guard), PCD-10 (MALA,
   buffer 4096), denoising score matching (sigma = 0.1, the baseline), sliced score matching,
   NCE (nu = 4, diagonal Gaussian noise with the data's means and 1.5 times its standard
   deviations) and energy discrepancy (s = 0.2, M = 16). One jitted
   ``lax.scan`` of 20 steps (loss, gradient, Adam update), minimum of interleaved repeats;
   steps/s and time / DSM time.
2. Held-out log-likelihood at an equal wall-clock budget: each objective gets
   ``budget / (seconds per step of fit)`` steps of ``numpyro_ebm.fit`` (same initial energy,
   Adam 3e-3), the per-step time being the difference of warm 1000- and 500-step fits
   (minimum of two timings each, at least the bare step cost); log Z from a
   256 x 256 grid for every objective (NCE's learned log Z is not used).

Usage: ``python benchmarks/run.py --only cd [--quick]``. Some rows only (the DSM baseline's
step cost timed again beside them; the other rows, and the ULA guard demonstration, kept
from the results file): ``python benchmarks/bench_cd.py --rows "ED (s 0.2, M 16)"``.
"""

from __future__ import annotations

import json
import os
import re
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
from numpyro_ebm.partition import grid_log_normalizer  # noqa: E402

BATCH = 128
HIDDEN = (64, 64)
SCAN = 20
CALIBRATE = 500
LO, HI = (-2.5, -2.0), (3.5, 2.5)
BASELINE = "DSM (sigma 0.1)"


def _objectives(x: jax.Array) -> dict[str, ebm.Objective]:
    noise = dist.Normal(jnp.mean(x, 0), 1.5 * jnp.std(x, 0)).to_event(1)
    return {
        "CD-1 (MALA)": ebm.contrastive_divergence(num_steps=1, step_size=0.005),
        "CD-10 (MALA)": ebm.contrastive_divergence(num_steps=10, step_size=0.005),
        "CD-10 (ULA)": ebm.contrastive_divergence(num_steps=10, step_size=0.005,
                                                  sampler="ula"),
        "CD-10 (ULA, no acceptance guard)": ebm.contrastive_divergence(
            num_steps=10, step_size=0.005, sampler="ula", min_acceptance=None),
        "PCD-10 (MALA)": ebm.persistent_contrastive_divergence(
            num_steps=10, step_size=0.005, buffer_size=4096),
        BASELINE: ebm.denoising_score_matching(0.1),
        "SSM": ebm.sliced_score_matching(),
        "NCE (nu 4)": ebm.noise_contrastive_estimation(noise, noise_ratio=4),
        "ED (s 0.2, M 16)": ebm.energy_discrepancy(0.2, 16),
    }


def _scan_steps(energy_fn, objective, optimizer):
    """``SCAN`` training steps on one batch, jitted: the unit of timing."""

    @jax.jit
    def run(trainable, opt_state, state, batch, key):
        def step(carry, k):
            trainable, opt_state, state = carry

            def loss_fn(tr):
                return objective.loss(energy_fn, tr[0], tr[1], state, batch, k)

            (loss, (state, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            return (optax.apply_updates(trainable, updates), opt_state, state), loss

        return jax.lax.scan(step, (trainable, opt_state, state), jax.random.split(key, SCAN))

    return run


def step_cost(energy, params, x, objectives, repeats: int) -> dict[str, float]:
    optimizer = optax.adam(3e-3)
    batch = x[:BATCH]
    fns = {}
    for name, obj in objectives.items():
        extras, state = obj.init(jax.random.key(0), energy, params, batch)
        trainable = (params, extras)
        run = _scan_steps(energy, obj, optimizer)
        args = (trainable, optimizer.init(trainable), state, batch, jax.random.key(1))
        fns[name] = lambda run=run, args=args: run(*args)
    times = interleaved_min_times(fns, repeats=repeats)
    return {name: t / SCAN for name, t in times.items()}


def held_out_ll(energy, params, x_test) -> float:
    log_z = grid_log_normalizer(energy, params, LO, HI, 256)
    return float(-jnp.mean(jax.vmap(lambda z: energy(params, z))(x_test)) - log_z)


GUARD_STEPS = 1500


def guard_demo(energy, params, x, x_test, steps: int) -> dict[str, dict]:
    """CD-10/ULA for a fixed number of steps, with and without the default acceptance guard.

    At an equal *time* budget a loaded machine may not run enough steps for ULA to degrade;
    a fixed step count shows the guard whatever the load.
    """
    out = {}
    for name, min_acceptance in (("default guard", "auto"), ("no acceptance guard", None)):
        obj = ebm.contrastive_divergence(num_steps=10, step_size=0.005, sampler="ula",
                                         min_acceptance=min_acceptance)
        res = ebm.fit(energy, params, x, obj, key=jax.random.key(3), num_steps=steps,
                      batch_size=BATCH, optimizer=optax.adam(3e-3), steps_per_chunk=50,
                      progress_bar=False)
        acc = res.history["acceptance_rate"]
        out[name] = {"stopped_reason": res.stopped_reason, "steps_applied": int(res.step),
                     "held_out_ll": held_out_ll(energy, res.params, x_test),
                     "last_acceptance": float(acc[-1]) if acc.size else float("nan")}
        print(f"CD-10 (ULA) {name}: stopped at {res.step}, "
              f"LL {out[name]['held_out_ll']:.3f}", flush=True)
    return out


def fit_row(energy, params, x, x_test, obj, budget: float, bare_step: float) -> dict:
    """``obj`` trained for ``budget`` seconds' worth of its own warm ``fit`` steps.

    The per-step cost of ``fit`` is the difference of warm 1000- and 500-step fits (minimum
    of two timings each), and at least ``bare_step`` (the jitted scan's cost per step): on a
    loaded machine a single difference of two wall times can be off several-fold either way.
    """
    optimizer = optax.adam(3e-3)
    run = lambda n: ebm.fit(  # noqa: E731
        energy, params, x, obj, key=jax.random.key(3), num_steps=n, batch_size=BATCH,
        optimizer=optimizer, steps_per_chunk=250, progress_bar=False)
    run(CALIBRATE)  # compile
    lengths = {CALIBRATE: float("inf"), 2 * CALIBRATE: float("inf")}
    for _ in range(2):
        for n in lengths:  # per-step cost without fit's fixed cost
            t0 = time.perf_counter()
            run(n)
            lengths[n] = min(lengths[n], time.perf_counter() - t0)
    fit_step = max((lengths[2 * CALIBRATE] - lengths[CALIBRATE]) / CALIBRATE, bare_step)
    steps = max(CALIBRATE, int(budget / fit_step))
    t0 = time.perf_counter()
    res = run(steps)
    seconds = time.perf_counter() - t0
    return {"steps": steps, "fit_seconds": seconds,
            "held_out_ll": held_out_ll(energy, res.params, x_test), "fit_step_s": fit_step,
            "num_skipped": res.num_skipped, "stopped_reason": res.stopped_reason,
            "steps_applied": int(res.step)}


def main(quick: bool = False, rows: tuple[str, ...] | None = None) -> None:
    """Every row, or only ``rows`` (their step cost timed beside the DSM baseline again;
    the other rows and the guard demonstration kept from the previous results file)."""
    repeats, budget = (2, 1.0) if quick else (5, 6.0)
    truth = ebm.datasets.two_moons(noise=0.1)
    x = truth.sample(jax.random.key(0), 4000).astype(jnp.float32)
    x_test = truth.sample(jax.random.key(1), 4000).astype(jnp.float32)
    energy, params = ebm.mlp_energy(jax.random.key(2), 2, HIDDEN, dtype=jnp.float32)
    objectives = _objectives(x)
    unknown = set(rows or ()) - set(objectives)
    if unknown:
        raise SystemExit(f"unknown rows {sorted(unknown)}; available: {list(objectives)}")
    timed = {k: v for k, v in objectives.items() if rows is None or k in (BASELINE, *rows)}
    per_step = step_cost(energy, params, x, timed, repeats)
    true_ll = float(jnp.mean(truth.log_prob(x_test.astype(float))))
    fits = {}
    for name, obj in timed.items():
        if rows is not None and name not in rows:
            continue
        fits[name] = fit_row(energy, params, x, x_test, obj, budget, per_step[name])
        print(f"{name}: {1 / per_step[name]:.0f} steps/s, {fits[name]['steps']} steps, "
              f"LL {fits[name]['held_out_ll']:.3f}", flush=True)
    ratio = {k: v / per_step[BASELINE] for k, v in per_step.items()}
    if rows is None:
        data = {"per_step_s": per_step, "ratio_to_baseline": ratio, "budget_s": budget,
                "true_ll": true_ll, "fits": fits, "partial_runs": []}
        guard_steps = 600 if quick else GUARD_STEPS
        data["ula_guard"] = guard_demo(energy, params, x, x_test, guard_steps)
        data["guard_steps"] = guard_steps
    else:
        data = json.loads((RESULTS / "cd.json").read_text())["data"]
        base = data["per_step_s"][BASELINE]
        data.setdefault("ratio_to_baseline",
                        {k: v / base for k, v in data["per_step_s"].items()})
        data.setdefault("partial_runs", []).append({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": list(rows),
            "baseline_step_s": per_step[BASELINE], "load_average": os.getloadavg()})
        for k in rows:
            data["per_step_s"][k], data["ratio_to_baseline"][k] = per_step[k], ratio[k]
            data["fits"][k] = fits[k]
    write_results("cd", "Contrastive divergence vs score matching and NCE", data,
                  _markdown(data, list(objectives)))


def _status(fit: dict) -> str:
    if fit["stopped_reason"].startswith("completed"):
        return "ok"
    step = fit.get("steps_applied")
    if step is None:
        found = re.search(r"step (\d+)", fit["stopped_reason"])
        step = found.group(1) if found else "?"
    return f"guard at {step}"


def _markdown(data: dict, every: list[str]) -> str:
    """The page: fits table, notes, partial runs, and the guard table when measured."""
    per_step, ratio, true_ll = data["per_step_s"], data["ratio_to_baseline"], data["true_ll"]
    rows = [[name, 1.0 / per_step[name], ratio[name], 1.0 / f["fit_step_s"], f["steps"],
             f["fit_seconds"], _status(f), f["held_out_ll"], f["held_out_ll"] - true_ll]
            for name, f in data["fits"].items()]
    header = ["objective", "steps/s (bare)", "time / DSM", "steps/s (fit)", "steps in budget",
              "fit s", "run", "held-out LL", "LL - true"]
    body = (
        "Same MLP energy `2 -> 64 -> 64 -> 1` (float32), batch 128, Adam 3e-3, two moons "
        "(noise 0.1, 4000 training points). CD/PCD use MALA (or ULA) at step size h = 0.005, "
        "T = 1. Step cost: minimum over interleaved repeats of a jitted scan of "
        f"{SCAN} training steps, divided by {SCAN} (\"bare\"), and the throughput of a warm "
        f"`fit` (with its batching, metrics and guard). Quality: each objective trained by "
        f"`fit` for {data['budget_s']:g} s worth of its own steps, held-out log-likelihood "
        f"with log Z from a 256 x 256 grid; the true density scores {true_ll:.3f}.\n\n"
        + markdown_table(header, rows)
        + "\n\nCD-k costs about k + 1 energy-and-gradient evaluations per step (k Langevin "
        "steps plus the loss), so at an equal time budget it runs fewer parameter updates "
        "than score matching or NCE. PCD costs the same as CD-k per step plus the buffer "
        "gather and scatter. With a constant learning rate PCD's model and chains chase "
        "each other and its held-out likelihood swings by up to a nat from one step count to "
        "the next (see the guide); a decaying learning rate, as in the example, settles it. "
        "ULA at this step size becomes inaccurate once the energy sharpens: the Metropolis "
        "acceptance its moves would have had falls, its negatives become biased and the model "
        "degrades silently long before the chains explode. The default guard of "
        "`contrastive_divergence(sampler=\"ula\")` (`min_acceptance=\"auto\"`, 0.9 for ULA at "
        "T = 1) stops `fit` at the first step below that rate and rolls back the update "
        "before it (\"guard at N\"), keeping the model from just before the degradation; "
        "the row without it runs until the energies explode (the 1e5 / 1e4 thresholds) and "
        "returns a model hundreds of nats worse. ED is energy discrepancy (no MCMC, no score). "
        "Step counts follow "
        "the machine's load, so the likelihoods of the other rows vary by a few hundredths."
    )
    for run in data.get("partial_runs", []):
        body += (
            f"\n\nMeasured later, in a partial run on {run['date']}: {', '.join(run['rows'])} "
            "(`python benchmarks/bench_cd.py --rows ...`; load average "
            f"{tuple(round(v, 1) for v in run['load_average'])}): their time / DSM is against "
            f"DSM timed again in that run ({run['baseline_step_s'] * 1e6:.0f} us / step); "
            "their step count in the budget follows that run's load, and their fit step "
            "cost is the minimum of two timings per length, at least the bare step cost "
            "(the other rows: one timing each).")
    missing = [k for k in every if k not in data["fits"]]
    if missing:
        body += ("\n\nNot yet measured (added after the last full run): "
                 + ", ".join(missing) + ".")
    guard = data.get("ula_guard")
    if guard:
        guard_table = markdown_table(
            ["CD-10 (ULA), fixed steps", "stopped", "steps applied", "held-out LL",
             "LL - true", "acceptance at the last step"],
            [[k, v["stopped_reason"].split(":")[0], v["steps_applied"], v["held_out_ll"],
              v["held_out_ll"] - true_ll, v["last_acceptance"]] for k, v in guard.items()])
        body += (
            f"\n\n**The ULA guard at a fixed step count** ({data['guard_steps']} steps, "
            "whatever the machine's load; same settings as above): with the default guard "
            "`fit` stops at the first step whose would-be MALA acceptance is below 0.9 and "
            "rolls back the update before it; without it the run goes on.\n\n" + guard_table)
    return body


if __name__ == "__main__":
    rows_cli(__doc__, main)
