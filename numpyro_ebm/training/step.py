"""The train step: one optax update of ``(params, extras)`` on one batch, as a pure function.

:func:`make_train_step` builds it once per (energy, objective, optimizer). The step is a
hashable value (equal for equal parts), so ``jax.jit`` and :func:`~numpyro_ebm.fit` reuse
its compilation across calls. It does no safety checks of its own: :func:`~numpyro_ebm.fit`
wraps it in the NaN guard; a hand-written loop can call it directly (docs/fitting.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import optax

from ..objectives.base import Objective
from ..typing import Array, EnergyFn, PyTree
from .by_value import canonical_optimizer
from .state import TrainState

__all__ = ["TrainStep", "make_train_step"]


@dataclass(frozen=True)
class TrainStep:
    """``step(state, batch, key) -> (state, metrics)``: one optimizer update.

    Minimises ``L(params, extras) = objective.loss(energy_fn, params, extras,
    objective_state, batch, key)`` with one ``optimizer`` update and advances
    ``state.step`` by one. ``metrics`` is the objective's metrics dict plus ``"loss"``
    (the loss *before* the update). Pure and jittable; nothing is checked.

    Attributes
    ----------
    energy_fn
        ``energy_fn(params, x[, context]) -> scalar`` for one event.
    objective
        An :class:`~numpyro_ebm.Objective`.
    optimizer
        An ``optax.GradientTransformation`` of the pair ``(params, extras)``.
    """

    energy_fn: EnergyFn
    objective: Objective
    optimizer: optax.GradientTransformation

    def _loss(self, trainable: PyTree, objective_state: PyTree, batch: PyTree, key: Any):
        params, extras = trainable
        return self.objective.loss(self.energy_fn, params, extras, objective_state, batch, key)

    def trace_loss(self, trainable: PyTree, objective_state: PyTree, batch: PyTree,
                   key: Any) -> Any:
        """The loss's output shapes, traced abstractly (``jax.eval_shape``: nothing runs or
        compiles). The trace is cached, and the step's gradient reuses it. Raises whatever
        the objective's loss raises on arguments of these shapes."""
        return jax.eval_shape(_traced_loss, self, trainable, objective_state, batch, key)

    def __call__(self, state: TrainState, batch: PyTree,
                 key: Any) -> tuple[TrainState, dict[str, Array]]:
        """One update on ``batch`` with the objective's randomness ``key``.

        Parameters
        ----------
        state
            The current :class:`~numpyro_ebm.training.TrainState`.
        batch
            Array of shape ``(batch_size,) + event_shape`` (or a tuple of such arrays).
        key
            The key ``objective.loss`` receives (typed or legacy, passed as given).
        """
        trainable = (state.params, state.extras)
        value_and_grad = jax.value_and_grad(_traced_loss, argnums=1, has_aux=True)
        (loss, (obj_state, metrics)), grads = value_and_grad(
            self, trainable, state.objective_state, batch, key)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, trainable)
        params, extras = optax.apply_updates(trainable, updates)
        new = state._replace(params=params, extras=extras, opt_state=opt_state,
                             objective_state=obj_state, step=state.step + 1)
        return new, {"loss": loss, **metrics}


# the loss under jit (inlined when compiled, so no nested call): the abstract trace that
# ``fit`` makes before the chunk to check the loss (``trace_loss``) is then reused by the
# step's gradient
_traced_loss = jax.jit(TrainStep._loss, static_argnums=0, inline=True)


def make_train_step(energy_fn: EnergyFn, objective: Objective,
                    optimizer: optax.GradientTransformation) -> TrainStep:
    """The pure train step ``step(state, batch, key) -> (state, metrics)``.

    Equal arguments give equal (and equally hashed) steps, so jitted callers compile once.
    The optimizer counts as equal by value (``canonical_optimizer`` in
    ``numpyro_ebm.training.by_value``): two ``optax.adam(1e-3)`` built apart give equal steps.

    Examples
    --------
    >>> step = make_train_step(energy_fn, objective, optax.adam(1e-3))  # doctest: +SKIP
    >>> state, metrics = jax.jit(step)(state, batch, key)                # doctest: +SKIP
    """
    return TrainStep(energy_fn, objective, canonical_optimizer(optimizer))
