# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Is my sampler right?
#
# R-hat and the effective sample size answer one question: *do the chains agree with each
# other, and how much information do they hold?* They cannot tell whether the chains agree
# on the **right** distribution. A kernel that targets a slightly wrong density mixes just as
# well and passes them. This notebook shows such a kernel, then the checks that catch it:
#
# 1. the detailed-balance report on a run (`numpyro_ebm.diagnose`), which recomputes every
#    step's acceptance ratio from the model's own potential;
# 2. the kernel Stein discrepancy (KSD) of the draws, which needs only the score
#    $-\nabla E$;
# 3. `numpyro_ebm.testing`, for an author of a new kernel: start from exact draws and check
#    that the kernel leaves the target unchanged.
#
# `NUMPYRO_EBM_SMALL=1` runs a small setting (the test suite).

# %%
import os

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
from numpyro.infer import MCMC

import numpyro_ebm as ebm
from numpyro_ebm import testing
from numpyro_ebm.diagnostics import plot_detailed_balance, plot_energy_2d

SMALL = os.environ.get("NUMPYRO_EBM_SMALL", "0") == "1"
CHAINS, WARMUP, SAMPLES = (2, 300, 1000) if SMALL else (4, 1000, 4000)
N_EXACT = 1000 if SMALL else 4000

# %% [markdown]
# ## A target with an exact sampler
#
# Eight Gaussians on a circle (`numpyro_ebm.datasets`): the density is known exactly,
# including its normaliser, and so are independent draws, which give the true answer for any
# expectation.

# %%
density = ebm.datasets.eight_gaussians(radius=1.5, scale=0.5)


def model():
    numpyro.sample("x", density.as_distribution())


def potential(x):
    return density.energy_fn(density.params, x)


exact = np.asarray(density.sample(jax.random.key(0), N_EXACT))


def run(kernel, seed):
    mcmc = MCMC(kernel, num_warmup=WARMUP, num_samples=SAMPLES, num_chains=CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), extra_fields=ebm.DIAGNOSTIC_FIELDS)
    return mcmc


# %% [markdown]
# ## Two kernels that both look fine
#
# MALA is exact (a Metropolis correction makes $\pi$ invariant). ULA is the same Langevin
# move without the correction: with a step size $h = 0.3$ (the same for both; MALA's
# acceptance rate is not printed here), ULA samples a distribution that is too wide. Both
# mix well.

# %%
mala = run(ebm.MALA(model), 1)
ula = run(ebm.ULA(model, step_size=0.3, adapt_step_size=False), 2)
trees, reports = {}, {}
for name, mcmc in (("MALA", mala), ("ULA", ula)):
    trees[name], reports[name] = ebm.diagnose(mcmc)
    summ = az.summary(trees[name])
    print(f"{name}: max R-hat {summ['r_hat'].max():.3f}, "
          f"min bulk ESS {summ['ess_bulk'].min():.0f}")

# %% [markdown]
# R-hat is about 1.00 for both and the ESS is large: by these numbers ULA is fine. Its
# trace and rank plots are as clean as MALA's:

# %%
az.plot_trace_dist(trees["ULA"], var_names=["x"]);

# %% [markdown]
# But compare a simple expectation with the truth. The radial second moment
# $\mathbb{E}|x|^2$ from the chains, with its Monte Carlo standard error (ArviZ), against
# the exact draws:

# %%
def radial(x):
    return np.sum(np.asarray(x) ** 2, axis=-1)


truth = radial(exact)
print(f"exact draws: E|x|^2 = {truth.mean():.3f} ± {truth.std() / np.sqrt(truth.size):.3f}")
for name, mcmc in (("MALA", mala), ("ULA", ula)):
    r = radial(mcmc.get_samples(group_by_chain=True)["x"])  # (chain, draw)
    mcse = float(az.mcse(az.from_dict({"posterior": {"r": r}}))["r"])
    print(f"{name:>4}: E|x|^2 = {r.mean():.3f} ± {mcse:.3f} "
          f"({(r.mean() - truth.mean()) / np.hypot(mcse, truth.std() / np.sqrt(truth.size)):+.1f}"
          " se from the truth)")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, (name, x) in zip(axes, (("exact draws", exact),
                                ("MALA", mala.get_samples()["x"]),
                                ("ULA, h = 0.3", ula.get_samples()["x"]))):
    plot_energy_2d(density.energy_fn, density.params, np.asarray(x)[:2000],
                   bounds=((-3.5, 3.5), (-3.5, 3.5)), ax=ax)
    ax.set_title(name)
fig.tight_layout();

# %% [markdown]
# ## The detailed-balance report catches it
#
# `numpyro_ebm.diagnose` converts the run to an ArviZ `DataTree` and tests the kernel's
# logged moves against the model's potential: `ratio_consistency` recomputes each step's log
# acceptance ratio in float64, `innovations` tests the proposals' recovered noise against
# $\mathcal{N}(0, 1)$, `fluctuation_identity` checks
# $\mathbb{E}[\min(1, e^{R})] = 2 P(R > 0)$ (exact for a kernel in detailed balance with
# $\pi$), `reversibility` tests lagged antisymmetry statistics, and `stein_discrepancy` is
# the kernel Stein discrepancy of the draws.

# %%
for name in ("MALA", "ULA"):
    print(f"== {name}")
    print(reports[name])
    print()

