"""Composing energies: products of experts, tempering, restriction and conditioning.

Every function takes one or more energies in the library convention (``energy_fn(params, x)
-> scalar`` for ONE event ``x``, ``log p(x) = -E(x) - log Z``) and returns a new pair
``(energy_fn, params)`` in the same convention, so the result works everywhere an energy
does: :class:`~numpyro_ebm.EnergyDistribution`, :func:`~numpyro_ebm.energy_factor`, the
objectives of :func:`~numpyro_ebm.fit`, :func:`~numpyro_ebm.grid_log_normalizer`, and the
composers themselves. The returned ``energy_fn`` is a small frozen dataclass (hashable, so
it can be the static part of a distribution's pytree; registered as a static JAX type, so
it can be returned from ``jit``); numbers that may change (expert
weights, the temperature, the observed values) live in ``params`` as pytree data, so they
can be traced, vmapped or fitted like any other parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.tree_util import register_static
from numpyro.distributions import constraints

from .checks import all_finite, in_range, is_concrete, positive_float, positive_int
from .energy import check_energy
from .typing import Array, ArrayLike, EnergyFn, Params

__all__ = ["product_of_experts", "tempered", "restricted", "conditioned"]


def _callable(energy_fn: Any, name: str) -> None:
    if not callable(energy_fn):
        raise TypeError(
            f"{name} must be a callable energy_fn(params, x) -> scalar, got "
            f"{type(energy_fn).__name__}: {energy_fn!r}"
        )


# ---------------------------------------------------------------------- product of experts
@register_static
@dataclass(frozen=True)
class ProductOfExperts:
    """``E(x) = sum_i w_i E_i(x)``; params ``{"experts": (p_1, ..., p_k), "weights": w}``."""

    energy_fns: tuple[EnergyFn, ...]

    def __call__(self, params: Params, x: Array) -> Array:
        w = params["weights"]
        terms = [fn(p, x) for fn, p in zip(self.energy_fns, params["experts"])]
        return sum(w[i] * e for i, e in enumerate(terms))


def product_of_experts(
    *experts: tuple[EnergyFn, Params], weights: ArrayLike | None = None
) -> tuple[ProductOfExperts, dict[str, Any]]:
    """Product of experts ``p(x) ∝ prod_i p_i(x)^{w_i}``: the energy ``sum_i w_i E_i(x)``.

    Hinton (2002), "Training products of experts by minimizing contrastive divergence".
    Two Gaussian experts with precisions ``P_1, P_2`` give the Gaussian with precision
    ``P_1 + P_2`` and mean ``(P_1 + P_2)^-1 (P_1 m_1 + P_2 m_2)``.

    Parameters
    ----------
    *experts
        Two or more ``(energy_fn, params)`` pairs on the same event shape.
    weights
        Non-negative exponents ``w_i``, shape ``(k,)``; default all ones (a plain sum).

    Returns
    -------
    ``(energy_fn, params)`` with ``params = {"experts": (p_1, ..., p_k), "weights": w}``.

    Raises
    ------
    ValueError
        Fewer than two experts, a pair that is not ``(energy_fn, params)``, or weights of
        the wrong shape, negative or non-finite.
    TypeError
        An expert's ``energy_fn`` is not callable.
    """
    if len(experts) < 2:
        raise ValueError(
            f"product_of_experts needs at least two (energy_fn, params) experts, got "
            f"{len(experts)}"
        )
    fns, ps = [], []
    for i, pair in enumerate(experts):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise ValueError(
                f"experts[{i}] must be an (energy_fn, params) pair, got {type(pair).__name__}"
            )
        _callable(pair[0], f"experts[{i}][0]")
        fns.append(pair[0])
        ps.append(pair[1])
    k = len(fns)
    w = jnp.ones((k,)) if weights is None else jnp.asarray(weights, dtype=jnp.result_type(float))
    if w.shape != (k,):
        raise ValueError(f"weights must have shape ({k},) (one per expert), got {w.shape}")
    in_range(w, "weights", 0.0, None, closed=True)
    return ProductOfExperts(tuple(fns)), {"experts": tuple(ps), "weights": w}


# ---------------------------------------------------------------------- tempering
@register_static
@dataclass(frozen=True)
class Tempered:
    """``E(x) / T``; params ``{"energy": p, "temperature": T}``."""

    energy_fn: EnergyFn

    def __call__(self, params: Params, x: Array) -> Array:
        return self.energy_fn(params["energy"], x) / params["temperature"]


def tempered(
    energy_fn: EnergyFn, params: Params, temperature: ArrayLike
) -> tuple[Tempered, dict[str, Any]]:
    """Tempered energy ``E(x) / T``: the density ``p(x)^{1/T}``.

    ``T > 1`` flattens the density (a Gaussian's covariance is multiplied by ``T``),
    ``T < 1`` sharpens it. The temperature is pytree data (it can be traced or vmapped over
    a ladder of temperatures).

    Raises
    ------
    TypeError
        ``energy_fn`` is not callable or ``temperature`` is not a real scalar.
    ValueError
        ``temperature`` is not finite and ``> 0``.
    """
    _callable(energy_fn, "energy_fn")
    positive_float(temperature, "temperature")
    t = jnp.asarray(temperature, dtype=jnp.result_type(float))
    return Tempered(energy_fn), {"energy": params, "temperature": t}


# ---------------------------------------------------------------------- restriction
@register_static
@dataclass(frozen=True, eq=False)  # NumPyro constraints are not hashable: hash by identity
class Restricted:
    """``E(x)`` on ``support``, ``+inf`` outside; params are those of ``energy_fn``."""

    energy_fn: EnergyFn
    support: constraints.Constraint

    def __call__(self, params: Params, x: Array) -> Array:
        inside = jnp.all(self.support(x))
        return jnp.where(inside, self.energy_fn(params, x), jnp.inf)


def restricted(
    energy_fn: EnergyFn, params: Params, support: constraints.Constraint
) -> tuple[Restricted, Params]:
    """Restrict an energy to a support: ``E(x)`` where ``support(x)`` holds, ``+inf`` outside.

    The density becomes ``p(x) 1[x in S] / P(S)``. Samplers that move on unconstrained
    space never see the ``+inf``: pass the same constraint as
    ``EnergyDistribution(..., support=support)`` so NUTS and the Langevin kernels transform
    it. The restriction itself matters where an energy is evaluated directly (a grid
    ``log Z``, an expert in a product, a potential given to a sampler as is; our Langevin
    kernels reject a proposal with infinite energy).

    Parameters
    ----------
    support
        A NumPyro constraint (``constraints.positive``, ``constraints.interval(a, b)``,
        ...); elementwise constraints must hold for every coordinate of the event.

    Raises
    ------
    TypeError
        ``energy_fn`` is not callable or ``support`` is not a NumPyro constraint.
    """
    _callable(energy_fn, "energy_fn")
    if not isinstance(support, constraints.Constraint):
        raise TypeError(
            f"support must be a numpyro.distributions.constraints.Constraint, got "
            f"{type(support).__name__}: {support!r}"
        )
    return Restricted(energy_fn, support), params


# ---------------------------------------------------------------------- conditioning
@register_static
@dataclass(frozen=True)
class Conditioned:
    """``E([y, v])`` as a function of the free coordinates ``y``; params
    ``{"energy": p, "value": v}``."""

    energy_fn: EnergyFn
    index: tuple[int, ...]
    free: tuple[int, ...]
    event_size: int

    def __call__(self, params: Params, y: Array) -> Array:
        """``E([y, v])``; ``y`` must have shape ``(len(free),)`` (checked at trace time)."""
        if jnp.shape(y) != (len(self.free),):  # shapes are static: also under jit / vmap
            raise ValueError(
                f"y (the free coordinates {list(self.free)} of the conditioned energy) must "
                f"have shape ({len(self.free)},), got shape {tuple(jnp.shape(y))}"
            )
        v = params["value"]
        x = jnp.zeros((self.event_size,), jnp.result_type(y, v))
        x = x.at[np.asarray(self.free, dtype=int)].set(y)
        x = x.at[np.asarray(self.index, dtype=int)].set(v)
        return self.energy_fn(params["energy"], x)


def conditioned(
    energy_fn: EnergyFn,
    params: Params,
    *,
    index: Sequence[int],
    value: ArrayLike,
    event_size: int,
) -> tuple[Conditioned, dict[str, Any]]:
    """Condition an energy on part of ``x``: ``p(y | x_index = value) ∝ exp(-E([y, value]))``.

    For events of shape ``(event_size,)``: the returned energy takes the free coordinates
    ``y`` (shape ``(event_size - len(index),)``, in increasing index order) and fixes the
    coordinates ``index`` at ``value``. The normaliser of the conditional is
    ``Z(value) = int exp(-E([y, value])) dy`` (unknown in general, as for any energy). For a
    Gaussian with precision ``P`` this is the Gaussian with precision ``P_yy`` and mean
    ``m_y - P_yy^-1 P_yv (value - m_v)``.

    Parameters
    ----------
    index
        Distinct coordinates in ``[0, event_size)`` to fix (at least one, not all).
    value
        Their values, shape ``(len(index),)``; pytree data (may be traced).
    event_size
        Length of the base energy's event ``x``.

    Raises
    ------
    ValueError
        A bad ``event_size``, repeated or out-of-range ``index``, ``value`` of the wrong
        shape or non-finite, or a base energy that is not a scalar on ``(event_size,)``.
    """
    _callable(energy_fn, "energy_fn")
    d = positive_int(event_size, "event_size")
    try:
        idx = tuple(int(i) for i in np.asarray(index).reshape(-1))
    except (TypeError, ValueError) as err:
        raise ValueError(f"index must be a sequence of ints, got {index!r}") from err
    if not idx or len(set(idx)) != len(idx) or any(i < 0 or i >= d for i in idx) or len(idx) == d:
        raise ValueError(
            f"index must hold distinct coordinates in [0, {d}), at least one and fewer than "
            f"{d}, got {list(idx)}"
        )
    v = jnp.asarray(value, dtype=jnp.result_type(float))
    if v.shape != (len(idx),):
        raise ValueError(
            f"value must have shape ({len(idx)},) (one entry per index), got {v.shape}"
        )
    if is_concrete(v):
        all_finite(v, "value")
    check_energy(energy_fn, params, (d,), name="energy_fn")
    free = tuple(i for i in range(d) if i not in idx)
    return Conditioned(energy_fn, idx, free, d), {"energy": params, "value": v}
