"""NUTS on EnergyDistribution: moments within MCSE, constrained supports, chain methods."""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from helpers import assert_moments_within_mcse
from numpyro.distributions import constraints
from numpyro.infer import MCMC, NUTS

from numpyro_ebm import EnergyDistribution, gamma_energy, quadratic_energy


def _model(energy_fn, params, event_shape, support=constraints.real):
    def model():
        numpyro.sample("x", EnergyDistribution(energy_fn, params, event_shape=event_shape,
                                               support=support))

    return model


def _run(model, key=0, warmup=500, samples=1000, chains=2, method="vectorized", **kw):
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=chains,
                chain_method=method, progress_bar=False)
    mcmc.run(jax.random.key(key), **kw)
    return mcmc


@pytest.mark.parametrize("dim", [2, 10])
def test_nuts_recovers_gaussian_moments(dim):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(dim, dim))
    cov = a @ a.T / dim + 0.5 * np.eye(dim)
    mean = rng.normal(size=dim)
    f, p = quadratic_energy(mean, covariance=cov)
    mcmc = _run(_model(f, p, (dim,)), key=dim)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert_moments_within_mcse(x, mean, cov, n_mcse=4.5)


def test_nuts_positive_support_recovers_gamma():
    a, b = 3.0, 2.0
    f, p = gamma_energy(a, b)
    mcmc = _run(_model(f, p, (), constraints.positive), key=3, samples=2000)
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    assert (x > 0).all()
    mean, var = a / b, a / b**2
    # Mean and variance as means of f(x): x and (x - mean)^2, within 4 MCSE each.
    assert_moments_within_mcse(x, mean, var, n_mcse=4.0)


@pytest.mark.parametrize("method", ["sequential", "parallel", "vectorized"])
def test_all_chain_methods_and_arviz(method):
    f, p = quadratic_energy(jnp.zeros(2), jnp.eye(2))
    mcmc = _run(_model(f, p, (2,)), key=5, warmup=200, samples=400, method=method)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert x.shape == (2, 400, 2)
    assert not np.allclose(x[0], x[1])  # chains differ
    dt = az.from_numpyro(mcmc)
    assert "posterior" in dt.children and "sample_stats" in dt.children
    rhat = az.rhat(dt)["x"].values
    assert np.all(rhat < 1.05)
    assert_moments_within_mcse(x, np.zeros(2), np.eye(2), n_mcse=4.5)


def test_simplex_support_with_nuts():
    # Dirichlet(2, 3, 4) as an energy on the simplex: E = -sum (alpha - 1) log x
    alpha = jnp.array([2.0, 3.0, 4.0])
    f = lambda p, x: -jnp.sum((p - 1.0) * jnp.log(x))
    mcmc = _run(_model(f, alpha, (3,), constraints.simplex), key=7, samples=1500)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    np.testing.assert_allclose(np.asarray(x).sum(-1), 1.0, atol=1e-6)
    a0 = float(alpha.sum())
    m = np.asarray(alpha / a0)
    var = m * (1 - m) / (a0 + 1)
    assert_moments_within_mcse(np.asarray(x)[..., :2], m[:2], np.diag(var[:2])
                               + np.array([[0, -m[0] * m[1] / (a0 + 1)],
                                           [-m[0] * m[1] / (a0 + 1), 0]]), n_mcse=4.5)
