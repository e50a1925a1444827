"""Scaling out on JAX's own SPMD engine: chains over the devices of a mesh.

One device stays the default. More devices come from a :class:`jax.sharding.Mesh` the user
passes in, with the axis name ``"chain"`` for independent chains (replicas, AIS particles)
and ``"data"`` for minibatch rows. Arrays are placed with
:class:`~jax.sharding.NamedSharding` and XLA's automatic partitioner (GSPMD) inserts the
collectives: this module never writes its own distribution layer.

The same program runs on one host (forced host devices, GPUs) and on many hosts after
``jax.distributed.initialize()``, where every process builds the same mesh over
``jax.devices()`` and runs the same code (see the "Scaling out" guide).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .checks import positive_int
from .typing import PyTree

__all__ = [
    "make_mesh",
    "ShardedChains",
    "sharded_chains",
    "place",
    "replicate",
    "shard_leading",
    "gather",
    "axis_size",
]


def make_mesh(
    axis_name: str = "chain", num_devices: int | None = None, devices: Sequence[Any] | None = None
) -> Mesh:
    """A one-axis mesh over ``num_devices`` devices (default: every device of every process).

    Parameters
    ----------
    axis_name : str
        ``"chain"`` for independent chains or particles, ``"data"`` for minibatch rows.
    num_devices : int, optional
        Use the first ``num_devices`` of ``devices``.
    devices : sequence of jax.Device, optional
        Defaults to ``jax.devices()`` (global: all processes after ``jax.distributed``).

    Raises
    ------
    ValueError
        If ``num_devices`` is not a positive int or exceeds the devices available.
    """
    devs = list(jax.devices() if devices is None else devices)
    n = positive_int(num_devices, "num_devices", allow_none=True) or len(devs)
    if n > len(devs):
        raise ValueError(
            f"num_devices={n} but only {len(devs)} device(s) are available "
            f"({devs[0].platform}); on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count"
            "=N before JAX is imported"
        )
    return Mesh(np.array(devs[:n]), (axis_name,))


def axis_size(mesh: Any, axis_name: str, what: str) -> int:
    """The size of ``mesh``'s axis ``axis_name``; errors name ``what`` needs it.

    Raises ``TypeError`` for a non-mesh and ``ValueError`` for a mesh without the axis.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if axis_name not in mesh.shape:
        raise ValueError(
            f"mesh has axes {tuple(mesh.axis_names)} but {what} needs an axis named "
            f"{axis_name!r}; build one with numpyro_ebm.make_mesh({axis_name!r})"
        )
    return int(mesh.shape[axis_name])


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def place(tree: PyTree, mesh: Mesh, spec_fn: Callable[[Any], P]) -> PyTree:
    """Place every array leaf of ``tree`` on ``mesh`` with ``NamedSharding(mesh, spec_fn(leaf))``.

    Works on one process and across processes: each process passes the same full host
    value and keeps only its own devices' slices (no ``device_put`` to other hosts' devices).
    Typed PRNG keys are supported; ``None`` leaves stay ``None``.
    """

    def put(leaf):
        if leaf is None:
            return None
        if _is_key(leaf):
            data = put(jax.random.key_data(leaf))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        arr = np.asarray(leaf)
        sharding = NamedSharding(mesh, spec_fn(arr))
        return jax.make_array_from_callback(arr.shape, sharding, lambda idx: arr[idx])

    return jax.tree.map(put, tree, is_leaf=_is_key)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Every array leaf of ``tree`` replicated on all devices of ``mesh``."""
    return place(tree, mesh, lambda _: P())


def shard_leading(tree: PyTree, mesh: Mesh, axis_name: str = "chain") -> PyTree:
    """Place every array leaf of ``tree`` with its leading axis split over ``mesh[axis_name]``.

    Works on one process and across processes (each process passes the same full value;
    it keeps only its devices' slices). Typed PRNG keys are supported.

    Raises
    ------
    ValueError
        If the mesh lacks ``axis_name`` or a leading axis is not divisible by its size.
    """
    size = axis_size(mesh, axis_name, "shard_leading")

    def check(path, leaf):
        shape = np.shape(jax.random.key_data(leaf) if _is_key(leaf) else leaf)
        if len(shape) == 0 or shape[0] % size:
            raise ValueError(
                f"leaf {jax.tree_util.keystr(path) or '<root>'} has shape {shape}: its "
                f"leading axis must be divisible by the mesh axis {axis_name!r} of size {size}"
            )

    jax.tree_util.tree_map_with_path(check, tree, is_leaf=_is_key)
    return place(tree, mesh, lambda _: P(axis_name))


class ShardedChains:
    """A NumPyro ``chain_method`` that runs chains vmapped and split over a mesh axis.

    ``MCMC(kernel, num_chains=C, chain_method=ShardedChains(mesh))`` runs the same
    per-chain program as ``chain_method="sequential"`` (``jax.vmap`` instead of a loop)
    with the chains split over the devices of ``mesh[axis_name]``. In float64
    (``jax_enable_x64``) the draws do not depend on the number of devices, up to rounding;
    in float32 rounding differences grow through accept/reject decisions and step-size
    adaptation, so other layouts give equally valid but different chains (each layout is
    reproducible). Unlike NumPyro's ``"parallel"``
    (``pmap``, one chain per local device), any number of chains divisible by the axis size
    works, and the mesh may span several processes.

    Parameters
    ----------
    mesh : jax.sharding.Mesh
        Must have an axis named ``axis_name``.
    axis_name : str
        Default ``"chain"``.

    Raises
    ------
    ValueError
        At construction if the mesh lacks the axis; at ``run`` if ``num_chains`` is not
        divisible by the axis size.
    """

    def __init__(self, mesh: Mesh, axis_name: str = "chain") -> None:
        self.size = axis_size(mesh, axis_name, "ShardedChains")
        self.mesh = mesh
        self.axis_name = axis_name

    def __repr__(self) -> str:
        return f"ShardedChains(mesh={dict(self.mesh.shape)}, axis_name={self.axis_name!r})"

    def __call__(self, single_chain_fn: Callable) -> Callable:
        def run(map_args):
            num_chains = int(jax.tree.leaves(map_args[0])[0].shape[0])
            if num_chains % self.size:
                raise ValueError(
                    f"num_chains={num_chains} is not divisible by the mesh axis "
                    f"{self.axis_name!r} of size {self.size}; use a multiple of {self.size}"
                )
            placed = shard_leading(map_args, self.mesh, self.axis_name)
            return jax.jit(jax.vmap(single_chain_fn))(placed)

        return run


def sharded_chains(mesh: Mesh, axis_name: str = "chain") -> ShardedChains:
    """Shorthand for :class:`ShardedChains` (a NumPyro ``chain_method``)."""
    return ShardedChains(mesh, axis_name)


def gather(tree: PyTree) -> PyTree:
    """Host NumPy copies of every array leaf, gathered from all processes when sharded.

    On one process this is ``jax.device_get``; after ``jax.distributed.initialize`` an
    array that spans other processes' devices is all-gathered first (every process must
    call it). Use it before ArviZ conversion in a multi-host run.
    """

    def get(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if _is_key(leaf):
                leaf = jax.random.key_data(leaf)
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return jax.device_get(leaf)

    return jax.tree.map(get, tree)
