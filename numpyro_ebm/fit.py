"""The training driver: minimise an :class:`~numpyro_ebm.Objective` over (params, extras).

One step draws a minibatch (a fresh on-device permutation per epoch), evaluates
``objective.loss`` and its gradient, and applies one optax update to ``(params, extras)``.
Steps run ``steps_per_chunk`` at a time inside ``lax.scan`` (one host round-trip per chunk).
Every step's randomness is a pure function of ``(key, step)`` (``fold_in``), so a run resumed
from a checkpoint continues exactly like an uninterrupted one.
A step with a non-finite loss, gradient or update, or with ``objective.is_healthy`` False,
is skipped inside the scan: params, optimizer and objective state keep their last good value.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, restore_tree, save_checkpoint
from .energy import check_energy, check_params_finite
from .objectives.base import Objective

__all__ = ["fit", "FitResult"]

Array = jax.Array
PyTree = Any

_DEFAULT_OPTIMIZER = optax.adam(1e-3)
_MODES = ("stop", "skip")


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``history`` maps ``"step"``, ``"loss"``, ``"skipped"`` and each metric to one entry per
    step, and ``"val_step"``, ``"val_loss"``, ``"val_<metric>"`` to one per evaluation.
    ``best_params``/``best_extras`` have the lowest validation loss (the final ones when no
    validation data is given). ``stopped_reason`` starts with ``"completed"``,
    ``"early_stopping"``, ``"nonfinite"`` or ``"interrupted"``.
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


class _Carry(NamedTuple):
    trainable: PyTree  # (params, extras)
    opt_state: PyTree
    obj_state: PyTree
    step: Array  # int32: next step to run
    consecutive_skips: Array
    num_skipped: Array
    halted: Array  # bool: stopped on a bad step (on_nonfinite="stop" or too many skips)
    # (trainable, opt_state, obj_state) before the last applied update: where an unhealthy
    # step rolls back to (only kept when the objective has ``is_healthy``; else ``()``)
    prev: PyTree = ()


# ----------------------------------------------------------------------------- input checks
def _as_data(data: Any, name: str) -> tuple[Array, ...] | Array:
    """Arrays (or a tuple of arrays) sharing a leading axis, checked finite and non-empty."""
    is_tuple = isinstance(data, tuple | list)
    arrays = [jnp.asarray(a) for a in (data if is_tuple else (data,))]
    if not arrays:
        raise ValueError(f"{name} must be an array or a non-empty tuple of arrays, got ()")
    for i, a in enumerate(arrays):
        where = f"{name}[{i}]" if is_tuple else name
        if a.ndim == 0:
            raise ValueError(f"{where} must have a leading data axis, got a scalar")
        if a.shape[0] == 0:
            raise ValueError(f"{where} is empty (shape {a.shape}); expected at least one row")
        if jnp.issubdtype(a.dtype, jnp.floating) and not bool(jnp.all(jnp.isfinite(a))):
            bad = int(a.size - jnp.count_nonzero(jnp.isfinite(a)))
            raise ValueError(f"{where} contains {bad} non-finite value(s) (NaN or inf); "
                             "expected finite data")
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"{name} arrays must share the leading axis; got shapes "
                         f"{[a.shape for a in arrays]}")
    return tuple(arrays) if is_tuple else arrays[0]


def _num_rows(data: Any) -> int:
    return int(jax.tree.leaves(data)[0].shape[0])


def _positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) > 0
    except (TypeError, ValueError, OverflowError):  # e.g. "ten", inf, nan
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _energy_check_error(energy_fn, params, data) -> Exception | None:
    """The error of ``check_energy`` on one event of ``data`` (abstract: no compilation).

    For tuple data the other arrays are tried as the energy's context, then no context.
    """
    arrays = data if isinstance(data, tuple) else (data,)
    x = arrays[0]
    contexts = [jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in arrays[1:]]
    first_err = None
    for ctx in ([contexts, []] if contexts else [[]]):
        try:
            check_energy(energy_fn, params, x.shape[1:], *ctx, dtype=x.dtype)
            return None
        except (ValueError, TypeError) as err:
            first_err = first_err or err
    return first_err


def _as_typed_key(key: Any) -> tuple[Array, bool]:
    """Typed key and whether the caller gave a legacy ``uint32`` key."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key, False
    if key.dtype != jnp.uint32 or key.ndim != 1:
        raise TypeError(f"key must be jax.random.key(...) or jax.random.PRNGKey(...), got "
                        f"dtype {key.dtype} shape {key.shape}")
    return jax.random.wrap_key_data(key), True


