"""Issue 15.1: constructors built with traced arguments, inside jit and inside NumPyro models.

Each model below builds a toy density or an energy from a *latent* value, so the
constructor sees a tracer; conjugacy gives the exact posterior, checked within MCSE under
NUTS and under our MALA.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import assert_moments_within_mcse
from numpyro.distributions import constraints
from numpyro.infer import MCMC, NUTS

import numpyro_ebm as ebm
from numpyro_ebm import datasets


def test_constructors_under_jit_without_arguments():
    """The first field report: building a toy density under jit raised TracerBoolConversion."""
    out = jax.jit(lambda: datasets.banana().log_prob(jnp.zeros(2)))()
    np.testing.assert_allclose(out, datasets.banana().log_prob(jnp.zeros(2)), rtol=1e-12)


def test_constructors_under_jit_with_traced_arguments_match_eager():
    f = jax.jit(lambda m, s: datasets.gaussian(m, s * jnp.eye(2)).log_prob(jnp.ones(2)))
    np.testing.assert_allclose(
        f(jnp.array([0.5, -0.5]), 2.0),
        datasets.gaussian([0.5, -0.5], 2.0 * np.eye(2)).log_prob(jnp.ones(2)), rtol=1e-12)
    g = jax.jit(lambda b: (lambda fp: fp[0](fp[1], 1.3))(ebm.gamma_energy(3.0, b)))
    np.testing.assert_allclose(g(2.0), -2.0 * np.log(1.3) + 2.0 * 1.3, rtol=1e-12)


# ---------------------------------------------------------------- latent mean, Gaussian toy
_Y = np.random.default_rng(0).normal(loc=[1.0, -2.0], size=(20, 2))
_PRIOR_SD = 10.0


def _gaussian_mean_model(y):
    m = numpyro.sample("m", dist.Normal(0.0, _PRIOR_SD).expand([2]).to_event(1))
    numpyro.sample("y", datasets.gaussian(m, jnp.eye(2)).as_distribution().expand([y.shape[0]])
                   .to_event(1), obs=y)


def _gaussian_mean_posterior():
    prec = 1.0 / _PRIOR_SD**2 + _Y.shape[0]
    return _Y.sum(0) / prec, np.eye(2) / prec


# ---------------------------------------------------------------- latent rate, Gamma energy
_X = np.random.default_rng(1).gamma(3.0, 1 / 2.0, size=30)


def _gamma_rate_model(x):
    b = numpyro.sample("b", dist.Gamma(2.0, 1.0))
    energy_fn, params = ebm.gamma_energy(3.0, b)
    d = ebm.EnergyDistribution(energy_fn, params, support=constraints.positive,
                               log_normalizer=energy_fn.log_normalizer(params))
    numpyro.sample("x", d.expand([x.shape[0]]).to_event(1), obs=x)


def _gamma_rate_posterior():
    a, r = 2.0 + 3.0 * _X.size, 1.0 + _X.sum()  # conjugate: Gamma(2 + 3n, 1 + sum x)
    return np.array([a / r]), np.array([[a / r**2]])


CASES = {
    "gaussian_latent_mean": (_gaussian_mean_model, _Y, "m", _gaussian_mean_posterior),
    "gamma_latent_rate": (_gamma_rate_model, _X, "b", _gamma_rate_posterior),
}


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["nuts", "mala"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_models_with_traced_constructor_arguments_sample_the_posterior(case, kernel):
    model, data, site, posterior = CASES[case]
    k = NUTS(model) if kernel == "nuts" else ebm.MALA(model)
    mcmc = MCMC(k, num_warmup=300, num_samples=1000 if kernel == "nuts" else 2000,
                num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(7), jnp.asarray(data))
    draws = np.asarray(mcmc.get_samples(group_by_chain=True)[site])
    mean, cov = posterior()
    assert_moments_within_mcse(draws.reshape(2, -1, mean.size), mean, cov, n_mcse=4.5)
