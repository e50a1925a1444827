"""The training driver :func:`fit`: a thin host loop around the compiled chunk runner.

Each pass of the loop runs one chunk of steps on the device (:func:`run_chunk`), validates
its result, and only then commits it (state, history, checkpoint, progress bar), so an
interrupt at any point loses at most the chunk in flight and a resumed run recomputes it
exactly.
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from .._warnings import NumpyroEBMWarning
from ..checks import all_finite
from ..objectives.base import Objective
from ..typing import Array, EnergyFn, Params, PyTree
from . import pacing
from .arguments import FitConfig, check_fit_arguments, energy_check_error
from .checkpoint import load_train_state, save_train_state
from .chunk import ChunkResult, replay, run_chunk, run_chunk_unguarded, step_keys, user_key
from .evaluation import Validation, evaluate, record_validation
from .parallel import check_mesh, host_state, is_writer, place_data, place_state
from .progress import History, progress_bar
from .state import TrainState, as_typed_key, init_train_state
from .step import TrainStep, make_train_step

__all__ = ["fit", "FitResult"]

_DEFAULT_OPTIMIZER = optax.adam(1e-3)


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``history`` maps ``"step"``, ``"loss"``, ``"skipped"`` and each metric to one entry per
    step, and ``"val_step"``, ``"val_loss"``, ``"val_<metric>"`` to one per evaluation.
    ``best_params``/``best_extras`` have the lowest validation loss (the final ones when no
    validation data is given). ``stopped_reason`` starts with ``"completed"``,
    ``"early_stopping"``, ``"nonfinite"`` or ``"interrupted"``. ``state`` is the final
    :class:`~numpyro_ebm.training.TrainState`.
    """

    params: PyTree
    extras: PyTree
    objective_state: PyTree
    opt_state: PyTree
    step: int
    history: dict[str, np.ndarray]
    best_params: PyTree
    best_extras: PyTree
    stopped_reason: str
    key: Array
    num_skipped: int
    state: TrainState


class _Rollback(NamedTuple):
    """Where an unhealthy first step of the next chunk rolls back to: ``prev`` when known,
    else the state after ``count - 1`` steps from ``start`` (recomputed only if needed)."""

    prev: PyTree | None
    start: TrainState | None = None
    count: int = 0


class _Chunk(NamedTuple):
    """A chunk's outcome, validated but not yet committed."""

    state: TrainState
    records: dict[str, np.ndarray]
    validation: Validation | None
    halted: bool
    reason: str | None


class _RunKeys(NamedTuple):
    """The keys a run derives from its base key outside the chunk (in the user's kind)."""

    init: Array  # objective.init's
    loss: Array  # the loss key of step 0 (for checking that the loss traces)
    validation: Array  # every evaluation's
    result: Array  # FitResult.key: for whatever the user does next

    @classmethod
    def of(cls, keys: tuple[Array, ...]) -> _RunKeys:
        """From the run's ``step_keys`` (already in the user's kind)."""
        _, loss, init, validation, result = keys
        return cls(init, loss, validation, result)


def _run_keys_of(base_key: Array, legacy: bool) -> _RunKeys:
    return _RunKeys.of(tuple(user_key(k, legacy) for k in step_keys(base_key)))


# the run's keys alone: for a run in which no chunk ran (each chunk returns them)
_run_keys = jax.jit(_run_keys_of, static_argnames=("legacy",))


@partial(jax.jit, static_argnames=("batch_size", "legacy"))
def _init_batch(base_key: Array, data: PyTree, batch_size: int, legacy: bool
                ) -> tuple[PyTree, _RunKeys]:
    """One batch of rows drawn at random for ``objective.init``, and the run's keys.

    One compiled function for everything ``fit`` draws outside the chunk: each separately
    compiled program costs 0.1-0.5 s of XLA start-up on a CPU, comparable to the whole
    run of a small model.
    """
    keys = _run_keys_of(base_key, legacy)
    n = jax.tree.leaves(data)[0].shape[0]
    init_key = step_keys(base_key)[2]
    # 32 random bits modulo N (bias below N / 2^32): randint's exact range reduction
    # compiles to several times the code
    bits = jax.random.bits(jax.random.fold_in(init_key, 1), (batch_size,), jnp.uint32)
    idx = (bits % jnp.uint32(n)).astype(jnp.int32)
    batch = jax.tree.map(lambda a: a[idx], data)
    return batch, keys


