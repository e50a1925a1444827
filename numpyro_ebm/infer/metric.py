"""The metric of a Langevin move: an inverse mass matrix ``M^-1`` and its square-root factor.

The move (docs/conventions.md) is ``x' = x - h M^-1 grad E(x) + sqrt(2 h T) B xi`` with
``B B^T = M^-1``. A :class:`Metric` holds ``M^-1``, ``B`` and ``B^-1`` over the *flattened*
coordinates (``jax.flatten_util.ravel_pytree`` order), so a step needs no factorisation:

- identity: all three fields ``None``;
- diagonal: three vectors of shape ``(n,)`` (``B = sqrt(M^-1)``);
- dense: three ``(n, n)`` matrices, ``B`` triangular (lower for :func:`make_metric`, upper
  for NumPyro's adapted ``mass_matrix_sqrt_inv`` transposed, see :func:`from_adapt_state`).

A ``Metric`` is a pytree (a NamedTuple), so it can be passed through ``jit``/``vmap``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import positive_array, spd_matrix
from ..typing import Array

__all__ = ["Metric", "make_metric", "from_adapt_state"]


class Metric(NamedTuple):
    """``M^-1`` with a triangular square root ``B`` (``B B^T = M^-1``) and ``B^-1``.

    Build one with :func:`make_metric` (from ``None``, a vector or a matrix) or
    :func:`from_adapt_state` (from NumPyro's ``HMCAdaptState``, no factorisation).

    Attributes
    ----------
    inverse_mass_matrix
        ``None`` (identity), shape ``(n,)`` (diagonal) or ``(n, n)`` (dense).
    sqrt_factor
        ``B`` with ``B B^T = M^-1``: ``sqrt(M^-1)`` for a diagonal metric, a triangular
        matrix for a dense one; ``None`` for the identity.
    inverse_sqrt_factor
        ``B^-1`` (same shape as ``B``); ``None`` for the identity.
    log_det_sqrt
        ``log |det B| = 0.5 log det M^-1`` if already known (:func:`make_metric` computes
        it once; a sampling loop with a fixed metric then takes no logarithms of ``B``),
        or ``None`` (computed by :meth:`half_logdet` at each call).
    """

    inverse_mass_matrix: Array | None = None
    sqrt_factor: Array | None = None
    inverse_sqrt_factor: Array | None = None
    log_det_sqrt: Array | None = None

    @property
    def is_dense(self) -> bool:
        """True for a dense ``(n, n)`` metric."""
        return self.inverse_mass_matrix is not None and jnp.ndim(self.inverse_mass_matrix) == 2

    def mul(self, v: Array) -> Array:
        """``M^-1 v``."""
        if self.inverse_mass_matrix is None:
            return v
        return self.inverse_mass_matrix @ v if self.is_dense else self.inverse_mass_matrix * v

    def sqrt_mul(self, v: Array) -> Array:
        """``B v`` (maps a standard-normal ``xi`` to ``N(0, M^-1)``)."""
        if self.sqrt_factor is None:
            return v
        return self.sqrt_factor @ v if self.is_dense else self.sqrt_factor * v

    def whiten(self, v: Array) -> Array:
        """``B^-1 v`` (so ``|B^-1 v|^2 = v^T M v``)."""
        if self.inverse_sqrt_factor is None:
            return v
        return self.inverse_sqrt_factor @ v if self.is_dense else self.inverse_sqrt_factor * v

    def half_logdet(self, dtype: Any) -> Array:
        """``0.5 log det M^-1 = log |det B|`` (``B`` is triangular or diagonal)."""
        if self.sqrt_factor is None:
            return jnp.zeros((), dtype)
        if self.log_det_sqrt is not None:
            return jnp.asarray(self.log_det_sqrt).astype(dtype)
        d = jnp.diagonal(self.sqrt_factor) if self.is_dense else self.sqrt_factor
        return jnp.sum(jnp.log(jnp.abs(d))).astype(dtype)

    def with_log_det(self) -> Metric:
        """This metric with ``log_det_sqrt`` computed (once, here)."""
        if self.sqrt_factor is None or self.log_det_sqrt is not None:
            return self
        return self._replace(log_det_sqrt=self.half_logdet(self.sqrt_factor.dtype))


def check_inverse_mass_matrix(value: Any, name: str = "inverse_mass_matrix") -> None:
    """Raise ``ValueError`` unless a concrete ``M^-1`` is a valid metric.

    A vector must be finite and ``> 0`` (a NaN, zero or negative entry freezes or breaks
    the chain: ``M^-1/2`` is its square root); a matrix must be symmetric positive definite.
    NumPyro's structured dict form ``{(site, ...): block}`` is checked block by block, the
    message naming the block's key. Other shapes and traced values pass (shapes are checked
    where the number of coordinates is known).
    """
    if isinstance(value, dict):
        for key, block in value.items():
            check_inverse_mass_matrix(block, f"{name}[{key!r}]")
        return
    if value is None or isinstance(value, Metric):
        return
    ndim = np.ndim(value)
    if ndim == 1:
        positive_array(value, name)
    elif ndim == 2:
        spd_matrix(value, name)


def make_metric(inverse_mass_matrix: Any, size: int, dtype: Any = None) -> Metric:
    """A :class:`Metric` from ``None``, a vector ``(size,)`` or a matrix ``(size, size)``.

    A dense matrix is factorised once here (Cholesky, ``B`` lower-triangular), so build the
    metric outside a sampling loop when the matrix is fixed. A :class:`Metric` is returned
    unchanged.

    Raises
    ------
    ValueError
        If the shape is neither ``(size,)`` nor ``(size, size)``, or (concrete values) a
        vector entry is not finite and ``> 0`` or a matrix is not symmetric positive
        definite.
    """
    if isinstance(inverse_mass_matrix, Metric):
        return inverse_mass_matrix
    if inverse_mass_matrix is None:
        return Metric()
    m = jnp.asarray(inverse_mass_matrix, dtype)
    if m.shape in ((size,), (size, size)):
        check_inverse_mass_matrix(inverse_mass_matrix)
    if m.shape == (size,):
        root = jnp.sqrt(m)
        return Metric(m, root, 1.0 / root).with_log_det()
    if m.shape == (size, size):
        chol = jnp.linalg.cholesky(m)
        inv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(size, dtype=m.dtype), lower=True)
        return Metric(m, chol, inv).with_log_det()
    raise ValueError(
        f"inverse_mass_matrix must be None, a vector of size {size} or a ({size}, {size}) "
        f"matrix (size = number of flattened coordinates); got shape {m.shape}"
    )


def from_adapt_state(adapt_state: Any, log_det_sqrt: Any = None) -> Metric:
    """The metric of NumPyro's ``HMCAdaptState`` (no factorisation per step).

    NumPyro stores ``S = mass_matrix_sqrt_inv`` with ``S^T S = M^-1`` (dense) or
    ``S = sqrt(M^-1)`` (diagonal), and ``mass_matrix_sqrt = S^-1``; so ``B = S^T`` and
    ``B^-1 = (S^-1)^T``. ``log_det_sqrt``: ``0.5 log det M^-1`` if the caller has it cached
    (see :class:`Metric`).
    """
    inv = adapt_state.inverse_mass_matrix
    s, s_inv = adapt_state.mass_matrix_sqrt_inv, adapt_state.mass_matrix_sqrt
    if jnp.ndim(inv) == 2:
        return Metric(inv, s.T, s_inv.T, log_det_sqrt)
    return Metric(inv, s, s_inv, log_det_sqrt)
