"""Hypothesis strategies and the assertion shared by the property-based bad-input tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Few, tiny examples: each call may trace an energy; the point is coverage of the kinds.
FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

#: Not a positive int: zero, negatives, fractions, bools, strings, None, NaN, inf.
BAD_SIZES = st.one_of(
    st.integers(-5, 0),
    st.floats(0.1, 9.9).filter(lambda v: v != int(v)),
    st.sampled_from([True, False, "3", None, math.nan, math.inf, -math.inf, [2]]),
)
#: Not a finite number > 0.
BAD_POSITIVE = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, "a", None, [1.0, 2.0]]),
)


def bad_entries(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Arrays of the right ``shape`` holding NaN or inf somewhere."""
    base = hnp.arrays(np.float64, shape, elements=st.floats(-2, 2))
    return st.tuples(base, st.integers(0, max(0, int(np.prod(shape)) - 1)),
                     st.sampled_from([np.nan, np.inf, -np.inf])).map(_poke)


def _poke(args):
    arr, i, v = args
    arr = arr.copy()
    arr.reshape(-1)[i] = v
    return arr


def bad_arrays(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Anything but a finite float array of ``shape``: wrong shapes (including empty),
    NaN/inf entries, strings, complex numbers, None."""
    wrong = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3).filter(
        lambda s: s != shape)
    return st.one_of(
        wrong.map(np.zeros),
        bad_entries(shape) if int(np.prod(shape)) else st.nothing(),
        st.just(np.full(shape, "a")),
        st.just(np.zeros(shape) + 1j),
        st.just(None),
    )


def assert_named_error(call, value, name: str, *, extra: tuple[type, ...] = ()) -> None:
    """``call(value)`` raises TypeError/ValueError (or ``extra``) from our own code, naming
    ``name``: never a JAX-internal error, an XLA crash, or a silent result."""
    with pytest.raises((TypeError, ValueError, *extra)) as info:
        call(value)
    err = info.value
    assert not type(err).__module__.startswith(("jax", "jaxlib")), (
        f"{name}={value!r}: JAX-internal {type(err).__name__}: {err}")
    assert name in str(err), f"{name}={value!r}: the message does not name {name!r}: {err}"
