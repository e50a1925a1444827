"""One compilation per traced program and process, for functions rebuilt on every run.

``jax.jit`` caches compiled programs by the identity of the Python function. A kernel's
``init`` closes over a potential that NumPyro builds anew on every ``MCMC.run`` (and over
the run's data), so jitting it compiles the same program again on every run, and running it
op by op compiles every operation once but runs hundreds of them. :func:`run_cached` traces
the function to a jaxpr, keys a small cache on the jaxpr (its text, the bytes of its
literals, the types of its constants and a digest of the constants of its nested programs)
and passes the constants (the data) as arguments:
a second run of the same model reuses the compiled program; a first run compiles one
program instead of hundreds of operations.

The cached program is only *run*, never differentiated, so the JVP/VJP rules of
``custom_jvp``/``custom_vjp`` calls (printed by name only) do not affect its result; their
primal computation is part of the text. A nested program (a ``jax.jit`` the function
calls, closing over concrete arrays) keeps its own constants inside the jaxpr, where they
are compiled in rather than passed: their values (a digest of their bytes) are part of the
key, so a closure over other data is another program. Programs with host callbacks (whose
Python function the text cannot identify) are compiled without the cache.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal, jaxpr_as_fun

from .._values import array_value

__all__ = ["run_cached", "MAX_PROGRAMS"]

MAX_PROGRAMS = 16
"""Programs kept (least recently used dropped first)."""

_PROGRAMS: OrderedDict[tuple, Callable] = OrderedDict()


def _literals_and_callbacks(jaxpr: Jaxpr, out: list) -> bool:
    """Append what the text of ``jaxpr`` leaves out to ``out``, recursively: the bytes of
    every literal and a digest of the constants compiled into every nested program.

    Returns
    -------
    bool
        False if the program calls back into Python (then nothing identifies it).
    """
    for eqn in jaxpr.eqns:
        if "callback" in eqn.primitive.name:
            return False
        for v in eqn.invars:
            if isinstance(v, Literal):
                out.append(array_value(v.val))
    for sub in _nested(jaxpr):
        consts = getattr(sub, "consts", ())  # a nested ClosedJaxpr's own (compiled-in) data
        if consts:
            digest = hashlib.blake2b(digest_size=32)
            for c in consts:
                dtype, shape, data = array_value(c)
                digest.update(f"{dtype}{shape}".encode())
                digest.update(data)
            out.append(("consts", digest.hexdigest()))
        if not _literals_and_callbacks(sub.jaxpr, out):
            return False
    return True


def _nested(jaxpr: Jaxpr) -> list:
    """The programs in the parameters of ``jaxpr``'s equations (``Jaxpr`` or ``ClosedJaxpr``,
    with their constants: JAX versions differ in which one a parameter holds)."""
    found = []
    for eqn in jaxpr.eqns:
        for value in eqn.params.values():
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, (Jaxpr, ClosedJaxpr)):
                    found.append(v)
    return found


def _key(closed: ClosedJaxpr) -> tuple | None:
    """The cache key of ``closed``, or ``None`` when it must not be cached."""
    literals: list = []
    if not _literals_and_callbacks(closed.jaxpr, literals):
        return None
    consts = tuple((np.shape(c), str(jax.numpy.result_type(c)),
                    bool(getattr(getattr(c, "aval", None), "weak_type", False)))
                   for c in closed.consts)
    return str(closed.jaxpr), tuple(literals), consts


def _compile(jaxpr: Jaxpr) -> Callable:
    """``jaxpr`` as a jitted function of ``(consts, *args)``, keeping none of its constants."""
    if getattr(jaxpr, "consts", None):
        # JAX >= 0.12: a Jaxpr carries its constants (the first run's data); the cache keeps
        # the program for later runs with their own data, so it must not keep them alive
        jaxpr = ClosedJaxpr(jaxpr, [])
    return jax.jit(lambda consts, *args: jaxpr_as_fun(ClosedJaxpr(jaxpr, consts))(*args))


def run_cached(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, compiled once per distinct program (see the module docstring).

    Parameters
    ----------
    fn
        A function of arrays (pytrees), traceable by ``jax.make_jaxpr``.
    *args
        Its arguments (concrete arrays or pytrees of them).

    Returns
    -------
    Any
        ``fn(*args)``, with ``fn``'s output structure.
    """
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    key = _key(closed)
    if key is None:
        program = _compile(closed.jaxpr)
    else:
        program = _PROGRAMS.pop(key, None) or _compile(closed.jaxpr)
        _PROGRAMS[key] = program
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    out = program(list(closed.consts), *jax.tree.leaves(args))
    return jax.tree.unflatten(jax.tree.structure(out_shape), out)
