"""Functional Langevin core: ``init``, ``ula_step``, ``mala_step`` over NamedTuple states.

Convention (DESIGN.md): with time step ``h``, inverse mass matrix ``M^-1`` and temperature
``T``, the proposal is

    x' = x - h M^-1 grad E(x) + sqrt(2 h T) M^-1/2 xi,    xi ~ N(0, I),

i.e. ``q(x' | x) = N(x - h M^-1 grad E(x), 2 h T M^-1)``; the target is ``exp(-E(x) / T)``.
MALA accepts with ``log r = -(E(x') - E(x)) / T + log q(x | x') - log q(x' | x)``;
ULA always moves but records the ratio MALA would have used.

Positions may be arrays or pytrees (flattened internally). ``inverse_mass_matrix`` is
``None`` (identity), a vector (diagonal, one entry per flattened coordinate) or a square
matrix (dense). One energy-and-gradient evaluation per step: the state caches both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
    "LangevinState",
    "LangevinInfo",
    "init",
    "ula_step",
    "mala_step",
    "proposal_log_density",
]

Array = jax.Array
PyTree = Any


class LangevinState(NamedTuple):
    """Chain state: position, its energy ``E(x)`` and gradient ``grad E(x)`` (cached)."""

    position: PyTree
    energy: Array
    energy_grad: PyTree


class LangevinInfo(NamedTuple):
    """What one step did. ``acceptance_rate`` is ``min(1, exp(log_accept_ratio))``."""

    acceptance_rate: Array
    is_accepted: Array
    log_accept_ratio: Array
    forward_log_prob: Array  # log q(x' | x)
    backward_log_prob: Array  # log q(x | x')
    proposal: LangevinState
    noise: Array  # the standard-normal innovation xi (flattened)
    diverging: Array  # energy or gradient non-finite at the proposal


def init(position: PyTree, energy_fn: Callable[[PyTree], Array]) -> LangevinState:
    """Evaluate ``energy_fn`` and its gradient at ``position``."""
    energy, grad = jax.value_and_grad(energy_fn)(position)
    return LangevinState(position, energy, grad)


class _Metric:
    """``M^-1`` (identity, diagonal or dense) with a square root ``B``, ``B B^T = M^-1``.

    ``factor`` is ``sqrt(M^-1)`` for a diagonal metric and a lower-triangular matrix for a
    dense one: ``B = factor`` (a Cholesky factor) or ``B = factor^T`` when ``transposed``
    (NumPyro's ``mass_matrix_sqrt_inv`` ``S`` has ``S^T S = M^-1``). Built inside traced
    code only; not a pytree.
    """

    __slots__ = ("inv_mass", "factor", "transposed")

    def __init__(self, inv_mass=None, factor=None, transposed=False):
        self.inv_mass = inv_mass
        self.factor = factor
        self.transposed = transposed

    @property
    def dense(self) -> bool:
        return self.inv_mass is not None and self.inv_mass.ndim == 2

    def mul(self, v):  # M^-1 v
        if self.inv_mass is None:
            return v
        return self.inv_mass @ v if self.dense else self.inv_mass * v

    def sqrt_mul(self, v):  # B v
        if self.inv_mass is None:
            return v
        if not self.dense:
            return self.factor * v
        return (self.factor.T if self.transposed else self.factor) @ v

    def whiten(self, v):  # B^-1 v
        if self.inv_mass is None:
            return v
        if not self.dense:
            return v / self.factor
        return jax.scipy.linalg.solve_triangular(
            self.factor, v, lower=True, trans=1 if self.transposed else 0
        )

    def half_logdet(self, dtype):  # 0.5 log det M^-1 = log |det B|
        if self.inv_mass is None:
            return jnp.zeros((), dtype)
        d = jnp.diag(self.factor) if self.dense else self.factor
        return jnp.sum(jnp.log(jnp.abs(d)))


def _metric(inverse_mass_matrix, n, dtype) -> _Metric:
    if isinstance(inverse_mass_matrix, _Metric):
        return inverse_mass_matrix
    if inverse_mass_matrix is None:
        return _Metric()
    m = jnp.asarray(inverse_mass_matrix, dtype)
    if m.shape == (n,):
        return _Metric(m, jnp.sqrt(m))
    if m.shape == (n, n):
        return _Metric(m, jnp.linalg.cholesky(m))
    raise ValueError(
        f"inverse_mass_matrix must be None, a vector of size {n} or an ({n}, {n}) matrix "
        f"(n = number of flattened coordinates); got shape {m.shape}"
    )


def proposal_log_density(
    x_to: Array, x_from: Array, grad_from: Array, step_size: Any,
    inverse_mass_matrix: Any = None, temperature: Any = 1.0,
) -> Array:
    """``log q(x_to | x_from)`` for flat arrays: ``N(x_from - h M^-1 g, 2 h T M^-1)``."""
    n = x_to.shape[-1]
    metric = _metric(inverse_mass_matrix, n, x_to.dtype)
    return _log_q(x_to, x_from, grad_from, step_size, metric, temperature)


def _log_q(x_to, x_from, grad_from, h, metric, T):
    n = x_to.shape[-1]
    scale = jnp.sqrt(2.0 * h * T)
    z = metric.whiten(x_to - x_from + h * metric.mul(grad_from)) / scale
    return (-0.5 * jnp.sum(z**2) - n * jnp.log(scale) - metric.half_logdet(x_to.dtype)
            - 0.5 * n * math.log(2 * math.pi))


def _propose(key, state, energy_fn, step_size, inverse_mass_matrix, temperature):
    x, unravel = ravel_pytree(state.position)
    g, _ = ravel_pytree(state.energy_grad)
    n = x.shape[0]
    dtype = x.dtype
    h = jnp.asarray(step_size, dtype)
    T = jnp.asarray(temperature, dtype)
    metric = _metric(inverse_mass_matrix, n, dtype)
    xi = jax.random.normal(key, (n,), dtype)
    scale = jnp.sqrt(2.0 * h * T)
    x_new = x - h * metric.mul(g) + scale * metric.sqrt_mul(xi)
    e_new, g_new_tree = jax.value_and_grad(energy_fn)(unravel(x_new))
    g_new, _ = ravel_pytree(g_new_tree)
    e_new = jnp.asarray(e_new, dtype)
    finite = jnp.isfinite(e_new) & jnp.all(jnp.isfinite(g_new)) & jnp.all(jnp.isfinite(x_new))
    # log q(x'|x): the forward residual is exactly scale * M^-1/2 xi.
    const = -n * jnp.log(scale) - metric.half_logdet(dtype) - 0.5 * n * math.log(2 * math.pi)
    fwd = -0.5 * jnp.sum(xi**2) + const
    # Guard the backward term against NaN from a non-finite proposal.
    g_safe = jnp.where(finite, g_new, 0.0)
    x_safe = jnp.where(finite, x_new, x)
    bwd = _log_q(x, x_safe, g_safe, h, metric, T)
    e_safe = jnp.where(finite, e_new, jnp.asarray(state.energy, dtype))
    log_ratio = -(e_safe - state.energy) / T + bwd - fwd
    # A NaN ratio (e.g. a non-finite current energy) must reject, never propagate.
    finite_ratio = finite & ~jnp.isnan(log_ratio)
    log_ratio = jnp.where(finite_ratio, log_ratio, -jnp.inf)
    bwd = jnp.where(finite, bwd, -jnp.inf)
    proposal = LangevinState(unravel(x_new), e_new, unravel(g_new))
    return proposal, xi, fwd, bwd, log_ratio, finite


def _select(pred, a: LangevinState, b: LangevinState) -> LangevinState:
    return jax.tree.map(lambda u, v: jnp.where(pred, u, v), a, b)


def mala_step(
    key: Any,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
) -> tuple[LangevinState, LangevinInfo]:
    """One Metropolis-adjusted Langevin step; non-finite proposals are rejected.

    Proposal ``x' = x - h M^-1 grad E(x) + sqrt(2 h T) M^-1/2 xi``, accepted with
    probability ``min(1, exp(-(E(x') - E(x)) / T + log q(x | x') - log q(x' | x)))``.

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
        coordinates.
    temperature
        ``T`` of the target ``exp(-E / T)``.

    Returns
    -------
    ``(new_state, info)`` with :class:`LangevinInfo`.
    """
    k_prop, k_acc = jax.random.split(key)
    proposal, xi, fwd, bwd, log_ratio, finite = _propose(
        k_prop, state, energy_fn, step_size, inverse_mass_matrix, temperature
    )
    accept_prob = jnp.minimum(1.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))
    u = jax.random.uniform(k_acc, (), accept_prob.dtype)
    accepted = finite & (jnp.log(u) < log_ratio)
    new_state = _select(accepted, proposal, state)
    info = LangevinInfo(accept_prob, accepted, log_ratio, fwd, bwd, proposal, xi, ~finite)
    return new_state, info


def ula_step(
    key: Any,
    state: LangevinState,
    energy_fn: Callable[[PyTree], Array],
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: Any = 1.0,
) -> tuple[LangevinState, LangevinInfo]:
    """One unadjusted Langevin step (always moves unless the proposal is non-finite).

    Same move and arguments as :func:`mala_step`, without the accept step.
    ``info.log_accept_ratio`` is the ratio MALA *would* have used, so diagnostics can
    measure ULA's discretisation bias; ``info.acceptance_rate`` is its ``min(1, e^R)``.
    """
    proposal, xi, fwd, bwd, log_ratio, finite = _propose(
        key, state, energy_fn, step_size, inverse_mass_matrix, temperature
    )
    accept_prob = jnp.minimum(1.0, jnp.exp(jnp.minimum(log_ratio, 0.0)))
    new_state = _select(finite, proposal, state)
    info = LangevinInfo(accept_prob, finite, log_ratio, fwd, bwd, proposal, xi, ~finite)
    return new_state, info
