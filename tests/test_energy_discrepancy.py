"""Energy discrepancy (Schroder et al. 2023): the loss, its consistency, its errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
import pytest
from jax.scipy.special import logsumexp

import numpyro_ebm as ne
from numpyro_ebm.objectives import energy_discrepancy

SIGMA = 1.5  # data N(0, SIGMA^2): the true precision is 1 / SIGMA^2


def _energy(a, x):
    return 0.5 * a * jnp.sum(x**2)


def test_loss_matches_the_formula_written_out():
    # L = mean_i log(w/M + 1/M sum_j exp(E(x_i) - E(x_ij))), x_ij = x_i + s xi_i + s xi'_ij
    s, m, w = 0.7, 3, 0.5
    obj = energy_discrepancy(s, m, weight=w)
    x = jax.random.normal(jax.random.key(0), (5, 2))
    key = jax.random.key(1)
    value, (state, metrics) = obj.loss(_energy, 2.0, (), (), x, key)
    k_y, k_neg = jax.random.split(key)
    y = x + s * jax.random.normal(k_y, x.shape)
    neg = y + s * jax.random.normal(k_neg, (m,) + x.shape)
    e_x = jax.vmap(lambda z: _energy(2.0, z))(x)
    e_neg = jax.vmap(jax.vmap(lambda z: _energy(2.0, z)))(neg)
    terms = jnp.concatenate([jnp.full((1, 5), math.log(w)), e_x[None] - e_neg])
    expected = jnp.mean(logsumexp(terms, 0) - math.log(m))
    assert jnp.allclose(value, expected, rtol=1e-6)
    assert state == ()
    assert jnp.allclose(metrics["energy_data"], jnp.mean(e_x))
    assert jnp.allclose(metrics["data_lowest"], jnp.mean(e_x < jnp.min(e_neg, 0)))


def _mean_estimate(weight: float, reps: int = 100, n: int = 4000) -> tuple[float, float]:
    """Mean and MCSE of the exact minimiser of L over ``reps`` independent data sets."""
    obj = energy_discrepancy(1.0, 4, weight=weight)

    def fit_one(key):
        kx, kn = jax.random.split(key)
        x = SIGMA * jax.random.normal(kx, (n, 1))
        f = lambda a: obj.loss(_energy, a, (), (), x, kn)[0]  # noqa: E731  (convex in a)
        a = jax.lax.fori_loop(0, 10, lambda _, a: a - jax.grad(f)(a) / jax.hessian(f)(a),
                              jnp.asarray(1.0))
        return a, jax.grad(f)(a)

    a, g = jax.jit(jax.vmap(fit_one))(jax.random.split(jax.random.key(7), reps))
    assert float(jnp.abs(g).max()) < 1e-5  # Newton converged on every data set
    return float(jnp.mean(a)), float(jnp.std(a)) / math.sqrt(reps)


@pytest.mark.slow
def test_recovers_the_precision_of_gaussian_data():
    """Consistency: with w = 1 the minimiser is the true precision for any M (here M = 4).

    100 data sets of 4000 points, each minimised exactly (Newton; the loss is a log-sum-exp
    of functions linear in a, so convex). The mean estimate is within 4 Monte Carlo standard
    errors of 1 / SIGMA^2 (the M-estimator's O(1/N) bias is ~0.1% here, a quarter of one
    MCSE, measured at N = 2000 and 8000). Control: w = 2 biases the minimiser for finite M
    (by about -13%), and the same tolerance must detect it.
    """
    mean, se = _mean_estimate(1.0)
    assert abs(mean - 1 / SIGMA**2) < 4 * se
    assert se < 0.01 / SIGMA**2  # a genuine estimator, not a wide one
    mean_w2, se_w2 = _mean_estimate(2.0)
    assert abs(mean_w2 - 1 / SIGMA**2) > 4 * se_w2


def test_equal_settings_equal_objectives_and_bad_arguments():
    assert energy_discrepancy(0.5, 8) == energy_discrepancy(0.5, 8)
    assert hash(energy_discrepancy(0.5, 8)) == hash(energy_discrepancy(0.5, 8))
    assert energy_discrepancy(0.5, 8) != energy_discrepancy(0.5, 8, weight=0.0)
    with pytest.raises(ValueError, match="noise_scale must be finite and > 0, got 0.0"):
        energy_discrepancy(0.0)
    with pytest.raises(ValueError, match="num_samples must be a positive int, got 0"):
        energy_discrepancy(0.5, 0)
    with pytest.raises(ValueError, match="weight must be finite and >= 0, got -1.0"):
        energy_discrepancy(0.5, weight=-1.0)
    obj = energy_discrepancy(0.5)
    energy_fn, params = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(TypeError, match="one array of shape"):
        obj.init(jax.random.key(0), energy_fn, params, (jnp.zeros((4, 2)), jnp.zeros((4, 1))))
    with pytest.raises(ValueError, match=r"x of shape \(3,\)"):
        obj.init(jax.random.key(0), energy_fn, params, jnp.zeros((4, 3)))


def test_fit_lowers_the_loss_on_gaussian_data():
    """Through fit: a quadratic energy started at precision I moves towards the truth."""
    x = SIGMA * jax.random.normal(jax.random.key(0), (512, 2))
    energy_fn, params = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))
    res = ne.fit(energy_fn, params, x, energy_discrepancy(1.0, 8), key=jax.random.key(1),
                 num_steps=300, batch_size=128, optimizer=optax.adam(2e-2),
                 progress_bar=False)
    diag = jnp.diag(res.params["precision"])
    assert res.stopped_reason.startswith("completed")
    assert jnp.all(jnp.abs(diag - 1 / SIGMA**2) < 0.25 * (1 - 1 / SIGMA**2))
