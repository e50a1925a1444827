"""The one objective protocol shared by every fitting objective (optax-style).

An :class:`Objective` is a pair of pure functions plus a name:

* ``init(key, energy_fn, params, batch) -> (extras, state)``
  ``extras`` are *trainable* quantities the objective adds to the energy's params
  (NCE's log normaliser, FCE's flow parameters); ``state`` is *non-trainable* objective
  state carried between steps (a replay buffer, a step counter). Both are pytrees
  (use ``()`` or ``{}`` when empty).
* ``loss(energy_fn, params, extras, state, batch, key) -> (loss, (new_state, metrics))``
  a scalar to *minimise* over ``(params, extras)``; ``metrics`` is a flat dict of scalars
  recorded in the history. It must be pure and jittable; ``batch`` has shape
  ``(batch_size,) + event_shape`` (or is a tuple of arrays for paired data).
* ``is_healthy(metrics) -> bool scalar`` (optional): a step whose metrics are unhealthy is
  treated like a non-finite loss by :func:`numpyro_ebm.fit` (rolled back, never applied).

Adversarial pieces (a flow that *maximises* what the energy minimises) are written with
:func:`reverse_gradient` inside ``loss``, so one optimizer step serves both players.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["Objective", "reverse_gradient"]

InitFn = Callable[..., tuple[Any, Any]]
LossFn = Callable[..., tuple[jax.Array, tuple[Any, dict[str, jax.Array]]]]


class Objective(NamedTuple):
    """A fitting objective: ``init`` and ``loss`` (see the module docstring)."""

    init: InitFn
    loss: LossFn
    name: str = "objective"
    is_healthy: Callable[[dict[str, jax.Array]], jax.Array] | None = None


@jax.custom_vjp
def reverse_gradient(tree: Any) -> Any:
    """Identity in the forward pass; negates the cotangent in the backward pass."""
    return tree


def _rev_fwd(tree):
    return tree, None


def _rev_bwd(_, g):
    return (jax.tree.map(lambda t: -t, g),)


reverse_gradient.defvjp(_rev_fwd, _rev_bwd)
