"""Posterior sampling with a learned likelihood ratio, robust to several modes.

``p(theta | x_obs) ∝ p(theta) prod_i r(x_i, theta)``. A single NUTS chain finds one mode;
slcp's posterior has four. :func:`sample_posterior` therefore starts *many* chains at
points drawn by sampling-importance-resampling (SIR) from the prior: ``M`` prior draws,
weighted by the learned ratio (the posterior over the prior, up to a constant), resampled
``num_chains`` times with replacement. Chains start in each mode in proportion to its
mass, so even chains that never leave their mode give draws in the right proportions
(up to the SIR and multinomial error, which shrinks with ``num_chains``). The chains then
run NUTS (or any NumPyro kernel) through ``numpyro.infer.MCMC`` with
``chain_method="vectorized"``, so the run converts to an ArviZ ``DataTree`` with
``arviz.from_numpyro`` like any other.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

from ..checks import positive_int
from ..likelihood import ratio_factor
from ..typing import Array, ArrayLike, EnergyFn, Params, PRNGKey
from .ratio import LearnedRatio, check_observation, typed_key

__all__ = ["posterior_model", "sir_initial_points", "sample_posterior"]


def posterior_model(prior: dist.Distribution, energy_fn: EnergyFn, params: Params,
                    x_obs: Array) -> None:
    """NumPyro model ``theta ~ prior``; a learned ratio ``-energy_fn(params, x, theta)`` is
    the likelihood of ``x_obs`` (``(n_iid, x_dim)``, rows iid given ``theta``) via
    :func:`~numpyro_ebm.likelihood.ratio_factor`."""
    theta = numpyro.sample("theta", prior)
    ratio_factor("log_ratio", energy_fn, params, x_obs, theta)


def _check_prior(prior: Any, ratio: LearnedRatio) -> dist.Distribution:
    if not isinstance(prior, dist.Distribution):
        raise TypeError(f"prior must be a numpyro Distribution over theta, got "
                        f"{type(prior).__name__}")
    shape = tuple(prior.batch_shape) + tuple(prior.event_shape)
    if shape != (ratio.theta_dim,):
        raise ValueError(f"prior must be a distribution over theta of shape "
                         f"({ratio.theta_dim},) (the ratio was fit on theta with "
                         f"{ratio.theta_dim} columns), got batch_shape "
                         f"{tuple(prior.batch_shape)} and event_shape {tuple(prior.event_shape)}")
    return prior.to_event(len(prior.batch_shape)) if prior.batch_shape else prior


def sir_initial_points(key: PRNGKey, prior: dist.Distribution, log_weight: Callable,
                       num_points: int, num_proposals: int) -> Array:
    """``num_points`` draws resampled (with replacement) from ``num_proposals`` prior draws
    with weights ``exp(log_weight(theta_batch))``: approximate posterior draws when
    ``log_weight`` is the log likelihood (ratio). Non-finite weights count as zero."""
    k1, k2 = jax.random.split(typed_key(key))
    proposals = prior.sample(k1, (num_proposals,))
    logw = log_weight(proposals)
    logw = jnp.where(jnp.isfinite(logw), logw, -jnp.inf)
    return proposals[jax.random.categorical(k2, logw, shape=(num_points,))]


@partial(jax.jit, static_argnums=0)
def _log_ratio_sum(energy_fn: EnergyFn, params: Params, x_obs: Array, theta: Array) -> Array:
    """``sum_i -E(params, x_i, theta_j)`` for a batch of ``theta`` (chunks of 4096)."""
    def one(t):
        return -jnp.sum(jax.vmap(lambda xi: energy_fn(params, xi, t))(x_obs))

    return jax.lax.map(one, theta, batch_size=4096)


@dataclass(frozen=True)
class _Model:
    """``posterior_model`` with the (static, hashable) energy bound."""

    energy_fn: EnergyFn

    def __call__(self, prior: dist.Distribution, params: Params, x_obs: Array) -> None:
        posterior_model(prior, self.energy_fn, params, x_obs)


@lru_cache(maxsize=8)
def _driver(energy_fn: EnergyFn, kernel: Callable[..., Any] | None, max_tree_depth: int,
            num_warmup: int,
            per_chain: int, num_chains: int, progress_bar: bool) -> MCMC:
    """One MCMC driver per setting, with ``jit_model_args=True``: later runs with new
    params, priors or observations of the same shapes reuse the compiled sampler (the
    compilation otherwise dominates the cost of each observation). Callers get a shallow
    copy after each run, so one run's draws are never overwritten by the next."""
    model = _Model(energy_fn)
    sampler = NUTS(model, max_tree_depth=max_tree_depth) if kernel is None else kernel(model)
    return MCMC(sampler, num_warmup=num_warmup, num_samples=per_chain,
                num_chains=num_chains, chain_method="vectorized", progress_bar=progress_bar,
                jit_model_args=True)


