"""Size and power of the KSD bootstrap test on autocorrelated chains.

    python benchmarks/studies/ksd_bootstrap_size.py [--reps 200]   # ~5-10 min on 2 cores

Two AR(1) chains with exact N(0, 1) marginals in 2-D, tested against the N(0, I) score:
the fraction of replicates rejected at 5% and 1% (size), for rho = 0, 0.5, 0.9, 0.95, with
and without the default thinning; then marginals N(0, 1.25^2) or shifted by 0.3 (power).
Compared in the same run: the dependent wild bootstrap with Bartlett multipliers and block
length ``4 tau`` (the default of ``kernel_stein_discrepancy``), the same with ``2 tau``, and
the previous default, the Markov-chain (sign-flip) wild bootstrap of Chwialkowski et al.
(2016) with flip probability ``1 / (1 + 2 tau)``. ``tau = n / ESS`` (ArviZ).

Writes benchmarks/results/ksd_bootstrap_size.json; the numbers are quoted in
docs/diagnostics.md (kernel Stein discrepancy).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from numpyro_ebm.diagnostics.stein import default_block_length, stein_kernel_matrix

try:  # run as a script from the repository root
    from benchmarks._common import RESULTS, machine
except ImportError:  # pragma: no cover
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks._common import RESULTS, machine

CHAINS, DIM, NUM_BOOTSTRAP = 2, 2, 300


def ar1_chains(rng: np.random.Generator, n: int, rho: float, sd: float = 1.0,
               shift: float = 0.0) -> np.ndarray:
    """``(CHAINS, n, DIM)`` AR(1) chains started at stationarity: marginals N(shift, sd^2)."""
    x = np.empty((CHAINS, n, DIM))
    x[:, 0] = rng.normal(size=(CHAINS, DIM))
    e = rng.normal(size=(CHAINS, n, DIM)) * math.sqrt(1.0 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x * sd + shift


def bartlett(rng, n, ell, b):
    xi = rng.standard_normal((CHAINS, n + ell - 1, b))
    cs = np.concatenate([np.zeros((CHAINS, 1, b)), np.cumsum(xi, 1)], 1)
    return ((cs[:, ell:] - cs[:, :-ell]) / math.sqrt(ell)).reshape(CHAINS * n, b)


def sign_flips(rng, n, a, b):
    """The previous default: Rademacher chains flipping sign with probability ``a``."""
    w = np.empty((CHAINS, n, b))
    w[:, 0] = rng.choice([-1.0, 1.0], size=(CHAINS, b))
    flips = rng.random((CHAINS, n, b)) < a
    for t in range(1, n):
        w[:, t] = np.where(flips[:, t], -w[:, t - 1], w[:, t - 1])
    return w.reshape(CHAINS * n, b)


def p_value(h: np.ndarray, w: np.ndarray) -> float:
    n = h.shape[0]
    boot = np.einsum("ib,ib->b", w, h @ w) / n**2
    return float((1 + np.sum(boot >= h.sum() / n**2)) / (1 + boot.size))


def one_setting(rho, n, thin, reps, sd=1.0, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    methods = ("bartlett 4 tau (default)", "bartlett 2 tau", "sign flip 1/(1+2 tau) (before)")
    p = {m: [] for m in methods}
    for _ in range(reps):
        x = ar1_chains(rng, n, rho, sd, shift)[:, ::thin]
        m = x.shape[1]
        ell = default_block_length(x)  # ceil(4 tau)
        tau = ell / 4.0
        flat = x.reshape(-1, DIM)
        h = stein_kernel_matrix(flat, -flat)
        p[methods[0]].append(p_value(h, bartlett(rng, m, ell, NUM_BOOTSTRAP)))
        p[methods[1]].append(p_value(h, bartlett(rng, m, max(1, math.ceil(ell / 2)),
                                                 NUM_BOOTSTRAP)))
        p[methods[2]].append(p_value(h, sign_flips(rng, m, 1.0 / (1.0 + 2.0 * tau),
                                                   NUM_BOOTSTRAP)))
    return {k: {"reject_5": float(np.mean(np.array(v) < 0.05)),
                "reject_1": float(np.mean(np.array(v) < 0.01))} for k, v in p.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    mcse = math.sqrt(0.05 * 0.95 / args.reps)
    size = [(0.0, 500, 1), (0.5, 500, 1), (0.9, 500, 1), (0.95, 500, 1), (0.95, 2000, 4)]
    power = [(0.9, 500, 1, 1.25, 0.0), (0.9, 500, 1, 1.0, 0.3)]
    rows = []
    t0 = time.time()
    for rho, n, thin in size:
        res = one_setting(rho, n, thin, args.reps)
        rows.append({"kind": "size", "rho": rho, "draws": n, "thin": thin, **res})
        print(f"size  rho={rho} draws={n} thin={thin}: " + ", ".join(
            f"{k}: {v['reject_5']:.3f}/{v['reject_1']:.3f}" for k, v in res.items()),
            flush=True)
    for rho, n, thin, sd, shift in power:
        res = one_setting(rho, n, thin, max(50, args.reps // 4), sd, shift)
        rows.append({"kind": "power", "rho": rho, "draws": n, "thin": thin, "sd": sd,
                     "shift": shift, **res})
        print(f"power rho={rho} sd={sd} shift={shift}: " + ", ".join(
            f"{k}: {v['reject_5']:.3f}/{v['reject_1']:.3f}" for k, v in res.items()),
            flush=True)
    out = {"name": "ksd_bootstrap_size", "machine": machine(), "reps": args.reps,
           "mcse_at_5pct": mcse, "seconds": time.time() - t0, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ksd_bootstrap_size.json").write_text(json.dumps(out, indent=2))
    print(f"MCSE of a 5% rate: {mcse:.4f}; {time.time() - t0:.0f} s")
    return out


if __name__ == "__main__":
    main()
