"""Learned likelihood factors (ratio_factor) and the doubly-intractable guard (check_model)."""

import math

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.distributions.distribution import Unit
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import log_density

from numpyro_ebm import MALA, EnergyDistribution, fit
from numpyro_ebm.energy import gamma_energy, quadratic_energy
from numpyro_ebm.likelihood import (
    UNNORMALIZED_FACTOR,
    DoublyIntractableError,
    check_model,
    ratio_factor,
)
from numpyro_ebm.nn import mlp_energy
from numpyro_ebm.objectives import ratio_estimation

ENERGY, PARAMS = quadratic_energy(jnp.zeros(2), jnp.eye(2))
X_OBS = jnp.array([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.1]])


def _latent_mean():
    return numpyro.sample("m", dist.Normal(jnp.zeros(2), 1.0).to_event(1))


# ----------------------------------------------------------------------------- the guard
def observed_with_latent_params(x):
    m = _latent_mean()
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", EnergyDistribution(ENERGY, {"mean": m, "precision": jnp.eye(2)},
                                               event_shape=(2,)), obs=x)


def observed_expanded_latent_precision(x):
    lam = numpyro.sample("lam", dist.Gamma(2.0, 2.0))
    d = EnergyDistribution(ENERGY, {"mean": jnp.zeros(2), "precision": lam * jnp.eye(2)},
                           event_shape=(2,))
    numpyro.sample("x", d.expand([x.shape[0]]).to_event(1), obs=x)


def latent_x_with_latent_params():
    m = _latent_mean()
    numpyro.sample("x", EnergyDistribution(ENERGY, {"mean": m, "precision": jnp.eye(2)},
                                           event_shape=(2,)))


def flagged_factor_with_latent_params(x):
    m = _latent_mean()
    log_f = -0.5 * jnp.sum((x - m) ** 2)
    numpyro.sample("f", Unit(log_f), obs=jnp.zeros((0,)), infer={UNNORMALIZED_FACTOR: True})


@pytest.mark.parametrize(
    ("model", "args", "site", "latent"),
    [
        (observed_with_latent_params, (X_OBS,), "x", "m"),
        (observed_expanded_latent_precision, (X_OBS,), "x", "lam"),
        (latent_x_with_latent_params, (), "x", "m"),
        (flagged_factor_with_latent_params, (X_OBS,), "f", "m"),
    ],
)
def test_guard_fires_on_doubly_intractable_models(model, args, site, latent):
    with pytest.raises(DoublyIntractableError) as info:
        check_model(model, *args)
    msg = str(info.value)
    assert f"Site '{site}'" in msg and f"['{latent}']" in msg
    for alternative in ("fixed", "normalized_distribution", "ratio_factor"):
        assert alternative in msg
    assert isinstance(info.value, ValueError)


def observed_fixed_params(x, theta_scale):
    s = numpyro.sample("s", dist.HalfNormal(theta_scale))  # a latent elsewhere in the model
    numpyro.sample("y", dist.Normal(0.0, s), obs=1.0)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", EnergyDistribution(ENERGY, PARAMS, event_shape=(2,)), obs=x)


def observed_normalized_latent_params(x):
    m = _latent_mean()
    d = EnergyDistribution(ENERGY, {"mean": m, "precision": jnp.eye(2)}, event_shape=(2,),
                           log_normalizer=math.log(2 * math.pi))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", d, obs=x)


def latent_x_fixed_params():
    numpyro.sample("x", EnergyDistribution(ENERGY, PARAMS, event_shape=(2,)))


CONDITIONAL_ENERGY, CONDITIONAL_PARAMS = mlp_energy(jax.random.key(0), 2, (4,), context_dim=2)


def ratio_factor_model(x):
    m = _latent_mean()
    ratio_factor("lik", CONDITIONAL_ENERGY, CONDITIONAL_PARAMS, x, m)


@pytest.mark.parametrize(
    ("model", "args", "kwargs"),
    [
        (observed_fixed_params, (X_OBS,), {"theta_scale": 1.0}),
        (observed_normalized_latent_params, (X_OBS,), {}),
        (latent_x_fixed_params, (), {}),
        (ratio_factor_model, (X_OBS,), {}),
    ],
)
def test_guard_is_silent_on_valid_models(model, args, kwargs, recwarn):
    assert check_model(model, *args, **kwargs) is None
    assert not recwarn.list


def test_guard_rejects_non_callable():
    with pytest.raises(TypeError, match="model must be a callable"):
        check_model("not a model")


# ----------------------------------------------------------------------------- ratio_factor
def test_ratio_factor_adds_sum_of_negative_energies():
    theta = jnp.array([0.2, -0.1])

    def model(x):
        ratio_factor("lik", CONDITIONAL_ENERGY, CONDITIONAL_PARAMS, x, theta)

    lp, _ = log_density(model, (X_OBS,), {}, {})
    expected = -sum(CONDITIONAL_ENERGY(CONDITIONAL_PARAMS, xi, theta) for xi in X_OBS)
    assert jnp.allclose(lp, expected)
    with numpyro.handlers.seed(rng_seed=0):
        per_item = ratio_factor("lik", CONDITIONAL_ENERGY, CONDITIONAL_PARAMS, X_OBS, theta)
    assert per_item.shape == (3,)


def test_ratio_factor_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"event_ndim must be between 0 and x.ndim = 1"):
        ratio_factor("lik", CONDITIONAL_ENERGY, CONDITIONAL_PARAMS, jnp.zeros(2), jnp.zeros(2),
                     event_ndim=2)
    with pytest.raises(TypeError, match="name must be a str"):
        ratio_factor(3, CONDITIONAL_ENERGY, CONDITIONAL_PARAMS, X_OBS, jnp.zeros(2))
    bad = jax.tree.map(lambda p: p * jnp.nan, CONDITIONAL_PARAMS)
    with pytest.raises(ValueError, match="non-finite"):
        ratio_factor("lik", CONDITIONAL_ENERGY, bad, X_OBS, jnp.zeros(2))


