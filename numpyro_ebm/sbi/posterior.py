"""Posterior sampling with a learned likelihood ratio, robust to several modes.

``p(theta | x_obs) ∝ p(theta) prod_i r(x_i, theta)``. A single NUTS chain finds one mode;
slcp's posterior has four. :func:`sample_posterior` therefore starts *many* chains at
points drawn by sampling-importance-resampling (SIR) from the prior: ``M`` prior draws,
weighted by the learned ratio (the posterior over the prior, up to a constant), resampled
``num_chains`` times with replacement. Chains start in each mode in proportion to its
mass, so even chains that never leave their mode give draws in the right proportions
(up to the SIR and multinomial error, which shrinks with ``num_chains``). The chains then
run NUTS (or any NumPyro kernel) side by side (vectorized), and the run comes back as a
``numpyro.infer.MCMC``, so it converts to an ArviZ ``DataTree`` with ``arviz.from_numpyro``
like any other.

The whole run (SIR, kernel initialisation, warmup and sampling) is one jitted function of
``(prior, params, x_obs, key)`` with the energy and the sampler settings static: a second
observation, a refitted ratio of the same architecture or a prior with other parameters
reuses the compiled code (NumPyro's ``MCMC.run`` re-initialises the kernel and recompiles
its loop on every call, which cost ~10 s per observation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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
    ``log_weight`` is the log likelihood (ratio). Non-finite weights count as zero.
    Pure and traceable (``num_points`` and ``num_proposals`` fix shapes)."""
    k1, k2 = jax.random.split(typed_key(key))
    proposals = prior.sample(k1, (num_proposals,))
    logw = log_weight(proposals)
    logw = jnp.where(jnp.isfinite(logw), logw, -jnp.inf)
    return proposals[jax.random.categorical(k2, logw, shape=(num_points,))]


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


def _kernel(energy_fn: EnergyFn, kernel: Callable[..., Any] | None,
            max_tree_depth: int) -> Any:
    model = _Model(energy_fn)
    return NUTS(model, max_tree_depth=max_tree_depth) if kernel is None else kernel(model)


@partial(jax.jit, static_argnums=tuple(range(7)))
def _run(energy_fn: EnergyFn, kernel: Callable[..., Any] | None, max_tree_depth: int,
         num_warmup: int, per_chain: int, num_chains: int, num_proposals: int,
         prior: dist.Distribution, params: Params, x_obs: Array, key: Array) -> tuple:
    """SIR starts, then ``num_warmup + per_chain`` steps of ``num_chains`` vectorized chains
    (the kernel's own warmup adaptation runs in the first ``num_warmup`` steps, as in
    ``MCMC.run``). Returns the last state and the collected default fields, the sample
    field constrained, each with leading axes ``(num_chains, per_chain)``."""
    k_init, k_mcmc = jax.random.split(key)
    start = sir_initial_points(k_init, prior, partial(_log_ratio_sum, energy_fn, params, x_obs),
                               num_chains, num_proposals)
    sampler = _kernel(energy_fn, kernel, max_tree_depth)
    args = (prior, params, x_obs)
    init = {"theta": dist.biject_to(prior.support).inv(start)}
    state = sampler.init(jax.random.split(k_mcmc, num_chains), num_warmup, init,
                         model_args=args, model_kwargs={})
    constrain = jax.vmap(sampler.postprocess_fn(args, {}))
    fields = tuple(sampler.default_fields)

    def warm(s, _):
        return sampler.sample(s, args, {}), None

    def draw(s, _):
        s = sampler.sample(s, args, {})
        return s, tuple(attrgetter(f)(s) for f in fields)

    state, _ = jax.lax.scan(warm, state, None, length=num_warmup)
    state, collected = jax.lax.scan(draw, state, None, length=per_chain)
    collected = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), collected)  # chain first
    out = dict(zip(fields, collected))
    out[sampler.sample_field] = jax.vmap(constrain)(out[sampler.sample_field])
    return state, out


def _run_with_progress(energy_fn: EnergyFn, kernel: Callable[..., Any] | None,
                       max_tree_depth: int, num_warmup: int, per_chain: int,
                       num_chains: int, num_proposals: int, prior: dist.Distribution,
                       params: Params, x_obs: Array, key: Array) -> MCMC:
    """:func:`_run`'s chains through ``MCMC.run`` (NumPyro's progress bar, no caching)."""
    k_init, k_mcmc = jax.random.split(key)
    start = sir_initial_points(k_init, prior, partial(_log_ratio_sum, energy_fn, params, x_obs),
                               num_chains, num_proposals)
    mcmc = MCMC(_kernel(energy_fn, kernel, max_tree_depth), num_warmup=num_warmup,
                num_samples=per_chain, num_chains=num_chains, chain_method="vectorized",
                progress_bar=True)
    mcmc.run(k_mcmc, prior, params, x_obs,
             init_params={"theta": dist.biject_to(prior.support).inv(start)})
    return mcmc


