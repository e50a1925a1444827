"""Data-parallel fitting on a ``jax.sharding.Mesh`` with a ``"data"`` axis.

Params, optimizer state and the data set are replicated on every device; each minibatch is
split over the ``"data"`` axis (a sharding constraint inside the compiled step), and XLA's
partitioner inserts the all-reduce of the gradient. Objective state that grows with chains
or data (arrays of rank >= 2 whose leading axis divides evenly, such as the PCD replay
buffer's samples) is split over the same axis. With one device per axis the result equals
the unsharded run up to float rounding.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..sharding import axis_size, gather, place, replicate
from ..typing import PyTree
from .state import TrainState

__all__ = ["DATA_AXIS", "check_mesh", "place_state", "place_data", "constrain_batch",
           "host_state", "is_writer"]

DATA_AXIS = "data"


def check_mesh(mesh: Any, batch_size: int) -> Mesh | None:
    """``mesh`` checked for a ``"data"`` axis that divides ``batch_size`` (``None`` passes).

    Raises ``TypeError`` for a non-mesh and ``ValueError`` naming the axis sizes otherwise.
    """
    if mesh is None:
        return None
    size = axis_size(mesh, DATA_AXIS, "fit(mesh=...)")
    if batch_size % size:
        raise ValueError(
            f"batch_size={batch_size} is not divisible by the mesh axis {DATA_AXIS!r} of size "
            f"{size}; use a multiple of {size}"
        )
    return mesh


def place_state(state: TrainState, mesh: Mesh) -> TrainState:
    """Replicate ``state`` on ``mesh``, splitting large objective-state arrays over data."""
    size = int(mesh.shape[DATA_AXIS])

    def spec(arr: np.ndarray) -> P:
        return P(DATA_AXIS) if arr.ndim >= 2 and arr.shape[0] % size == 0 else P()

    others = replicate(state._replace(objective_state=None), mesh)
    return others._replace(objective_state=place(state.objective_state, mesh, spec))


def place_data(data: PyTree, mesh: Mesh) -> PyTree:
    """The data set replicated on every device (rows are gathered into batches on device)."""
    return None if data is None else replicate(data, mesh)


def constrain_batch(batch: PyTree, mesh: Mesh | None) -> PyTree:
    """Inside ``jit``: ask for ``batch``'s rows to be split over the ``"data"`` axis."""
    if mesh is None:
        return batch
    sharding = NamedSharding(mesh, P(DATA_AXIS))
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)


def host_state(state: TrainState, mesh: Mesh | None) -> TrainState:
    """Host copies of ``state`` (gathered from every process when the mesh spans several)."""
    return state if mesh is None else gather(state)


def is_writer() -> bool:
    """Whether this process writes files (process 0 of a multi-process run)."""
    return jax.process_index() == 0