def sample_posterior(
    ratio: LearnedRatio,
    prior: dist.Distribution,
    x_obs: ArrayLike,
    *,
    key: PRNGKey,
    num_samples: int = 10_000,
    num_chains: int = 100,
    num_warmup: int = 300,
    num_proposals: int = 100_000,
    kernel: Callable[..., Any] | None = None,
    max_tree_depth: int = 6,
    progress_bar: bool = False,
) -> MCMC:
    """Sample ``p(theta | x_obs) ∝ p(theta) prod_i exp(-E(params, x_i, theta))``.

    Parameters
    ----------
    ratio
        A :class:`~numpyro_ebm.sbi.LearnedRatio` from :func:`~numpyro_ebm.sbi.fit_ratio`.
    prior
        The prior the simulations were drawn from (a NumPyro distribution over ``theta``).
    x_obs
        One observation ``(x_dim,)`` or iid observations ``(n_iid, x_dim)``; an entry
        outside the simulations' range warns (:func:`~numpyro_ebm.sbi.check_observation`).
    key
        ``jax.random.key`` or legacy ``PRNGKey``.
    num_samples, num_chains, num_warmup
        Draws in total (``ceil(num_samples / num_chains)`` per chain after ``num_warmup``
        adaptation steps), and the number of vectorized chains.
    num_proposals
        Prior draws for the SIR starting points (see the module docstring).
    kernel
        ``kernel(model) -> MCMCKernel``; default ``NUTS(model, max_tree_depth=...)``
        (MALA from :mod:`numpyro_ebm.infer` also works).
    max_tree_depth
        NUTS's tree depth cap (default 6, at most 63 gradient steps per draw): the many
        short chains need no long trajectories, and vectorized chains wait for the longest.

    Returns
    -------
    numpyro.infer.MCMC
        The finished run: ``mcmc.get_samples()["theta"]`` has at least ``num_samples``
        rows; ``arviz.from_numpyro(mcmc)`` gives the DataTree.
    """
    num_samples = positive_int(num_samples, "num_samples")
    num_chains = positive_int(num_chains, "num_chains")
    num_warmup = positive_int(num_warmup, "num_warmup")
    num_proposals = positive_int(num_proposals, "num_proposals")
    max_tree_depth = positive_int(max_tree_depth, "max_tree_depth")
    prior = _check_prior(prior, ratio)
    x_obs = check_observation(ratio, x_obs)
    k_init, k_mcmc = jax.random.split(typed_key(key))
    energy, params = ratio.energy_fn, ratio.params

    log_weight = partial(_log_ratio_sum, energy, params, x_obs)
    start = sir_initial_points(k_init, prior, log_weight, num_chains, num_proposals)
    mcmc = _driver(energy, kernel, max_tree_depth, num_warmup, -(-num_samples // num_chains),
                   num_chains, progress_bar)
    init = {"theta": dist.biject_to(prior.support).inv(start)}
    mcmc.run(k_mcmc, prior, params, x_obs, init_params=init)
    return copy.copy(mcmc)
