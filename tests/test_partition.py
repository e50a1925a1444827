"""log Z: grid normalisation and AIS against analytic normalisers; held-out likelihood."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from numpyro_ebm import datasets, quadratic_energy
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
    with pytest.raises(ValueError, match="base_scale must be > 0"):
        ais_log_normalizer(energy, params, jax.random.key(0), 2, base_scale=-1.0)
    with pytest.raises(ValueError, match=r"target_draws must be finite with shape \(n, 2\)"):
        ais_log_normalizer(energy, params, jax.random.key(0), 2, num_temperatures=3,
                           target_draws=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="data must have shape"):
        held_out_log_likelihood(energy, params, np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="log_z must be finite"):
        held_out_log_likelihood(energy, params, np.zeros((3, 2)), np.nan)
