"""The energy protocol, input checks and small energy builders.

Convention (library-wide): ``energy_fn(params, x) -> scalar`` for ONE event ``x`` of shape
``event_shape``; ``log p(x) = -E(x) - log Z`` and the score is ``-grad E``.
Conditional energies take extra positional arguments: ``energy_fn(params, x, context)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from . import checks
from .typing import Array, EnergyFn, Params

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


def check_params_finite(params: Params, name: str = "params") -> None:
    """Raise ``ValueError`` if a concrete floating leaf of ``params`` holds NaN or inf.

    The message names the leaf's path (e.g. ``params['b']``) and how many entries are bad.
    Tracers (inside ``jit``/``vmap`` or a NumPyro model under inference) are skipped: their
    values are unknown. Same as :func:`numpyro_ebm.checks.all_finite`.
    """
    checks.all_finite(params, name)


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
    jax.ShapeDtypeStruct
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
    event_shape = checks.shape_tuple(event_shape, "event_shape")
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


@jax.tree_util.register_static  # hashable, no array data: a valid (empty) JAX type
@dataclass(frozen=True)
class QuadraticEnergy:
    """Gaussian energy ``E(x) = 0.5 (x - m)^T P (x - m)`` with params ``{"mean", "precision"}``.

    With ``log_normalizer = 0.5 * (d log 2 pi - log det P)`` it is the normalized Gaussian.
    """

    def __call__(self, params: Params, x: Array) -> Array:
        if jnp.shape(x) != jnp.shape(params["mean"]):  # static: raised while tracing
            raise ValueError(f"QuadraticEnergy: x must have the mean's shape "
                             f"{jnp.shape(params['mean'])} (one event), got {jnp.shape(x)}")
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

    Parameters
    ----------
    mean
        Shape ``(d,)`` (a scalar is read as ``d = 1``).
    precision
        Shape ``(d, d)``, symmetric positive definite; give this or ``covariance``.
    covariance
        Shape ``(d, d)``, symmetric positive definite; give this or ``precision``.

    Returns
    -------
    tuple
        ``(energy_fn, params)`` with ``params = {"mean", "precision"}``.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        For a wrong shape, non-finite values, or (concrete) a matrix that is not symmetric
        positive definite. Traced arguments (inside ``jit`` or a model) are not inspected.
    """
    if (precision is None) == (covariance is None):
        raise ValueError("quadratic_energy: give exactly one of precision= or covariance=")
    mean = jnp.atleast_1d(checks.real_array(mean, "mean"))
    if mean.ndim != 1 or mean.shape[0] == 0:
        raise ValueError(f"quadratic_energy: mean must have shape (d,) with d >= 1, got "
                         f"{mean.shape}")
    d = mean.shape[0]
    which = "precision" if precision is not None else "covariance"
    raw = precision if precision is not None else covariance
    mat = checks.real_array(raw, which, dtype=mean.dtype)
    if mat.shape != (d, d):
        raise ValueError(f"quadratic_energy: {which} must have shape {(d, d)} (mean has shape "
                         f"{(d,)}), got {mat.shape}")
    checks.spd_matrix(raw, which)
    prec = mat if precision is not None else jnp.linalg.inv(mat)
    return QuadraticEnergy(), {"mean": mean, "precision": prec}


@jax.tree_util.register_static
@dataclass(frozen=True)
class GammaEnergy:
    """Gamma-shaped energy on x > 0: ``E(x) = -(a - 1) log x + b x`` (params ``{"a", "b"}``)."""

    def __call__(self, params: Params, x: Array) -> Array:
        return -(params["a"] - 1.0) * jnp.log(x) + params["b"] * x

    @staticmethod
    def log_normalizer(params: Params) -> Array:
        """``log Z = lgamma(a) - a log b``."""
        return jax.scipy.special.gammaln(params["a"]) - params["a"] * jnp.log(params["b"])


def gamma_energy(concentration: Any, rate: Any) -> tuple[GammaEnergy, dict[str, Array]]:
    """Build the Gamma(concentration, rate) energy for a scalar positive event (``event_shape=()``).

    ``E(x) = -(a - 1) log x + b x`` on ``x > 0``; ``log Z = lgamma(a) - a log b``. Use it with
    ``support=constraints.positive``. Either argument may be traced (a latent rate in a
    model); concrete values must be finite scalars ``> 0`` (``ValueError`` naming the
    argument otherwise, ``TypeError`` for a non-number).
    """
    checks.positive_float(concentration, "concentration")
    checks.positive_float(rate, "rate")
    f = jnp.result_type(float)
    return GammaEnergy(), {"a": jnp.asarray(concentration, f), "b": jnp.asarray(rate, f)}