# %% [markdown]
# The per-chain z-scores of the fluctuation identity and the lagged antisymmetry
# statistics of the reversibility check: for ULA, the fluctuation identity sits far outside
# the band.

# %%
plot_detailed_balance(reports["ULA"]);

# %% [markdown]
# ## The kernel Stein discrepancy needs only the score
#
# KSD compares draws from any source with a score $-\nabla E$; it needs neither the
# normaliser nor the kernel. Thinned draws from each run (KSD's wild bootstrap assumes
# near-independent draws):

# %%
def score(x):
    return -jax.grad(potential)(x)


for name, mcmc in (("exact", None), ("MALA", mala), ("ULA", ula)):
    x = exact if mcmc is None else np.asarray(mcmc.get_samples()["x"])[::4][:N_EXACT]
    ksd = ebm.kernel_stein_discrepancy(x, score, seed=0)
    print(f"{name:>5}: KSD^2 = {ksd.ksd_squared:.4f}, p = {ksd.p_value:.3f}")

# %% [markdown]
# ## For kernel authors: `numpyro_ebm.testing`
#
# Writing a new kernel? Test it against a target with exact draws before trusting it. A
# kernel here is any function `kernel(key, x) -> x'` on one flat position. Below, a
# random-walk Metropolis whose proposal scale depends on the position (larger steps far from
# the origin). Such a proposal is not symmetric, so the acceptance ratio needs the
# Hastings correction $q(x \mid x') / q(x' \mid x)$; the buggy version forgets it.

# %%
def proposal_scale(x):
    return 0.1 + jnp.tanh(jnp.sum(x**2) / 4.0)


def log_q(to, frm):
    s = proposal_scale(frm)
    return -0.5 * jnp.sum((to - frm) ** 2) / s**2 - to.shape[0] * jnp.log(s)


def make_kernel(hastings):
    def kernel(key, x):
        k_prop, k_acc = jax.random.split(key)
        y = x + proposal_scale(x) * jax.random.normal(k_prop, x.shape)
        log_r = potential(x) - potential(y)
        if hastings:
            log_r = log_r + log_q(x, y) - log_q(y, x)
        return jnp.where(jnp.log(jax.random.uniform(k_acc)) < log_r, y, x)
    return kernel


correct, buggy = make_kernel(True), make_kernel(False)

# %% [markdown]
# **One-step invariance** (Geweke 2004): from exact draws, a few kernel steps must leave the
# distribution unchanged (two-sample Kolmogorov-Smirnov per coordinate and on the energy,
# Holm-corrected). The control, the same kernel aimed at a wrong target, must be rejected:
# that shows the test has power at this sample size.

# %%
draws = exact[: N_EXACT // 2]
reference = exact[N_EXACT // 2:]
wider = ebm.datasets.eight_gaussians(radius=1.5, scale=0.7)


def wrong_target_kernel(key, x):  # correct code, wrong density: the power control
    k_prop, k_acc = jax.random.split(key)
    y = x + proposal_scale(x) * jax.random.normal(k_prop, x.shape)
    e = lambda z: wider.energy_fn(wider.params, z)  # noqa: E731
    log_r = e(x) - e(y) + log_q(x, y) - log_q(y, x)
    return jnp.where(jnp.log(jax.random.uniform(k_acc)) < log_r, y, x)


steps = 30
for name, kernel in (("correct", correct), ("buggy", buggy)):
    res = testing.one_step_invariance(kernel, draws, reference, jax.random.key(3),
                                      energy_fn=potential, num_steps=steps,
                                      control_kernel=wrong_target_kernel)
    print(f"{name:>7}: min Holm p = {res.p_values.min():.2g}; kernel keeps the target: "
          f"{res.kernel_passed}; control rejected: {res.control_passed is False}")

# %% [markdown]
# **Besag-Clifford ranks** (Besag & Clifford 1989): from an exact draw, run the chain
# backward and forward, and rank a statistic of the start (here the radius $|x|^2$) among
# those of the other states; for a kernel that keeps $\pi$ invariant the rank is uniform.
# The figure shows a histogram of the ranks against the count expected under uniformity
# (dashed line); its title gives the p-value of a chi-square test of uniformity, and
# `passed` requires that p-value to exceed alpha = 0.01 *and* the ranks' empirical CDF to
# stay inside ArviZ's simultaneous ECDF bands (checked, not drawn). Tests differ in power
# against a given bug: run more than one.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, (name, kernel) in zip(axes, (("correct", correct), ("buggy", buggy))):
    res = testing.besag_clifford_ranks(kernel, draws, jax.random.key(4),
                                       lambda x: jnp.sum(x**2))
    ax.hist(res.ranks, bins=np.arange(res.num_ranks + 1) - 0.5, rwidth=0.9)
    ax.axhline(len(res.ranks) / res.num_ranks, color="k", ls="--", lw=0.8)
    ax.set(title=f"{name}: p = {res.p_value:.2g}, passed = {res.passed}", xlabel="rank")
axes[0].set_ylabel("count")
fig.tight_layout();

# %% [markdown]
# ## What to take away
#
# - R-hat and ESS measure agreement between chains and their precision, not correctness.
# - A run from our kernels carries what is needed to test detailed balance against the
#   model's potential: call `numpyro_ebm.diagnose(mcmc)` and read the report.
# - KSD judges draws from any sampler given only the score.
# - A new kernel should pass `numpyro_ebm.testing` on a target with exact draws, with a
#   wrong-target control that fails, before it is trusted on a real model.
