"""Langevin samplers side by side: ULA, MALA and NUTS on a 2-D energy, summarised in ArviZ.

    python examples/langevin_samplers.py --out outputs/langevin_samplers [--small]

The banana density of ``numpyro_ebm.datasets`` becomes a NumPyro model through
``EnergyDistribution``; the same model is sampled by ``numpyro_ebm.ULA``,
``numpyro_ebm.MALA`` and NumPyro's ``NUTS`` (all with step-size and mass-matrix
adaptation). For each we print the ArviZ summary, the mean acceptance probability (for ULA
the one MALA would have had), the error of the second moments against exact draws, and the
ESS per second; a figure of the three sample clouds over the energy is written to ``--out``.
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


def model(density):
    numpyro.sample("x", density.as_distribution())


def run_one(name: str, kernel, density, args) -> dict:
    mcmc = MCMC(kernel, num_warmup=args.warmup, num_samples=args.samples,
                num_chains=args.chains, chain_method="vectorized", progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.key(args.seed), density, extra_fields=("accept_prob",))
    x = np.asarray(mcmc.get_samples()["x"])
    seconds = time.perf_counter() - t0
    tree = az.from_numpyro(mcmc)
    summary = az.summary(tree)
    ess = float(np.min(summary["ess_bulk"]))
    acc = float(np.mean(mcmc.get_extra_fields()["accept_prob"]))
    print(f"\n== {name}: {args.chains} chains x {args.samples} draws, "
          f"mean acceptance {acc:.2f}, min bulk ESS {ess:.0f} in {seconds:.1f} s (incl. compile)")
    print(summary)
    return {"samples": x, "summary": summary, "acceptance": acc, "seconds": seconds}


def plot(density, results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gx, gy = np.linspace(-7, 7, 160), np.linspace(-3, 9, 160)
    X, Y = np.meshgrid(gx, gy)
    E = np.asarray(-density.log_prob(jnp.stack([X.ravel(), Y.ravel()], -1))).reshape(X.shape)
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.6),
                             constrained_layout=True, sharey=True)
    for ax, (name, res) in zip(axes, results.items()):
        ax.contourf(X, Y, E, levels=np.quantile(E, np.linspace(0, 0.5, 10)), cmap="viridis_r")
        x = res["samples"]
        ax.scatter(x[:, 0], x[:, 1], s=2, c="white", alpha=0.3, linewidths=0)
        ax.set(title=f"{name} (acc. {res['acceptance']:.2f})", xlabel="x[0]")
    axes[0].set_ylabel("x[1]")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/langevin_samplers", help="output folder")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--small", action="store_true", help="few draws (for the test suite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.chains, args.warmup, args.samples = 2, 150, 200
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    density = ebm.datasets.banana()
    kernels = {
        "ULA": ebm.ULA(model),  # adapts h so that MALA would accept 90%
        "MALA": ebm.MALA(model),  # targets the optimal 0.574
        "NUTS": NUTS(model),
    }
    results = {name: run_one(name, k, density, args) for name, k in kernels.items()}

    exact = np.asarray(density.sample(jax.random.key(args.seed + 1), 100_000))
    print(f"\nE[x^2] per coordinate (exact: {np.round((exact**2).mean(0), 2)})")
    for name, res in results.items():
        print(f"  {name:5s} {np.round((res['samples'] ** 2).mean(0), 2)}")
    fig_path = out / "langevin_samplers.png"
    plot(density, results, fig_path)
    print(f"\nwrote {fig_path}")
    return {"results": results, "figure": fig_path}


if __name__ == "__main__":
    main()