@pytest.mark.slow
def test_learned_likelihood_posterior_matches_conjugate_answer():
    # theta ~ N(0, 1), x | theta ~ N(theta, s^2): 20000 simulations train a ratio MLP;
    # NUTS with ratio_factor must give the analytic posterior of 4 observations.
    s, n = 0.5, 20000
    k1, k2 = jax.random.split(jax.random.key(0))
    theta = jax.random.normal(k1, (n, 1))
    x = theta + s * jax.random.normal(k2, (n, 1))
    energy_fn, params = mlp_energy(jax.random.key(1), 1, (32, 32), context_dim=1)
    result = fit(energy_fn, params, (x, theta), ratio_estimation(), key=jax.random.key(2),
                 num_steps=1500, batch_size=256, optimizer=optax.adam(3e-3),
                 progress_bar=False)
    x_obs = jnp.array([[0.8], [1.3], [0.4], [1.1]])

    def model(x_obs):
        th = numpyro.sample("theta", dist.Normal(0.0, 1.0).expand([1]).to_event(1))
        ratio_factor("lik", energy_fn, result.params, x_obs, th)

    check_model(model, x_obs)
    # NUTS takes ~2.4 leapfrog steps per draw on this 1-D posterior: ESS ~ 0.3 per draw, so
    # 4000 draws secure the >= 600 effective draws the tolerance below assumes
    mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=4000, progress_bar=False)
    mcmc.run(jax.random.key(3), x_obs)
    draws = mcmc.get_samples()["theta"][:, 0]
    precision = 1.0 + x_obs.shape[0] / s**2
    mean, sd = float(jnp.sum(x_obs) / s**2 / precision), precision**-0.5
    # tolerance: ratio-approximation error plus NUTS Monte Carlo error (SE of the mean at
    # most 0.04 sd with >= 600 effective draws): mean within 0.15 sd, sd within 10%
    assert float(numpyro.diagnostics.effective_sample_size(draws[None])) > 600
    assert abs(float(draws.mean()) - mean) < 0.15 * sd
    assert float(draws.std()) == pytest.approx(sd, rel=0.10)


def test_guard_fires_on_energy_factor_with_latent_params_and_not_with_fixed():
    from numpyro_ebm import energy_factor

    f, p = quadratic_energy(jnp.zeros(2), jnp.eye(2))
    x = jnp.ones((5, 2))

    def bad():
        m = numpyro.sample("m", dist.Normal(0, 1).expand([2]).to_event(1))
        energy_factor("lik", f, {"mean": m, "precision": p["precision"]}, x)

    def good():
        numpyro.sample("m", dist.Normal(0, 1))
        energy_factor("lik", f, p, x)

    with pytest.raises(DoublyIntractableError, match="'lik'.*'m'"):
        check_model(bad)
    check_model(good)


def test_guard_allows_a_latent_x_in_an_energy_factor_with_fixed_params():
    """Sampling x under a fixed-parameter energy factor is valid (Z is a constant)."""
    from numpyro_ebm import MALA, energy_factor

    f, p = quadratic_energy(jnp.zeros(2), jnp.eye(2))

    def model():
        x = numpyro.sample("x", dist.ImproperUniform(dist.constraints.real_vector, (), (2,)))
        energy_factor("e", f, p, x)

    check_model(model)
    mcmc = MCMC(MALA(model), num_warmup=200, num_samples=400, progress_bar=False)
    mcmc.run(jax.random.key(0))
    assert mcmc.get_samples()["x"].shape == (400, 2)

    def bad():
        m = numpyro.sample("m", dist.Normal(0.0, 1.0))
        x = numpyro.sample("x", dist.ImproperUniform(dist.constraints.real_vector, (), (2,)))
        energy_factor("e", f, {"mean": jnp.full(2, m), "precision": p["precision"]}, x)

    with pytest.raises(DoublyIntractableError, match=r"Site 'e'.*\['m'\]") as err:
        check_model(bad)
    assert "'x'" not in str(err.value).split("latent site(s)")[1].split(":")[0]


def _gamma_rate_model(x, closed_form):
    b = numpyro.sample("b", dist.Gamma(2.0, 1.0))
    energy_fn, params = gamma_energy(3.0, b)
    log_z = energy_fn.log_normalizer(params) if closed_form else None
    d = EnergyDistribution(energy_fn, params, support=dist.constraints.positive,
                           log_normalizer=log_z)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", d, obs=x)


def test_closed_form_log_normalizer_advice_followed_gives_the_conjugate_posterior():
    """The guard's advice (4): pass the closed-form log Z of the sampled rate."""
    x = dist.Gamma(3.0, 2.0).sample(jax.random.key(0), (40,))
    with pytest.raises(DoublyIntractableError, match=r"log_normalizer\(params\)"):
        check_model(_gamma_rate_model, x, False)
    check_model(_gamma_rate_model, x, True)  # following the advice: accepted
    mcmc = MCMC(MALA(_gamma_rate_model), num_warmup=300, num_samples=2000, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(1), x, True)
    b = np.asarray(mcmc.get_samples(group_by_chain=True)["b"])
    # conjugate: b | x ~ Gamma(2 + 3 n, 1 + sum x)
    a_post, r_post = 2.0 + 3.0 * x.shape[0], 1.0 + float(jnp.sum(x))
    mcse = float(az.mcse(b, method="mean"))
    assert abs(b.mean() - a_post / r_post) < 4.5 * mcse
