"""Validation: the objective's loss on held-out data, and the best-so-far bookkeeping.

The held-out data are evaluated as one batch with one fixed key (common random numbers
across evaluations), without updating the objective state.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import numpy as np

from ..typing import Array, PyTree
from .state import TrainState
from .step import TrainStep

__all__ = ["evaluate", "Validation", "record_validation"]


@partial(jax.jit, static_argnames=("step_fn",))
def evaluate(step_fn: TrainStep, state: TrainState, data: PyTree,
             key: Any) -> tuple[Array, dict[str, Array]]:
    """``(loss, metrics)`` of ``step_fn``'s objective at ``state`` on ``data`` (one batch)."""
    loss, (_, metrics) = step_fn.objective.loss(step_fn.energy_fn, state.params, state.extras,
                                                state.objective_state, data, key)
    return loss, metrics


class Validation(NamedTuple):
    """One evaluation: its loss and metrics (host values), and whether to stop early."""

    loss: float
    metrics: dict[str, np.ndarray]
    stop: bool


def record_validation(state: TrainState, loss: float, patience: int | None
                      ) -> tuple[TrainState, bool]:
    """``state`` with the best-so-far fields updated by a new validation ``loss``.

    Returns the new state and whether ``patience`` evaluations passed without improvement.
    """
    if math.isfinite(loss) and loss < float(state.best_loss):
        state = state._replace(best_params=state.params, best_extras=state.extras,
                               best_loss=np.float64(loss), best_step=state.step,
                               evals_since_best=np.int32(0))
    else:
        state = state._replace(evals_since_best=np.int32(int(state.evals_since_best) + 1))
    return state, patience is not None and int(state.evals_since_best) >= patience
