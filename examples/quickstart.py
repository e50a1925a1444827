"""Quickstart: sample a 2-D energy with NUTS through EnergyDistribution, summarise with ArviZ.

    make demo            # or: python examples/quickstart.py --out outputs/quickstart

The default problem is the banana density shipped in ``numpyro_ebm.datasets`` (no
downloads). Its energy ``E(x) = -log p(x)`` becomes an unnormalized NumPyro distribution; NUTS
samples it; ArviZ summarises the chains (R-hat, ESS); the exact sampler gives a reference for
the moments; a picture of the samples over the energy contours is written to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import MCMC, NUTS

import numpyro_ebm as ebm


def model(energy_fn, params):
    numpyro.sample("x", ebm.EnergyDistribution(energy_fn, params, event_shape=(2,)))


def plot(density, samples: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = samples.min(0) - 0.5, samples.max(0) + 0.5
    gx, gy = np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200)
    X, Y = np.meshgrid(gx, gy)
    E = np.asarray(-density.log_prob(jnp.stack([X.ravel(), Y.ravel()], -1))).reshape(X.shape)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
    levels = np.quantile(E, np.linspace(0.0, 0.6, 12))
    cs = ax.contourf(X, Y, E, levels=levels, cmap="viridis_r", extend="max")
    fig.colorbar(cs, ax=ax, label="energy E(x) = -log p(x)")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="white", alpha=0.35, linewidths=0)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="x[0]", ylabel="x[1]",
           title=f"NUTS samples over the {density.name} energy")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/quickstart", help="output folder")
    ap.add_argument("--dataset", default="banana", choices=ebm.datasets.NAMES)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--small", action="store_true", help="few draws (for the test suite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.chains, args.samples = 2, 300
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    density = ebm.datasets.get(args.dataset)
    energy_fn, params = density.energy_fn, density.params  # E(x) = -log p(x)

    mcmc = MCMC(NUTS(model), num_warmup=args.samples // 2, num_samples=args.samples,
                 num_chains=args.chains, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(args.seed), energy_fn, params)
    idata = az.from_numpyro(mcmc)
    summary = az.summary(idata)
    print(f"NUTS on the {density.name} energy: {args.chains} chains x {args.samples} draws")
    print(summary)

    x = np.asarray(mcmc.get_samples()["x"])
    exact = np.asarray(density.sample(jax.random.key(args.seed + 1), 100_000))
    print("\nmean      NUTS:", np.round(x.mean(0), 3), "  exact:", np.round(exact.mean(0), 3))
    print("std       NUTS:", np.round(x.std(0), 3), "  exact:", np.round(exact.std(0), 3))
    fig_path = out / "quickstart.png"
    plot(density, x, fig_path)
    summary.to_csv(out / "summary.csv")
    print(f"\nwrote {fig_path} and {out / 'summary.csv'} in {time.perf_counter() - t0:.1f}s")
    return {"summary": summary, "samples": x, "figure": fig_path}


if __name__ == "__main__":
    main()
