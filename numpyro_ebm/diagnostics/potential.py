"""The reference potential ``U`` and its gradient at many points, in float64.

Shared by the ratio recomputation and the probe proposals; depends on nothing else in the
diagnostics (so that those two modules need not import each other).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["potential_and_grad"]


def potential_and_grad(
    potential_fn: Callable[[jax.Array], jax.Array], points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``U`` and ``grad U`` at ``points`` (``(..., dim)``), evaluated by JAX in float64.

    ``potential_fn(x)`` takes ONE flat position ``x`` of shape ``(dim,)`` and returns a
    scalar. Returns arrays of shapes ``points.shape[:-1]`` and ``points.shape``.
    """
    pts = np.asarray(points, dtype=np.float64)
    flat = pts.reshape(-1, pts.shape[-1])
    with jax.enable_x64(True):
        u, g = _value_and_grad(potential_fn)(jnp.asarray(flat, jnp.float64))
        u, g = np.asarray(u, np.float64), np.asarray(g, np.float64)
    return u.reshape(pts.shape[:-1]), g.reshape(pts.shape)


@functools.lru_cache(maxsize=16)
def _value_and_grad(potential_fn):
    """Jitted, vmapped ``(U, grad U)``; cached per potential to compile once."""
    return jax.jit(jax.vmap(jax.value_and_grad(
        lambda z: jnp.asarray(potential_fn(z), jnp.float64))))
