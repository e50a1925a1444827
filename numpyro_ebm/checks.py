"""Argument checks shared by every module.

Each check names the argument, shows the value (or shape) it saw and says what it expected.
Checks look only at *concrete* values: a value that is a JAX tracer (a constructor called
inside ``jit``, ``vmap`` or a NumPyro model under inference) passes unchecked, because its
value is unknown at trace time.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .typing import Array, PyTree

__all__ = [
    "is_concrete",
    "positive_int",
    "nonnegative_int",
    "positive_float",
    "in_range",
    "all_finite",
    "batch_array",
    "one_of",
]


def is_concrete(tree: PyTree) -> bool:
    """True when no leaf of ``tree`` is a JAX tracer (its values can be inspected)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` as an ``int >= 1``; ``ValueError`` naming ``name`` otherwise.

    Booleans, floats that are not whole, strings, NaN and inf are refused.
    """
    return _int(value, name, low=1, allow_none=allow_none)


def nonnegative_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` as an ``int >= 0``; ``ValueError`` naming ``name`` otherwise."""
    return _int(value, name, low=0, allow_none=allow_none)


def _int(value: Any, name: str, *, low: int, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    try:
        ok = (
            not isinstance(value, bool | np.bool_)
            and np.ndim(value) == 0
            and int(value) == value
            and int(value) >= low
        )
    except (TypeError, ValueError, OverflowError):  # "ten", inf, nan, arrays
        ok = False
    if not ok:
        want = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return int(value)


def positive_float(value: Any, name: str, *, allow_zero: bool = False) -> Any:
    """Check a scalar is finite and ``> 0`` (``>= 0`` with ``allow_zero``).

    Returns a Python ``float`` for a concrete value and the tracer itself for a traced one.
    Raises ``TypeError`` for a non-number and ``ValueError`` for a bad value.
    """
    if not is_concrete(value):
        return value
    if isinstance(value, bool | np.bool_) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real scalar, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number, got {value!r}") from err
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {want}, got {value!r}")
    return v


def in_range(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    closed: bool = False,
) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is finite and in range.

    The range is ``(low, high)`` (``[low, high]`` with ``closed=True``); ``None`` bounds are
    open. ``None`` values and tracers pass.
    """
    if value is None or not is_concrete(value):
        return
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be real-valued, got {value!r}") from err
    ok = bool(np.all(np.isfinite(arr)))
    if low is not None:
        ok = ok and bool(np.all(arr >= low if closed else arr > low))
    if high is not None:
        ok = ok and bool(np.all(arr <= high if closed else arr < high))
    if not ok:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        br = ("[", "]") if closed else ("(", ")")
        raise ValueError(f"{name} must be finite and in {br[0]}{lo}, {hi}{br[1]}, got {value!r}")


def all_finite(tree: PyTree, name: str) -> None:
    """Raise ``ValueError`` if a concrete floating leaf of ``tree`` holds NaN or inf.

    The message names the leaf's path and how many entries are bad. Tracers are skipped.
    """
    leaves, _ = jax.tree.flatten_with_path(tree)
    for path, leaf in leaves:
        if isinstance(leaf, jax.core.Tracer) or leaf is None:
            continue
        try:
            arr = np.asarray(leaf)
        except TypeError:  # typed PRNG keys and other non-numeric leaves
            continue
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path)
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"{name}{where} contains {bad} non-finite value(s) (NaN or inf); "
                "expected finite values."
            )


def batch_array(
    value: Any, name: str, *, event_ndim: int | None = None, finite: bool = True
) -> Array:
    """``value`` as an array of shape ``(batch_size,) + event_shape`` with ``batch_size >= 1``.

    ``event_ndim`` (when given) fixes ``len(event_shape)``. With ``finite=True`` a concrete
    array holding NaN or inf is refused. Raises ``TypeError`` for non-numeric input and
    ``ValueError`` for a wrong shape or values.
    """
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}") from err
    if not jnp.issubdtype(arr.dtype, jnp.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    want_ndim = None if event_ndim is None else 1 + event_ndim
    if arr.ndim < 1 or arr.shape[0] < 1 or (want_ndim is not None and arr.ndim != want_ndim):
        ev = "event_shape" if event_ndim is None else f"an event shape of {event_ndim} dim(s)"
        raise ValueError(
            f"{name} must have shape (batch_size,) + {ev} with batch_size >= 1, "
            f"got shape {arr.shape}"
        )
    if finite:
        all_finite(arr, name)
    return arr


def one_of(value: Any, name: str, options: tuple[Any, ...] | list[Any]) -> Any:
    """Return ``value`` if it is one of ``options``; ``ValueError`` listing them otherwise."""
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value
