# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Choosing an objective
#
# The library fits an energy $E_\theta$ to data with several objectives that never compute
# $Z(\theta)$. Here they run side by side on one data set, with one network, one optimizer
# and the same number of steps, and we compare what a user pays (wall time) and gets
# (held-out log-likelihood, samples):
#
# | objective | what it needs | what it fits |
# |---|---|---|
# | exact score matching (Hyvarinen 2005) | trace of the Hessian of $E$ ($d$ backward passes) | $p$ |
# | sliced score matching (Song et al. 2019) | random projections, one extra backward pass | $p$ |
# | denoising score matching (Vincent 2011) | a noise level $\sigma$ | $p$ smoothed by $\mathcal{N}(0, \sigma^2 I)$ |
# | NCE (Gutmann & Hyvarinen 2010) | a noise density we can sample and evaluate | $p$ and $\log Z$ |
# | conditional NCE (Ceylan & Gutmann 2018) | a perturbation scale (no noise density) | $p$ |
# | flow contrastive estimation (Gao et al. 2020) | a normalizing flow, trained against $E$ as the noise | $p$, $\log Z$ and the flow |
# | energy discrepancy (Schroder et al. 2023) | a perturbation scale and $M$ negatives per point | $p$ |
# | contrastive divergence (Hinton 2002) | short Langevin chains started at the data | $p$ (biased by the short chains) |
# | persistent CD (Tieleman 2008; Du & Mordatch 2019) | Langevin chains and a replay buffer | $p$ (as far as the chains mix) |
#
# Multi-sigma denoising score matching (NCSN) is left out: it fits a noise-conditional energy
# $E(x, \sigma)$, another network than the one shared here (see `docs/score-matching.md`).
#
# The data are two moons in 2-D (`numpyro_ebm.datasets`), where the true density is known
# and $\log Z$ of a fitted energy is computed on a grid, so the held-out log-likelihoods are
# exact up to quadrature. `NUMPYRO_EBM_SMALL=1` runs a small setting (the test suite).

# %%
import os
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer import MCMC, NUTS

import numpyro_ebm as ebm

SMALL = os.environ.get("NUMPYRO_EBM_SMALL", "0") == "1"
STEPS = 200 if SMALL else 2000
LO, HI = (-2.5, -2.0), (3.5, 2.5)  # box holding the mass, for grid log Z
SIGMA = 0.1

truth = ebm.datasets.two_moons(noise=0.1)
k_train, k_test, k_init, k_fit = jax.random.split(jax.random.key(0), 4)
x_train = truth.sample(k_train, 4000).astype(jnp.float32)
x_test = truth.sample(k_test, 2000)
energy_fn, params0 = ebm.mlp_energy(k_init, 2, (64, 64), dtype=jnp.float32)
true_ll = float(truth.log_prob(x_test).mean())
print(f"true density: held-out log-likelihood {true_ll:.3f} per point")
print(f"{os.cpu_count()} CPU cores visible; the times below are wall-clock on this machine")

# %% [markdown]
# ## The objectives

# %%
noise = dist.Normal(x_train.mean(0), 1.2 * x_train.std(0)).to_event(1)
# FCE's noise: a RealNVP-style flow started at the data's mean and scale
flow_fn, flow_params0 = ebm.coupling_flow(jax.random.key(7), 2, 4, (32, 32),
                                          loc=x_train.mean(0), scale=x_train.std(0),
                                          dtype=jnp.float32)
objectives = {
    "exact SM": ebm.exact_score_matching(),
    "sliced SM": ebm.sliced_score_matching(num_projections=1),
    f"denoising SM (sigma {SIGMA})": ebm.denoising_score_matching(SIGMA),
    "NCE (Gaussian noise, ratio 4)": ebm.noise_contrastive_estimation(noise, noise_ratio=4),
    "conditional NCE (s 0.2, 4 per point)": ebm.conditional_noise_contrastive_estimation(0.2, 4),
    "FCE (coupling flow, ratio 1)": ebm.flow_contrastive_estimation(flow_fn, flow_params0, 1),
    "energy discrepancy (s 0.2, M 16)": ebm.energy_discrepancy(0.2, 16),
    "CD (MALA, 10 steps)": ebm.contrastive_divergence(num_steps=10, step_size=0.005),
    "persistent CD (MALA, 10 steps)": ebm.persistent_contrastive_divergence(
        num_steps=10, step_size=0.005, buffer_size=4096, reinit_prob=0.05),
}

# %% [markdown]
# ## Fitting each one
#
# Same network, Adam with a cosine schedule, batch 256. The first fit of each objective
# includes its JIT compilation; we time a second, identical fit.

# %%
def held_out(params):
    log_z = float(ebm.grid_log_normalizer(energy_fn, params, LO, HI, 200))
    ll = ebm.held_out_log_likelihood(energy_fn, params, x_test, log_z)
    return ll, log_z


results = {}
for name, objective in objectives.items():
    def run(objective=objective):
        return ebm.fit(energy_fn, params0, x_train, objective, key=k_fit, num_steps=STEPS,
                       batch_size=256, progress_bar=False,
                       optimizer=optax.adam(optax.cosine_decay_schedule(5e-3, STEPS, 0.1)))
    run()  # compile
    t0 = time.perf_counter()
    res = run()
    seconds = time.perf_counter() - t0
    ll, log_z = held_out(res.params)
    results[name] = {"result": res, "seconds": seconds, "ll": ll, "log_z": log_z}
    print(f"{name:>36}: {res.stopped_reason}, {seconds:5.1f} s, held-out log-lik "
          f"{ll.mean:.3f} ± {ll.stderr:.3f}")

