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
    "real_array",
    "positive_array",
    "shape_tuple",
    "spd_matrix",
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
    if isinstance(value, bool | np.bool_ | str | bytes) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real scalar, got {value!r}")  # float("3") parses
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
    if finite:  # inspect the input itself: under jit, even a constant's jnp copy is traced
        all_finite(np.asarray(value) if is_concrete(value) else arr, name)
    return arr


def one_of(value: Any, name: str, options: tuple[Any, ...] | list[Any]) -> Any:
    """Return ``value`` if it is one of ``options``; ``ValueError`` listing them otherwise."""
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def real_array(
    value: Any, name: str, *, ndim: int | None = None, finite: bool = True, dtype: Any = None
) -> Array:
    """``value`` as a floating JAX array.

    Without ``dtype``, an array's floating dtype is kept and anything else (ints, Python
    numbers, lists) becomes JAX's default float.

    ``ndim`` (when given) fixes the number of dimensions. With ``finite=True`` a concrete
    array holding NaN or inf is refused; a traced value is converted but not inspected.
    Raises ``TypeError`` for non-numeric input (strings, objects, complex numbers, booleans)
    and ``ValueError`` for a wrong number of dimensions or non-finite values.
    """
    kind = _real_dtype(value, name)
    if dtype is None:  # keep a floating dtype (float32 stays float32); ints become floats
        floating = jnp.issubdtype(kind, jnp.floating) and hasattr(value, "dtype")
        dtype = kind if floating else jnp.result_type(float)
    # float64 input without jax_enable_x64 becomes float32 quietly (JAX's own rule)
    arr = jnp.asarray(value, dtype=jax.dtypes.canonicalize_dtype(dtype))
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if finite:  # inspect the input itself: under jit, even a constant's jnp copy is traced
        all_finite(np.asarray(value) if is_concrete(value) else arr, name)
    return arr


def spd_matrix(value: Any, name: str) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is a symmetric positive definite matrix.

    Checks a square 2-D shape, finite entries, symmetry (to ``numpy.allclose``) and
    positive eigenvalues; the message shows the smallest eigenvalue. Tracers pass.
    """
    if not is_concrete(value):
        return
    _real_dtype(value, name)
    m = np.asarray(value, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {m.shape}")
    all_finite(m, name)
    if not np.allclose(m, m.T):
        raise ValueError(f"{name} must be symmetric, got {_show(value)}")
    low = float(np.linalg.eigvalsh(m).min()) if m.size else 1.0
    if low <= 0:
        raise ValueError(f"{name} must be positive definite, got smallest eigenvalue {low:.3g}")


def positive_array(value: Any, name: str, *, allow_zero: bool = False) -> None:
    """Raise ``ValueError`` unless every entry of a concrete ``value`` is finite and ``> 0``.

    (``>= 0`` with ``allow_zero``.) Tracers pass; non-numeric input raises ``TypeError``.
    """
    if not is_concrete(value):
        return
    _real_dtype(value, name)
    arr = np.asarray(value, dtype=float)
    ok = np.all(np.isfinite(arr)) and np.all(arr >= 0 if allow_zero else arr > 0)
    if not ok:
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {want}, got {_show(value)}")


def shape_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ints) as a shape tuple of non-negative ints.

    Raises ``TypeError`` for anything that is not an int or a sequence of ints (floats that
    are not whole, strings, arrays of more than one dimension) and ``ValueError`` for a
    negative size.
    """
    seq = (value,) if isinstance(value, int | np.integer) else value
    try:
        if isinstance(seq, str | bytes) or np.ndim(seq) != 1 and len(seq) != 0:
            raise TypeError
        out = []
        for d in seq:
            if isinstance(d, bool | np.bool_) or int(d) != d:
                raise TypeError
            out.append(int(d))
    except (TypeError, ValueError, OverflowError) as err:
        raise TypeError(f"{name} must be a tuple of ints, got {_show(value)}") from err
    if any(d < 0 for d in out):
        raise ValueError(f"{name} must hold non-negative sizes, got {tuple(out)}")
    return tuple(out)


def _real_dtype(value: Any, name: str) -> Any:
    """The dtype of ``value``; ``TypeError`` naming ``name`` unless it is int or float."""
    if isinstance(value, jax.core.Tracer) or isinstance(value, jax.Array):
        kind = value.dtype
    else:
        try:
            kind = np.asarray(value).dtype
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a real array, got {_show(value)}") from err
    if not (jnp.issubdtype(kind, jnp.integer) or jnp.issubdtype(kind, jnp.floating)):
        raise TypeError(f"{name} must be real-valued (int or float), got dtype {kind}: "
                        f"{_show(value)}")
    return kind


def _show(value: Any, limit: int = 80) -> str:
    """A short description of ``value`` for an error message (arrays by shape and dtype)."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and np.size(value) > 8:
        return f"array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
