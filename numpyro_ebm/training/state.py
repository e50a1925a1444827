"""The training state: one pytree holding everything a checkpoint holds (but the history).

:class:`TrainState` is what the train step maps to its successor and what
:func:`~numpyro_ebm.training.save_train_state` writes. Besides the optimised values it
carries the counters of the NaN guard and the best validation result, so that a run resumed
from a checkpoint continues exactly like an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..objectives.base import Objective
from ..typing import Array, Params, PRNGKey, PyTree

__all__ = ["TrainState", "init_train_state"]


class TrainState(NamedTuple):
    """Everything a training run carries from one step to the next.

    Attributes
    ----------
    params, extras
        The energy's params and the objective's trainable extras (optimised together).
    opt_state
        The optax state of the pair ``(params, extras)``.
    objective_state
        The objective's non-trainable state (a replay buffer, a counter).
    step
        ``int32`` scalar: the number of steps run (the index of the next step).
    key
        The run's base key (a typed ``jax.random.key``); :func:`~numpyro_ebm.fit` derives
        every step's randomness from it and ``step``.
    num_skipped, consecutive_skips
        ``int32`` counters of the NaN guard: bad steps in all, and in a row.
    best_params, best_extras, best_loss, best_step, evals_since_best
        The params/extras with the lowest validation loss so far (``best_loss`` is ``inf``
        and ``best_step`` is ``-1`` before the first evaluation) and the number of
        evaluations since it (early stopping).
    """

    params: Params
    extras: PyTree
    opt_state: PyTree
    objective_state: PyTree
    step: Array
    key: Array
    num_skipped: Array
    consecutive_skips: Array
    best_params: Params
    best_extras: PyTree
    best_loss: Array
    best_step: Array
    evals_since_best: Array

    @property
    def trainable(self) -> tuple[Params, PyTree]:
        """The optimised pair ``(params, extras)``."""
        return self.params, self.extras


def as_typed_key(key: Any) -> tuple[Array, bool]:
    """``key`` as a typed key, and whether it was given as a legacy ``uint32[2]`` key.

    Raises ``ValueError`` for a batch of keys and ``TypeError`` for anything not a key.
    """
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key, False
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise TypeError(f"key must be jax.random.key(...) or jax.random.PRNGKey(...), got "
                        f"dtype {key.dtype} shape {key.shape}")
    return jax.random.wrap_key_data(key), True


def init_train_state(
    energy_fn: Any,
    params: Params,
    objective: Objective,
    optimizer: Any,
    key: PRNGKey,
    batch: PyTree,
    *,
    extras: PyTree = None,
    objective_state: PyTree = None,
) -> TrainState:
    """The state at step 0: ``objective.init`` for missing extras/state, ``optimizer.init``.

    Parameters
    ----------
    energy_fn
        The energy ``energy_fn(params, x[, context]) -> scalar``.
    params
        Its initial parameters.
    objective
        An :class:`~numpyro_ebm.Objective`; ``objective.init(key, energy_fn, params, batch)``
        supplies ``extras`` and ``objective_state`` unless both are given.
    optimizer
        An ``optax.GradientTransformation``, initialised on ``(params, extras)``.
    key
        ``jax.random.key`` or legacy ``PRNGKey``: passed to ``objective.init`` as given and
        stored (typed) as :attr:`TrainState.key`.
    batch
        One batch of data, in the form the objective's ``loss`` receives.
    extras
        Start value of the objective's trained extras, overriding ``objective.init``'s.
    objective_state
        Start value of the objective's untrained state, overriding ``objective.init``'s.
    """
    typed, _ = as_typed_key(key)
    if extras is None or objective_state is None:
        ex0, st0 = objective.init(key, energy_fn, params, batch)
        extras = ex0 if extras is None else extras
        objective_state = st0 if objective_state is None else objective_state
    # compiled (once per optimizer object): eager init compiles one tiny program per leaf
    opt_state = jax.jit(optimizer.init)((params, extras))
    zero = np.int32(0)
    return TrainState(
        params=params, extras=extras, opt_state=opt_state, objective_state=objective_state,
        step=zero, key=typed, num_skipped=zero, consecutive_skips=zero,
        best_params=params, best_extras=extras, best_loss=np.float64(np.inf),
        best_step=np.int32(-1), evals_since_best=zero)
