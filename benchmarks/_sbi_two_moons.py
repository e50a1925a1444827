"""two_moons study for bench_sbi: which ratio settings narrow the crescent (issue 11).

    python benchmarks/_sbi_two_moons.py [--budget 1000] [--observations 3] [variant ...]

Each variant fits one ratio on the benchmark's simulations (same seed as ``bench_sbi``) and
scores C2ST (one of five folds, as in ``bench_sbi --c2st-folds 1``) on the first observations;
results go to
``benchmarks/results/sbi_two_moons.json`` (merged with earlier runs) and are shown on the
SBI benchmark page.
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

from numpyro_ebm.objectives import contrastive_ratio_estimation, ratio_estimation  # noqa: E402
from numpyro_ebm.sbi import TASK_NAMES, fit_ratio, get_task, sample_posterior  # noqa: E402

BASE = dict(hidden=(128, 128, 128), num_epochs=100, patience=10)
VARIANTS = {
    "base (K=10, 128^3)": BASE,
    "binary objective": {**BASE, "objective": ratio_estimation()},
    "K=50 atoms": {**BASE, "objective": contrastive_ratio_estimation(50)},
    "larger net 256^3, patience 30": {**BASE, "hidden": (256, 256, 256), "num_epochs": 300,
                                      "patience": 30},
    "K=50, 256^3, patience 30": {**BASE, "objective": contrastive_ratio_estimation(50),
                                 "hidden": (256, 256, 256), "num_epochs": 300,
                                 "patience": 30},
}
OUT = RESULTS / "sbi_two_moons.json"


def run(variant: str, budget: int, n_obs: int) -> dict:
    task = get_task("two_moons")
    theta, x = task.sample_joint(jax.random.key(budget + TASK_NAMES.index("two_moons")),
                                 budget)
    t0 = time.perf_counter()
    ratio = fit_ratio(theta, x, key=jax.random.key(1),
                      batch_size=64 if budget <= 1000 else 128, **VARIANTS[variant])
    fit_s = time.perf_counter() - t0
    scores = []
    for i in range(n_obs):
        _, x_obs = task.observation(i)
        mcmc = sample_posterior(ratio, task.prior, x_obs, key=jax.random.key(100 + i),
                                num_warmup=150, max_tree_depth=5, num_samples=10_000)
        draws = np.asarray(mcmc.get_samples()["theta"])[:10_000]
        scores.append(c2st_fast(reference("two_moons", i), draws, seed=i, folds_used=1))
        print(f"  {variant} n={budget} obs {i}: C2ST {scores[-1]:.3f}", flush=True)
    return {"variant": variant, "budget": budget, "c2st": scores,
            "mean": float(np.mean(scores)), "steps": int(ratio.fit_result.step),
            "stopped": ratio.fit_result.stopped_reason, "fit_s": fit_s}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--observations", type=int, default=3)
    ap.add_argument("variants", nargs="*", default=list(VARIANTS))
    a = ap.parse_args()
    rows = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    for v in a.variants:
        row = run(v, a.budget, a.observations)
        rows = [r for r in rows if (r["variant"], r["budget"]) != (v, a.budget)] + [row]
        OUT.write_text(json.dumps({"name": "sbi_two_moons", "rows": rows}, indent=1))
        print(f"{v} n={a.budget}: mean C2ST {row['mean']:.3f} (fit {row['fit_s']:.0f}s)",
              flush=True)
