"""The chunk runner: up to ``length`` guarded train steps in one compiled loop.

Batches come from one on-device permutation per epoch (the argsort of N random words drawn
with ``fold_in(shuffle_key, epoch)``): a data set of at most ``SHUFFLED_COPY_MAX_BYTES`` is
reordered once per epoch and each batch is a contiguous slice of that copy; a larger one
keeps the permutation and gathers each batch's rows (the same batches either way);
step ``t``'s objective key is ``fold_in(loss_key, t)`` (``t ^ (k << 24)`` after ``k``
skipped steps, with an ``is_healthy`` check), with
``shuffle_key, loss_key = split(state.key, 5)[:2]``: every step's randomness is a pure
function of ``(key, t)``, which is what makes resuming exact.

The NaN guard: a step whose loss, updated ``(params, extras)`` or optimizer state is not
finite, or whose metrics fail ``objective.is_healthy``, is not applied. ``is_healthy``
judges the params *before* the step (its metrics are computed there), so an unhealthy step
also rolls back the previous update (to ``prev``, the state before it) and the retry uses
fresh randomness.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from ..typing import Array, PyTree
from .parallel import constrain_batch
from .state import TrainState
from .step import TrainStep

__all__ = ["ChunkResult", "run_chunk", "run_chunk_unguarded", "replay", "shuffled", "user_key",
           "step_keys"]

#: Data sets up to this size (bytes, all arrays together) are reordered once per epoch, so
#: that each step takes a contiguous slice instead of gathering rows: a second copy of the
#: data on each device, for steps 7% faster on FCE with XLA's two CPU threads and about
#: 1% slower on energy discrepancy and CD-5 (2026-11-30,
#: ``benchmarks/studies/fit_batch_rows.py``).
SHUFFLED_COPY_MAX_BYTES = 64 * 2**20


class ChunkResult(NamedTuple):
    """What :func:`run_chunk` returns (device arrays).

    ``records`` maps ``"step"``, ``"loss"``, ``"skipped"`` and each metric to an array of
    ``length`` entries, of which the first ``count`` were run. ``run_keys`` are the
    run's :func:`step_keys` in the kind the objective receives: ``fit`` takes the keys it
    needs outside the chunk from here (a separate program to derive them would cost a
    compilation).
    """

    state: TrainState
    prev: PyTree  # the rollback target (``()`` when the objective has no ``is_healthy``)
    halted: Array  # bool: stopped on a bad step
    count: Array  # int: steps run in this chunk
    records: dict[str, Array]
    run_keys: tuple[Array, ...]  # step_keys(state.key), each through user_key


def user_key(key: Array, legacy: bool) -> Array:
    """``key`` in the kind the user gave: raw ``uint32[2]`` data when ``legacy``."""
    return jax.random.key_data(key) if legacy else key


def step_keys(base_key: Array) -> tuple[Array, Array, Array, Array, Array]:
    """``(shuffle, loss, init, validation, next)`` keys of a run from its base key."""
    return tuple(jax.random.split(base_key, 5))


def _finite(tree: PyTree) -> Array:
    """Whether every float leaf of ``tree`` is finite: the leaves of each dtype are
    concatenated and tested at once (a test per leaf compiles to a reduction per leaf,
    several times the code, for the same work)."""
    by_dtype: dict[Any, list[Array]] = {}
    for x in jax.tree.leaves(tree):
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            by_dtype.setdefault(jnp.result_type(x), []).append(jnp.ravel(x))
    flags = [jnp.all(jnp.isfinite(jnp.concatenate(xs))) for xs in by_dtype.values()]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


def shuffled(shuffle_key: Array, epoch: Array, data: PyTree, copy: bool) -> PyTree:
    """Epoch ``epoch``'s order of the ``N`` rows of ``data``: the rows reordered (``copy``)
    or the permutation itself (``int32[N]``).

    The order is the argsort of ``N`` random 32-bit words drawn with
    ``fold_in(shuffle_key, epoch)``: one sort, where ``jax.random.permutation`` sorts twice
    (the sorts are most of the chunk's code). Unstable: on CPU it takes half the time of the
    stable sort (88 against 197 us at N = 4000). Distinct words give the same order either
    way; a tie (probability about ``N^2 / 2^33`` per epoch) is put in an order that depends
    on the backend's sort, a bias far below anything minibatch SGD can notice.
    """
    n = jax.tree.leaves(data)[0].shape[0]
    bits = jax.random.bits(jax.random.fold_in(shuffle_key, epoch), (n,), jnp.uint32)
    perm = jnp.argsort(bits, stable=False).astype(jnp.int32)
    return jax.tree.map(lambda a: a[perm], data) if copy else perm


def _guarded(step_fn: TrainStep, state: TrainState, prev: PyTree, batch: PyTree, key: Any,
             mode: str, max_skips: int):
    """One step of ``step_fn`` under the NaN guard: ``(state, prev, ok, halted, metrics)``."""
    healthy_fn = step_fn.objective.is_healthy
    new, metrics = step_fn(state, batch, key)
    ok = jnp.isfinite(metrics["loss"]) & _finite((new.params, new.extras, new.opt_state))
    current = (state.params, state.extras, state.opt_state, state.objective_state)
    updated = (new.params, new.extras, new.opt_state, new.objective_state)
    if healthy_fn is None:
        fallback, prev = current, ()
    else:
        # metrics judge the params *before* this update: unhealthy ones were made by the
        # previous update, so roll back to the state before it
        healthy = jnp.asarray(healthy_fn(metrics), bool)
        ok = ok & healthy
        fallback = optax.tree_utils.tree_where(healthy, current, prev)
        prev = optax.tree_utils.tree_where(ok, current, fallback)
    params, extras, opt_state, obj_state = optax.tree_utils.tree_where(ok, updated, fallback)
    consecutive = jnp.where(ok, 0, state.consecutive_skips + 1)
    halted = ~ok if mode == "stop" else consecutive >= max_skips
    state = state._replace(
        params=params, extras=extras, opt_state=opt_state, objective_state=obj_state,
        step=jnp.where(ok | (mode == "skip"), state.step + 1, state.step),
        consecutive_skips=consecutive,
        num_skipped=state.num_skipped + (~ok).astype(state.num_skipped.dtype))
    return state, prev, ok, halted, metrics


def _chunk_loop(update, state: TrainState, prev: PyTree, data: PyTree, num: Array,
                step_fn: TrainStep, length: int, batch_size: int, legacy: bool,
                mesh: Mesh | None):
    """Run ``update`` (guarded or not) for up to ``num`` steps in one ``while_loop``.

    This function is the body of both runners; it draws the batches and keys and records
    each step's ``step``, ``loss``, ``skipped`` and metrics.
    """
    n = jax.tree.leaves(data)[0].shape[0]
    per_epoch = n // batch_size
    run_keys = step_keys(state.key)
    shuffle_key, loss_key = run_keys[:2]
    has_health = step_fn.objective.is_healthy is not None
    # the epoch's order is carried as a reordered copy of the data (small data sets) or as
    # the permutation itself; shapes are static, so this is decided when tracing
    copy = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(data)) \
        <= SHUFFLED_COPY_MAX_BYTES

    def epoch_order(step):
        return shuffled(shuffle_key, step // per_epoch, data, copy)

    def one_step(s, p, order, first):
        # a new order at each epoch start and at the chunk's first step (one call site of
        # the shuffle in the compiled program: it is the costliest part to compile)
        i = s.step % per_epoch
        order = jax.lax.cond((i == 0) | first, epoch_order, lambda _: order, s.step)

        def take(a):  # this step's rows of the epoch's order
            return jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size)

        batch = jax.tree.map(take, order) if copy else jax.tree.map(lambda a: a[take(order)],
                                                                    data)
        batch = constrain_batch(batch, mesh)
        t = s.step.astype(jnp.uint32)
        if has_health:
            # after a rollback, retry with fresh randomness (the same key repeats the damage):
            # the skip count goes into the top byte of the folded-in step (no second hash)
            t = t ^ (s.num_skipped.astype(jnp.uint32) << 24)
        key = jax.random.fold_in(loss_key, t)
        new, p, ok, halted, metrics = update(step_fn, s, p, batch, user_key(key, legacy))
        rec = {"step": s.step, "loss": metrics["loss"], "skipped": ~ok,
               **{k: v for k, v in metrics.items() if k != "loss"}}
        return new, p, order, halted, rec

    # traced once: the record shapes come from the same trace the loop body reuses (a jit
    # call with equal argument types hits JAX's tracing cache; inlined, so no nested call)
    one_step = jax.jit(one_step, inline=True)
    # a placeholder of the order's type: replaced at the first step
    order0 = data if copy else jnp.arange(n, dtype=jnp.int32)
    shapes = jax.eval_shape(lambda: one_step(state, prev, order0, jnp.asarray(True))[4])
    records = {k: jnp.zeros((length,) + s.shape, s.dtype) for k, s in shapes.items()}

    def cond(c):
        return (c[0] < num) & ~c[4]

    def body(c):
        i, s, p, order, _, recs = c
        s, p, order, halted, rec = one_step(s, p, order, i == 0)
        recs = {k: recs[k].at[i].set(rec[k]) for k in recs}
        return i + 1, s, p, order, halted, recs

    init = (jnp.int32(0), state, prev, order0, jnp.asarray(False), records)
    count, state, prev, _, halted, records = jax.lax.while_loop(cond, body, init)
    return ChunkResult(state, prev, halted, count, records,
                       tuple(user_key(k, legacy) for k in run_keys))


@partial(jax.jit, static_argnames=("step_fn", "length", "batch_size", "mode", "max_skips",
                                   "legacy", "mesh"))
def run_chunk(state: TrainState, prev: PyTree, data: PyTree, num: Array, *,
              step_fn: TrainStep, length: int, batch_size: int, mode: str, max_skips: int,
              legacy: bool, mesh: Mesh | None = None) -> ChunkResult:
    """Run ``min(num, length)`` guarded steps from ``state`` (fewer if a bad step halts).

    Parameters
    ----------
    state, prev
        The state and the rollback target of unhealthy steps.
    data
        The training data: array(s) with ``N`` rows.
    num
        Steps to run (dynamic: no recompilation for a short last chunk).
    step_fn
        The :class:`~numpyro_ebm.training.TrainStep`.
    length, batch_size, mode, max_skips, legacy
        Record buffer size, rows per batch, ``on_nonfinite`` mode, the skip limit, and
        whether the objective receives legacy ``uint32`` keys.
    mesh
        A mesh with a ``"data"`` axis: each batch is split over it (data parallelism).
    """
    def update(step_fn, s, p, batch, key):
        return _guarded(step_fn, s, p, batch, key, mode, max_skips)

    return _chunk_loop(update, state, prev, data, num, step_fn, length, batch_size, legacy,
                       mesh)


@partial(jax.jit, static_argnames=("step_fn", "length", "batch_size", "legacy", "mesh"))
def run_chunk_unguarded(state: TrainState, data: PyTree, num: Array, *, step_fn: TrainStep,
                        length: int, batch_size: int, legacy: bool,
                        mesh: Mesh | None = None) -> ChunkResult:
    """Run up to ``num`` plain steps, stopping at the first non-finite loss or unhealthy
    metrics; ``halted`` is True when a step was bad or the final state is not finite.

    The fast path of :func:`fit`: it never copies or selects the state per step. A chunk
    that reports ``halted`` is thrown away and rerun from its start with
    :func:`run_chunk`, which gives the guarded result (bit for bit the same steps).
    """
    def update(step_fn, s, p, batch, key):
        new, metrics = step_fn(s, batch, key)
        ok = jnp.isfinite(metrics["loss"])
        if step_fn.objective.is_healthy is not None:
            ok = ok & jnp.asarray(step_fn.objective.is_healthy(metrics), bool)
        return new, p, ok, ~ok, metrics

    out = _chunk_loop(update, state, (), data, num, step_fn, length, batch_size, legacy, mesh)
    s = out.state
    return out._replace(halted=out.halted | ~_finite((s.params, s.extras, s.opt_state)))


def replay(state: TrainState, data: PyTree, num: int, *, step_fn: TrainStep, length: int,
           batch_size: int, legacy: bool, mesh: Mesh | None = None) -> TrainState:
    """The state after ``num`` unguarded steps from ``state`` (a recomputation of steps that
    were good when first run: the rollback target of a chunk that followed them)."""
    out = run_chunk_unguarded(state, data, num, step_fn=step_fn, length=length,
                              batch_size=batch_size, legacy=legacy, mesh=mesh) if num else None
    return state if out is None else out.state
