"""The checks of :func:`~numpyro_ebm.fit`'s arguments, all before any compilation.

Each raises an error naming the argument, what it saw and what it expected.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..checks import all_finite, one_of, positive_int
from ..energy import check_energy
from ..objectives.base import Objective
from ..typing import Array, EnergyFn, PyTree

__all__ = ["FitConfig", "check_fit_arguments", "as_data", "num_rows", "energy_check_error"]

MODES = ("stop", "skip")
DEFAULT_MAX_SKIPS = 100
DEFAULT_EVAL_EVERY = 50  # validation steps when chunks are paced and eval_every is not given


class FitConfig(NamedTuple):
    """:func:`~numpyro_ebm.fit`'s checked settings (see its docstring for each)."""

    data: PyTree
    validation_data: PyTree
    optimizer: optax.GradientTransformation
    batch_size: int
    total: int  # steps of the whole run (resumed steps included)
    steps_per_chunk: int | None  # None: paced (training/pacing.py)
    eval_every: int | None
    patience: int | None
    checkpoint_path: str | os.PathLike | None
    checkpoint_every: int | None
    mode: str  # on_nonfinite
    max_skips: int
    progress_bar: bool


def as_data(data: Any, name: str) -> tuple[Array, ...] | Array:
    """Arrays (or a tuple of arrays) sharing a leading axis, checked finite and non-empty.

    The events (``data``, or ``data[0]`` for tuple data) must be floating: objectives and
    samplers differentiate the energy with respect to them, so integer events raise a
    ``TypeError`` here rather than JAX's ``grad`` error after compilation starts (we do not
    convert: the float precision is the caller's choice). Context arrays (``data[1:]``) may
    be integers (class labels).
    """
    is_tuple = isinstance(data, tuple | list)
    parts = data if is_tuple else (data,)
    arrays = [_numeric(a, f"{name}[{i}]" if is_tuple else name) for i, a in enumerate(parts)]
    if not arrays:
        raise ValueError(f"{name} must be an array or a non-empty tuple of arrays, got ()")
    if not jnp.issubdtype(arrays[0].dtype, jnp.floating):
        where = f"{name}[0] (the events)" if is_tuple else name
        raise TypeError(
            f"{where} must have a floating dtype (the energy is differentiated with respect "
            f"to the events), got dtype {arrays[0].dtype}; convert it, e.g. "
            f"jnp.asarray(x, jnp.float32)"
        )
    for i, a in enumerate(arrays):
        where = f"{name}[{i}]" if is_tuple else name
        if a.ndim == 0:
            raise ValueError(f"{where} must have a leading data axis, got a scalar")
        if a.shape[0] == 0:
            raise ValueError(f"{where} is empty (shape {a.shape}); expected at least one row")
        all_finite(a, where)
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ValueError(f"{name} arrays must share the leading axis; got shapes "
                         f"{[a.shape for a in arrays]}")
    return tuple(arrays) if is_tuple else arrays[0]


def _numeric(value: Any, where: str) -> Array:
    """``value`` as a real (int or float) array; ``TypeError`` naming ``where`` otherwise."""
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} must be a numeric array, got {type(value).__name__}") from err
    if not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.floating)):
        raise TypeError(f"{where} must be real-valued (int or float), got dtype {arr.dtype}")
    return arr


def num_rows(data: PyTree) -> int:
    """``N``, the leading axis of the data."""
    return int(jax.tree.leaves(data)[0].shape[0])


def energy_check_error(energy_fn: EnergyFn, params: PyTree, data: PyTree) -> Exception | None:
    """The error of ``check_energy`` on one event of ``data`` (abstract: no compilation).

    For tuple data the other arrays are tried as the energy's context, then no context.
    The error names ``data``: its shape, the event shape one row gives, and what
    ``energy_fn`` said about it (usually the event shape it expects).
    """
    is_tuple = isinstance(data, tuple)
    arrays = data if is_tuple else (data,)
    x = arrays[0]
    contexts = [jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in arrays[1:]]
    first_err = None
    for ctx in ([contexts, []] if contexts else [[]]):
        try:
            check_energy(energy_fn, params, x.shape[1:], *ctx, dtype=x.dtype)
            return None
        except (ValueError, TypeError) as err:
            first_err = first_err or err
    name = "data[0]" if is_tuple else "data"
    err = ValueError(
        f"{name} of shape {tuple(x.shape)} does not fit energy_fn: each row is one event x "
        f"of shape {tuple(x.shape[1:])}, and {first_err} (expected rows of the event shape "
        "energy_fn takes)")
    err.__cause__ = first_err
    return err


