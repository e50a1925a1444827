"""Type aliases shared by every module (one place, so signatures read the same everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["Array", "ArrayLike", "PyTree", "Params", "EnergyFn", "ScoreFn", "PRNGKey"]

Array = jax.Array
"""A JAX array."""
ArrayLike = jax.typing.ArrayLike
"""Anything ``jnp.asarray`` accepts."""
PyTree = Any
"""A pytree of arrays (nested tuples, lists, dicts, NamedTuples, registered classes)."""
Params = Any
"""The parameters of an energy: a pytree."""
EnergyFn = Callable[..., Array]
"""``energy_fn(params, x[, context]) -> scalar`` for ONE event ``x`` (``log p = -E - log Z``)."""
ScoreFn = Callable[..., Array]
"""``score_fn(x[, sigma]) -> -grad E(x)``, same shape as ``x``."""
PRNGKey = Array
"""A typed key (``jax.random.key``) or a legacy ``uint32[2]`` key (``jax.random.PRNGKey``)."""
