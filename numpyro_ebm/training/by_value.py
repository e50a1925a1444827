"""Optimizers compared by value, so that ``fit`` with equal settings compiles once.

An optax transformation is a pair of closures, and ``optax.adam(1e-3)`` builds a new pair on
every call. JAX caches compiled programs by the identity of such functions, so two ``fit``
calls each given ``optimizer=optax.adam(1e-3)`` compiled their chunk twice (about a second
on 2 cores). :func:`canonical_optimizer` keys a transformation by value (the code of every
function in it, the values its closures hold, the defaults and the scalar globals they read)
and returns the first transformation seen with an equal key, whose compiled programs are
then reused.

Values it cannot read (tracers, objects it does not know) are keyed by identity: never
equal to something else, so the worst case is today's behaviour (a compilation), never a
wrong program.
"""

from __future__ import annotations

import enum
import functools
import types
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import jax
import numpy as np
import optax

from .._values import array_value
from ..checks import is_concrete

__all__ = ["canonical_optimizer", "value_key"]

MAX_OPTIMIZERS = 32  # transformations remembered (least recently used first out)
_MAX_DEPTH = 64
_MAX_ARRAY_BYTES = 1 << 20
_SCALARS = (bool, int, float, complex, str, bytes, type(None), type(Ellipsis))
_seen: OrderedDict[Hashable, Any] = OrderedDict()


class _Opaque(Exception):
    """A value that cannot be keyed at all (the whole key falls back to identity)."""


class _Identity:
    """Key part equal only to itself's target: holds ``obj`` so its id is not reused."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _array_key(a: Any) -> Hashable:
    if a.nbytes > _MAX_ARRAY_BYTES:  # numpy and JAX arrays alike
        raise _Opaque
    return ("array",) + array_value(a)


def _function_key(f: types.FunctionType, path: tuple[int, ...]) -> Hashable:
    cells = []
    for cell in f.__closure__ or ():
        try:
            cells.append(_key(cell.cell_contents, path))
        except ValueError:  # an empty cell (a closure variable not yet assigned)
            cells.append(("empty",))
    # globals the code reads by name: scalars by value, anything else by identity
    used = tuple((name, _key(f.__globals__[name], path) if isinstance(
        f.__globals__[name], _SCALARS) else _Identity(f.__globals__[name]))
        for name in f.__code__.co_names if name in f.__globals__)
    return ("function", f.__code__, tuple(cells), _key(f.__defaults__, path),
            _key(f.__kwdefaults__, path), used)


def _key(obj: Any, path: tuple[int, ...]) -> Hashable:
    if isinstance(obj, _SCALARS):
        return (type(obj).__name__, obj)
    if id(obj) in path:  # a cycle (a recursive closure): its position on the path
        return ("cycle", path.index(id(obj)))
    if len(path) >= _MAX_DEPTH:
        raise _Opaque
    path = path + (id(obj),)
    if isinstance(obj, enum.Enum | type | types.ModuleType | types.BuiltinFunctionType):
        return _Identity(obj)
    if isinstance(obj, types.FunctionType):
        return _function_key(obj, path)
    if isinstance(obj, functools.partial):
        return ("partial", _key(obj.func, path), _key(obj.args, path),
                _key(obj.keywords, path))
    if isinstance(obj, types.MethodType):
        return ("method", _key(obj.__func__, path), _Identity(obj.__self__))
    if isinstance(obj, tuple | list):
        return (_Identity(type(obj)), tuple(_key(v, path) for v in obj))
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            return _Identity(obj)
        return ("dict", tuple(sorted((k, _key(v, path)) for k, v in obj.items())))
    if isinstance(obj, np.ndarray | np.generic):
        return _array_key(obj)
    if isinstance(obj, jax.Array):
        if not is_concrete(obj):
            raise _Opaque  # a tracer: built inside jit, read nothing
        return _array_key(obj)
    return _Identity(obj)


def value_key(obj: Any) -> Hashable | None:
    """A hashable key equal for equal-by-value closures, or ``None`` if ``obj`` holds a
    value that cannot be read (a tracer, a very large array)."""
    try:
        key = _key(obj, ())
        hash(key)
    except (_Opaque, TypeError, RecursionError):
        return None
    return key


def canonical_optimizer(optimizer: optax.GradientTransformation
                        ) -> optax.GradientTransformation:
    """The first transformation seen equal by value to ``optimizer`` (else ``optimizer``).

    :func:`~numpyro_ebm.make_train_step` (and so :func:`~numpyro_ebm.fit`) calls it, so
    that jitted steps are cached across transformations built apart with equal settings.
    The last :data:`MAX_OPTIMIZERS` distinct transformations are remembered.

    Parameters
    ----------
    optimizer
        An ``optax.GradientTransformation``.

    Returns
    -------
    optax.GradientTransformation
        ``optimizer`` itself, or an earlier one equal to it by value: the same code in every
        function, equal closure values (scalars, strings, arrays of up to 1 MiB compared
        bitwise, nested transformations and schedules) and equal scalar globals read by
        name. Other objects in it count as equal only when they are the same object.

    Examples
    --------
    >>> canonical_optimizer(optax.adam(1e-3)) is canonical_optimizer(optax.adam(1e-3))
    True
    >>> canonical_optimizer(optax.adam(1e-3)) is canonical_optimizer(optax.adam(2e-3))
    False
    """
    key = value_key(optimizer)
    if key is None:
        return optimizer
    hit = _seen.get(key)
    if hit is not None:
        _seen.move_to_end(key)
        return hit
    _seen[key] = optimizer
    while len(_seen) > MAX_OPTIMIZERS:
        _seen.popitem(last=False)
    return optimizer