def _abstract_batch(data: PyTree, batch_size: int) -> PyTree:
    """The shapes and dtypes of one batch of ``data``."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch_size,) + a.shape[1:], a.dtype),
                        data)


class _AbstractStart(NamedTuple):
    """A run's start from shapes alone: the state, the run's keys and one batch."""

    state: TrainState
    keys: _RunKeys
    batch: PyTree


def _abstract_start(step_fn: TrainStep, params: Params, cfg: FitConfig, base_key: Array,
                    legacy: bool, extras: PyTree, objective_state: PyTree
                    ) -> _AbstractStart | None:
    """``init_train_state`` under ``jax.eval_shape``: no rows drawn, nothing of
    ``objective.init`` or ``optimizer.init`` run or compiled. ``None`` where that fails
    (the concrete path then reports the error, an energy's first).

    A resumed run reads its checkpoint into this state; a fresh run uses its extras and
    objective state as they are when they hold no arrays (score matching, CD, energy
    discrepancy, CNCE): values of the batch and key cannot matter to them, and drawing the
    rows is a separately compiled program (about 0.3 s of a first ``fit`` on a 2-core CPU,
    ``jax_log_compiles``).
    """
    def build(p, init_key, batch):
        return init_train_state(step_fn.energy_fn, p, step_fn.objective, step_fn.optimizer,
                                init_key, batch, extras=extras, objective_state=objective_state)

    try:
        keys = jax.eval_shape(partial(_run_keys_of, legacy=legacy), base_key)
        batch = _abstract_batch(cfg.data, cfg.batch_size)
        state = jax.eval_shape(build, params, keys.init, batch)
    except Exception:
        return None
    return _AbstractStart(state._replace(key=base_key), keys, batch)


def _initial_state(step_fn: TrainStep, params: Params, cfg: FitConfig, base_key: Array,
                   legacy: bool, extras: PyTree, objective_state: PyTree
                   ) -> tuple[TrainState, _RunKeys | None]:
    """``init_train_state`` on a random batch, and the run's keys; energy errors are
    reported first.

    When ``objective.init`` is not needed (given, or without arrays), no batch is drawn and
    the keys are ``None``: the first chunk returns them.

    An energy that fails on one event may still be right if the objective supplies its
    context (e.g. a noise level): then the objective's loss must trace on one batch.
    """
    energy_err = energy_check_error(step_fn.energy_fn, params, cfg.data)
    start = _abstract_start(step_fn, params, cfg, base_key, legacy, extras, objective_state)
    # what init would supply (the parts not given), from shapes alone
    from_init = {} if start is None else {
        name: getattr(start.state, name)
        for name, given in (("extras", extras), ("objective_state", objective_state))
        if given is None}
    if start is not None and not jax.tree.leaves(list(from_init.values())):
        # no arrays: nothing drawn, and the rows' shapes stand in for them
        extras = from_init.get("extras", extras)
        objective_state = from_init.get("objective_state", objective_state)
        keys, first, init_key, loss_key = None, start.batch, base_key, start.keys.loss
    else:
        first, keys = _init_batch(base_key, cfg.data, cfg.batch_size, legacy)
        init_key, loss_key = keys.init, keys.loss
    try:
        state = init_train_state(step_fn.energy_fn, params, step_fn.objective, step_fn.optimizer,
                                 init_key, first, extras=extras,
                                 objective_state=objective_state)
    except Exception:
        if energy_err is not None:
            raise energy_err from None
        raise
    _check_loss(step_fn, state, first, loss_key, cfg.data, energy_err)
    return state._replace(key=base_key), keys


def _check_loss(step_fn: TrainStep, state: TrainState, batch: PyTree, loss_key: Any,
                data: PyTree, energy_err: Exception | None) -> None:
    """Trace the objective's loss on one batch, abstractly, before the chunk compiles; its
    gradient and the update cannot fail where it does not. The trace is not wasted: the
    chunk's step reuses it (:meth:`TrainStep.trace_loss`). A failure is reported as the
    energy's error when the energy failed on one event, else with a note naming the data.
    """
    try:
        step_fn.trace_loss(state.trainable, state.objective_state, batch, loss_key)
    except Exception as err:
        if energy_err is not None:
            raise energy_err from None
        shape = tuple(jax.tree.leaves(data)[0].shape)
        err.add_note(
            f"(raised while fit traced objective {step_fn.objective.name!r}'s loss on a batch "
            f"of data of shape {shape}; objectives that supply a context call "
            "energy_fn(params, x, context): denoising_score_matching(noise_conditional=True) "
            "passes the noise level sigma, so the energy needs a context input, e.g. "
            "mlp_energy(..., context_dim=1))")
        raise


def _resume_template(step_fn: TrainStep, params: Params, cfg: FitConfig, base_key: Array,
                     legacy: bool, extras: PyTree, objective_state: PyTree
                     ) -> TrainState | None:
    """The state a checkpoint is read into, from shapes alone (:func:`_abstract_start`:
    the checkpoint replaces every leaf), its loss checked; ``None`` where that fails."""
    start = _abstract_start(step_fn, params, cfg, base_key, legacy, extras, objective_state)
    if start is None:
        return None
    _check_loss(step_fn, start.state, start.batch, start.keys.loss, cfg.data,
                energy_check_error(step_fn.energy_fn, params, cfg.data))
    return start.state


def _resume(path: str | os.PathLike, state: TrainState, key: Any, reseed: bool,
            extras: PyTree, objective_state: PyTree, batch_size: int
            ) -> tuple[TrainState, History, bool]:
    """The checkpointed state, history and key kind; with ``reseed``, the key is ``key``'s.

    Warns (never silently ignores) when a given key, ``extras`` or ``objective_state``
    would be replaced by the checkpoint's values, and when ``batch_size`` differs from the
    checkpointed run's (it is used, but the run is no longer the uninterrupted one).
    """
    given_key = state.key
    state, history, meta = load_train_state(path, state)
    saved = meta.get("batch_size")
    if saved is not None and int(saved) != batch_size:
        warnings.warn(
            f"batch_size={batch_size} differs from the checkpointed run's batch_size={saved}: "
            f"the resumed run draws batches of {batch_size} from step {int(state.step)} on, so "
            "it is not bit for bit the uninterrupted run (epoch boundaries move, and the "
            "epoch in progress may repeat or miss rows); pass batch_size="
            f"{saved} to continue that run exactly", NumpyroEBMWarning, stacklevel=3)
    if reseed:
        state = state._replace(key=given_key)
    elif key is not None and not np.array_equal(jax.random.key_data(given_key),
                                                jax.random.key_data(state.key)):
        warnings.warn(
            "key is ignored: resume_from continues the checkpointed run with its own key "
            "(bit for bit); pass reseed=True to continue with new randomness from key",
            NumpyroEBMWarning, stacklevel=3)
    for name, value in (("extras", extras), ("objective_state", objective_state)):
        if value is not None:
            warnings.warn(f"{name} is ignored: resume_from restores the checkpoint's {name}",
                          NumpyroEBMWarning, stacklevel=3)
    return state, History(history), bool(meta.get("legacy_key", False))


def _chunk_end(step: int, cfg: FitConfig, size: int) -> int:
    """The step the next chunk stops at: ``size`` steps on, the run's end, or the next
    eval or checkpoint step."""
    end = min(step + size, cfg.total)
    for every in (cfg.eval_every, cfg.checkpoint_every):
        if every is not None:
            end = min(end, (step // every + 1) * every)
    return end


def _halt_reason(cfg: FitConfig, records: dict[str, np.ndarray], consecutive: int) -> str:
    """The ``stopped_reason`` of a halted run, with the bad step's recorded metrics."""
    bad_step = int(records["step"][-1])
    shown = ", ".join(f"{k}={float(np.ravel(v[-1])[0]):.4g}" for k, v in records.items()
                      if k not in ("step", "skipped") and np.size(v[-1]) == 1)
    if cfg.mode == "stop":
        return (f"nonfinite: step {bad_step} had a non-finite loss, update or optimizer "
                f"state, or objective.is_healthy was False (for CD/PCD: acceptance_rate "
                f"below min_acceptance, energy_abs_max above max_abs_energy, or "
                f"|energy_gap| above max_energy_gap); then the update that damaged the "
                f"params is rolled back too; params are the last good ones. That step's "
                f"metrics: {shown}")
    return (f"nonfinite: {consecutive} consecutive bad steps up to step {bad_step} "
            f"(max_consecutive_skips={cfg.max_skips}); params are the last good ones. "
            f"The last bad step's metrics: {shown}")


def _validate(step_fn: TrainStep, state: TrainState, cfg: FitConfig, val_key: Any
              ) -> tuple[TrainState, Validation]:
    loss, metrics = evaluate(step_fn, state, cfg.validation_data, val_key)
    loss, metrics = float(loss), jax.device_get(metrics)
    state, stop = record_validation(state, loss, cfg.patience)
    return state, Validation(loss, metrics, stop)


def _finish_chunk(step_fn: TrainStep, out: ChunkResult, cfg: FitConfig, val_key: Array
                  ) -> _Chunk:
    """Fetch a chunk's records (one transfer), name a halt, validate when due."""
    count, halted, records = jax.device_get((out.count, out.halted, out.records))
    records = {k: np.asarray(v)[:int(count)] for k, v in records.items()}
    state, halted = out.state, bool(halted)
    step = int(state.step)
    reason = _halt_reason(cfg, records, int(state.consecutive_skips)) if halted else None
    validation = None
    due = cfg.eval_every is None or step % cfg.eval_every == 0
    if cfg.validation_data is not None and (step >= cfg.total or halted or due):
        state, validation = _validate(step_fn, state, cfg, val_key)
        if validation.stop and not halted:
            halted = True
            reason = (f"early_stopping: no val_loss improvement in {cfg.patience} "
                      f"evaluations (best {float(state.best_loss):.6g} at step "
                      f"{int(state.best_step)})")
    return _Chunk(state, records, validation, halted, reason)


def _commit(chunk: _Chunk, history: History) -> dict[str, str]:
    """Add a chunk's records and validation to ``history``; the progress-bar postfix."""
    history.add(chunk.records)
    finite = chunk.records["loss"][np.isfinite(chunk.records["loss"])]
    postfix = {"loss": f"{float(finite.mean()):.4g}"} if finite.size else {}
    if chunk.validation is not None:
        val = chunk.validation
        history.add({"val_step": [int(chunk.state.step)], "val_loss": [val.loss],
                     **{f"val_{k}": [v] for k, v in val.metrics.items()}})
        postfix["val_loss"] = f"{val.loss:.4g}"
    return postfix


def _run_one_chunk(step_fn: TrainStep, state: TrainState, rollback: _Rollback,
                   cfg: FitConfig, legacy: bool, num: int, guard: bool, mesh: Mesh | None
                   ) -> tuple[ChunkResult, _Rollback, float | None]:
    """One chunk: the fast (unguarded) runner first; if it reports a bad step, the chunk is
    rerun from its start under the guard, with the rollback target recomputed if needed.
    ``guard`` skips the fast attempt (after a chunk that had bad steps). Also returns the
    wall seconds of the fast chunk, from its dispatch to its result (a compilation included:
    the chunk after a run's first is then short, and pacing grows back within a few chunks;
    timing from after the dispatch would read zero on a backend that runs it in the
    caller), or ``None`` when the guard ran.

    ``best_params``/``best_extras`` stay out of the compiled loop (no step changes them):
    every leaf passed in and out costs dispatch time, once per chunk.
    """
    kw = dict(step_fn=step_fn, length=pacing.compiled_length(cfg.steps_per_chunk),
              batch_size=cfg.batch_size, legacy=legacy, mesh=mesh)
    best = {"best_params": state.best_params, "best_extras": state.best_extras}
    lean = state._replace(best_params=(), best_extras=())
    if not guard:
        t0 = time.perf_counter()
        out = run_chunk_unguarded(lean, cfg.data, num, **kw)
        if not bool(out.halted):
            seconds = time.perf_counter() - t0
            out = out._replace(state=out.state._replace(**best))
            return out, _Rollback(None, state, int(out.count)), seconds
    prev = rollback.prev
    if step_fn.objective.is_healthy is None:
        prev = ()
    elif prev is None:
        start = rollback.start._replace(best_params=(), best_extras=())
        s = replay(start, cfg.data, rollback.count - 1, **kw)
        prev = (s.params, s.extras, s.opt_state, s.objective_state)
    out = run_chunk(lean, prev, cfg.data, num, mode=cfg.mode, max_skips=cfg.max_skips, **kw)
    return out._replace(state=out.state._replace(**best)), _Rollback(out.prev), None


def _train(step_fn: TrainStep, state: TrainState, history: History, cfg: FitConfig,
           legacy: bool, keys: _RunKeys | None, mesh: Mesh | None = None
           ) -> tuple[TrainState, str, _RunKeys]:
    """The host loop: chunks until done, halted or interrupted; ``(state, reason, keys)``.
    ``keys=None``: the run's keys are taken from its first chunk."""
    def save():
        if cfg.checkpoint_path is None:  # same on every process: no one enters the gather
            return
        # every process gathers (a collective); process 0 writes, atomically
        host = host_state(state, mesh)
        if is_writer():
            save_train_state(cfg.checkpoint_path, host, history.arrays(),
                             meta={"objective": step_fn.objective.name, "total_steps": cfg.total,
                                   "legacy_key": legacy, "batch_size": cfg.batch_size,
                                   "mesh_shape": None if mesh is None else dict(mesh.shape)})

    # the rollback target of unhealthy steps, kept across chunks (right after a start or a
    # resume: the state itself)
    rollback = _Rollback((state.params, state.extras, state.opt_state, state.objective_state))
    reason, halted, guard = "completed", False, False
    size = pacing.first_size(cfg.steps_per_chunk)
    bar = progress_bar(cfg.total, int(state.step), cfg.progress_bar, step_fn.objective.name)
    try:
        while int(state.step) < cfg.total and not halted:
            start, skipped = int(state.step), int(state.num_skipped)
            num = _chunk_end(start, cfg, size) - start
            out, new_rollback, seconds = _run_one_chunk(step_fn, state, rollback, cfg, legacy,
                                                        num, guard, mesh)
            size = pacing.next_size(cfg.steps_per_chunk, size, num, seconds)
            keys = _RunKeys.of(out.run_keys) if keys is None else keys
            chunk = _finish_chunk(step_fn, out, cfg, keys.validation)
            # the chunk is complete and validated: commit it
            state, rollback, halted = chunk.state, new_rollback, chunk.halted
            guard = int(state.num_skipped) > skipped
            reason = chunk.reason or reason
            postfix = _commit(chunk, history)
            step = int(state.step)
            if step >= cfg.total or halted or (
                    cfg.checkpoint_every is not None and step % cfg.checkpoint_every == 0):
                save()
            bar.set_postfix(postfix, refresh=False)
            bar.update(step - start)
    except KeyboardInterrupt:
        reason = "interrupted"
        save()
    finally:
        bar.close()
    return state, reason, _run_keys(state.key, legacy) if keys is None else keys


# long only because of its signature (22 keyword arguments, each documented below); the
# body is argument checks, the initial state, an optional resume and the host loop
def fit(
    energy_fn: EnergyFn,
    params: Params,
    data: Any,
    objective: Objective,
    *,
    key: Any = None,
    optimizer: optax.GradientTransformation | None = None,
    num_steps: int | None = None,
    num_epochs: int | None = None,
    batch_size: int = 128,
    validation_data: Any = None,
    eval_every: int | None = None,
    patience: int | None = None,
    steps_per_chunk: int | None = None,
    progress_bar: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | os.PathLike | None = None,
    reseed: bool = False,
    on_nonfinite: str = "stop",
    extras: PyTree = None,
    objective_state: PyTree = None,
    max_consecutive_skips: int | None = None,
    mesh: Mesh | None = None,
) -> FitResult:
    """Fit ``energy_fn``'s params (and the objective's extras) to ``data``.

    Minimises ``L(params, extras) = objective.loss(...)`` on shuffled minibatches with one
    optax ``optimizer`` (default ``optax.adam(1e-3)``; clip and schedule with ``optax.chain``).

    Parameters
    ----------
    energy_fn
        The energy ``energy_fn(params, x[, context]) -> scalar`` of one event ``x`` (and its
        context, for paired data).
    params
        The initial parameters of ``energy_fn`` (a pytree of finite arrays).
    data
        Array of shape ``(N,) + event_shape``, or a tuple of arrays sharing ``N`` (paired
        data such as ``(x, theta)``); batches keep the same form. The events (``data`` or
        ``data[0]``) must be floating (``TypeError`` otherwise, not converted); context
        arrays may be integers.
    objective
        An :class:`~numpyro_ebm.Objective`.
    optimizer
        An ``optax.GradientTransformation`` applied to ``(params, extras)``; default
        ``optax.adam(1e-3)``.
    key
        ``jax.random.key`` or legacy ``PRNGKey``; step ``t`` uses ``fold_in(., t)``.
        Required unless resuming (a resumed run uses the checkpoint's key).
    num_steps
        Length of the run in optimizer steps; give exactly one of ``num_steps`` and
        ``num_epochs``. With ``resume_from`` it is the total, the resumed steps included.
    num_epochs
        Length of the run in epochs (the alternative to ``num_steps``). An epoch is
        ``N // batch_size`` steps (the remainder of each permutation is dropped).
    batch_size
        Rows per minibatch, at most ``N``.
    validation_data
        Held-out data (same form as ``data``), evaluated as one batch with a fixed key;
        ``best_params`` keep the parameters of the lowest ``val_loss``.
    eval_every
        Evaluate ``validation_data`` every this many steps and at the end (default: every
        ``steps_per_chunk`` steps when that is given, else every 50 steps).
    patience
        Stop after this many evaluations without improvement of ``val_loss`` (default:
        never stop early).
    steps_per_chunk
        Steps per compiled loop (one host round-trip and progress update each). Default
        ``None``: paced, about 1 s of steps per chunk (timed on the run's own chunks,
        10 steps first, at most 1000; fixed 50 in a multi-process run); the result does
        not depend on the pacing (``numpyro_ebm/training/pacing.py``).
    progress_bar
        Show a tqdm progress bar (updated once per chunk).
    checkpoint_path
        Where to write an ``.npz`` checkpoint: every ``checkpoint_every`` steps, at the end
        and on interrupt.
    checkpoint_every
        Steps between checkpoints (needs ``checkpoint_path``; default: only at the end and
        on interrupt).
    resume_from
        A checkpoint to continue bit for bit (its key too: a different ``key`` given with it
        is ignored, with a ``NumpyroEBMWarning``, unless ``reseed``).
    reseed
        With ``resume_from`` and ``key``: continue the checkpointed state with new
        randomness drawn from ``key`` (batches and the objective's noise from the resumed
        step on), e.g. to restart a diverged run from its last checkpoint with a new seed.
    on_nonfinite
        ``"stop"``: stop at the first bad step (non-finite loss, update or optimizer state,
        or ``objective.is_healthy`` False), keeping the last good params. ``"skip"``: skip
        bad steps and go on, stopping after ``max_consecutive_skips`` (default 100) bad
        steps in a row. ``is_healthy`` judges the params *before* a step (its metrics are
        computed there), so an unhealthy step also rolls back the previous update, and the
        retry after it uses fresh randomness. The rollback target is kept in memory, across
        chunks, but not in checkpoints: right after a resume it is the resumed state.
    extras
        Start values of the objective's trained extras (e.g. NCE's ``log Z``); default from
        ``objective.init(key, energy_fn, params, batch)``.
    objective_state
        Start value of the objective's untrained state (e.g. the PCD replay buffer); default
        from ``objective.init``.
    max_consecutive_skips
        The limit of ``on_nonfinite="skip"`` (refused with ``"stop"``).
    mesh
        A ``jax.sharding.Mesh`` with a ``"data"`` axis (e.g. ``numpyro_ebm.make_mesh("data")``)
        for data-parallel fitting: params replicated, each batch split over the axis
        (``batch_size`` must be divisible by its size), large objective state (the PCD
        replay buffer) split too. Same result as without a mesh up to float rounding;
        checkpoints hold gathered host arrays (written by process 0) and resume on any mesh.
        After ``jax.distributed.initialize()`` the mesh may span processes: every process
        runs the same ``fit`` call.

    Returns
    -------
    FitResult

    Raises
    ------
    TypeError, ValueError
        For bad arguments (naming the argument), before anything compiles.
    """
    cfg = check_fit_arguments(
        energy_fn, objective, data,
        optimizer=_DEFAULT_OPTIMIZER if optimizer is None else optimizer,
        num_steps=num_steps, num_epochs=num_epochs, batch_size=batch_size,
        validation_data=validation_data, eval_every=eval_every, patience=patience,
        steps_per_chunk=steps_per_chunk, progress_bar=progress_bar,
        checkpoint_path=checkpoint_path, checkpoint_every=checkpoint_every,
        on_nonfinite=on_nonfinite, max_consecutive_skips=max_consecutive_skips)
    if key is None and (resume_from is None or reseed):
        raise ValueError("key is required (a jax.random.key or PRNGKey)" + (
            " with reseed=True" if reseed else "; only resume_from may go without it"))
    if reseed and resume_from is None:
        raise ValueError("reseed=True needs resume_from (a checkpoint to continue with "
                         "new randomness)")
    all_finite(params, "params")
    mesh = check_mesh(mesh, cfg.batch_size)
    base_key, legacy = as_typed_key(jax.random.key(0) if key is None else key)
    step_fn = make_train_step(energy_fn, objective, cfg.optimizer)
    keys: _RunKeys | None = None
    state = None if resume_from is None else _resume_template(
        step_fn, params, cfg, base_key, legacy, extras, objective_state)
    if state is None:
        state, keys = _initial_state(step_fn, params, cfg, base_key, legacy, extras,
                                     objective_state)
    history = History()
    if resume_from is not None:
        state, history, was_legacy = _resume(resume_from, state, key, reseed, extras,
                                             objective_state, cfg.batch_size)
        legacy = was_legacy if key is None else legacy
        if int(state.step) > cfg.total:
            warnings.warn(f"the checkpoint is at step {int(state.step)}, past the "
                          f"{cfg.total} steps asked for: nothing runs (num_steps counts from "
                          f"the start of the original run)", NumpyroEBMWarning, stacklevel=2)
    if mesh is not None:
        state = place_state(state, mesh)
        cfg = cfg._replace(data=place_data(cfg.data, mesh),
                           validation_data=place_data(cfg.validation_data, mesh))
    if resume_from is not None or mesh is not None:
        keys = None  # the chunk's: from the checkpoint's key, or placed on the mesh
    state, reason, keys = _train(step_fn, state, history, cfg, legacy, keys, mesh)
    best = cfg.validation_data is not None and int(state.best_step) >= 0
    return FitResult(
        params=state.params, extras=state.extras, objective_state=state.objective_state,
        opt_state=state.opt_state, step=int(state.step), history=history.arrays(complete=True),
        best_params=state.best_params if best else state.params,
        best_extras=state.best_extras if best else state.extras, stopped_reason=reason,
        key=keys.result, num_skipped=int(state.num_skipped),
        state=state)
