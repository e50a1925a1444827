"""Toy densities: normalized log-densities (grid), samplers that match them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

from numpyro_ebm import datasets


@pytest.mark.parametrize("name", ["gaussian", "eight_gaussians", "two_moons", "rings"])
def test_log_prob_integrates_to_one(name):
    d = datasets.get(name)
    g = np.linspace(-6, 6, 401)
    X, Y = np.meshgrid(g, g)
    lp = d.log_prob(jnp.stack([X.ravel(), Y.ravel()], -1))
    mass = float(jnp.sum(jnp.exp(lp)) * (g[1] - g[0]) ** 2)
    assert abs(mass - 1.0) < 1e-4


@pytest.mark.parametrize("name", datasets.NAMES)
def test_sampler_agrees_with_log_prob(name):
    """Samples vs log-density: the 1-D marginal of x0 from samples and from the density.

    KS test of the x0 samples against the CDF obtained by integrating the density on a
    grid (banana and funnel have analytic x0 marginals).
    """
    d = datasets.get(name)
    x = np.asarray(d.sample(jax.random.key(11), 4000))
    assert x.shape == (4000,) + d.event_shape and np.all(np.isfinite(x))
    if name == "banana":
        cdf = st.norm(scale=2.0).cdf
    elif name == "funnel":
        cdf = st.norm(scale=3.0).cdf
    else:
        g = np.linspace(-7, 7, 351)
        X, Y = np.meshgrid(g, g, indexing="ij")
        dens = np.exp(np.asarray(d.log_prob(jnp.stack([X.ravel(), Y.ravel()], -1)))).reshape(
            X.shape)
        marg = dens.sum(1) * (g[1] - g[0])
        c = np.cumsum(marg) * (g[1] - g[0])
        cdf = lambda t: np.interp(t, g, c / c[-1])
    assert st.kstest(x[:, 0], cdf).pvalue > 1e-3


def test_as_distribution_is_normalized_and_energy_is_neg_log_prob():
    d = datasets.banana()
    ed = d.as_distribution()
    x = d.sample(jax.random.key(0), 5)
    assert ed.is_normalized
    np.testing.assert_allclose(ed.log_prob(x), d.log_prob(x), rtol=1e-12)
    np.testing.assert_allclose(ed.energy(x), -d.log_prob(x), rtol=1e-12)


def test_funnel_nd_and_errors():
    d = datasets.funnel(dim=5)
    assert d.sample(jax.random.key(0), 3).shape == (3, 5)
    with pytest.raises(ValueError, match="dim >= 2"):
        datasets.funnel(dim=1)
    with pytest.raises(ValueError, match="unknown toy density"):
        datasets.get("spiral")
    with pytest.raises(ValueError, match="positive int"):
        d.sample(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="cov must have shape"):
        datasets.gaussian(np.zeros(2), np.eye(3))


def test_get_passes_keyword_arguments_to_every_builder():
    d = datasets.get("gaussian", mean=np.ones(3), cov=2.0 * np.eye(3))
    assert d.event_shape == (3,)
    np.testing.assert_allclose(d.log_prob(jnp.ones(3)), -1.5 * np.log(2 * np.pi * 2.0), rtol=1e-6)
    assert datasets.get("rings", noise=0.2).params["noise"] == pytest.approx(0.2)


@pytest.mark.parametrize("build", [
    lambda: datasets.rings(noise=-0.1),
    lambda: datasets.rings(radii=(1.0, 0.0)),
    lambda: datasets.banana(scale=0.0),
    lambda: datasets.funnel(scale=float("nan")),
    lambda: datasets.gaussian_mixture([[0.0, 0.0]], scales=-1.0),
])
def test_non_positive_scales_are_rejected_by_name(build):
    with pytest.raises(ValueError, match=r"(noise|radii|scale|scales) must be finite and > 0"):
        build()