# %% [markdown]
# ## Held-out log-likelihood and time

# %%
names = list(results)
fig, axes = plt.subplots(1, 2, figsize=(11, 1.0 + 0.4 * len(names)))
y = np.arange(len(names))
axes[0].barh(y, [results[n]["ll"].mean for n in names],
             xerr=[2 * results[n]["ll"].stderr for n in names])
axes[0].axvline(true_ll, color="k", ls="--", lw=0.8, label="true density")
axes[0].set_yticks(y, names)
axes[0].set(xlabel="held-out log-likelihood per point (± 2 se)")
axes[0].legend(fontsize=8)
axes[1].barh(y, [results[n]["seconds"] for n in names])
axes[1].set_yticks(y, [])
axes[1].set(xlabel=f"wall time of {STEPS} steps (s, after compilation)")
fig.tight_layout();

# %% [markdown]
# ## The learned densities, and samples from them with NUTS
#
# Each fitted energy as a NumPyro `EnergyDistribution`, sampled with NUTS (its parameters
# are fixed, so the unknown $Z$ does not matter for sampling).

# %%
def model(d):
    numpyro.sample("x", d)


g0, g1 = np.meshgrid(np.linspace(LO[0], HI[0], 120), np.linspace(LO[1], HI[1], 120))
grid = jnp.asarray(np.stack([g0.ravel(), g1.ravel()], -1), jnp.float32)
ncols = 5
nrows = -(-(len(names) + 1) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols, 3.0 * nrows))
axes = axes.ravel()
for ax in axes[len(names) + 1:]:
    ax.set_visible(False)
axes[0].contourf(g0, g1, np.exp(np.asarray(truth.log_prob(grid.astype(float)))).reshape(
    g0.shape), levels=20, cmap="viridis")
axes[0].set_title(f"true density\n{true_ll:.2f}", fontsize=9)
for ax, name in zip(axes[1:], names):
    params = results[name]["result"].params
    e = np.asarray(jax.vmap(lambda x, p=params: energy_fn(p, x))(grid))
    ax.contourf(g0, g1, np.exp(-(e - e.min())).reshape(g0.shape), levels=20, cmap="viridis")
    mcmc = MCMC(NUTS(model), num_warmup=200, num_samples=200 if SMALL else 500,
                num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(1), ebm.EnergyDistribution(energy_fn, params, event_shape=(2,)))
    xs = np.asarray(mcmc.get_samples()["x"])
    ax.scatter(xs[:, 0], xs[:, 1], s=1, c="w", alpha=0.5)
    ax.set(xlim=(LO[0], HI[0]), ylim=(LO[1], HI[1]))
    ax.set_title(f"{name}\n{results[name]['ll'].mean:.2f}", fontsize=9)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout();

# %% [markdown]
# ## Reading the results
#
# The table repeats the numbers of this run. Denoising score matching fits the data
# *smoothed* by $\sigma$, so its likelihood of the unsmoothed test data is capped below the
# truth by design; NCE and FCE also learn $\log Z$ (compare them with the grid value). On
# this page's run, five objectives came within a few hundredths of a nat of the truth
# (-0.995): exact SM (-1.016), sliced SM (-1.017), conditional NCE (-1.018), CD (-1.025) and
# energy discrepancy (-1.029). Each value's standard error is near 0.02, but all are scored
# on the same test points, so their differences are likely known better than that; this page
# does not compute them, so it does not rank these five. NCE followed (-1.040), then FCE
# (-1.101), denoising SM (-1.132, capped as said) and persistent CD (-1.169). The times
# follow each step's work: denoising SM was the fastest (0.6 s), NCE and conditional NCE
# next (1.6 s), FCE (1.9 s, it trains its flow too), sliced and exact SM (2.1 s, 3.1 s), the
# two CDs with 10 MALA steps per update (3.9-4.1 s) and energy discrepancy last (5.2 s: $M +
# 1 = 17$ energy evaluations per data point). NCE's and FCE's learned $\log Z$ (3.47, 2.98)
# sit within 0.04 of their grid values. In 2-D the $d$ backward passes of exact score
# matching are cheap; in high dimension sliced or denoising score matching replace it
# (notebook 1 fits 64-D digits with denoising SM).

# %%
print(f"{'objective':>36} {'seconds':>8} {'held-out log-lik':>18}  {'log Z (grid)':>12}")
for name in names:
    r = results[name]
    print(f"{name:>36} {r['seconds']:>8.1f} {r['ll'].mean:>10.3f} ± {r['ll'].stderr:.3f}"
          f"  {r['log_z']:>12.3f}")
nce = results["NCE (Gaussian noise, ratio 4)"]["result"]
print(f"NCE's learned log Z: {float(nce.extras.log_normalizer):.3f}")
fce = results["FCE (coupling flow, ratio 1)"]["result"]
print(f"FCE's learned log Z: {float(fce.extras.log_normalizer):.3f}")
print(f"true density: {true_ll:.3f}")
