"""Worker for tests/test_sharding.py: runs in a subprocess with forced host devices.

Usage: ``python tests/_sharding_worker.py NUM_DEVICES [PROCESS_ID NUM_PROCESSES PORT]``.
Prints one JSON line ``RESULT {...}`` with arrays as lists. The device count must be set
before JAX is imported, hence a subprocess.
"""

import json
import os
import sys

n_dev = int(sys.argv[1])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_dev}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
multi = len(sys.argv) > 2
if multi:
    pid, nproc, port = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid,
                               initialization_timeout=120)

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

import numpyro_ebm as ebm  # noqa: E402

energy_fn, params = ebm.quadratic_energy(mean=[0.0, 1.0], precision=[[2.0, 0.5], [0.5, 1.0]])


def model():
    numpyro.sample("x", ebm.EnergyDistribution(energy_fn, params, event_shape=(2,)))


def run_chains(kernel, mesh, num_chains=8):
    mcmc = MCMC(kernel, num_warmup=30, num_samples=40, num_chains=num_chains,
                chain_method=ebm.ShardedChains(mesh), progress_bar=False)
    mcmc.run(jax.random.key(0))
    return mcmc


out = {"device_count": jax.device_count(), "process_count": jax.process_count()}
full = ebm.make_mesh("chain")
one = ebm.make_mesh("chain", devices=jax.local_devices()[:1])
for name, kern in (("mala", lambda: ebm.MALA(model)), ("nuts", lambda: NUTS(model))):
    m_full = run_chains(kern(), full)
    x_full = m_full.get_samples(group_by_chain=True)["x"]
    out[f"{name}_devices"] = len(x_full.sharding.device_set)
    out[f"{name}_full"] = ebm.gather(x_full).tolist()
    if not multi:
        out[f"{name}_one"] = np.asarray(
            run_chains(kern(), one).get_samples(group_by_chain=True)["x"]).tolist()
        tree = az.from_numpyro(m_full)
        out[f"{name}_arviz_chains"] = int(tree.posterior.sizes["chain"])

if not multi:
    # particles of annealed Langevin: sharding the input shards the whole run
    x0 = np.random.default_rng(0).normal(size=(8, 2))
    score = lambda x, s: -jax.grad(energy_fn, argnums=1)(params, x)  # noqa: E731
    kw = dict(sigmas=np.array([1.0, 0.5]), eps=0.1, n_steps_each=5)
    y_sh = ebm.annealed_langevin(jax.random.key(1), score, ebm.shard_leading(x0, full), **kw)
    y_1 = ebm.annealed_langevin(jax.random.key(1), score, x0, **kw)
    out["annealed_devices"] = len(y_sh.sharding.device_set)
    out["annealed_maxdiff"] = float(np.max(np.abs(np.asarray(y_sh) - np.asarray(y_1))))
    errors = {}
    for label, fn in (
        ("indivisible", lambda: run_chains(ebm.MALA(model), full, num_chains=6)),
        ("no_axis", lambda: ebm.ShardedChains(ebm.make_mesh("data"))),
        ("too_many", lambda: ebm.make_mesh("chain", num_devices=n_dev + 1)),
    ):
        try:
            fn()
            errors[label] = None
        except Exception as err:  # noqa: BLE001 - the test asserts type and message
            errors[label] = f"{type(err).__name__}: {err}"
    out["errors"] = errors

print("RESULT " + json.dumps(out), flush=True)
