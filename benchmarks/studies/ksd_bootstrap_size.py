"""Size and power of the KSD wild bootstrap (D5) on autocorrelated chains.

    python benchmarks/studies/ksd_bootstrap_size.py     # about 2-3 minutes on 2 cores

Two AR(1) chains (rho = 0.9) with exact N(0, 1) marginals in 2-D: the fraction of
replicates rejected at 5% and 1% (size), and with marginals N(0, 1.25^2) tested against the
N(0, 1) score (power), for flip probabilities a = 1/(1 + k tau), k = 2 (the default), 4, 8,
16, and for thinning to one draw per tau with i.i.d. multipliers; then i.i.d. draws.
The numbers are quoted in docs/diagnostics.md (D5).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from arviz_stats import ess

from numpyro_ebm.diagnostics.stein import kernel_stein_discrepancy

jax.config.update("jax_enable_x64", True)


def ar1_chains(rng, n, rho, sd):
    x = np.zeros((2, n, 2))
    x[:, 0] = rng.normal(size=(2, 2))
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho**2) * rng.normal(size=(2, 2))
    return x * sd


def rates(p_values):
    p = np.asarray(p_values)
    return round(float(np.mean(p < 0.05)), 3), round(float(np.mean(p < 0.01)), 3)


def main() -> None:
    for n, reps in ((400, 150), (1000, 60)):
        for sd, label in ((1.0, "size"), (1.25, "power")):
            rng = np.random.default_rng(2)
            res: dict[str, list[float]] = {f"a=1/(1+{k}tau)": [] for k in (2, 4, 8, 16)}
            res["thin to tau, a=1/2"] = []
            for r in range(reps):
                x = ar1_chains(rng, n, 0.9, sd)
                tau = max(1.0, 2 * n / float(np.min(np.asarray(ess(x, method="mean")))))
                for k in (2, 4, 8, 16):
                    res[f"a=1/(1+{k}tau)"].append(kernel_stein_discrepancy(
                        x, scores=-x, flip_probability=1 / (1 + k * tau), num_bootstrap=400,
                        seed=r).p_value)
                xt = x[:, :: max(1, math.ceil(tau))]
                res["thin to tau, a=1/2"].append(kernel_stein_discrepancy(
                    xt, scores=-xt, flip_probability=0.5, num_bootstrap=400, seed=r).p_value)
            print(f"n={n} {label}: " + ", ".join(f"{k}: {rates(v)}" for k, v in res.items()),
                  flush=True)
    for n, reps in ((200, 300), (1000, 150)):
        rng = np.random.default_rng(3)
        ps = []
        for r in range(reps):
            x = rng.normal(size=(n, 2))
            ps.append(kernel_stein_discrepancy(x, scores=-x, flip_probability=0.5,
                                               num_bootstrap=400, seed=r).p_value)
        print(f"iid n={n} size: {rates(ps)}", flush=True)


if __name__ == "__main__":
    main()
