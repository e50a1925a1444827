"""Multimodal targets: MALA and NUTS alone against non-reversible parallel tempering (NRPT).

    python examples/multimodal_tempering.py --out outputs/multimodal [--small]

The target is a mixture of four well-separated Gaussians (sd 0.5, 16 sd apart) with exact
weights 0.1, 0.2, 0.3, 0.4, written as an ``EnergyDistribution``. MALA and NUTS chains stay
in the mode they start in, so their pooled mode weights are wrong however long they run.
``numpyro_ebm.NRPT`` (MALA as the explorer of 8 replicas, a Gaussian reference, schedule
adapted in warmup) moves between modes and estimates the weights within Monte Carlo error.
For each sampler we print the weights with their MCSE (ArviZ); for NRPT also the adapted
schedule, the barrier Lambda and the round-trip rate against the bound 1 / (2 + 2 Lambda).
The figure shows the index process (which inverse temperature each replica copy holds at
each scan) and the weights against the truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import arviz as az
import jax
import numpy as np
import numpyro
from numpyro.infer import MCMC, NUTS

import numpyro_ebm as ebm
from numpyro_ebm.infer.tempering import round_trip_bound

TARGET = ebm.datasets.gaussian_mixture(
    means=[[-4.0, -4.0], [-4.0, 4.0], [4.0, -4.0], [4.0, 4.0]], scales=0.5,
    weights=[0.1, 0.2, 0.3, 0.4])


def model():
    numpyro.sample("x", TARGET.as_distribution())


def mode_indicators(x: np.ndarray) -> np.ndarray:
    """``(chain, draw, k)`` indicators of the nearest mixture mean."""
    means = np.asarray(TARGET.params["means"])
    d2 = np.sum((np.asarray(x)[..., None, :] - means) ** 2, -1)
    return (np.argmin(d2, -1)[..., None] == np.arange(len(means))).astype(float)


def weights_with_mcse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ind = mode_indicators(x)
    mcse = np.asarray(az.mcse(ind, method="mean"))
    return ind.mean((0, 1)), np.nan_to_num(mcse, nan=0.0)


def run(kernel, args, chains: int, extra_fields=()) -> MCMC:
    mcmc = MCMC(kernel, num_warmup=args.warmup, num_samples=args.samples, num_chains=chains,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(args.seed), extra_fields=extra_fields)
    return mcmc


def plot(results: dict, machine: np.ndarray, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    n_scans, n = machine.shape
    rung = np.argsort(machine, axis=1)  # rung[t, m]: the replica index of machine m
    for m in range(3):
        ax0.step(np.arange(n_scans), rung[:, m], where="post", lw=1.2, label=f"copy {m}")
    ax0.set(xlabel="scan", ylabel="rung (0 = reference, top = target)",
            title=f"NRPT index process (3 of {n} replica copies)")
    ax0.legend(loc="upper right", fontsize=8)
    names = ["truth"] + list(results)
    width = 0.8 / len(names)
    k = np.arange(len(TARGET.params["weights"]))
    for j, name in enumerate(names):
        if name == "truth":
            w, err = np.asarray(TARGET.params["weights"]), None
        else:
            w, err = results[name]["weights"], 4 * results[name]["mcse"]
        ax1.bar(k + (j - (len(names) - 1) / 2) * width, w, width, yerr=err, label=name,
                capsize=2)
    ax1.set(xticks=k, xticklabels=[f"mode {i}" for i in k], ylabel="weight", ylim=(0, 0.8),
            title="mode weights (error bars: 4 MCSE, clipped)")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("outputs/multimodal"))
    p.add_argument("--small", action="store_true", help="short runs (for the test suite)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.warmup, args.samples = (200, 400) if args.small else (500, 3000)
    args.out.mkdir(parents=True, exist_ok=True)

    results = {}
    for name, kernel, chains in (("MALA", ebm.MALA(model), 4), ("NUTS", NUTS(model), 4)):
        x = run(kernel, args, chains).get_samples(group_by_chain=True)["x"]
        w, se = weights_with_mcse(x)
        results[name] = {"weights": w, "mcse": se}
    nrpt = run(ebm.NRPT(model, num_replicas=8, reference_scale=4.0), args, 2,
               extra_fields=ebm.NRPT_FIELDS)
    w, se = weights_with_mcse(nrpt.get_samples(group_by_chain=True)["x"])
    results["NRPT"] = {"weights": w, "mcse": se}
    ef = nrpt.get_extra_fields(group_by_chain=True)
    lam = float(np.mean(ef["barrier"][:, -1]))
    rate = float(np.mean(ef["round_trips"][:, -1])) / args.samples
    truth = np.asarray(TARGET.params["weights"])
    for name, r in results.items():
        err = np.abs(r["weights"] - truth)
        z = np.where(r["mcse"] > 0, err / np.where(r["mcse"] > 0, r["mcse"], 1.0), np.inf)
        print(f"== {name}: weights {np.round(r['weights'], 3)} +- {np.round(r['mcse'], 3)} "
              f"(truth {truth}); max |error| / MCSE = {np.max(z):.1f}")
    print(f"NRPT schedule {np.round(ef['betas'][0, -1], 3)}; barrier Lambda = {lam:.2f}; "
          f"round trips per scan {rate:.3f} (bound 1/(2+2 Lambda) = "
          f"{float(round_trip_bound(lam)):.3f})")
    plot(results, np.asarray(ef["machine"][0, : min(args.samples, 150)]),
         args.out / "multimodal_tempering.png")
    return {"results": results, "barrier": lam, "round_trip_rate": rate}


if __name__ == "__main__":
    main()
