"""Sampler-only check for bench_sbi: ``sample_posterior`` on the TRUE likelihood.

    python benchmarks/_sbi_sampler_check.py [--observations 3] [task ...]

The same sampler settings as ``bench_sbi`` (SIR-started NUTS, 100 chains, 150 warmup steps,
tree depth 5, 10,000 draws), with the task's true log likelihood in place of the learned
ratio, scored by C2ST (one of five folds) against the reference: what is left of the
benchmark's C2ST when the ratio is exact is the sampler's share. Results go to
``benchmarks/results/sbi_sampler_check.json`` and the SBI benchmark page.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS  # noqa: E402
from _sbi_c2st import c2st_fast  # noqa: E402
from _sbi_reference import reference  # noqa: E402

from numpyro_ebm.sbi import LearnedRatio, get_task, sample_posterior  # noqa: E402

OUT = RESULTS / "sbi_sampler_check.json"


@dataclass(frozen=True)
class TrueEnergy:
    """``E(params, x, theta) = -log p(x | theta)`` of a task (hashable: jit caches it)."""

    name: str

    def __call__(self, params, x, theta):
        return -get_task(self.name).log_likelihood(theta, x)


def exact_ratio(name: str) -> LearnedRatio:
    task = get_task(name)
    big = np.full(task.x_dim, np.inf)
    return LearnedRatio(TrueEnergy(name), (), task.theta_dim, task.x_dim, -big, big, 0, None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=3)
    ap.add_argument("tasks", nargs="*", default=["two_moons", "gaussian_mixture", "slcp"])
    a = ap.parse_args()
    rows = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    for name in a.tasks:
        task, ratio, scores = get_task(name), exact_ratio(name), []
        for i in range(a.observations):
            _, x_obs = task.observation(i)
            mcmc = sample_posterior(ratio, task.prior, x_obs, key=jax.random.key(100 + i),
                                    num_warmup=150, max_tree_depth=5, num_samples=10_000)
            draws = np.asarray(mcmc.get_samples()["theta"])[:10_000]
            scores.append(c2st_fast(reference(name, i), draws, seed=i, folds_used=1))
            print(f"  {name} exact likelihood obs {i}: C2ST {scores[-1]:.3f}", flush=True)
        rows = [r for r in rows if r["task"] != name] + [
            {"task": name, "c2st": scores, "mean": float(np.mean(scores))}]
        OUT.write_text(json.dumps({"name": "sbi_sampler_check", "rows": rows}, indent=1))
