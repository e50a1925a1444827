"""log Z: grid normalisation and AIS against analytic normalisers; held-out likelihood."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import constraints

from numpyro_ebm import datasets, gamma_energy, quadratic_energy
from numpyro_ebm.partition import (
    AISResult,
    ais_log_normalizer,
    grid_log_normalizer,
    held_out_log_likelihood,
)


def _gaussian(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(d, d))
    cov = a @ a.T / d + 0.5 * np.eye(d)
    energy, params = quadratic_energy(np.ones(d), covariance=cov)
    return energy, params, float(energy.log_normalizer(params)), datasets.gaussian(np.ones(d), cov)


def _mixture(d):
    means = np.zeros((2, d))
    means[:, 0] = [-2.0, 2.0]
    mix = datasets.gaussian_mixture(means, 0.7, [0.3, 0.7])
    return mix.energy_fn, mix.params, 0.0, mix  # E = -log p: log Z = 0


def test_grid_log_z_matches_analytic_2d():
    energy, params, truth, _ = _gaussian(2)
    got = float(grid_log_normalizer(energy, params, [-6.0, -6.0], [8.0, 8.0], 256))
    assert abs(got - truth) < 1e-3


def _check_ais(make, d, seed):
    energy, params, truth, sampler = make(d)
    res = ais_log_normalizer(energy, params, jax.random.key(seed), d, base_scale=2.0,
                             num_temperatures=150,
                             target_draws=sampler.sample(jax.random.key(seed + 1), 256))
    assert isinstance(res, AISResult)
    # both estimates within 4 of their own standard errors of the analytic value
    assert abs(res.log_z - truth) < 4 * res.stderr, res
    assert abs(res.upper - truth) < 4 * res.upper_stderr, res
    assert 0 < res.stderr < 0.2 and res.effective_sample_size > 50
    lo, hi = res.bracket
    assert lo < truth < hi


@pytest.mark.parametrize("make", [_gaussian, _mixture], ids=["gaussian", "mixture"])
def test_ais_2d(make):
    _check_ais(make, 2, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("make", [_gaussian, _mixture], ids=["gaussian", "mixture"])
def test_ais_10d(make):
    _check_ais(make, 10, seed=3)


def test_held_out_log_likelihood_known_answer():
    energy, params, truth, g = _gaussian(2)
    x = np.asarray(g.sample(jax.random.key(0), 500))
    res = held_out_log_likelihood(energy, params, x, truth)
    np.testing.assert_allclose(res.mean, np.mean(np.asarray(g.log_prob(x))), rtol=1e-10)
    ais = AISResult(truth, 0.1, np.nan, np.nan, np.zeros(2), None, 2.0, 0.6)
    with_ais = held_out_log_likelihood(energy, params, x, ais)
    assert with_ais.stderr == pytest.approx(np.sqrt(res.stderr**2 + 0.01))


def test_partition_bad_inputs():
    energy, params, _, _ = _gaussian(2)
    with pytest.raises(ValueError, match="num_temperatures must be"):
        ais_log_normalizer(energy, params, jax.random.key(0), 2, num_temperatures=1)
    with pytest.raises(ValueError, match="base_scale must be (finite and )?> 0"):
        ais_log_normalizer(energy, params, jax.random.key(0), 2, base_scale=-1.0)
    with pytest.raises(ValueError, match=r"target_draws must be finite with shape \(n, 2\)"):
        ais_log_normalizer(energy, params, jax.random.key(0), 2, num_temperatures=3,
                           target_draws=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="data must have shape"):
        held_out_log_likelihood(energy, params, np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="log_z must be finite"):
        held_out_log_likelihood(energy, params, np.zeros((3, 2)), np.nan)


# ---------------------------------------------------------------- scalar events, supports
GAMMA_LOG_Z = float(np.log(2.0) - 3.0 * np.log(2.0))  # lgamma(3) - 3 log 2 for Gamma(3, 2)


def test_grid_log_z_scalar_events_gamma():
    """Scalar bounds mean scalar events: log Z of the Gamma(3, 2) energy, tight."""
    energy, params = gamma_energy(3.0, 2.0)
    got = float(grid_log_normalizer(energy, params, 0.0, 30.0, 20000))
    assert abs(got - GAMMA_LOG_Z) < 1e-6
    assert abs(float(energy.log_normalizer(params)) - GAMMA_LOG_Z) < 1e-12


def test_grid_hints_scalar_events_and_refuses_nan():
    energy, params = gamma_energy(3.0, 2.0)
    with pytest.raises(ValueError, match=r"scalar events \(event_shape=\(\)\)") as err:
        grid_log_normalizer(energy, params, [0.0], [30.0])
    # the message leads with the cause, not "must return a scalar ... returned shape (1,)"
    assert str(err.value).startswith("energy_fn takes scalar events")
    assert "lo and hi" in str(err.value)
    with pytest.raises(ValueError, match="NaN or -inf somewhere in the box"):
        grid_log_normalizer(energy, params, -1.0, 30.0)  # x < 0 is outside the support


def test_ais_scalar_events_with_positive_support():
    """AIS with support=positive anneals in log space (with the log-Jacobian): Gamma(3, 2)."""
    energy, params = gamma_energy(3.0, 2.0)
    exact = np.random.default_rng(0).gamma(3.0, 0.5, size=256)
    res = ais_log_normalizer(energy, params, jax.random.key(4), (), support=constraints.positive,
                             num_temperatures=100, target_draws=exact)
    assert np.isfinite(res.log_z) and 0 < res.stderr < 0.1
    assert abs(res.log_z - GAMMA_LOG_Z) < 4 * res.stderr, res
    assert abs(res.upper - GAMMA_LOG_Z) < 4 * res.upper_stderr, res
    lo, hi = res.bracket
    assert lo < GAMMA_LOG_Z < hi


def test_ais_without_support_says_what_it_needs():
    energy, params = gamma_energy(3.0, 2.0)
    with pytest.raises(FloatingPointError, match=r"pass support="):
        ais_log_normalizer(energy, params, jax.random.key(0), (), num_temperatures=5,
                           num_particles=16)
    with pytest.raises(ValueError, match="target_draws must lie inside the support"):
        ais_log_normalizer(energy, params, jax.random.key(0), (), support=constraints.positive,
                           num_temperatures=5, target_draws=np.array([1.0, -1.0]))
    with pytest.raises(TypeError, match="support must be a numpyro"):
        ais_log_normalizer(energy, params, jax.random.key(0), (), support="positive")


def test_ais_interval_support_known_answer():
    """A vector event on a bounded support: the flat energy on (0, 1)^2 has log Z = 0."""
    res = ais_log_normalizer(lambda p, x: jnp.sum(0.0 * x), {}, jax.random.key(1), 2,
                             support=constraints.interval(0.0, 1.0), num_temperatures=50,
                             num_particles=128)
    assert abs(res.log_z) < 4 * res.stderr + 1e-9, res


def test_held_out_log_likelihood_scalar_events():
    energy, params = gamma_energy(3.0, 2.0)
    x = np.random.default_rng(1).gamma(3.0, 0.5, size=200)
    res = held_out_log_likelihood(energy, params, x, GAMMA_LOG_Z, event_shape=())
    import scipy.stats as st

    np.testing.assert_allclose(res.mean, st.gamma(3.0, scale=0.5).logpdf(x).mean(), rtol=1e-10)
