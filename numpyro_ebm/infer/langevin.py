"""Functional Langevin core: ``init``, ``propose``, ``accept``, ``mala_step``, ``ula_step``.

With time step ``h``, inverse mass matrix ``M^-1`` and temperature ``T`` the proposal is
(docs/conventions.md)

    x' = x - h M^-1 grad E(x) + sqrt(2 h T) M^-1/2 xi,    xi ~ N(0, I),

i.e. ``q(x' | x) = N(x - h M^-1 grad E(x), 2 h T M^-1)``; the target is ``exp(-E(x) / T)``.
MALA accepts with ``log r = -(E(x') - E(x)) / T + log q(x | x') - log q(x' | x)``;
ULA always moves but records the ratio MALA would have used.

The pieces, as BlackJAX factors a kernel (a proposal, then an accept step):

- :func:`propose` makes a :class:`LangevinProposal` (the new state, the innovation, both
  proposal log densities and the log acceptance ratio);
- :func:`metropolis_hastings` is the accept decision, written once; :func:`accept` turns a
  proposal into the next state and a :class:`LangevinInfo`, Metropolis-adjusted or not;
- :func:`mala_step` and :func:`ula_step` are ``propose`` followed by ``accept``.

Positions may be arrays or pytrees (flattened internally). ``inverse_mass_matrix`` is
``None`` (identity), a vector (diagonal, one entry per flattened coordinate), a square
matrix (dense) or a :class:`~numpyro_ebm.infer.metric.Metric`. One energy-and-gradient
evaluation per step: the state caches both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ..checks import is_concrete
from ..typing import Array, PRNGKey, PyTree
from .metric import Metric, make_metric

__all__ = [
    "DEFAULT_MAX_DELTA_ENERGY",
    "LangevinState",
    "LangevinProposal",
    "LangevinInfo",
    "Metric",
    "init",
    "propose",
    "propose_with_noise",
    "draw_step_noise",
    "metropolis_hastings",
    "accept",
    "mala_step",
    "ula_step",
    "proposal_log_density",
]

DEFAULT_MAX_DELTA_ENERGY = 1000.0
"""A step whose log acceptance ratio is below ``-1000`` is ``diverging`` (NumPyro's HMC
flags a transition whose energy error exceeds ``max_delta_energy = 1000``)."""


class LangevinState(NamedTuple):
    """Chain state: position, its energy ``E(x)`` and gradient ``grad E(x)`` (cached)."""

    position: PyTree
    energy: Array
    energy_grad: PyTree


class LangevinProposal(NamedTuple):
    """One Langevin proposal from a state ``x`` (what :func:`propose` returns).

    Attributes
    ----------
    state
        The proposed :class:`LangevinState` ``x'`` (position, energy, gradient).
    noise
        The standard-normal innovation ``xi``, flattened, shape ``(n,)``.
    forward_log_prob
        ``log q(x' | x)``.
    backward_log_prob
        ``log q(x | x')`` (``-inf`` for a non-finite proposal).
    log_accept_ratio
        ``-(E(x') - E(x)) / T + log q(x | x') - log q(x' | x)``; ``-inf`` when the proposal
        or the ratio is non-finite or NaN.
    is_finite
        The proposal's position, energy and gradient are all finite.
    """

    state: LangevinState
    noise: Array
    forward_log_prob: Array
    backward_log_prob: Array
    log_accept_ratio: Array
    is_finite: Array


class LangevinInfo(NamedTuple):
    """What one step did. ``acceptance_rate`` is ``min(1, exp(log_accept_ratio))``.

    ``diverging`` flags a non-finite proposal or a log acceptance ratio below
    ``-max_delta_energy`` (NumPyro's meaning: an energy error beyond ``max_delta_energy``).
    """

    acceptance_rate: Array
    is_accepted: Array
    log_accept_ratio: Array
    forward_log_prob: Array  # log q(x' | x)
    backward_log_prob: Array  # log q(x | x')
    proposal: LangevinState
    noise: Array  # the standard-normal innovation xi (flattened)
    diverging: Array


def init(position: PyTree, energy_fn: Callable[[PyTree], Array]) -> LangevinState:
    """Evaluate ``energy_fn`` and its gradient at ``position``."""
    energy, grad = jax.value_and_grad(energy_fn)(position)
    return LangevinState(position, energy, grad)


def proposal_log_density(
    x_to: Array, x_from: Array, grad_from: Array, step_size: Any,
    inverse_mass_matrix: Any = None, temperature: Any = 1.0,
) -> Array:
    """``log q(x_to | x_from)`` for flat arrays: ``N(x_from - h M^-1 g, 2 h T M^-1)``.

    ``inverse_mass_matrix`` is ``None``, a vector, a matrix or a :class:`Metric`.
    """
    metric = make_metric(inverse_mass_matrix, x_to.shape[-1], x_to.dtype)
    return _log_q(x_to, x_from, grad_from, step_size, metric, temperature)


def _log_q(x_to, x_from, grad_from, h, metric: Metric, T):
    n = x_to.shape[-1]
    scale = jnp.sqrt(2.0 * h * T)
    z = metric.whiten(x_to - x_from + h * metric.mul(grad_from)) / scale
    return (-0.5 * jnp.sum(z**2) - n * jnp.log(scale) - metric.half_logdet(x_to.dtype)
            - 0.5 * n * math.log(2 * math.pi))


def propose(
    key: PRNGKey,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
) -> LangevinProposal:
    """Draw ``x' = x - h M^-1 grad E(x) + sqrt(2 h T) B xi`` and score it for MH.

    Arguments as in :func:`mala_step`. A non-finite proposal (NaN/inf position, energy or
    gradient) gets ``log_accept_ratio = -inf`` and ``is_finite = False``; so does a NaN
    ratio (for example from a non-finite current energy): it can never be accepted.
    """
    xi, _ = draw_step_noise(key, state.position)
    return propose_with_noise(xi, state, energy_fn, step_size, inverse_mass_matrix,
                              temperature)


def draw_step_noise(key: PRNGKey, position: PyTree) -> tuple[Array, Array]:
    """One step's random numbers from one key, in one draw: ``(xi, log_uniform)``.

    Draws ``n + 2`` standard normals (``n`` flattened coordinates of ``position``): the
    first ``n`` are the innovation ``xi`` of the proposal, the last two, ``a`` and ``b``,
    give the accept step's ``log u = -(a^2 + b^2) / 2``. ``a^2 + b^2`` is chi-square with
    two degrees of freedom, i.e. exponential with mean 2, so ``u = exp(-(a^2 + b^2) / 2)``
    is uniform on ``(0, 1]`` and independent of ``xi``. One random-number call per step
    (rather than a key split, then a normal and a uniform draw: each call is a loop of
    its own in a compiled step); :func:`propose`, :func:`mala_step` and :func:`ula_step`
    draw this way, so one key gives them the same proposal.
    """
    x, _ = ravel_pytree(position)
    n = x.shape[0]
    # the barrier keeps XLA from fusing the generator into each of the draw's consumers
    # (the proposal, |xi|^2, log u): it recomputed the random numbers in each of them, and
    # MALA on a 2->128->128->1 energy took 1.27x a bare ULA step instead of 0.97x
    draws = jax.lax.optimization_barrier(jax.random.normal(key, (n + 2,), x.dtype))
    return draws[:n], -0.5 * (draws[n] ** 2 + draws[n + 1] ** 2)


def propose_with_noise(
    xi: Array,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
) -> LangevinProposal:
    """:func:`propose` with the standard-normal innovation ``xi`` given (flat, shape ``(n,)``).

    For common random numbers: the same ``xi`` at several step sizes (the search of
    :func:`~numpyro_ebm.infer.adaptation.find_reasonable_step_size`).

    Raises
    ------
    ValueError
        If ``xi`` is not of shape ``(n,)``, ``n`` the number of flattened coordinates.
    """
    x, unravel = ravel_pytree(state.position)
    g, _ = ravel_pytree(state.energy_grad)
    n, dtype = x.shape[0], x.dtype
    if jnp.shape(xi) != (n,):
        raise ValueError(f"xi must have shape ({n},) (one standard normal per flattened "
                         f"coordinate of the position), got shape {jnp.shape(xi)}")
    h = jnp.asarray(step_size, dtype)
    T = jnp.asarray(temperature, dtype)
    metric = make_metric(inverse_mass_matrix, n, dtype)
    xi = jnp.asarray(xi, dtype)
    scale = jnp.sqrt(2.0 * h * T)
    x_new = x - h * metric.mul(g) + scale * metric.sqrt_mul(xi)
    e_new, g_new_tree = jax.value_and_grad(energy_fn)(unravel(x_new))
    g_new, _ = ravel_pytree(g_new_tree)
    e_new = jnp.asarray(e_new, dtype)
    # one reduction for both vectors (each reduction is a kernel launch in a compiled step)
    finite = jnp.isfinite(e_new) & jnp.all(jnp.isfinite(g_new) & jnp.isfinite(x_new))
    # log q(x'|x): the forward residual is exactly scale * B xi.
    const = -n * jnp.log(scale) - metric.half_logdet(dtype) - 0.5 * n * math.log(2 * math.pi)
    fwd = -0.5 * jnp.sum(xi**2) + const
    # Guard the backward term against NaN from a non-finite proposal.
    g_safe = jnp.where(finite, g_new, 0.0)
    x_safe = jnp.where(finite, x_new, x)
    bwd = _log_q(x, x_safe, g_safe, h, metric, T)
    e_safe = jnp.where(finite, e_new, jnp.asarray(state.energy, dtype))
    log_ratio = -(e_safe - state.energy) / T + bwd - fwd
    log_ratio = jnp.where(finite & ~jnp.isnan(log_ratio), log_ratio, -jnp.inf)
    bwd = jnp.where(finite, bwd, -jnp.inf)
    new_state = LangevinState(unravel(x_new), e_new, unravel(g_new))
    return LangevinProposal(new_state, xi, fwd, bwd, log_ratio, finite)


def metropolis_hastings(
    key: PRNGKey | None, log_accept_ratio: Array, *, log_uniform: Array | None = None,
) -> tuple[Array, Array]:
    """The Metropolis-Hastings decision: ``(is_accepted, acceptance_rate)``.

    Accepts with probability ``min(1, exp(log_accept_ratio))``: ``log u < log_accept_ratio``
    with ``u`` uniform on ``(0, 1)``, drawn from ``key``, or given as ``log_uniform`` (as
    :func:`draw_step_noise` makes it; then ``key`` is ``None``). A NaN or ``-inf`` ratio
    rejects. This is the one accept rule of the library (MALA, the ULA kernel's metropolised
    warmup, replica swaps).

    Raises
    ------
    ValueError
        If both or neither of ``key`` and ``log_uniform`` are given.
    """
    if (key is None) == (log_uniform is None):
        raise ValueError("metropolis_hastings: give exactly one of key and log_uniform; got "
                         f"key={'None' if key is None else 'a key'}, log_uniform="
                         f"{'None' if log_uniform is None else 'an array'}")
    log_ratio = jnp.where(jnp.isnan(log_accept_ratio), -jnp.inf, log_accept_ratio)
    rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
    if log_uniform is None:
        log_uniform = jnp.log(jax.random.uniform(key, jnp.shape(log_ratio), rate.dtype))
    return log_uniform < log_ratio, rate


def accept(
    key: PRNGKey | None,
    state: LangevinState,
    proposal: LangevinProposal,
    adjusted: Any = True,
    max_delta_energy: Any = DEFAULT_MAX_DELTA_ENERGY,
    *,
    log_uniform: Array | None = None,
) -> tuple[LangevinState, LangevinInfo]:
    """Next state from ``state`` and its ``proposal``, with or without the MH correction.

    Parameters
    ----------
    key
        PRNG key of the accept draw; ``None`` when ``log_uniform`` is given or when
        ``adjusted`` is ``False`` (then unused).
    state
        The current state (position, potential energy and its gradient).
    proposal
        A :class:`LangevinProposal` made from ``state``.
    adjusted
        ``True`` (MALA): accept with :func:`metropolis_hastings`; ``False`` (ULA): move
        whenever the proposal is finite. A traced boolean chooses per call (the ULA kernel's
        metropolised warmup).
    max_delta_energy
        ``info.diverging`` flags a non-finite proposal or ``log_accept_ratio <
        -max_delta_energy``.
    log_uniform
        The accept draw's ``log u`` (from :func:`draw_step_noise`) instead of ``key``.

    Returns
    -------
    tuple
        ``(new_state, info)``; a non-finite proposal is never taken.
    """
    rate = jnp.exp(jnp.minimum(proposal.log_accept_ratio, 0.0))
    if is_concrete(adjusted) and not bool(np.asarray(adjusted)):  # False, 0, np.False_
        moved = proposal.is_finite
    else:
        mh_accepted, rate = metropolis_hastings(key, proposal.log_accept_ratio,
                                                log_uniform=log_uniform)
        moved = proposal.is_finite & jnp.where(adjusted, mh_accepted, True)
    new_state = optax.tree_utils.tree_where(moved, proposal.state, state)
    diverging = ~proposal.is_finite | (proposal.log_accept_ratio < -max_delta_energy)
    info = LangevinInfo(rate, moved, proposal.log_accept_ratio, proposal.forward_log_prob,
                        proposal.backward_log_prob, proposal.state, proposal.noise, diverging)
    return new_state, info


def mala_step(
    key: PRNGKey,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
    max_delta_energy: Any = DEFAULT_MAX_DELTA_ENERGY,
) -> tuple[LangevinState, LangevinInfo]:
    """One Metropolis-adjusted Langevin step; non-finite proposals are rejected.

    Proposal ``x' = x - h M^-1 grad E(x) + sqrt(2 h T) M^-1/2 xi``, accepted with
    probability ``min(1, exp(-(E(x') - E(x)) / T + log q(x | x') - log q(x' | x)))``
    (Roberts & Tweedie 1996).

    Parameters
    ----------
    key
        PRNG key (typed or legacy).
    state
        Current :class:`LangevinState` (from :func:`init` or a previous step).
    energy_fn
        ``energy_fn(position) -> scalar``; positions may be arrays or pytrees.
    step_size
        Langevin time step ``h > 0``.
    inverse_mass_matrix
        ``None`` (identity), a vector (diagonal) or a matrix (dense) over the flattened
        coordinates, or a :class:`Metric` (factorised once, outside the loop).
    temperature
        ``T`` of the target ``exp(-E / T)``.
    max_delta_energy
        ``info.diverging`` flags a step with ``log_accept_ratio < -max_delta_energy``
        (and every non-finite proposal).

    Returns
    -------
    ``(new_state, info)`` with :class:`LangevinInfo`.
    """
    xi, log_u = draw_step_noise(key, state.position)
    proposal = propose_with_noise(xi, state, energy_fn, step_size, inverse_mass_matrix,
                                  temperature)
    return accept(None, state, proposal, True, max_delta_energy, log_uniform=log_u)


def ula_step(
    key: PRNGKey,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
    max_delta_energy: Any = DEFAULT_MAX_DELTA_ENERGY,
) -> tuple[LangevinState, LangevinInfo]:
    """One unadjusted Langevin step (always moves unless the proposal is non-finite).

    Same move and arguments as :func:`mala_step`, without the accept step.
    ``info.log_accept_ratio`` is the ratio MALA *would* have used, so diagnostics can
    measure ULA's discretisation bias; ``info.acceptance_rate`` is its ``min(1, e^R)``.
    The noise is drawn as in :func:`mala_step` (:func:`draw_step_noise`, no key split), so
    one key gives ULA and MALA the same proposal.
    """
    proposal = propose(key, state, energy_fn, step_size, inverse_mass_matrix, temperature)
    return accept(None, state, proposal, False, max_delta_energy)
