"""Tuning study for bench_sbi: which generic ratio settings help slcp and bernoulli_glm
(issue 11).

    python benchmarks/_sbi_tuning.py --task bernoulli_glm [--budget 1000] [--observations 2]
        [variant ...]

Each variant fits one ratio on the benchmark's simulations (same seeds as ``bench_sbi``) with
other :func:`numpyro_ebm.sbi.fit_ratio` settings, samples with the benchmark's sampler
settings and scores C2ST (one of five folds, as in ``bench_sbi --c2st-folds 1``) on the
first observations. Results go to ``benchmarks/results/sbi_tuning.json`` (merged with
earlier runs) and are shown on the SBI benchmark page. The settings are generic (no
task-specific architecture).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS  # noqa: E402
from _sbi_c2st import c2st_fast  # noqa: E402
from _sbi_reference import reference  # noqa: E402

from numpyro_ebm.objectives import contrastive_ratio_estimation  # noqa: E402
from numpyro_ebm.sbi import TASK_NAMES, fit_ratio, get_task, sample_posterior  # noqa: E402

K50 = contrastive_ratio_estimation(50)
VARIANTS = {
    "first setting (relu 64^2, K=10, patience 10)": dict(hidden=(64, 64)),
    "first setting (relu 128^2, K=10, patience 10)": dict(hidden=(128, 128)),
    "swish 64^2, patience 20": dict(hidden=(64, 64), activation="swish", patience=20),
    "swish 128^2, K=50, patience 20": dict(hidden=(128, 128), activation="swish",
                                           objective=K50, patience=20),
    "relu 128^2, K=50, patience 20": dict(hidden=(128, 128), objective=K50, patience=20),
    "swish 128^2, K=50, patience 20, wd 1e-3": dict(
        hidden=(128, 128), activation="swish", objective=K50, patience=20,
        weight_decay=1e-3),
    "relu 256^3, K=50, patience 30": dict(hidden=(256, 256, 256), objective=K50,
                                          num_epochs=300, patience=30),
    "swish 256^3, K=50, patience 30": dict(hidden=(256, 256, 256), activation="swish",
                                           objective=K50, num_epochs=300, patience=30),
    "swish 128^2, K=64, 400 epochs, patience 20": dict(
        hidden=(128, 128), activation="swish", objective=contrastive_ratio_estimation(64),
        num_epochs=400, patience=20),
    "swish 128^2, K=50, 400 epochs, patience 20": dict(
        hidden=(128, 128), activation="swish", objective=K50, num_epochs=400, patience=20),
    "swish 128^2, K=128, batch 128, 400 epochs, patience 20": dict(
        hidden=(128, 128), activation="swish", objective=contrastive_ratio_estimation(128),
        batch_size=128, num_epochs=400, patience=20),
    "ensemble of 5: swish 128^2, K=50, patience 20": dict(
        hidden=(128, 128), activation="swish", objective=K50, patience=20, num_ensemble=5),
    # task-specific (slcp): x is 4 iid 2-D draws, so fit the ratio on single draws (4 pairs
    # per simulation) and sum it over the observation's 4 draws (sample_posterior's iid x_obs)
    "iid draws, swish 128^2, K=50, patience 20": dict(
        hidden=(128, 128), activation="swish", objective=K50, patience=20, iid_draws=4),
}
OUT = RESULTS / "sbi_tuning.json"


def split_iid(theta, x, n_iid: int):
    """Simulations whose ``x`` holds ``n_iid`` iid draws as ``n_iid`` pairs per simulation:
    ``(n * n_iid, theta_dim)`` and ``(n * n_iid, x_dim / n_iid)``."""
    if n_iid == 1:
        return theta, x
    return (np.repeat(np.asarray(theta), n_iid, 0),
            np.asarray(x).reshape(x.shape[0] * n_iid, x.shape[1] // n_iid))


def run(name: str, variant: str, budget: int, n_obs: int) -> dict:
    """Fit ``variant`` on ``budget`` simulations of task ``name``; C2ST on ``n_obs`` obs."""
    task = get_task(name)
    theta, x = task.sample_joint(jax.random.key(budget + TASK_NAMES.index(name)), budget)
    settings = {"num_epochs": 100, "patience": 10, **VARIANTS[variant]}
    n_iid = settings.pop("iid_draws", 1)
    theta, x = split_iid(theta, x, n_iid)
    t0 = time.perf_counter()
    settings.setdefault("batch_size", 64 if budget <= 1000 else 128)
    ratio = fit_ratio(theta, x, key=jax.random.key(1), **settings)
    fit_s = time.perf_counter() - t0
    scores = []
    for i in range(n_obs):
        _, x_obs = task.observation(i)
        x_obs = x_obs.reshape(n_iid, -1)
        mcmc = sample_posterior(ratio, task.prior, x_obs, key=jax.random.key(100 + i),
                                num_warmup=150, max_tree_depth=5, num_samples=10_000)
        draws = np.asarray(mcmc.get_samples()["theta"])[:10_000]
        scores.append(c2st_fast(reference(name, i), draws, seed=i, folds_used=1))
        print(f"  {name} {variant} n={budget} obs {i}: C2ST {scores[-1]:.3f}", flush=True)
    return {"task": name, "variant": variant, "budget": budget, "c2st": scores,
            "mean": float(np.mean(scores)), "steps": int(ratio.fit_result.step),
            "stopped": ratio.fit_result.stopped_reason, "fit_s": fit_s}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True, choices=TASK_NAMES)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--observations", type=int, default=2)
    ap.add_argument("variants", nargs="*", default=list(VARIANTS))
    a = ap.parse_args()
    for v in a.variants:
        row = run(a.task, v, a.budget, a.observations)
        rows = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
        rows = [r for r in rows if (r["task"], r["variant"], r["budget"])
                != (a.task, v, a.budget)] + [row]
        OUT.write_text(json.dumps({"name": "sbi_tuning", "rows": rows}, indent=1))
        print(f"{a.task} {v} n={a.budget}: mean C2ST {row['mean']:.3f} "
              f"(fit {row['fit_s']:.0f}s, {row['steps']} steps)", flush=True)
