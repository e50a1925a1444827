"""SBI benchmark (Lueckmann et al. 2021): C2ST of learned-likelihood posteriors on five tasks.

    python benchmarks/run.py --only sbi            # 10^3 and 10^4 simulations
    python benchmarks/bench_sbi.py [--quick] [--large] [--observations 5]

For each task and simulation budget: simulate, fit ONE ratio (:func:`numpyro_ebm.sbi.fit_ratio`,
contrastive NRE-B with K = 10 atoms, z-scoring built in, early stopping on 10% held-out
simulations), then for each of the first ``--observations`` fixed observations draw 10,000
posterior samples (:func:`numpyro_ebm.sbi.sample_posterior`: SIR-started vectorized NUTS
chains) and score them by C2ST against 10,000 reference draws
(:func:`numpyro_ebm.diagnostics.c2st`, the sbibm protocol). Amortized: one fit per task and
budget serves every observation. ``--large`` adds 10^5 simulations. Published NRE and NPE
means (over 10 observations) are from Lueckmann et al. (2021), as quoted in issue 11.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DOCS, markdown_table, write_results  # noqa: E402
from _sbi_reference import reference  # noqa: E402

from numpyro_ebm.diagnostics import c2st  # noqa: E402
from numpyro_ebm.sbi import TASK_NAMES, fit_ratio, get_task, sample_posterior  # noqa: E402

# Lueckmann et al. 2021 (AISTATS), mean C2ST over 10 observations, as quoted in issue 11
PUBLISHED = {
    "gaussian_linear": {"NRE": (0.672, 0.560, 0.536), "NPE": (0.694, 0.552, 0.506)},
    "two_moons": {"NRE": (0.822, 0.761, 0.629), "NPE": (0.725, 0.606, 0.542)},
    "gaussian_mixture": {"NRE": (0.777, 0.748, 0.735), "NPE": (0.716, 0.615, 0.548)},
    "slcp": {"NRE": (0.972, 0.947, 0.919), "NPE": (0.975, 0.901, 0.831)},
    "bernoulli_glm": {"NRE": (0.899, 0.812, 0.751), "NPE": (0.863, 0.678, 0.559)},
}
BUDGETS = (1_000, 10_000, 100_000)

# per task: network and sampler settings (one setting per task for all budgets)
SETTINGS = {
    "gaussian_linear": dict(hidden=(64, 64)),
    "two_moons": dict(hidden=(128, 128, 128)),
    "gaussian_mixture": dict(hidden=(64, 64)),
    "slcp": dict(hidden=(128, 128)),
    "bernoulli_glm": dict(hidden=(64, 64)),
}


def run_one(name: str, budget: int, n_obs: int, *, quick: bool) -> dict:
    task = get_task(name)
    theta, x = task.sample_joint(jax.random.key(budget + TASK_NAMES.index(name)), budget)
    t0 = time.perf_counter()
    ratio = fit_ratio(theta, x, key=jax.random.key(1), num_epochs=20 if quick else 150,
                      patience=10, **SETTINGS[name])
    fit_s = time.perf_counter() - t0
    scores, sample_s, c2st_s = [], 0.0, 0.0
    for i in range(n_obs):
        _, x_obs = task.observation(i)
        t0 = time.perf_counter()
        mcmc = sample_posterior(ratio, task.prior, x_obs, key=jax.random.key(100 + i),
                                num_warmup=100 if quick else 200,
                                num_samples=2000 if quick else 10_000)
        draws = np.asarray(mcmc.get_samples()["theta"])
        t1 = time.perf_counter()
        ref = reference(name, i)[: draws.shape[0]]
        scores.append(c2st(ref, draws[: ref.shape[0]], seed=i).accuracy)
        sample_s += t1 - t0
        c2st_s += time.perf_counter() - t1
        print(f"  {name} n={budget} obs {i}: C2ST {scores[-1]:.3f}", flush=True)
    return {"task": name, "budget": budget, "c2st": scores, "mean": float(np.mean(scores)),
            "epochs": int(ratio.fit_result.step), "stopped": ratio.fit_result.stopped_reason,
            "fit_s": fit_s, "sample_s": sample_s, "c2st_s": c2st_s}


def table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        k = BUDGETS.index(r["budget"])
        nre, npe = PUBLISHED[r["task"]]["NRE"][k], PUBLISHED[r["task"]]["NPE"][k]
        verdict = "at or below NRE" if r["mean"] <= nre else "above NRE"
        body.append([r["task"], f"10^{int(np.log10(r['budget']))}", f"{r['mean']:.3f}",
                     f"{np.std(r['c2st']):.3f}", nre, npe, verdict,
                     f"{r['fit_s']:.0f} / {r['sample_s']:.0f} / {r['c2st_s']:.0f}"])
    return markdown_table(["task", "simulations", "C2ST (ours, mean)", "sd over obs",
                           "NRE (published)", "NPE (published)", "", "fit / sample / C2ST s"],
                          body)


def main(quick: bool = False, large: bool = False, observations: int = 5,
         tasks: tuple[str, ...] = TASK_NAMES) -> None:
    budgets = BUDGETS[:1] if quick else (BUDGETS if large else BUDGETS[:2])
    rows = []
    t_all = time.perf_counter()
    for name in tasks:
        for budget in budgets:
            rows.append(run_one(name, budget, observations, quick=quick))
            print(table(rows[-1:]), flush=True)
    total = time.perf_counter() - t_all
    body = (
        "Mean C2ST (0.5 = indistinguishable from the reference posterior) over the first "
        f"{observations} fixed observations of each task, one ratio fit per task and budget "
        "(amortized), beside the published NRE and NPE means over 10 observations "
        "(Lueckmann et al. 2021, AISTATS, Fig. 3 / sbibm). Ours: "
        "`numpyro_ebm.sbi.fit_ratio` (contrastive NRE-B, K = 10, z-scored inputs, early "
        "stopping on 10% held-out simulations) and `numpyro_ebm.sbi.sample_posterior` "
        "(SIR-started vectorized NUTS, 10,000 draws); C2ST by "
        "`numpyro_ebm.diagnostics.c2st` (sbibm protocol). Times are wall seconds on a "
        f"shared 2-core machine (total {total / 60:.1f} min).\n\n" + table(rows)
    )
    write_results("sbi", "Simulation-based inference (SBI benchmark)",
                  {"rows": rows, "observations": observations, "quick": quick,
                   "total_s": total}, body)
    print(f"wrote {DOCS / 'sbi.md'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--large", action="store_true", help="also 10^5 simulations")
    ap.add_argument("--observations", type=int, default=5)
    ap.add_argument("--tasks", nargs="*", default=list(TASK_NAMES))
    a = ap.parse_args()
    main(quick=a.quick, large=a.large, observations=a.observations, tasks=tuple(a.tasks))
