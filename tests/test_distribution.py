import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.distributions import constraints
from numpyro.handlers import seed, trace

from numpyro_ebm import EnergyDistribution, energy_factor, quadratic_energy


@pytest.fixture(scope="module")
def gauss():
    f, p = quadratic_energy(jnp.array([0.5, -1.0]), jnp.array([[2.0, 0.5], [0.5, 1.0]]))
    return f, p


def test_log_prob_energy_score_signs(gauss):
    f, p = gauss
    d = EnergyDistribution(f, p, event_shape=(2,))
    x = jnp.array([[0.1, 0.2], [1.0, -3.0]])
    e = jax.vmap(lambda xi: f(p, xi))(x)
    np.testing.assert_allclose(d.energy(x), e)
    np.testing.assert_allclose(d.log_prob(x), -e)
    g = jax.vmap(jax.grad(lambda xi: f(p, xi)))(x)
    np.testing.assert_allclose(d.score(x), -g)
    assert not d.is_normalized
    assert d.batch_shape == () and d.event_shape == (2,)


def test_log_normalizer_gives_the_exact_gaussian(gauss):
    f, p = gauss
    d = EnergyDistribution(f, p, event_shape=(2,), log_normalizer=f.log_normalizer(p))
    assert d.is_normalized
    ref = dist.MultivariateNormal(p["mean"], precision_matrix=p["precision"])
    x = jax.random.normal(jax.random.key(1), (4, 2))
    np.testing.assert_allclose(d.log_prob(x), ref.log_prob(x), rtol=1e-10)
    d2 = EnergyDistribution(f, p, event_shape=(2,)).with_log_normalizer(f.log_normalizer(p))
    np.testing.assert_allclose(d2.log_prob(x), ref.log_prob(x), rtol=1e-10)


def test_sample_raises_not_implemented_with_hint(gauss):
    d = EnergyDistribution(*gauss, event_shape=(2,))
    with pytest.raises(NotImplementedError, match="MCMC") as err:
        d.sample(jax.random.key(0))
    assert type(err.value) is NotImplementedError


def test_survives_jit_vmap_grad(gauss):
    f, p = gauss
    d = EnergyDistribution(f, p, event_shape=(2,))
    x = jnp.array([0.3, 0.4])
    np.testing.assert_allclose(jax.jit(lambda d, x: d.log_prob(x))(d, x), d.log_prob(x))
    # vmap over a batch of params: the distribution is rebuilt with traced params.
    ps = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), p)
    lps = jax.vmap(lambda q: EnergyDistribution(f, q, event_shape=(2,)).log_prob(x))(ps)
    np.testing.assert_allclose(lps[0], d.log_prob(x))
    # vmap over distributions themselves (pytree in_axes)
    ds = jax.vmap(lambda q: EnergyDistribution(f, q, event_shape=(2,)))(ps)
    np.testing.assert_allclose(jax.vmap(lambda dd: dd.log_prob(x))(ds), lps)
    # grad w.r.t. params through log_prob: d/dmean of -0.5 r^T P r = P r
    g = jax.grad(lambda q: EnergyDistribution(f, q, event_shape=(2,)).log_prob(x))(p)
    np.testing.assert_allclose(g["mean"], p["precision"] @ (x - p["mean"]), rtol=1e-12)


def test_pytree_flatten_roundtrip(gauss):
    d = EnergyDistribution(*gauss, event_shape=(2,), log_normalizer=1.5)
    leaves, tdef = jax.tree.flatten(d)
    d2 = jax.tree.unflatten(tdef, leaves)
    assert d2.energy_fn is d.energy_fn and d2.is_normalized
    np.testing.assert_allclose(d2.log_prob(jnp.ones(2)), d.log_prob(jnp.ones(2)))


