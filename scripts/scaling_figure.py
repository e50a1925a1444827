"""Figure of the Scaling out guide: MALA chains split over 4 forced host devices.

Left: eight chains' traces coloured by the device that ran them. Right: the largest
difference per draw between the 4-device run and the 1-device run (float rounding only).
Usage: ``python scripts/scaling_figure.py`` (writes docs/img/scaling/chains_over_devices.png).
"""

import os
from pathlib import Path

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
from numpyro.infer import MCMC  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "scaling" / "chains_over_devices.png"
energy_fn, params = ebm.quadratic_energy(mean=[0.0, 1.0], precision=[[2.0, 0.5], [0.5, 1.0]])


def model():
    numpyro.sample("x", ebm.EnergyDistribution(energy_fn, params, event_shape=(2,)))


def run(mesh):
    mcmc = MCMC(ebm.MALA(model), num_warmup=200, num_samples=300, num_chains=8,
                chain_method=ebm.ShardedChains(mesh), progress_bar=False)
    mcmc.run(jax.random.key(0))
    return mcmc.get_samples(group_by_chain=True)["x"]


def main() -> None:
    x4 = run(ebm.make_mesh("chain", 4))
    x1 = np.asarray(run(ebm.make_mesh("chain", 1)))
    device_of_chain = np.zeros(8, int)
    for shard in x4.addressable_shards:
        device_of_chain[shard.index[0]] = shard.device.id
    x4 = np.asarray(x4)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4), width_ratios=(2, 1))
    colours = plt.cm.tab10(np.arange(4))
    for c in range(8):
        a.plot(x4[c, :, 0], lw=0.7, color=colours[device_of_chain[c]],
               label=f"device {device_of_chain[c]}" if c % 2 == 0 else None)
    a.set(xlabel="draw", ylabel="x[0]", title="8 MALA chains on a 4-device mesh")
    a.legend(ncol=4, fontsize=8, loc="upper right")
    diff = np.max(np.abs(x4 - x1), axis=(0, 2))
    # the same chains: every accept/reject decision of the two runs agrees
    moved = lambda x: np.any(np.diff(x, axis=1) != 0, axis=2)  # noqa: E731
    same = bool(np.array_equal(moved(x4), moved(x1)))
    b.semilogy(np.maximum(diff, 1e-18), lw=0.8, color="k")
    b.set(xlabel="draw", ylabel="max |4 devices - 1 device|",
          ylim=(1e-18, max(1e-6, 10 * float(diff.max()))),
          title="same decisions, float64 rounding" if same else "decisions differ")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}; largest difference {diff.max():.2e}; same accept/reject decisions: "
          f"{same}")


if __name__ == "__main__":
    main()
