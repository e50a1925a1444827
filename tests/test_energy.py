import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_ebm import check_energy, gamma_energy, quadratic_energy
from numpyro_ebm.energy import batched_energy, batched_score, check_params_finite


def test_check_energy_accepts_scalar_energy():
    f, p = quadratic_energy(jnp.zeros(3), jnp.eye(3))
    out = check_energy(f, p, (3,))
    assert out.shape == () and jnp.issubdtype(out.dtype, jnp.floating)


def test_check_energy_rejects_non_scalar_with_shape_in_message():
    with pytest.raises(ValueError, match=r"returned shape \(3,\)"):
        check_energy(lambda p, x: x**2, {}, (3,))


def test_check_energy_rejects_integer_output():
    with pytest.raises(TypeError, match="floating-point"):
        check_energy(lambda p, x: jnp.sum(x).astype(jnp.int32), {}, (3,))


def test_check_energy_rejects_non_callable():
    with pytest.raises(TypeError, match="must be a callable"):
        check_energy(3.0, {}, (2,))


def test_check_energy_reports_event_shape_mismatch():
    w = jnp.ones(3)
    with pytest.raises(ValueError, match=r"event_shape"):
        check_energy(lambda p, x: p @ x, w, (2,))


def test_check_params_finite_names_the_leaf():
    with pytest.raises(ValueError, match=r"\['b'\].*non-finite"):
        check_params_finite({"a": jnp.ones(2), "b": jnp.array([1.0, jnp.nan])})


def test_quadratic_energy_log_normalizer_matches_gaussian():
    cov = jnp.array([[2.0, 0.3], [0.3, 0.5]])
    f, p = quadratic_energy(jnp.array([1.0, -1.0]), covariance=cov)
    x = jnp.array([0.2, 0.7])
    from jax.scipy.stats import multivariate_normal

    lp = -f(p, x) - f.log_normalizer(p)
    np.testing.assert_allclose(lp, multivariate_normal.logpdf(x, p["mean"], cov), rtol=1e-12)


def test_quadratic_energy_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        quadratic_energy(jnp.zeros(2), jnp.eye(3))
    with pytest.raises(ValueError, match="exactly one"):
        quadratic_energy(jnp.zeros(2))


def test_gamma_energy_normalizer_matches_gamma():
    import scipy.stats as st

    f, p = gamma_energy(3.0, 2.0)
    x = 1.3
    lp = -f(p, x) - f.log_normalizer(p)
    np.testing.assert_allclose(lp, st.gamma(3.0, scale=0.5).logpdf(x), rtol=1e-12)
    with pytest.raises(ValueError, match="> 0"):
        gamma_energy(-1.0, 1.0)


@pytest.mark.parametrize("bad", ["3", b"3"])
def test_gamma_energy_refuses_a_string_that_parses_as_a_number(bad):
    # issue 15: float("3") parses, but the docstring promises TypeError for a non-number
    with pytest.raises(TypeError, match="concentration must be a real scalar"):
        gamma_energy(bad, 2.0)
    with pytest.raises(TypeError, match="rate must be a real scalar"):
        gamma_energy(3.0, bad)


def test_batched_energy_and_score_shapes_and_values():
    f, p = quadratic_energy(jnp.zeros(2), jnp.diag(jnp.array([1.0, 4.0])))
    x = jax.random.normal(jax.random.key(0), (5, 3, 2))
    e = batched_energy(f, p, x, 1)
    s = batched_score(f, p, x, 1)
    assert e.shape == (5, 3) and s.shape == x.shape
    np.testing.assert_allclose(s, -x * jnp.array([1.0, 4.0]), rtol=1e-12)
    np.testing.assert_allclose(e, 0.5 * (x[..., 0] ** 2 + 4 * x[..., 1] ** 2), rtol=1e-12)
