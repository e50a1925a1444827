"""Worker of bench_scaling.py: times chains and a fit on N forced host devices (subprocess).

Usage: ``python benchmarks/_scaling_worker.py N [--quick]``; prints ``RESULT {json}``.
"""

import json
import os
import sys
import time

N = int(sys.argv[1])
QUICK = "--quick" in sys.argv
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={N}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
from numpyro.infer import MCMC  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

REPEATS = 2 if QUICK else 4


def best_of(fn, repeats=REPEATS):
    fn()  # compile / warm caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def per_step(run, short, long):
    """Per-step seconds as the difference of two run lengths (removes fixed per-run cost)."""
    t_short, t_long = best_of(lambda: run(short)), best_of(lambda: run(long))
    return (t_long - t_short) / (long - short), t_long


# ---------------------------------------------------------------- chains (MALA, MLP energy)
energy_fn, params = ebm.mlp_energy(jax.random.key(0), 10, (256, 256))


def model():
    numpyro.sample("x", ebm.EnergyDistribution(energy_fn, params, event_shape=(10,)))


def mcmc_run(chain_method, num_samples, num_chains=64):
    m = MCMC(ebm.MALA(model, step_size=0.01, adapt_step_size=False, adapt_mass_matrix=False),
             num_warmup=0, num_samples=num_samples, num_chains=num_chains,
             chain_method=chain_method, progress_bar=False)
    m.run(jax.random.key(1))
    jax.block_until_ready(m.get_samples())


short, long = (100, 1100) if QUICK else (200, 3200)  # long enough to dwarf compile jitter
out = {"devices": N}
mesh = ebm.make_mesh("chain", N)
out["chains_plain"], _ = per_step(lambda s: mcmc_run("vectorized", s), short, long)
out["chains_sharded"], _ = per_step(lambda s: mcmc_run(ebm.ShardedChains(mesh), s), short, long)

# ---------------------------------------------------------------- a compute-bound fit (DSM)
D = 32
fn, p0 = ebm.mlp_energy(jax.random.key(2), D, (256, 256))
data = np.random.default_rng(0).normal(size=(4096, D))
objective = ebm.denoising_score_matching(0.5)


def fit_run(fit_mesh, num_steps):
    r = ebm.fit(fn, p0, data, objective, key=jax.random.key(3), num_steps=num_steps,
                batch_size=512, steps_per_chunk=50, progress_bar=False, mesh=fit_mesh)
    jax.block_until_ready(r.params)


fshort, flong = (50, 150) if QUICK else (100, 300)
dmesh = ebm.make_mesh("data", N)
out["fit_plain"], _ = per_step(lambda s: fit_run(None, s), fshort, flong)
out["fit_sharded"], _ = per_step(lambda s: fit_run(dmesh, s), fshort, flong)
print("RESULT " + json.dumps(out), flush=True)
