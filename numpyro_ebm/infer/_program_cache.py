"""One compilation per traced program and process, for functions rebuilt on every run.

``jax.jit`` caches compiled programs by the identity of the Python function. A kernel's
``init`` closes over a potential that NumPyro builds anew on every ``MCMC.run`` (and over
the run's data), so jitting it compiles the same program again on every run, and running it
op by op compiles every operation once but runs hundreds of them. :func:`run_cached` traces
the function to a jaxpr, keys a small cache on the jaxpr (its text, the bytes of its
literals and the types of its constants) and passes the constants (the data) as arguments:
a second run of the same model reuses the compiled program; a first run compiles one
program instead of hundreds of operations.

The cached program is only *run*, never differentiated, so the JVP/VJP rules of
``custom_jvp``/``custom_vjp`` calls (printed by name only) do not affect its result; their
primal computation is part of the text. Programs with host callbacks (whose Python function
the text cannot identify) are compiled without the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal, jaxpr_as_fun, subjaxprs

__all__ = ["run_cached", "MAX_PROGRAMS"]

MAX_PROGRAMS = 16
"""Programs kept (least recently used dropped first)."""

_PROGRAMS: OrderedDict[tuple, Callable] = OrderedDict()


def _literals_and_callbacks(jaxpr: Jaxpr, out: list) -> bool:
    """Append the bytes of every literal (recursively) to ``out``; False if the program
    calls back into Python."""
    for eqn in jaxpr.eqns:
        if "callback" in eqn.primitive.name:
            return False
        for v in eqn.invars:
            if isinstance(v, Literal):
                a = np.asarray(v.val)
                out.append((str(a.dtype), a.shape, a.tobytes()))
    return all(_literals_and_callbacks(sub, out) for sub in subjaxprs(jaxpr))


def _key(closed: ClosedJaxpr) -> tuple | None:
    literals: list = []
    if not _literals_and_callbacks(closed.jaxpr, literals):
        return None
    consts = tuple((np.shape(c), str(jax.numpy.result_type(c)),
                    bool(getattr(getattr(c, "aval", None), "weak_type", False)))
                   for c in closed.consts)
    return str(closed.jaxpr), tuple(literals), consts


def _compile(jaxpr: Jaxpr) -> Callable:
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
