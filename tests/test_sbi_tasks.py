"""SBI benchmark tasks: simulators, true likelihoods and reference posteriors checked
against each other (closed forms, grid quadrature of prior x likelihood, exact identities)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from numpyro_ebm.sbi import TASK_NAMES, get_task
from numpyro_ebm.sbi.tasks import _glm_design, nuts_reference


def _grid_moments(task, x_obs, lo, hi, n):
    """Posterior mean and second moments of a 2-D task by quadrature on an n x n grid."""
    g = jnp.linspace(lo, hi, n)
    t = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    lp = jax.lax.map(lambda th: task.log_likelihood(th, x_obs), t, batch_size=65536)
    lp = lp + task.prior.log_prob(t)
    w = jnp.exp(lp - jnp.max(lp))
    w = w / jnp.sum(w)
    return np.asarray(w @ t), np.asarray(w @ t**2)


def _assert_iid_moments(draws, mean, second, n_se=5.0):
    d = np.asarray(draws, np.float64)
    for f, target in ((d, mean), (d**2, second)):
        se = f.std(0) / math.sqrt(f.shape[0])
        z = (f.mean(0) - target) / se
        assert np.all(np.abs(z) < n_se), (f.mean(0), target, z)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_shapes_and_fixed_observations(name):
    task = get_task(name)
    theta, x = task.sample_joint(jax.random.key(0), 7)
    assert theta.shape == (7, task.theta_dim) and x.shape == (7, task.x_dim)
    assert bool(jnp.all(jnp.isfinite(x)))
    t0, x0 = task.observation(0)
    t0b, x0b = task.observation(0)
    t1, _ = task.observation(1)
    assert np.array_equal(t0, t0b) and np.array_equal(x0, x0b)
    assert not np.array_equal(t0, t1)
    assert x0.shape == (task.x_dim,)
    assert np.isfinite(float(task.log_likelihood(t0, x0)))


def test_bad_task_arguments_are_named():
    with pytest.raises(ValueError, match="name must be one of"):
        get_task("three_moons")
    task = get_task("two_moons")
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 2\)"):
        task.simulate(jax.random.key(0), jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"x_obs must have shape \(2,\)"):
        task.reference_posterior(jax.random.key(0), jnp.zeros(3), 10)
    with pytest.raises(ValueError, match="index must be an int"):
        task.observation(10)


def test_gaussian_linear_reference_is_prior_times_likelihood():
    # log p(theta) + log p(x | theta) - log N(theta; x/2, 0.05 I) must not depend on theta
    task = get_task("gaussian_linear")
    _, x = task.observation(2)
    theta = task.prior.sample(jax.random.key(1), (50,)) * 3
    post = dist.Normal(x / 2, math.sqrt(0.05)).to_event(1)
    diff = (task.prior.log_prob(theta) + jax.vmap(task.log_likelihood, (0, None))(theta, x)
            - post.log_prob(theta))
    assert float(jnp.std(diff)) < 1e-8
    draws = task.reference_posterior(jax.random.key(2), x, 20_000)
    _assert_iid_moments(draws, x / 2, 0.05 + (x / 2) ** 2)


def test_two_moons_exact_sampler_matches_the_likelihood():
    task = get_task("two_moons")
    _, x = task.observation(0)
    mean, second = _grid_moments(task, x, -1.0, 1.0, 2001)
    draws = task.reference_posterior(jax.random.key(3), x, 20_000)
    assert draws.shape == (20_000, 2) and bool(jnp.all(jnp.abs(draws) <= 1))
    _assert_iid_moments(draws, mean, second)
    # both crescents (sign of theta1 + theta2) carry half the mass
    frac = float(jnp.mean(draws.sum(1) > 0))
    assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / 20_000)


def test_two_moons_likelihood_is_normalised_over_x():
    task = get_task("two_moons")
    theta = jnp.array([0.3, -0.6])
    g = jnp.linspace(-1.5, 1.5, 1501)
    xs = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    p = jnp.exp(jax.vmap(task.log_likelihood, (None, 0))(theta, xs))
    assert float(jnp.sum(p) * (g[1] - g[0]) ** 2) == pytest.approx(1.0, abs=0.01)


def test_gaussian_mixture_reference_matches_the_likelihood():
    task = get_task("gaussian_mixture")
    _, x = task.observation(1)
    mean, second = _grid_moments(task, x, -10.0, 10.0, 2001)
    draws = task.reference_posterior(jax.random.key(4), x, 20_000)
    _assert_iid_moments(draws, mean, second)


def test_slcp_likelihood_has_the_four_sign_modes():
    task = get_task("slcp")
    theta, x = task.observation(0)
    flips = jnp.array([[1, 1, s3, s4, 1] for s3 in (1, -1) for s4 in (1, -1)], theta.dtype)
    ll = jax.vmap(task.log_likelihood, (0, None))(theta * flips, x)
    assert np.allclose(ll, ll[0])
    # and it is the Gaussian density of the four iid 2-D draws
    s1, s2, r = float(theta[2]) ** 2, float(theta[3]) ** 2, math.tanh(float(theta[4]))
    cov = np.array([[s1**2 + 1e-6, r * s1 * s2], [r * s1 * s2, s2**2 + 1e-6]])
    z = np.asarray(x).reshape(4, 2) - np.asarray(theta[:2])
    ll_np = sum(-0.5 * zi @ np.linalg.solve(cov, zi) - 0.5 * np.log(np.linalg.det(cov))
                - np.log(2 * np.pi) for zi in z)
    assert float(ll[0]) == pytest.approx(ll_np, rel=1e-6, abs=1e-6)


def test_bernoulli_glm_likelihood_differences_match_bernoulli_log_probs():
    # the sufficient-statistic likelihood drops only a theta-independent count
    task = get_task("bernoulli_glm")
    design = jnp.asarray(_glm_design(), jnp.float64)
    th = task.prior.sample(jax.random.key(5), (2,))
    y = jax.random.bernoulli(jax.random.key(6), 0.3, (100,)).astype(jnp.float64)
    x = y @ design

    def bern(t):
        return jnp.sum(dist.Bernoulli(logits=design @ t).log_prob(y))

    got = task.log_likelihood(th[0], x) - task.log_likelihood(th[1], x)
    assert float(got) == pytest.approx(float(bern(th[0]) - bern(th[1])), rel=1e-8)
    assert float(x[0]) == float(y.sum())


def test_nuts_reference_matches_the_closed_form():
    task = get_task("gaussian_linear")
    _, x = task.observation(3)
    draws = nuts_reference(task, jax.random.key(7), x, 4000, num_chains=4, num_warmup=300,
                           min_ess=400)
    # NUTS draws on this Gaussian are nearly independent; ESS > 400 was checked above
    d = np.asarray(draws).reshape(4, 1000, 10)
    from helpers import assert_moments_within_mcse

    assert_moments_within_mcse(d, x / 2, None)
    assert np.allclose(d.reshape(-1, 10).var(0), 0.05, rtol=0.15)
