"""Persistent contrastive divergence on two moons, with the replay buffer plotted over time.

    python examples/pcd_two_moons.py --out outputs/pcd_two_moons [--small]

An MLP energy is fitted by ``numpyro_ebm.fit`` with ``persistent_contrastive_divergence``:
each step restarts 128 MALA chains from a replay buffer (5% from a uniform box), runs 10
Langevin steps and writes them back. Training runs in segments that resume from a
checkpoint (the buffer is part of it), so we can look at the buffer after each segment.
The training-health metrics (energy of data and samples, acceptance rate, distance of the
samples to the data) are printed per segment; the CD loss itself is not a convergence
signal. At the end log Z is computed on a grid, only to report the held-out log-likelihood
against the true density's.
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
HEALTH = ("energy_data", "energy_samples", "acceptance_rate", "sample_data_distance",
          "reinit_fraction")


def held_out_log_likelihood(energy, params, x) -> float:
    """Mean of ``-E(x) - log Z`` with ``log Z`` from a 200 x 200 grid."""
    log_z = grid_log_normalizer(energy, params, LO, HI, 200)
    return float(-jnp.mean(jax.vmap(lambda xi: energy(params, xi))(x)) - log_z)


def plot(energy, params, x, snapshots: list[tuple[int, np.ndarray]], path: Path) -> None:
    import matplotlib.pyplot as plt

    g0, g1 = np.meshgrid(np.linspace(LO[0], HI[0], 150), np.linspace(LO[1], HI[1], 150))
    grid = jnp.asarray(np.stack([g0.ravel(), g1.ravel()], -1), jnp.float32)
    e = np.asarray(jax.vmap(lambda z: energy(params, z))(grid))
    dens = np.exp(-(e - e.min())).reshape(g0.shape)
    n = len(snapshots) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.8), sharex=True, sharey=True)
    for ax, (step, samples) in zip(axes, snapshots):
        ax.scatter(x[:1000, 0], x[:1000, 1], s=1, c="0.8")
        ax.scatter(samples[:, 0], samples[:, 1], s=1, c="C3")
        ax.set_title(f"buffer after {step} steps", fontsize=9)
    axes[-1].contourf(g0, g1, dens, levels=20, cmap="viridis")
    axes[-1].set_title("learned exp(-E)", fontsize=9)
    for ax in axes:
        ax.set_xlim(LO[0], HI[0])
        ax.set_ylim(LO[1], HI[1])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/pcd_two_moons"))
    parser.add_argument("--small", action="store_true", help="few steps (a smoke run)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps or (120 if args.small else 3000)
    args.out.mkdir(parents=True, exist_ok=True)

    truth = ebm.datasets.two_moons(noise=0.1)
    k_train, k_test, k_init, k_fit = jax.random.split(jax.random.key(args.seed), 4)
    x = truth.sample(k_train, 4000).astype(jnp.float32)
    x_test = truth.sample(k_test, 2000)
    energy, params0 = ebm.mlp_energy(k_init, 2, (32, 32) if args.small else (64, 64),
                                     dtype=jnp.float32)
    objective = ebm.persistent_contrastive_divergence(
        num_steps=10, step_size=0.005, temperature=1.0, sampler="mala",
        buffer_size=4096, reinit_prob=0.05)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps, 0.1))
    ckpt = args.out / "pcd_checkpoint.npz"

    print(f"true density: held-out log-likelihood {float(truth.log_prob(x_test).mean()):.3f}")
    milestones = [max(1, steps * i // 4) for i in range(1, 5)]
    snapshots, t0 = [], time.perf_counter()
    for i, total in enumerate(milestones):
        res = ebm.fit(energy, params0, x, objective, key=k_fit, num_steps=total,
                      batch_size=128, optimizer=optimizer, progress_bar=False,
                      checkpoint_path=ckpt, resume_from=ckpt if i else None)
        buf = res.objective_state.buffer
        snapshots.append((res.step, np.asarray(buf.samples[: int(buf.count)])))
        recent = {k: float(np.mean(res.history[k][-50:])) for k in HEALTH}
        print(f"== step {res.step}: " + ", ".join(f"{k} {v:.3g}" for k, v in recent.items()))
    seconds = time.perf_counter() - t0
    ll = held_out_log_likelihood(energy, res.params, x_test)
    print(f"PCD: held-out log-likelihood {ll:.3f} after {res.step} steps ({seconds:.1f}s)")
    plot(energy, res.params, np.asarray(x), snapshots, args.out / "pcd_two_moons.png")
    report = {"held_out_log_likelihood": ll,
              "true_log_likelihood": float(truth.log_prob(x_test).mean()),
              "steps": res.step, "seconds": seconds, "stopped_reason": res.stopped_reason,
              "health": {k: float(np.mean(res.history[k][-50:])) for k in HEALTH}}
    (args.out / "summary.json").write_text(json.dumps(report, indent=2))
    return {"report": report, "params": res.params, "snapshots": snapshots}


if __name__ == "__main__":
    main()
