"""Energy discrepancy against denoising score matching on two moons, at equal steps.

    python examples/energy_discrepancy_two_moons.py --out docs/img [--small]

The same MLP energy (2 -> 64 -> 64 -> 1) is fitted to 4000 points of two moons (noise 0.1)
by energy discrepancy (Schroder et al. 2023; ``noise_scale=0.3``, ``M = 16`` negatives per
point, ``w = 1``: no MCMC, no score) and by denoising score matching (``sigma = 0.1``), with
the same optimiser (Adam 3e-3), batch (128), seed and number of steps. Each fitted energy is
normalised on a 256 x 256 grid (``grid_log_normalizer``) and scored by its held-out
log-likelihood on 4000 fresh points; the true density's score is printed beside them.

The figure shows the true density and the two learned densities ``exp(-E - log Z)`` on the
same colour scale, with each one's held-out log-likelihood in its title. ``--small`` (used
by the test suite) trains a smaller network for fewer steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import numpyro_ebm as ebm
from numpyro_ebm.energy import batched_energy
from numpyro_ebm.partition import grid_log_normalizer

LO, HI = (-2.0, -1.5), (3.0, 2.0)  # the plotted box; log Z on the wider [-6, 6]^2


def fit_and_score(objective, x, x_test, args) -> dict:
    """Fit the MLP energy with ``objective``; held-out LL and the density on the plot grid."""
    energy_fn, params = ebm.mlp_energy(jax.random.key(1), 2, args.hidden)
    res = ebm.fit(energy_fn, params, x, objective, key=jax.random.key(2),
                  num_steps=args.steps, batch_size=128, optimizer=optax.adam(3e-3),
                  progress_bar=False)
    log_z = grid_log_normalizer(energy_fn, res.params, [-6.0, -6.0], [6.0, 6.0],
                                num_points=256)
    ll = float(jnp.mean(-batched_energy(energy_fn, res.params, x_test, 1)) - log_z)
    grid = _grid(args.grid)
    log_p = -batched_energy(energy_fn, res.params, grid.reshape(-1, 2), 1) - log_z
    return {"held_out_ll": ll, "density": np.exp(np.asarray(log_p)).reshape(grid.shape[:2]),
            "stopped": res.stopped_reason}


def _grid(n: int) -> jnp.ndarray:
    gx, gy = jnp.meshgrid(jnp.linspace(LO[0], HI[0], n), jnp.linspace(LO[1], HI[1], n))
    return jnp.stack([gx, gy], -1)


def plot(panels: dict[str, tuple[np.ndarray, float]], steps: int, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    top = max(float(d.max()) for d, _ in panels.values())
    for ax, (name, (density, ll)) in zip(axes, panels.items(), strict=True):
        ax.imshow(density, origin="lower", extent=(LO[0], HI[0], LO[1], HI[1]),
                  vmin=0.0, vmax=top, cmap="viridis", aspect="auto")
        ax.set_title(f"{name}\nheld-out LL {ll:.3f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"two moons: learned densities after {steps} steps (same network, "
                 "optimiser, seed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/energy_discrepancy"))
    p.add_argument("--small", action="store_true", help="small network, few steps (tests)")
    args = p.parse_args(argv)
    args.steps, args.hidden, args.grid = (150, (16, 16), 64) if args.small else (
        3000, (64, 64), 160)
    args.out.mkdir(parents=True, exist_ok=True)

    truth = ebm.datasets.two_moons(noise=0.1)
    x = truth.sample(jax.random.key(0), 4000)
    x_test = truth.sample(jax.random.key(3), 4000)
    true_ll = float(jnp.mean(truth.log_prob(x_test)))
    true_density = np.exp(np.asarray(truth.log_prob(_grid(args.grid).reshape(-1, 2))))
    panels = {"truth": (true_density.reshape(args.grid, args.grid), true_ll)}
    results = {}
    for name, objective in (
            ("energy discrepancy (s 0.3, M 16)", ebm.energy_discrepancy(0.3, 16)),
            ("denoising score matching (sigma 0.1)", ebm.denoising_score_matching(0.1))):
        results[name] = fit_and_score(objective, x, x_test, args)
        panels[name] = (results[name]["density"], results[name]["held_out_ll"])
        print(f"== {name}: held-out log-likelihood {results[name]['held_out_ll']:.3f} "
              f"({results[name]['stopped']}); truth {true_ll:.3f}")
    plot(panels, args.steps, args.out / "energy_discrepancy_two_moons.png")
    return {"results": results, "true_ll": true_ll}


if __name__ == "__main__":
    main()
