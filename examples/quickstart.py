"""Quickstart: fit an energy on data, sample it with NUTS and MALA, diagnose it in ArviZ.

    make demo            # or: python examples/quickstart.py --out outputs/quickstart

The default problem is the two-moons density shipped in ``numpyro_ebm.datasets`` (exact
log-density and exact sampler, no downloads):

1. **fit** an MLP energy on 4000 draws by noise-contrastive estimation, which also learns
   ``log Z``, and check the held-out log-likelihood against the grid-normalised one and the
   true density's;
2. **sample** the fitted energy, as an ``EnergyDistribution`` in a NumPyro model, with NUTS
   and with our MALA kernel;
3. **diagnose**: ArviZ summaries (R-hat, ESS) of both runs, our detailed-balance report on the
   MALA run, and the kernel Stein discrepancy of the NUTS draws against the fitted score;
4. write a picture (data, learned energy with NUTS samples, MALA samples) to ``--out``.
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
import numpyro.distributions as dist
import optax
from numpyro.infer import MCMC, NUTS

import numpyro_ebm as ebm


def model(energy_distribution):
    numpyro.sample("x", energy_distribution)


def plot(data, energy_fn, params, nuts_x, mala_x, bounds, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from numpyro_ebm.diagnostics import plot_energy_2d

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    axes[0].scatter(data[:, 0], data[:, 1], s=2, alpha=0.4)
    axes[0].set(title="training data", xlim=bounds[0], ylim=bounds[1])
    plot_energy_2d(energy_fn, params, nuts_x, bounds=bounds, ax=axes[1])
    axes[1].set_title("learned density exp(-E) with NUTS samples")
    plot_energy_2d(energy_fn, params, mala_x, bounds=bounds, ax=axes[2])
    axes[2].set_title("learned density exp(-E) with MALA samples")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/quickstart", help="output folder")
    ap.add_argument("--dataset", default="two_moons", choices=ebm.datasets.NAMES)
    ap.add_argument("--fit-steps", type=int, default=3000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--samples", type=int, default=1000, help="NUTS draws per chain")
    ap.add_argument("--mala-samples", type=int, default=4000,
                    help="MALA draws per chain (a MALA step costs one gradient)")
    ap.add_argument("--small", action="store_true", help="tiny sizes (for the test suite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.fit_steps, args.chains, args.samples, args.mala_samples = 300, 2, 200, 400
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    k_data, k_val, k_init, k_fit, k_nuts, k_mala = jax.random.split(jax.random.key(args.seed), 6)

    # ---- data from a toy density with an exact log-density
    density = ebm.datasets.get(args.dataset)
    data = density.sample(k_data, 4000)
    heldout = density.sample(k_val, 4000)

    # ---- 1. fit: NCE against a Gaussian fitted to the data (learns log Z too)
    energy_fn, params = ebm.mlp_energy(k_init, 2, (64, 64))
    noise = dist.Normal(data.mean(0), 1.2 * data.std(0)).to_event(1)
    objective = ebm.noise_contrastive_estimation(noise, noise_ratio=4)
    optimizer = optax.adam(optax.cosine_decay_schedule(1e-2, args.fit_steps))
    result = ebm.fit(energy_fn, params, data, objective, key=k_fit, optimizer=optimizer,
                     num_steps=args.fit_steps, batch_size=256, progress_bar=not args.small)
    print(f"fit [{objective.name}]: {result.stopped_reason} after {result.step} steps, "
          f"final loss {result.history['loss'][-1]:.4f}")

    lo, hi = np.asarray(data.min(0)) - 1.0, np.asarray(data.max(0)) + 1.0
    log_z_nce = float(result.extras.log_normalizer)
    log_z_grid = float(ebm.grid_log_normalizer(energy_fn, result.params, lo, hi, 256))
    ll_nce = ebm.held_out_log_likelihood(energy_fn, result.params, heldout, log_z_nce)
    ll_grid = ebm.held_out_log_likelihood(energy_fn, result.params, heldout, log_z_grid)
    ll_true = float(jnp.mean(density.log_prob(heldout)))
    print(f"log Z: learned by NCE {log_z_nce:.3f}, grid {log_z_grid:.3f}")
    print(f"held-out log-likelihood per point: NCE log Z {ll_nce.mean:.3f} "
          f"(se {ll_nce.stderr:.3f}), grid {ll_grid.mean:.3f}, true density {ll_true:.3f}")

    # ---- 2. sample the fitted energy: a normalized EnergyDistribution in a NumPyro model
    learned = ebm.normalized_distribution(energy_fn, result, (2,))
    nuts = MCMC(NUTS(model), num_warmup=args.samples, num_samples=args.samples,
                num_chains=args.chains, chain_method="vectorized", progress_bar=False)
    nuts.run(k_nuts, learned)
    mala = MCMC(ebm.MALA(model), num_warmup=args.samples, num_samples=args.mala_samples,
                num_chains=args.chains, chain_method="vectorized", progress_bar=False)
    mala.run(k_mala, learned, extra_fields=ebm.DIAGNOSTIC_FIELDS)

    # ---- 3. diagnose
    print(f"\nNUTS on the learned energy ({args.chains} chains x {args.samples} draws)")
    nuts_summary = az.summary(az.from_numpyro(nuts))
    print(nuts_summary)
    mala_tree, report = ebm.diagnose(mala, model_args=(learned,))
    print("\nMALA on the learned energy")
    mala_summary = az.summary(mala_tree)
    print(mala_summary)
    print("\n" + str(report))
    worst_rhat = float(np.max(mala_summary["r_hat"]))
    verdict = "all pass" if report.passed else "some FAIL"
    print(f"-> MALA: max R-hat {worst_rhat:.2f}, detailed-balance tests: {verdict}. R-hat "
          "measures whether chains agree (mixing between the two moons); the detailed-balance "
          "tests measure whether the kernel targets the right density. They answer "
          "different questions: a correct kernel can mix slowly, and a wrong one can mix well.")
    nuts_x = np.asarray(nuts.get_samples()["x"])
    mala_x = np.asarray(mala.get_samples()["x"])
    ksd = ebm.kernel_stein_discrepancy(nuts.get_samples(group_by_chain=True)["x"][0],
                                       learned.score, seed=args.seed)
    print(f"\nkernel Stein discrepancy of NUTS chain 0 vs the learned score: "
          f"KSD^2 = {ksd.ksd_squared:.4f} (wild-bootstrap p = {ksd.p_value:.3f})")

    # ---- 4. picture and tables
    fig_path = out / "quickstart.png"
    plot(np.asarray(data), energy_fn, result.params, nuts_x, mala_x,
         ((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))), fig_path)
    nuts_summary.to_csv(out / "summary_nuts.csv")
    mala_summary.to_csv(out / "summary_mala.csv")
    (out / "detailed_balance.txt").write_text(str(report) + "\n")
    print(f"\nwrote {fig_path}, summaries and detailed_balance.txt to {out} "
          f"in {time.perf_counter() - t0:.1f}s")
    return {"result": result, "nuts_summary": nuts_summary, "mala_summary": mala_summary,
            "report": report, "ksd": ksd, "ll": (ll_nce.mean, ll_grid.mean, ll_true),
            "samples": nuts_x, "figure": fig_path}


if __name__ == "__main__":
    main()
