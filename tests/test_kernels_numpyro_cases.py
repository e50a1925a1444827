"""NumPyro's own kernel test cases (``test/infer/test_mcmc.py``) run on our MALA/ULA, and
NumPyro's structured ``inverse_mass_matrix`` form."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC

from numpyro_ebm.infer import MALA, ULA


def normal_loc_model(data):
    loc = numpyro.sample("loc", dist.Normal(0.0, 1.0))
    numpyro.sample("obs", dist.Normal(loc, 1.0), obs=data)


@pytest.mark.parametrize("adapt_step_size", [True, False])
def test_diverging_has_numpyro_meaning(adapt_step_size):
    # Upstream `test_diverging` (shortened): step_size=10 on a 1,000-point Normal model.
    # Every fixed-step transition is hopeless (energy error far above 1000) and must be
    # flagged; with adaptation the divergences stop within warmup.
    data = jax.random.normal(jax.random.PRNGKey(0), (1000,))
    kernel = MALA(normal_loc_model, step_size=10.0, adapt_step_size=adapt_step_size,
                  adapt_mass_matrix=False)
    n = 300
    mcmc = MCMC(kernel, num_warmup=n, num_samples=n, progress_bar=False)
    mcmc.warmup(jax.random.PRNGKey(1), data, extra_fields=["diverging"], collect_warmup=True)
    warm = int(mcmc.get_extra_fields()["diverging"].sum())
    mcmc.run(jax.random.PRNGKey(2), data, extra_fields=["diverging"])
    total = warm + int(mcmc.get_extra_fields()["diverging"].sum())
    if adapt_step_size:
        assert total <= n
    else:
        assert total == 2 * n


def two_site_model():
    numpyro.sample("a", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    numpyro.sample("b", dist.Normal(0.0, 1.0))


def _initial_inverse_mass_matrix(kernel):
    st = kernel.init(jax.random.key(0), 10, None, (), {})
    return np.asarray(st.adapt_state.inverse_mass_matrix)


def test_structured_inverse_mass_matrix_diagonal_and_dense():
    # flattened order: a[0], a[1], b (sites sorted by name, as ravel_pytree orders them)
    k = MALA(two_site_model, inverse_mass_matrix={("a",): jnp.array([2.0, 3.0])},
             adapt_step_size=False)
    np.testing.assert_array_equal(_initial_inverse_mass_matrix(k), [2.0, 3.0, 1.0])
    block = jnp.array([[4.0, 0.5, 0.2], [0.5, 2.0, 0.1], [0.2, 0.1, 1.0]])  # over (b, a0, a1)
    k = ULA(two_site_model, inverse_mass_matrix={("b", "a"): block}, dense_mass=True,
            adapt_step_size=False)
    m = _initial_inverse_mass_matrix(k)
    perm = np.array([1, 2, 0])  # flat position of (a0, a1, b) inside the (b, a) block
    np.testing.assert_allclose(m, np.asarray(block)[np.ix_(perm, perm)])
    mcmc = MCMC(MALA(two_site_model, inverse_mass_matrix={("a",): jnp.array([2.0, 3.0])}),
                num_warmup=50, num_samples=50, progress_bar=False)
    mcmc.run(jax.random.key(1))
    assert mcmc.get_samples()["a"].shape == (50, 2)


@pytest.mark.parametrize(
    "imm, dense, match",
    [
        ({"a": jnp.ones(2)}, False, r"NumPyro's structured form: keys are tuples of site"),
        ({("c",): jnp.ones(1)}, False, r"names unknown or repeated sites"),
        ({("a",): jnp.ones(3)}, False, r"block \('a',\) has shape \(3,\), expected \(2,\)"),
        ({("a",): jnp.eye(2)}, False, r"needs dense_mass=True"),
        (jnp.ones(()), False, r"must have shape \(3,\) or \(3, 3\).*got shape \(\)"),
    ],
)
def test_bad_inverse_mass_matrix_names_the_form(imm, dense, match):
    with pytest.raises(ValueError, match=match):
        _initial_inverse_mass_matrix(MALA(two_site_model, inverse_mass_matrix=imm,
                                          dense_mass=dense))
