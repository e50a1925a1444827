"""Simulation-based inference with a learned likelihood ratio, NUTS and ArviZ.

    python examples/simulation_based_inference.py --out outputs/sbi [--small]

The simulator is a conjugate Gaussian, theta ~ N(0, I_2), x | theta ~ N(theta, s^2 I_2), so the
exact posterior is known. We pretend its likelihood is intractable:

1. simulate pairs (theta, x) and fit a log likelihood ratio with ``sbi.fit_ratio``
   (z-scoring built in, the contrastive NRE-B objective, early stopping on held-out
   simulations); it learns -E(params, x, theta) = log p(x | theta) - log p(x) (+ c(x));
2. check its calibration on fresh simulations with ``sbi.expected_coverage`` (no exact
   posterior needed);
3. use it as the likelihood of the observed data: ``sbi.sample_posterior`` runs SIR-started
   NUTS chains on the model ``theta ~ prior; ratio_factor(...)`` (``check_model`` confirms
   that model is not doubly intractable, and rejects the naive model that observes an
   unnormalized energy with latent parameters);
4. diagnose with ArviZ (R-hat, ESS) and compare with the exact posterior; a figure and the
   ArviZ summary are written to ``--out``.
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

import numpyro_ebm as ebm
from numpyro_ebm import sbi

NOISE = 0.5  # simulator noise s
DIM = 2


def simulate(key, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` pairs from the prior and the simulator: returns ``(x, theta)``."""
    k1, k2 = jax.random.split(key)
    theta = jax.random.normal(k1, (n, DIM))
    return theta + NOISE * jax.random.normal(k2, (n, DIM)), theta


PRIOR = dist.Normal(jnp.zeros(DIM), 1.0).to_event(1)


def naive_model(energy_fn, params, x_obs):
    """The invalid alternative: an unnormalized energy with latent parameters, observed."""
    theta = numpyro.sample("theta", dist.Normal(jnp.zeros(DIM), 1.0).to_event(1))
    energy = ebm.EnergyDistribution(energy_fn, params | {"mean": theta}, event_shape=(DIM,))
    with numpyro.plate("obs", x_obs.shape[0]):
        numpyro.sample("x", energy, obs=x_obs)


def exact_posterior(x_obs: np.ndarray) -> tuple[np.ndarray, float]:
    """Conjugate posterior mean (per dimension) and sd: precision = 1 + N / s^2."""
    precision = 1.0 + x_obs.shape[0] / NOISE**2
    return x_obs.sum(0) / NOISE**2 / precision, precision**-0.5


def plot(draws: np.ndarray, mean: np.ndarray, sd: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
    ax.scatter(draws[:, 0], draws[:, 1], s=3, alpha=0.3, label="NUTS, learned likelihood")
    t = np.linspace(0, 2 * np.pi, 200)
    for k in (1, 2):
        ax.plot(mean[0] + k * sd * np.cos(t), mean[1] + k * sd * np.sin(t), "k-", lw=1,
                label="exact posterior, 1 and 2 sd" if k == 1 else None)
    ax.set(xlabel="theta[0]", ylabel="theta[1]", title="Posterior of theta", aspect="equal")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="outputs/sbi", help="output folder")
    ap.add_argument("--simulations", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--samples", type=int, default=500, help="draws per chain")
    ap.add_argument("--small", action="store_true", help="small sizes (for the test suite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.simulations, args.epochs, args.samples = 20_000, 15, 300
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    k_sim, k_fit, k_obs, k_cal, k_mcmc = jax.random.split(jax.random.key(args.seed), 5)

    # 1. learn the log likelihood ratio from simulations (standardisation built in)
    x, theta = simulate(k_sim, args.simulations)
    ratio = sbi.fit_ratio(theta, x, key=k_fit, hidden=(64, 64), activation="swish",
                          num_epochs=args.epochs, learning_rate=1e-3, patience=5)
    acc = float(np.mean(ratio.fit_result.history["accuracy"][-20:]))
    print(f"fit_ratio: {ratio.fit_result.step} steps on {args.simulations} simulations "
          f"({ratio.fit_result.stopped_reason.split(':')[0]}), 10-way accuracy {acc:.3f}")

    # 2. calibration on fresh simulations: expected coverage of the credible regions
    x_cal, theta_cal = simulate(k_cal, 300)
    cal = sbi.expected_coverage(ratio, PRIOR, theta_cal, x_cal, key=k_cal)
    print("expected coverage at levels", cal.levels[[4, 8]], ":", cal.coverage[[4, 8]],
          "| overconfident:", cal.overconfident)

    # 3. observed data, the guard, and the posterior: SIR-started NUTS chains
    true_theta = jnp.array([0.7, -0.4])
    x_obs = true_theta + NOISE * jax.random.normal(k_obs, (5, DIM))
    ebm.check_model(sbi.posterior_model, PRIOR, ratio.energy_fn, ratio.params, x_obs)
    quad_fn, quad_params = ebm.quadratic_energy(jnp.zeros(DIM), jnp.eye(DIM) / NOISE**2)
    try:
        ebm.check_model(naive_model, quad_fn, quad_params, x_obs)
    except ebm.DoublyIntractableError as err:
        print("check_model rejects the naive model:", str(err).split(":")[0])
    mcmc = sbi.sample_posterior(ratio, PRIOR, x_obs, key=k_mcmc, num_chains=4,
                                num_samples=4 * args.samples, num_warmup=args.samples)

    # 4. ArviZ diagnostics and the exact comparison
    idata = az.from_numpyro(mcmc)
    summary = az.summary(idata)
    print(summary)
    draws = np.asarray(mcmc.get_samples()["theta"])
    mean, sd = exact_posterior(np.asarray(x_obs))
    print("posterior mean  NUTS:", np.round(draws.mean(0), 3), " exact:", np.round(mean, 3))
    print("posterior sd    NUTS:", np.round(draws.std(0), 3), " exact:", round(sd, 3))

    fig_path = out / "sbi_posterior.png"
    plot(draws, mean, sd, fig_path)
    summary.to_csv(out / "summary.csv")
    print(f"wrote {fig_path} and {out / 'summary.csv'} in {time.perf_counter() - t0:.1f}s")
    return {"summary": summary, "draws": draws, "exact_mean": mean, "exact_sd": sd,
            "figure": fig_path, "calibration": cal}


if __name__ == "__main__":
    main()
