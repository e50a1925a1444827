"""The energy protocol, input checks and small energy builders.

Convention (library-wide): ``energy_fn(params, x) -> scalar`` for ONE event ``x`` of shape
``event_shape``; ``log p(x) = -E(x) - log Z`` and the score is ``-grad E``.
Conditional energies take extra positional arguments: ``energy_fn(params, x, context)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Params = Any
EnergyFn = Callable[..., Array]

__all__ = [
    "EnergyFn",
    "check_energy",
    "check_params_finite",
    "batched_energy",
    "batched_score",
    "QuadraticEnergy",
    "quadratic_energy",
    "GammaEnergy",
    "gamma_energy",
]


def _is_concrete(tree: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_params_finite(params: Params, name: str = "params") -> None:
    """Raise ``ValueError`` if a concrete floating leaf of ``params`` holds NaN or inf.

    Tracers (inside ``jit``/``vmap``) are skipped: their values are unknown.
    """
    leaves, _ = jax.tree.flatten_with_path(params)
    for path, leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            continue
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path) or "<root>"
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"{name}{where} contains {bad} non-finite value(s) (NaN or inf); "
                "expected finite parameters."
            )


def check_energy(
    energy_fn: EnergyFn,
    params: Params,
    event_shape: tuple[int, ...],
    *context: Any,
    dtype: Any = None,
    name: str = "energy_fn",
) -> jax.ShapeDtypeStruct:
    """Check, without compiling, that ``energy_fn(params, x, *context)`` is a real scalar.

    Uses ``jax.eval_shape`` on an abstract ``x`` of shape ``event_shape``.

    Returns
    -------
    The abstract output (shape ``()``, floating dtype).

    Raises
    ------
    TypeError
        If ``energy_fn`` is not callable or returns a non-floating dtype.
    ValueError
        If the output is not a scalar (the message names the shape seen).
    """
    if not callable(energy_fn):
        raise TypeError(
            f"{name} must be a callable energy_fn(params, x) -> scalar, got "
            f"{type(energy_fn).__name__}: {energy_fn!r}"
        )
    event_shape = tuple(int(d) for d in event_shape)
    if dtype is None:
        dtype = jnp.result_type(float)
    x = jax.ShapeDtypeStruct(event_shape, dtype)
    try:
        out = jax.eval_shape(energy_fn, params, x, *context)
    except Exception as err:  # surface the user's error with the shapes involved
        raise ValueError(
            f"{name}(params, x) failed for x of shape {event_shape} (the event_shape): "
            f"{type(err).__name__}: {err}"
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct) and not hasattr(out, "shape"):
        raise TypeError(f"{name} must return one array, got {type(out).__name__}")
    if tuple(out.shape) != ():
        raise ValueError(
            f"{name} must return a scalar energy for one event x of shape {event_shape}, "
            f"but returned shape {tuple(out.shape)}. Energies are per event; the library "
            "vmaps over batches. If your function is already batched, reduce it or check "
            "event_shape."
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{name} must return a floating-point scalar, got dtype {out.dtype}")
    return out


def batched_energy(
    energy_fn: EnergyFn, params: Params, x: Array, event_ndim: int, *context: Any
) -> Array:
    """Evaluate ``energy_fn`` on ``x`` of shape ``batch + event`` (vmapped); returns ``batch``."""
    x = jnp.asarray(x)
    batch_shape = x.shape[: x.ndim - event_ndim]
    if not batch_shape:
        return energy_fn(params, x, *context)
    flat = x.reshape((-1,) + x.shape[x.ndim - event_ndim :])
    ctx = [jnp.broadcast_to(c, batch_shape + jnp.shape(c)).reshape((flat.shape[0],) + jnp.shape(c))
           for c in context]
    out = jax.vmap(lambda xi, *ci: energy_fn(params, xi, *ci))(flat, *ctx)
    return out.reshape(batch_shape)


def batched_score(
    energy_fn: EnergyFn, params: Params, x: Array, event_ndim: int, *context: Any
) -> Array:
    """Score ``-grad_x E(x)`` for ``x`` of shape ``batch + event``; same shape as ``x``."""
    x = jnp.asarray(x)
    grad_e = jax.grad(lambda xi, *ci: energy_fn(params, xi, *ci))
    batch_shape = x.shape[: x.ndim - event_ndim]
    if not batch_shape:
        return -grad_e(x, *context)
    flat = x.reshape((-1,) + x.shape[x.ndim - event_ndim :])
    ctx = [jnp.broadcast_to(c, batch_shape + jnp.shape(c)).reshape((flat.shape[0],) + jnp.shape(c))
           for c in context]
    return -jax.vmap(grad_e)(flat, *ctx).reshape(x.shape)


@dataclass(frozen=True)
class QuadraticEnergy:
    """Gaussian energy ``E(x) = 0.5 (x - m)^T P (x - m)`` with params ``{"mean", "precision"}``.

    With ``log_normalizer = 0.5 * (d log 2 pi - log det P)`` it is the normalized Gaussian.
    """

    def __call__(self, params: Params, x: Array) -> Array:
        r = x - params["mean"]
        return 0.5 * r @ (params["precision"] @ r)

    @staticmethod
    def log_normalizer(params: Params) -> Array:
        """``log Z = 0.5 (d log 2 pi - log det P)``."""
        prec = params["precision"]
        d = prec.shape[-1]
        return 0.5 * (d * math.log(2 * math.pi) - jnp.linalg.slogdet(prec)[1])


def quadratic_energy(
    mean: Any, precision: Any | None = None, *, covariance: Any | None = None
) -> tuple[QuadraticEnergy, dict[str, Array]]:
    """Build a Gaussian (quadratic) energy; give ``precision`` or ``covariance``.

    Returns ``(energy_fn, params)``.
    """
    mean = jnp.atleast_1d(jnp.asarray(mean, dtype=jnp.result_type(float)))
    d = mean.shape[0]
    if (precision is None) == (covariance is None):
        raise ValueError("quadratic_energy: give exactly one of precision= or covariance=")
    mat = jnp.asarray(precision if precision is not None else covariance, dtype=mean.dtype)
    if mat.shape != (d, d):
        which = "precision" if precision is not None else "covariance"
        raise ValueError(f"quadratic_energy: {which} must have shape {(d, d)}, got {mat.shape}")
    prec = mat if precision is not None else jnp.linalg.inv(mat)
    return QuadraticEnergy(), {"mean": mean, "precision": prec}


@dataclass(frozen=True)
class GammaEnergy:
    """Gamma-shaped energy on x > 0: ``E(x) = -(a - 1) log x + b x`` (params ``{"a", "b"}``)."""

    def __call__(self, params: Params, x: Array) -> Array:
        return -(params["a"] - 1.0) * jnp.log(x) + params["b"] * x

    @staticmethod
    def log_normalizer(params: Params) -> Array:
        """``log Z = lgamma(a) - a log b``."""
        return jax.scipy.special.gammaln(params["a"]) - params["a"] * jnp.log(params["b"])


def gamma_energy(concentration: float, rate: float) -> tuple[GammaEnergy, dict[str, Array]]:
    """Build the Gamma(concentration, rate) energy for a scalar positive event."""
    if concentration <= 0 or rate <= 0:
        raise ValueError(
            f"gamma_energy: concentration and rate must be > 0, got {concentration}, {rate}"
        )
    f = jnp.result_type(float)
    return GammaEnergy(), {"a": jnp.asarray(concentration, f), "b": jnp.asarray(rate, f)}
