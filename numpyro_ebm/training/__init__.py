"""Training: the :func:`fit` driver and the parts it is made of.

* :class:`TrainState` (``state.py``): one pytree with everything a checkpoint holds;
* :func:`make_train_step` (``step.py``): the pure, jittable
  ``step(state, batch, key) -> (state, metrics)``;
* :func:`run_chunk` (``chunk.py``): guarded steps in one compiled loop;
* ``evaluation.py``, ``checkpoint.py``, ``progress.py``: validation, checkpoints and the
  progress bar around the thin host loop of :func:`fit` (``driver.py``).
"""

from .checkpoint import (
    load_checkpoint,
    load_train_state,
    restore_tree,
    save_checkpoint,
    save_train_state,
)
from .driver import FitResult, fit
from .state import TrainState, init_train_state
from .step import TrainStep, make_train_step

__all__ = [
    "fit",
    "FitResult",
    "TrainState",
    "TrainStep",
    "init_train_state",
    "make_train_step",
    "save_checkpoint",
    "load_checkpoint",
    "restore_tree",
    "save_train_state",
    "load_train_state",
]
