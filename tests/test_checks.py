"""The shared argument checks: each refuses what it should, names the argument, passes tracers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_ebm import checks


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "ten", float("nan"), float("inf"), None, [1]])
def test_positive_int_refuses(bad):
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        checks.positive_int(bad, "num_steps")


def test_positive_int_accepts_whole_numbers():
    assert checks.positive_int(3, "n") == 3
    assert checks.positive_int(np.int64(4), "n") == 4
    assert checks.positive_int(5.0, "n") == 5
    assert checks.positive_int(None, "n", allow_none=True) is None
    assert checks.nonnegative_int(0, "n") == 0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_positive_float_refuses(bad):
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        checks.positive_float(bad, "step_size")


def test_positive_float_types_and_tracers():
    with pytest.raises(TypeError, match="step_size"):
        checks.positive_float("a", "step_size")
    with pytest.raises(TypeError, match="real scalar"):
        checks.positive_float([1.0, 2.0], "step_size")
    assert checks.positive_float(0.0, "t", allow_zero=True) == 0.0
    # a traced value passes unchecked (its value is unknown at trace time)
    out = jax.jit(lambda s: checks.positive_float(s, "step_size") * 2)(-1.0)
    assert float(out) == -2.0


def test_in_range_and_all_finite():
    checks.in_range(0.5, "p", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"p must be finite and in \(0.0, 1.0\)"):
        checks.in_range([0.5, 1.0], "p", 0.0, 1.0)
    checks.in_range(1.0, "p", 0.0, 1.0, closed=True)
    with pytest.raises(ValueError, match=r"params\['w'\] contains 1 non-finite"):
        checks.all_finite({"w": jnp.array([1.0, jnp.nan])}, "params")
    checks.all_finite({"k": jax.random.key(0), "i": jnp.arange(3)}, "state")


def test_batch_array():
    assert checks.batch_array(np.zeros((4, 2)), "batch", event_ndim=1).shape == (4, 2)
    with pytest.raises(ValueError, match=r"batch must have shape \(batch_size,\)"):
        checks.batch_array(np.zeros((0, 2)), "batch")
    with pytest.raises(ValueError, match="got shape \\(4,\\)"):
        checks.batch_array(np.zeros(4), "batch", event_ndim=1)
    with pytest.raises(ValueError, match="non-finite"):
        checks.batch_array(np.array([[np.inf, 0.0]]), "batch")
    with pytest.raises(TypeError, match="batch must be"):
        checks.batch_array(np.array(["a"]), "batch")


def test_one_of():
    assert checks.one_of("mala", "sampler", ("mala", "ula")) == "mala"
    with pytest.raises(ValueError, match=r"sampler must be one of \['mala', 'ula'\]"):
        checks.one_of("hmc", "sampler", ("mala", "ula"))
