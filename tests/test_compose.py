"""Composing energies: closed-form answers (exact up to a constant) and NUTS within MCSE."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from helpers import assert_moments_within_mcse
from numpyro.distributions import constraints
from numpyro.infer import MCMC, NUTS

from numpyro_ebm import (
    EnergyDistribution,
    conditioned,
    grid_log_normalizer,
    product_of_experts,
    quadratic_energy,
    restricted,
    tempered,
)


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def _differ_by_constant(e1, e2, points):
    """E1 - E2 is the same at every point (float64, exact up to round-off)."""
    diff = np.array([float(e1(x) - e2(x)) for x in points])
    np.testing.assert_allclose(diff, diff[0], atol=1e-10, rtol=0)


def test_product_of_gaussians_sums_precisions():
    rng = np.random.default_rng(0)
    p1, p2 = _spd(rng, 3), _spd(rng, 3)
    m1, m2 = rng.normal(size=3), rng.normal(size=3)
    f, p = product_of_experts(quadratic_energy(m1, p1), quadratic_energy(m2, p2))
    prec = p1 + p2
    g, q = quadratic_energy(np.linalg.solve(prec, p1 @ m1 + p2 @ m2), prec)
    _differ_by_constant(lambda x: f(p, x), lambda x: g(q, x), rng.normal(size=(6, 3)) * 2)
    # a wrong answer (one expert only) is not a constant away
    h, r = quadratic_energy(m1, p1)
    diff = [float(f(p, x) - h(r, x)) for x in rng.normal(size=(6, 3))]
    assert np.ptp(diff) > 1e-3


def test_weighted_product_is_power_of_experts():
    rng = np.random.default_rng(1)
    e1, e2 = quadratic_energy(np.zeros(2), np.eye(2)), quadratic_energy(np.ones(2), np.eye(2))
    f, p = product_of_experts(e1, e2, weights=[2.0, 0.5])
    for x in rng.normal(size=(4, 2)):
        want = 2.0 * e1[0](e1[1], x) + 0.5 * e2[0](e2[1], x)
        np.testing.assert_allclose(float(f(p, x)), float(want), rtol=1e-12)


def test_tempered_gaussian_has_variance_t_exactly():
    rng = np.random.default_rng(2)
    cov = _spd(rng, 2)
    mean = rng.normal(size=2)
    f, p = tempered(*quadratic_energy(mean, covariance=cov), temperature=3.0)
    g, q = quadratic_energy(mean, covariance=3.0 * cov)
    _differ_by_constant(lambda x: f(p, x), lambda x: g(q, x), rng.normal(size=(6, 2)))


def test_tempered_gaussian_nuts_moments_within_mcse():
    f, p = tempered(*quadratic_energy([1.0, -1.0], covariance=[[1.0, 0.3], [0.3, 0.5]]),
                    temperature=2.5)

    def model():
        numpyro.sample("x", EnergyDistribution(f, p, event_shape=(2,)))

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=1500, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(3))
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert_moments_within_mcse(x, [1.0, -1.0], 2.5 * np.array([[1.0, 0.3], [0.3, 0.5]]))


def test_temperature_is_traceable_data():
    f, p = tempered(*quadratic_energy([0.0], [[1.0]]), temperature=1.0)
    ts = jnp.array([0.5, 1.0, 4.0])
    out = jax.vmap(lambda t: f({**p, "temperature": t}, jnp.array([2.0])))(ts)
    np.testing.assert_allclose(out, 2.0 / ts)


def test_restricted_half_normal_log_z():
    f0, p0 = quadratic_energy([0.0], [[1.0]])
    f, p = restricted(f0, p0, constraints.positive)
    assert float(f(p, jnp.array([-0.1]))) == math.inf
    assert float(f(p, jnp.array([0.7]))) == pytest.approx(0.5 * 0.49)
    full = float(grid_log_normalizer(f0, p0, [-10.0], [10.0], num_points=4000))
    half = float(grid_log_normalizer(f, p, [-10.0], [10.0], num_points=4000))
    assert half - full == pytest.approx(math.log(0.5), abs=1e-4)
    # with the same support the NUTS transform never sees the +inf
    assert EnergyDistribution(f, p, event_shape=(1,), support=constraints.positive)


def test_conditioned_gaussian_is_closed_form_conditional():
    rng = np.random.default_rng(4)
    d = 4
    prec = _spd(rng, d)
    mean = rng.normal(size=d)
    idx, free = [3, 1], [0, 2]
    v = np.array([0.5, -1.0])
    f, p = conditioned(*quadratic_energy(mean, prec), index=idx, value=v, event_size=d)
    p_yy = prec[np.ix_(free, free)]
    p_yv = prec[np.ix_(free, idx)]
    cmean = mean[free] - np.linalg.solve(p_yy, p_yv @ (v - mean[idx]))
    g, q = quadratic_energy(cmean, p_yy)
    _differ_by_constant(lambda y: f(p, y), lambda y: g(q, y), rng.normal(size=(6, 2)))
    # a wrong conditional (the marginal mean) is not a constant away
    h, r = quadratic_energy(mean[free], p_yy)
    assert np.ptp([float(f(p, y) - h(r, y)) for y in rng.normal(size=(6, 2))]) > 1e-3


def test_conditioned_gaussian_nuts_moments_within_mcse():
    prec = np.array([[2.0, 0.8, 0.0], [0.8, 1.5, 0.4], [0.0, 0.4, 1.0]])
    mean = np.array([0.0, 1.0, -1.0])
    f, p = conditioned(*quadratic_energy(mean, prec), index=[1], value=[2.0], event_size=3)

    def model():
        numpyro.sample("y", EnergyDistribution(f, p, event_shape=(2,)))

    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=1500, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(5))
    y = mcmc.get_samples(group_by_chain=True)["y"]
    p_yy = prec[np.ix_([0, 2], [0, 2])]
    cmean = mean[[0, 2]] - np.linalg.solve(p_yy, prec[[0, 2], 1] * (2.0 - 1.0))
    assert_moments_within_mcse(y, cmean, np.linalg.inv(p_yy))


def test_composers_compose_and_are_hashable():
    e = quadratic_energy([0.0, 0.0], np.eye(2))
    f, p = tempered(*product_of_experts(e, e), temperature=2.0)
    hash(f)
    assert float(f(p, jnp.array([1.0, 1.0]))) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda e: product_of_experts(e), "at least two"),
        (lambda e: product_of_experts(e, (1, 2)), r"experts\[1\]\[0\] must be a callable"),
        (lambda e: product_of_experts(e, e, weights=[1.0]), r"weights must have shape \(2,\)"),
        (lambda e: product_of_experts(e, e, weights=[1.0, -1.0]), "weights must be finite"),
        (lambda e: tempered(*e, temperature=0.0), "temperature must be finite and > 0"),
        (lambda e: tempered(*e, temperature=float("nan")), "temperature"),
        (lambda e: restricted(*e, support="positive"), "support must be a numpyro"),
        (lambda e: conditioned(*e, index=[2], value=[0.0], event_size=2), "index must hold"),
        (lambda e: conditioned(*e, index=[0, 0], value=[0, 0], event_size=2), "distinct"),
        (lambda e: conditioned(*e, index=[0], value=[0.0, 1.0], event_size=2),
         r"value must have shape \(1,\)"),
        (lambda e: conditioned(*e, index=[0], value=[np.inf], event_size=2), "non-finite"),
        (lambda e: conditioned(*e, index=[0], value=[0.0], event_size=3), "energy_fn"),
        (lambda e: tempered(None, e[1], 1.0), "energy_fn must be a callable"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, match):
    e = quadratic_energy([0.0, 0.0], np.eye(2))
    with pytest.raises((ValueError, TypeError), match=match):
        call(e)