@pytest.mark.parametrize(
    "support, event_shape, value",
    [
        (constraints.positive, (3,), jnp.array([0.5, 1.0, 2.0])),
        (constraints.interval(0.0, 1.0), (), jnp.array(0.3)),
        (constraints.simplex, (3,), jnp.array([0.2, 0.3, 0.5])),
        (constraints.real, (2, 2), jnp.ones((2, 2))),
    ],
)
def test_any_support_and_event_dims(support, event_shape, value):
    d = EnergyDistribution(lambda p, x: jnp.sum(x**2), {}, event_shape=event_shape,
                           support=support)
    assert d.support.event_dim == len(event_shape)
    assert bool(d.support(value))
    np.testing.assert_allclose(d.log_prob(value), -jnp.sum(value**2))


def test_outside_support_is_minus_inf_with_validate_args():
    d = EnergyDistribution(lambda p, x: jnp.sum(x), {}, event_shape=(2,),
                           support=constraints.positive, validate_args=True)
    with pytest.warns(UserWarning, match="Out-of-support"):
        lp = d.log_prob(jnp.array([[1.0, 2.0], [-1.0, 2.0]]))
    assert np.isfinite(lp[0]) and lp[1] == -np.inf
    # a NaN point is out of the real support: -inf, and said (never silently)
    r = EnergyDistribution(lambda p, x: jnp.sum(x**2), {}, event_shape=(2,),
                           validate_args=True)
    with pytest.warns(UserWarning, match="Out-of-support"):
        lp = r.log_prob(jnp.array([[1.0, 2.0], [np.nan, 2.0]]))
    assert np.isfinite(lp[0]) and lp[1] == -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r.log_prob(jnp.ones((3, 2)))  # in support: no warning


def test_bad_inputs_raise_clear_errors(gauss):
    f, p = gauss
    with pytest.raises(TypeError, match="callable"):
        EnergyDistribution("not a function", p, event_shape=(2,))
    with pytest.raises(ValueError, match=r"returned shape \(2,\)"):
        EnergyDistribution(lambda q, x: x * 2.0, p, event_shape=(2,))
    with pytest.raises(ValueError, match="event_shape"):
        EnergyDistribution(f, p, event_shape=(3,))
    bad = {"mean": jnp.array([jnp.nan, 0.0]), "precision": p["precision"]}
    with pytest.raises(ValueError, match=r"params\['mean'\].*non-finite"):
        EnergyDistribution(f, bad, event_shape=(2,))
    with pytest.raises(ValueError, match="event_dim"):
        EnergyDistribution(f, p, event_shape=(), support=constraints.simplex)
    d = EnergyDistribution(f, p, event_shape=(2,))
    with pytest.raises(ValueError, match=r"does not end in .*event_shape \(2,\)"):
        d.log_prob(jnp.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        EnergyDistribution(f, p, event_shape=(2,), log_normalizer=jnp.ones(2))


def test_energy_factor_adds_minus_energy(gauss):
    f, p = gauss
    x = jnp.array([[0.0, 1.0], [2.0, 0.0]])

    def model():
        energy_factor("lik", f, p, x)

    tr = trace(seed(model, 0)).get_trace()
    lp = tr["lik"]["fn"].log_prob(tr["lik"]["value"])
    np.testing.assert_allclose(lp, -(f(p, x[0]) + f(p, x[1])), rtol=1e-12)


def test_conditional_energy_factor_passes_context():
    def cond_e(p, x, theta):
        return 0.5 * jnp.sum((x - theta) ** 2)

    def model():
        energy_factor("lik", cond_e, {}, jnp.zeros((3, 2)), jnp.array([1.0, 1.0]))

    tr = trace(seed(model, 0)).get_trace()
    np.testing.assert_allclose(tr["lik"]["fn"].log_prob(tr["lik"]["value"]), -3.0)


def test_used_as_latent_site_in_model_log_density(gauss):
    f, p = gauss

    def model():
        numpyro.sample("x", EnergyDistribution(f, p, event_shape=(2,)))

    from numpyro.infer.util import log_density

    lp, _ = log_density(model, (), {}, {"x": jnp.array([1.0, 1.0])})
    np.testing.assert_allclose(lp, -f(p, jnp.array([1.0, 1.0])))