def _strong(tree: Any) -> Any:
    """Leaves as host arrays of their canonical dtype (never weakly typed), so that
    ``jnp.full(2, 0.5)`` and ``jnp.zeros(2)`` hit the same compiled :func:`_run` (a
    conversion on the host compiles nothing)."""
    def leaf(a):
        a = np.asarray(a)
        return a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)

    return jax.tree.map(leaf, tree)


def _as_mcmc(energy_fn: EnergyFn, kernel: Callable[..., Any] | None, max_tree_depth: int,
             num_warmup: int, per_chain: int, num_chains: int, last_state: Any,
             states: dict, args: tuple) -> MCMC:
    """A finished ``numpyro.infer.MCMC`` holding a run made by :func:`_run`.

    NumPyro has no public constructor for a finished run, so the attributes that
    ``MCMC.run`` sets (``_states``, ``_last_state``, ``_args``, ``_kwargs``) are set here
    the same way; ``get_samples``, ``get_extra_fields``, ``print_summary``, ``last_state``
    and ``arviz.from_numpyro`` then read them as after a run (checked by the tests).
    """
    mcmc = MCMC(_kernel(energy_fn, kernel, max_tree_depth), num_warmup=num_warmup,
                num_samples=per_chain, num_chains=num_chains, chain_method="vectorized",
                progress_bar=False)
    mcmc._states, mcmc._states_flat = states, None
    mcmc._last_state, mcmc._args, mcmc._kwargs = last_state, args, {}
    return mcmc


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
    num_samples
        Draws in total: ``ceil(num_samples / num_chains)`` per chain.
    num_chains
        Number of chains, run side by side (vectorized).
    num_warmup
        Adaptation steps per chain before the kept draws.
    num_proposals
        Prior draws for the SIR starting points (see the module docstring).
    kernel
        ``kernel(model) -> MCMCKernel``; default ``NUTS(model, max_tree_depth=...)``
        (MALA from :mod:`numpyro_ebm.infer` also works). The compiled run is cached on
        this callable's identity: pass the same function (not a new lambda) for every
        observation to compile once.
    max_tree_depth
        NUTS's tree depth cap (default 6, at most 63 gradient steps per draw): the many
        short chains need no long trajectories, and vectorized chains wait for the longest.
    progress_bar
        ``True`` runs the chains through ``MCMC.run`` with NumPyro's progress bar instead
        (same starts and kernel, but compiled afresh on every call); ``False`` (default)
        runs the cached compiled function.

    Returns
    -------
    numpyro.infer.MCMC
        The finished run: ``mcmc.get_samples()["theta"]`` has at least ``num_samples``
        rows; ``arviz.from_numpyro(mcmc)`` gives the DataTree.

    Raises
    ------
    ValueError, TypeError
        For a bad prior (not a distribution over ``theta``), observation (shape, NaN/inf)
        or count.

    Notes
    -----
    The run is compiled once per energy (a :class:`~numpyro_ebm.sbi.StandardizedEnergy`
    compares by value), ``kernel``, ``max_tree_depth``, chain/draw/proposal counts and
    shapes of ``prior``'s parameters, ``params`` and ``x_obs``; later calls with new values
    compile nothing.
    """
    num_samples = positive_int(num_samples, "num_samples")
    num_chains = positive_int(num_chains, "num_chains")
    num_warmup = positive_int(num_warmup, "num_warmup")
    num_proposals = positive_int(num_proposals, "num_proposals")
    max_tree_depth = positive_int(max_tree_depth, "max_tree_depth")
    prior = _check_prior(prior, ratio)
    x_obs = check_observation(ratio, x_obs)
    per_chain = -(-num_samples // num_chains)
    static = (ratio.energy_fn, kernel, max_tree_depth, num_warmup, per_chain, num_chains)
    if progress_bar:
        return _run_with_progress(*static, num_proposals, prior, ratio.params, x_obs,
                                  typed_key(key))
    last_state, states = _run(*static, num_proposals, _strong(prior), _strong(ratio.params),
                              _strong(x_obs), typed_key(key))
    return _as_mcmc(*static, last_state, states, (prior, ratio.params, x_obs))
