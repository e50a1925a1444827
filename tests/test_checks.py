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


def test_real_array():
    assert checks.real_array([1, 2], "x").dtype == jnp.result_type(float)
    assert checks.real_array(np.zeros(2, np.float32), "x").dtype == np.float32
    with pytest.raises(TypeError, match="x must be real-valued"):
        checks.real_array(np.array(["a"]), "x")
    with pytest.raises(TypeError, match="x must be real-valued"):
        checks.real_array(np.ones(2) + 1j, "x")
    with pytest.raises(TypeError, match="x must be real-valued"):
        checks.real_array(True, "x")
    with pytest.raises(ValueError, match=r"x must have 1 dimension\(s\), got shape \(2, 2\)"):
        checks.real_array(np.eye(2), "x", ndim=1)
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        checks.real_array([1.0, np.inf], "x")
    # a concrete value is inspected even under jit; a traced one is not
    with pytest.raises(ValueError, match="non-finite"):
        jax.jit(lambda: checks.real_array(np.array([np.nan]), "x"))()
    assert np.isnan(jax.jit(lambda v: checks.real_array(v, "x"))(np.nan))


def test_positive_array_shape_tuple_spd_matrix():
    checks.positive_array([1.0, 2.0], "scale")
    checks.positive_array([0.0, 2.0], "w", allow_zero=True)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        checks.positive_array([1.0, 0.0], "scale")
    with pytest.raises(TypeError, match="scale must be real-valued"):
        checks.positive_array("a", "scale")
    assert jax.jit(lambda s: (checks.positive_array(s, "scale"), s)[1])(-1.0) == -1.0
    assert checks.shape_tuple(3, "event_shape") == (3,)
    assert checks.shape_tuple((), "event_shape") == ()
    assert checks.shape_tuple([2, np.int64(3)], "event_shape") == (2, 3)
    for bad in [(1.5,), "ab", None, ((1,),), (True,)]:
        with pytest.raises(TypeError, match="event_shape must be a tuple of ints"):
            checks.shape_tuple(bad, "event_shape")
    with pytest.raises(ValueError, match="non-negative"):
        checks.shape_tuple((-1,), "event_shape")
    checks.spd_matrix(np.eye(2), "cov")
    with pytest.raises(ValueError, match="cov must be symmetric"):
        checks.spd_matrix([[1.0, 0.5], [0.0, 1.0]], "cov")
    with pytest.raises(ValueError, match="cov must be positive definite"):
        checks.spd_matrix([[1.0, 2.0], [2.0, 1.0]], "cov")
    with pytest.raises(ValueError, match="cov must be a square matrix"):
        checks.spd_matrix(np.ones((2, 3)), "cov")
    jax.jit(lambda c: checks.spd_matrix(c, "cov"))(-np.eye(2))  # traced: not inspected


def test_float64_input_without_x64_is_converted_without_a_warning():
    """NumPy float64 data in a float32 session (x64 off): no dtype-truncation warning."""
    import os
    import subprocess
    import sys

    code = ("import warnings, numpy as np; warnings.simplefilter('error'); "
            "from numpyro_ebm import checks; "
            "a = checks.real_array(np.zeros((2, 2)), 'x'); assert a.dtype == np.float32; "
            "print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
