"""Score matching on two moons: exact, sliced, sliced-VR and denoising, side by side.

    python examples/score_matching_two_moons.py --out outputs/score_matching [--small]

An MLP energy is fitted by ``numpyro_ebm.fit`` with each score matching objective on draws
from ``numpyro_ebm.datasets.two_moons``. No objective ever computes log Z; we compute it
afterwards on a grid (``numpyro_ebm.partition.grid_log_normalizer``) only to report each
model's held-out log-likelihood against the true density's. Denoising score matching with
noise sigma fits the data smoothed by N(0, sigma^2), whose likelihood is shown too. A figure
of the learned densities ``exp(-E) / Z`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import numpyro_ebm as ebm
from numpyro_ebm.partition import grid_log_normalizer

LO, HI = (-2.5, -2.0), (3.5, 2.5)
SIGMA = 0.1


def objectives() -> dict[str, ebm.Objective]:
    return {
        "exact SM": ebm.exact_score_matching(),
        "sliced SM": ebm.sliced_score_matching(num_projections=1),
        "sliced SM-VR": ebm.sliced_score_matching(variance_reduction=True),
        f"denoising SM (sigma={SIGMA})": ebm.denoising_score_matching(SIGMA),
    }


def held_out_log_likelihood(energy, params, x) -> float:
    """Mean of ``-E(x) - log Z`` with ``log Z`` from a 200 x 200 grid."""
    log_z = grid_log_normalizer(energy, params, LO, HI, 200)
    return float(-jnp.mean(jax.vmap(lambda xi: energy(params, xi))(x)) - log_z)


def plot(energy, fitted: dict, truth, lls: dict[str, float], path: Path) -> None:
    """Learned densities ``exp(-E)`` (each scaled to its maximum) beside the true one."""
    import matplotlib.pyplot as plt

    g0, g1 = np.meshgrid(np.linspace(LO[0], HI[0], 150), np.linspace(LO[1], HI[1], 150))
    grid = jnp.asarray(np.stack([g0.ravel(), g1.ravel()], -1), jnp.float32)
    panels = {"true density": np.exp(np.asarray(truth.log_prob(grid.astype(float))))}
    for name, params in fitted.items():
        e = np.asarray(jax.vmap(lambda x, p=params: energy(p, x))(grid))
        panels[name] = np.exp(-(e - e.min()))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0))
    for ax, (name, dens) in zip(axes, panels.items()):
        ax.contourf(g0, g1, dens.reshape(g0.shape), levels=20, cmap="viridis")
        ax.set_title(f"{name}\nheld-out log-lik. {lls[name]:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/score_matching"))
    parser.add_argument("--small", action="store_true", help="few steps (a smoke run)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps or (100 if args.small else 2000)
    args.out.mkdir(parents=True, exist_ok=True)

    truth = ebm.datasets.two_moons(noise=0.1)
    smoothed = ebm.datasets.two_moons(noise=float(np.hypot(0.1, SIGMA)))
    key = jax.random.key(args.seed)
    k_train, k_test, k_init, k_fit = jax.random.split(key, 4)
    x = truth.sample(k_train, 4000).astype(jnp.float32)
    x_test = truth.sample(k_test, 2000)
    energy, params0 = ebm.mlp_energy(k_init, 2, (64, 64), dtype=jnp.float32)

    true_ll = float(truth.log_prob(x_test).mean())
    print(f"true density: held-out log-likelihood {true_ll:.3f}; "
          f"smoothed by sigma={SIGMA}: {float(smoothed.log_prob(x_test).mean()):.3f}")
    fitted, report = {}, {}
    for name, objective in objectives().items():
        t0 = time.perf_counter()
        res = ebm.fit(energy, params0, x, objective, key=k_fit, num_steps=steps,
                      batch_size=256, optimizer=optax.adam(5e-3), progress_bar=False)
        seconds = time.perf_counter() - t0
        ll = held_out_log_likelihood(energy, res.params, x_test)
        fitted[name] = res.params
        report[name] = {"held_out_log_likelihood": ll, "seconds": seconds,
                        "final_loss": float(res.history["loss"][-1]),
                        "stopped_reason": res.stopped_reason}
        print(f"== {name}: held-out log-likelihood {ll:.3f}, {steps} steps in {seconds:.1f}s")
    lls = {"true density": true_ll} | {k: r["held_out_log_likelihood"] for k, r in report.items()}
    plot(energy, fitted, truth, lls, args.out / "score_matching_two_moons.png")
    (args.out / "summary.json").write_text(json.dumps(report, indent=2))
    return {"report": report, "params": fitted}


if __name__ == "__main__":
    main()