def _check_parts(energy_fn: Any, objective: Any, optimizer: Any) -> None:
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a numpyro_ebm.Objective (e.g. "
                        f"exact_score_matching()), got {type(objective).__name__}")
    if not callable(energy_fn):
        raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
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


def _check_validation_data(validation_data: Any, data: PyTree) -> PyTree:
    validation_data = as_data(validation_data, "validation_data")
    if isinstance(validation_data, tuple) != isinstance(data, tuple):
        raise ValueError("validation_data must have the same form as data "
                         "(an array, or a tuple of arrays)")
    got = [a.shape[1:] for a in jax.tree.leaves(validation_data)]
    want = [a.shape[1:] for a in jax.tree.leaves(data)]
    if got != want:
        raise ValueError(f"validation_data must have the event shapes of data {want} "
                         f"(after the leading axis), got {got}")
    return validation_data


def _check_batch_size(batch_size: Any, n: int) -> int:
    try:
        bad = isinstance(batch_size, bool) or int(batch_size) != batch_size \
            or not 0 < batch_size <= n
    except (TypeError, ValueError, OverflowError):
        bad = True
    if bad:
        raise ValueError(f"batch_size must be an int in [1, N={n}] (the number of data rows), "
                         f"got {batch_size!r}")
    return int(batch_size)


def check_fit_arguments(energy_fn: Any, objective: Any, data: Any, *, optimizer: Any,
                        num_steps: Any, num_epochs: Any, batch_size: Any,
                        validation_data: Any, eval_every: Any, patience: Any,
                        steps_per_chunk: Any, progress_bar: Any, checkpoint_path: Any,
                        checkpoint_every: Any, on_nonfinite: Any,
                        max_consecutive_skips: Any) -> FitConfig:
    """Check every setting of :func:`~numpyro_ebm.fit`; the :class:`FitConfig` they give.

    Arguments that only mean something together with another one (``eval_every`` and
    ``patience`` without ``validation_data``, ``checkpoint_every`` without
    ``checkpoint_path``, ``max_consecutive_skips`` without ``on_nonfinite="skip"``) are
    refused rather than ignored.
    """
    _check_parts(energy_fn, objective, optimizer)
    one_of(on_nonfinite, "on_nonfinite", MODES)
    data = as_data(data, "data")
    batch_size = _check_batch_size(batch_size, num_rows(data))
    num_steps = positive_int(num_steps, "num_steps", allow_none=True)
    num_epochs = positive_int(num_epochs, "num_epochs", allow_none=True)
    if (num_steps is None) == (num_epochs is None):
        raise ValueError(f"give exactly one of num_steps= or num_epochs=, got "
                         f"num_steps={num_steps!r}, num_epochs={num_epochs!r}")
    eval_every = positive_int(eval_every, "eval_every", allow_none=True)
    patience = positive_int(patience, "patience", allow_none=True)
    checkpoint_every = positive_int(checkpoint_every, "checkpoint_every", allow_none=True)
    max_skips = positive_int(max_consecutive_skips, "max_consecutive_skips", allow_none=True)
    if validation_data is not None:
        validation_data = _check_validation_data(validation_data, data)
    elif eval_every is not None or patience is not None:
        raise ValueError("eval_every and patience need validation_data")
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError("checkpoint_every needs checkpoint_path")
    if max_skips is not None and on_nonfinite != "skip":
        raise ValueError(f"max_consecutive_skips={max_skips} needs on_nonfinite='skip' "
                         f"(with on_nonfinite={on_nonfinite!r} the first bad step stops)")
    if not isinstance(progress_bar, bool):
        raise TypeError(f"progress_bar must be True or False, got {progress_bar!r}")
    per_epoch = num_rows(data) // batch_size
    steps_per_chunk = positive_int(steps_per_chunk, "steps_per_chunk", allow_none=True)
    if steps_per_chunk is None and validation_data is not None and eval_every is None:
        # paced chunks vary with the machine's speed: validation (and early stopping's
        # count of evaluations) keeps a fixed cadence
        eval_every = DEFAULT_EVAL_EVERY
    return FitConfig(
        data=data, validation_data=validation_data, optimizer=optimizer,
        batch_size=batch_size, total=num_steps or num_epochs * per_epoch,
        steps_per_chunk=steps_per_chunk,
        eval_every=eval_every, patience=patience, checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every, mode=on_nonfinite,
        max_skips=DEFAULT_MAX_SKIPS if max_skips is None else max_skips,
        progress_bar=progress_bar)