# ----------------------------------------------------------------------------- compiled parts
def _all_finite(tree: PyTree) -> Array:
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
             if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


def _select(ok: Array, new: PyTree, old: PyTree) -> PyTree:
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def _user_key(key: Array, legacy: bool) -> Array:
    return jax.random.key_data(key) if legacy else key


@partial(jax.jit, static_argnames=("energy_fn", "objective", "optimizer", "length",
                                   "batch_size", "mode", "max_skips", "legacy"))
def _run_chunk(carry: _Carry, data, end, shuffle_key, loss_key, *, energy_fn, objective,
               optimizer, length, batch_size, mode, max_skips, legacy):
    n = _num_rows(data)
    per_epoch = n // batch_size

    def loss_fn(trainable, state, batch, key):
        params, extras = trainable
        return objective.loss(energy_fn, params, extras, state, batch, key)

    def epoch_perm(step):
        return jax.random.permutation(jax.random.fold_in(shuffle_key, step // per_epoch), n)

    def do_step(cp):
        c, perm = cp
        i = c.step % per_epoch
        perm = jax.lax.cond(i == 0, epoch_perm, lambda _: perm, c.step)
        idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
        batch = jax.tree.map(lambda a: a[idx], data)
        step_key = jax.random.fold_in(loss_key, c.step)
        if objective.is_healthy is not None:
            # after a rollback, retry with fresh randomness (the same key repeats the damage)
            step_key = jax.lax.cond(c.num_skipped > 0,
                                    lambda k: jax.random.fold_in(k, c.num_skipped),
                                    lambda k: k, step_key)
        key = _user_key(step_key, legacy)
        (loss, (state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            c.trainable, c.obj_state, batch, key)
        updates, opt_state = optimizer.update(grads, c.opt_state, c.trainable)
        trainable = optax.apply_updates(c.trainable, updates)
        ok = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(trainable)
        current = (c.trainable, c.opt_state, c.obj_state)
        updated = (trainable, opt_state, state)
        if objective.is_healthy is None:
            fallback, prev = current, ()
        else:
            # metrics judge the params *before* this update: unhealthy ones were made by the
            # previous update, so roll back to the state before it
            healthy = jnp.asarray(objective.is_healthy(metrics), bool)
            ok = ok & healthy
            fallback = _select(healthy, current, c.prev)
            prev = _select(ok, current, fallback)
        chosen = _select(ok, updated, fallback)
        consecutive = jnp.where(ok, 0, c.consecutive_skips + 1)
        if mode == "stop":
            halted = ~ok
        else:
            halted = consecutive >= max_skips
        new = _Carry(
            trainable=chosen[0], opt_state=chosen[1], obj_state=chosen[2],
            step=jnp.where(ok | (mode == "skip"), c.step + 1, c.step),
            consecutive_skips=consecutive,
            num_skipped=c.num_skipped + (~ok).astype(c.num_skipped.dtype), halted=halted,
            prev=prev)
        return (new, perm), (c.step, loss, metrics, ~ok, jnp.asarray(True))

    start = (carry, epoch_perm(carry.step))
    out_shape = jax.eval_shape(lambda cp: do_step(cp)[1], start)

    def skip_step(cp):
        return cp, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)

    def body(cp, _):
        c = cp[0]
        return jax.lax.cond((c.step < end) & ~c.halted, do_step, skip_step, cp)

    (carry, _), ys = jax.lax.scan(body, start, None, length=length)
    return carry, ys


@partial(jax.jit, static_argnames=("energy_fn", "objective", "legacy"))
def _evaluate(trainable, state, data, key, *, energy_fn, objective, legacy):
    params, extras = trainable
    loss, (_, metrics) = objective.loss(energy_fn, params, extras, state, data,
                                        _user_key(key, legacy))
    return loss, metrics


@partial(jax.jit, static_argnames=("n",))
def _epoch_perm(shuffle_key, epoch, n):
    return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)


# ----------------------------------------------------------------------------- the driver
def fit(
    energy_fn: Callable[..., Array],
    params: PyTree,
    data: Any,
    objective: Objective,
    *,
    key: Any,
    optimizer: optax.GradientTransformation | None = None,
    num_steps: int | None = None,
    num_epochs: int | None = None,
    batch_size: int = 128,
    validation_data: Any = None,
    eval_every: int | None = None,
    patience: int | None = None,
    steps_per_chunk: int = 50,
    progress_bar: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume_from: str | os.PathLike | None = None,
    on_nonfinite: str = "stop",
    extras: PyTree = None,
    objective_state: PyTree = None,
    max_consecutive_skips: int = 100,
) -> FitResult:
    """Fit ``energy_fn``'s params (and the objective's extras) to ``data``.

    Minimises ``L(params, extras) = objective.loss(...)`` on shuffled minibatches with one
    optax ``optimizer`` (default ``optax.adam(1e-3)``; clip and schedule with ``optax.chain``).

    Parameters
    ----------
    energy_fn, params
        The energy ``energy_fn(params, x[, context]) -> scalar`` and its initial params.
    data
        Array of shape ``(N,) + event_shape``, or a tuple of arrays sharing ``N`` (paired
        data such as ``(x, theta)``); batches keep the same form.
    objective
        An :class:`~numpyro_ebm.Objective`.
    key
        ``jax.random.key`` or legacy ``PRNGKey``; step ``t`` uses ``fold_in(., t)``.
    num_steps, num_epochs
        Give exactly one. With ``resume_from``, ``num_steps`` is the total, resumed included.
        An epoch is ``N // batch_size`` steps (the remainder of a permutation is dropped).
    validation_data, eval_every, patience
        Held-out data (same form as ``data``), evaluated as one batch with a fixed key every
        ``eval_every`` steps (default: every chunk) and at the end; stop after ``patience``
        evaluations without improvement of ``val_loss``; ``best_params`` keep the best.
    steps_per_chunk
        Steps per compiled ``lax.scan`` (one host round-trip and progress update each).
    checkpoint_path, checkpoint_every, resume_from
        Write an ``.npz`` checkpoint every ``checkpoint_every`` steps, at the end and on
        interrupt; ``resume_from`` continues a checkpointed run bit for bit.
    on_nonfinite
        ``"stop"``: stop at the first bad step (non-finite loss/gradient/update or
        ``objective.is_healthy`` False), keeping the last good params. ``"skip"``: skip bad
        steps and go on, stopping after ``max_consecutive_skips`` bad steps in a row.
        ``is_healthy`` judges the params *before* a step (its metrics are computed there),
        so an unhealthy step also rolls back the previous update, and the retry after it
        uses fresh randomness. The rollback target is kept in memory, across chunks, but
        not in checkpoints: right after a resume it is the resumed state.
    extras, objective_state
        Start values; ``objective.init(key, energy_fn, params, batch)`` supplies missing ones.

    Returns
    -------
    FitResult
    """
    # ---- arguments, before any compilation
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a numpyro_ebm.Objective (e.g. "
                        f"exact_score_matching()), got {type(objective).__name__}")
    if not callable(energy_fn):
        raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
    if on_nonfinite not in _MODES:
        raise ValueError(f"on_nonfinite must be one of {_MODES}, got {on_nonfinite!r}")
    optimizer = _DEFAULT_OPTIMIZER if optimizer is None else optimizer
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    for name, static in (("energy_fn", energy_fn), ("objective", objective),
                         ("optimizer", optimizer)):
        try:
            hash(static)
        except TypeError as err:
            raise TypeError(f"{name} must be hashable: fit compiles it as a static argument "
                            f"(use a frozen dataclass or a plain function); {err}") from None
    data = _as_data(data, "data")
    n = _num_rows(data)
    try:
        bad = isinstance(batch_size, bool) or int(batch_size) != batch_size \
            or not 0 < batch_size <= n
    except (TypeError, ValueError, OverflowError):
        bad = True
    if bad:
        raise ValueError(f"batch_size must be an int in [1, N={n}] (the number of data rows), "
                         f"got {batch_size!r}")
    batch_size = int(batch_size)
    per_epoch = n // batch_size
    num_steps = _positive_int(num_steps, "num_steps")
    num_epochs = _positive_int(num_epochs, "num_epochs")
    if (num_steps is None) == (num_epochs is None):
        raise ValueError(f"give exactly one of num_steps= or num_epochs=, got "
                         f"num_steps={num_steps!r}, num_epochs={num_epochs!r}")
    total = num_steps if num_steps is not None else num_epochs * per_epoch
    steps_per_chunk = _positive_int(steps_per_chunk, "steps_per_chunk")
    eval_every = _positive_int(eval_every, "eval_every")
    patience = _positive_int(patience, "patience")
    checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
    max_skips = _positive_int(max_consecutive_skips, "max_consecutive_skips")
    if validation_data is not None:
        validation_data = _as_data(validation_data, "validation_data")
        if isinstance(validation_data, tuple) != isinstance(data, tuple):
            raise ValueError("validation_data must have the same form as data "
                             "(an array, or a tuple of arrays)")
        got = [a.shape[1:] for a in jax.tree.leaves(validation_data)]
        want = [a.shape[1:] for a in jax.tree.leaves(data)]
        if got != want:
            raise ValueError(f"validation_data must have the event shapes of data {want} "
                             f"(after the leading axis), got {got}")
    elif eval_every is not None or patience is not None:
        raise ValueError("eval_every and patience need validation_data")
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError("checkpoint_every needs checkpoint_path")
    check_params_finite(params, "params")

    base_key, legacy = _as_typed_key(key)
    shuffle_key, loss_key, init_key, val_key, next_key = jax.random.split(base_key, 5)
    perm0 = _epoch_perm(shuffle_key, 0, n)
    first = jax.tree.map(lambda a: a[perm0[:batch_size]], data)
    # an energy that fails on one event may still be right if the objective supplies its
    # context (e.g. a noise level): then the objective's loss must trace on one batch
    energy_err = _energy_check_error(energy_fn, params, data)
    try:
        if extras is None or objective_state is None:
            ex0, st0 = objective.init(_user_key(init_key, legacy), energy_fn, params, first)
            extras = ex0 if extras is None else extras
            objective_state = st0 if objective_state is None else objective_state
        if energy_err is not None:
            jax.eval_shape(lambda p, e, s, b, k: objective.loss(energy_fn, p, e, s, b, k),
                           params, extras, objective_state, first, _user_key(loss_key, legacy))
    except Exception:
        if energy_err is not None:
            raise energy_err from None
        raise
    trainable = (params, extras)
    opt_state = optimizer.init(trainable)

    # ---- state (possibly from a checkpoint)
    step, num_skipped, consecutive = 0, 0, 0
    best = (math.inf, trainable, -1)  # (val_loss, trainable, step)
    since_best = 0
    history: dict[str, list[np.ndarray]] = {}
    if resume_from is not None:
        contents, desc = load_checkpoint(resume_from)
        trainable = restore_tree(trainable, "trainable", contents, desc)
        opt_state = restore_tree(opt_state, "opt_state", contents, desc)
        objective_state = restore_tree(objective_state, "objective_state", contents, desc)
        best_tr = restore_tree(trainable, "best", contents, desc)
        base_key = restore_tree(base_key, "key", contents, desc)
        shuffle_key, loss_key, init_key, val_key, next_key = jax.random.split(base_key, 5)
        step = int(contents["array/step"])
        num_skipped = int(contents["array/num_skipped"])
        consecutive = int(contents["array/consecutive_skips"])
        best = (float(contents["array/best_val"]), best_tr, int(contents["array/best_step"]))
        since_best = int(contents["array/since_best"])
        history = {k[len("array/history/"):]: [v] for k, v in contents.items()
                   if k.startswith("array/history/")}

    def save(path):
        save_checkpoint(
            path,
            {"trainable": trainable, "opt_state": opt_state, "objective_state": objective_state,
             "best": best[1], "key": base_key},
            {"step": step, "num_skipped": num_skipped, "consecutive_skips": consecutive,
             "best_val": best[0], "best_step": best[2], "since_best": since_best,
             **{f"history/{k}": np.concatenate(v) for k, v in history.items()}},
            meta={"objective": objective.name, "total_steps": total})

    def record(name, values):
        history.setdefault(name, []).append(np.asarray(values))

    static = dict(energy_fn=energy_fn, objective=objective, optimizer=optimizer,
                  length=steps_per_chunk, batch_size=batch_size, mode=on_nonfinite,
                  max_skips=max_skips, legacy=legacy)
    reason = "completed"
    halted = False
    prev_state = None  # the rollback target of unhealthy steps (kept across chunks)
    pbar = tqdm(total=total, initial=min(step, total), disable=not progress_bar,
                desc=f"fit[{objective.name}]", leave=True)
    try:
        while step < total and not halted:
            end = min(step + steps_per_chunk, total)
            for every in (eval_every, checkpoint_every):
                if every is not None:
                    end = min(end, (step // every + 1) * every)
            if objective.is_healthy is None:
                prev_state = ()
            elif prev_state is None:
                prev_state = (trainable, opt_state, objective_state)
            carry = _Carry(trainable, opt_state, objective_state, np.int32(step),
                           np.int32(consecutive), np.int32(num_skipped), np.bool_(False),
                           prev_state)
            carry, ys = _run_chunk(carry, data, end, shuffle_key, loss_key, **static)
            # one device-to-host transfer per chunk
            counters, (steps, losses, metrics, skipped, active) = jax.device_get(
                (carry[3:], ys))
            out = {"step": steps, "loss": losses, "skipped": skipped, **metrics}
            out = {k: np.asarray(v)[active] for k, v in out.items()}
            new_step, new_consecutive, new_skipped, new_halted = (
                int(counters[0]), int(counters[1]), int(counters[2]), bool(counters[3]))
            new_reason = reason
            if new_halted:
                bad = int(out["step"][-1])
                new_reason = (
                    f"nonfinite: step {bad} had a non-finite loss, gradient or update, "
                    f"or objective.is_healthy was False (then the update that damaged "
                    f"the params is rolled back too); params are the last good ones"
                    if on_nonfinite == "stop" else
                    f"nonfinite: {new_consecutive} consecutive bad steps up to step {bad} "
                    f"(max_consecutive_skips={max_skips}); params are the last good ones")
            finite = out["loss"][np.isfinite(out["loss"])]
            postfix = {"loss": f"{float(finite.mean()):.4g}"} if finite.size else {}
            # validate the chunk's result *before* committing it: an interrupt during
            # validation (e.g. its first compilation) then loses the whole chunk, and a
            # resumed run recomputes it exactly, validation included
            new_best, new_since_best, val = best, since_best, None
            if validation_data is not None and (
                    new_step >= total or new_halted
                    or (eval_every is None or new_step % eval_every == 0)):
                vloss, vmet = _evaluate(carry.trainable, carry.obj_state, validation_data,
                                        val_key, energy_fn=energy_fn, objective=objective,
                                        legacy=legacy)
                val = (float(vloss), jax.device_get(vmet))
                postfix["val_loss"] = f"{val[0]:.4g}"
                if np.isfinite(val[0]) and val[0] < best[0]:
                    new_best, new_since_best = (val[0], carry.trainable, new_step), 0
                else:
                    new_since_best = since_best + 1
                if patience is not None and new_since_best >= patience and not new_halted:
                    new_reason = (f"early_stopping: no val_loss improvement in {patience} "
                                  f"evaluations (best {new_best[0]:.6g} at step "
                                  f"{new_best[2]})")
                    new_halted = True
            # the chunk is complete: commit its results in one assignment
            prev = step
            (trainable, opt_state, objective_state, prev_state, step, consecutive,
             num_skipped, halted, reason, best, since_best) = (
                carry.trainable, carry.opt_state, carry.obj_state, carry.prev, new_step,
                new_consecutive, new_skipped, new_halted, new_reason, new_best,
                new_since_best)
            for k, v in out.items():
                record(k, v)
            if val is not None:
                record("val_step", np.asarray([step]))
                record("val_loss", np.asarray([val[0]]))
                for k, v in val[1].items():
                    record(f"val_{k}", np.asarray([v]))
            if checkpoint_path is not None and (
                    step >= total or halted
                    or (checkpoint_every is not None and step % checkpoint_every == 0)):
                save(checkpoint_path)
            pbar.set_postfix(postfix, refresh=False)
            pbar.update(step - prev)
    except KeyboardInterrupt:
        reason = "interrupted"
        if checkpoint_path is not None:
            save(checkpoint_path)
    finally:
        pbar.close()

    hist = {k: np.concatenate(v) for k, v in history.items()}
    for k in ("step", "loss", "skipped"):
        hist.setdefault(k, np.zeros((0,)))
    best_tr = best[1] if validation_data is not None and best[2] >= 0 else trainable
    return FitResult(
        params=trainable[0], extras=trainable[1], objective_state=objective_state,
        opt_state=opt_state, step=step, history=hist, best_params=best_tr[0],
        best_extras=best_tr[1], stopped_reason=reason, key=_user_key(next_key, legacy),
        num_skipped=num_skipped)
