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
else:
    errors = {}


# ---------------------------------------------------------------- data-parallel fit
def fit_run(objective, mesh, num_steps, **kw):
    fn, p0 = ebm.mlp_energy(jax.random.key(3), 2, (8,))
    data = np.random.default_rng(1).normal(size=(256, 2)) * [1.0, 0.5]
    res = ebm.fit(fn, p0, data, objective, key=jax.random.key(4), num_steps=num_steps,
                  batch_size=32, steps_per_chunk=10, progress_bar=False, mesh=mesh, **kw)
    return res


def flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree.leaves(ebm.gather(tree))]).tolist()


data_full = ebm.make_mesh("data")
objectives = {"dsm": ebm.denoising_score_matching(0.3),
              "pcd": ebm.persistent_contrastive_divergence(num_steps=3, step_size=0.05,
                                                           buffer_size=64)}
for name, obj in objectives.items():
    r = fit_run(obj, data_full, 30)
    out[f"fit_{name}_full"] = flat(r.params)
    out[f"fit_{name}_devices"] = len(jax.tree.leaves(r.params)[0].sharding.device_set)
    if not multi:
        out[f"fit_{name}_none"] = flat(fit_run(obj, None, 30).params)
        if name == "pcd":
            buf = jax.tree.leaves(r.objective_state)
            out["pcd_buffer_sharded"] = any(
                not a.sharding.is_fully_replicated for a in buf if a.ndim >= 2)

if not multi:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "run.npz"
        obj = objectives["pcd"]
        fit_run(obj, data_full, 20, checkpoint_path=ck)   # 4 devices, stop at 20
        r2 = fit_run(obj, ebm.make_mesh("data", 2), 30, resume_from=ck)  # resume on 2
        r1 = fit_run(obj, None, 30, resume_from=ck)  # and on one device, no mesh
        out["resume_mesh2"] = flat(r2.params)
        out["resume_none"] = flat(r1.params)
        try:  # a mesh this run's batches cannot be split over
            fit_run(obj, ebm.make_mesh("data", 3), 30, resume_from=ck)
            errors["resume_incompatible"] = None
        except Exception as err:  # noqa: BLE001 - the test asserts type and message
            errors["resume_incompatible"] = f"{type(err).__name__}: {err}"
    for label, fn in (
        ("fit_indivisible", lambda: ebm.fit(
            *ebm.mlp_energy(jax.random.key(3), 2, (8,)), np.zeros((64, 2)),
            objectives["dsm"], key=jax.random.key(0), num_steps=1, batch_size=30,
            progress_bar=False, mesh=data_full)),
        ("fit_no_axis", lambda: ebm.fit(
            *ebm.mlp_energy(jax.random.key(3), 2, (8,)), np.zeros((64, 2)),
            objectives["dsm"], key=jax.random.key(0), num_steps=1, batch_size=32,
            progress_bar=False, mesh=full)),
    ):
        try:
            fn()
            errors[label] = None
        except Exception as err:  # noqa: BLE001 - the test asserts type and message
            errors[label] = f"{type(err).__name__}: {err}"

print("RESULT " + json.dumps(out), flush=True)
