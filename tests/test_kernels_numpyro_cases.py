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


def masked_flat_prior_model(data):
    mean = numpyro.sample("mean", dist.Normal(0.0, 1.0).mask(False))
    std = numpyro.sample("std", dist.LogNormal(0.0, 1.0).mask(False))
    numpyro.sample("obs", dist.Normal(mean, std), obs=data)


def test_ten_warmup_steps_from_far_in_the_tails_leave_no_chain_stuck():
    # Upstream `test_mcmc_progbar`'s model: flat (masked) priors on a location and a
    # log-normal scale, 2,000 data points, num_warmup=10, init_to_uniform: the gradient at
    # the start is ~1e4-1e5 and the posterior sd ~0.02-0.05. Measured over 300 chains each
    # (float64): before, 4-5% of chains ended warmup with a step they never accept (mean
    # acceptance < 0.05 over the draws); now 0/300, as HMC(num_steps=1,
    # trajectory_length=None) (1/300). 100 chains: expect ~4.5 stuck before, ~0 now.
    data = dist.Normal(1.0, 2.0).sample(jax.random.PRNGKey(1), (2000,))
    mcmc = MCMC(MALA(masked_flat_prior_model), num_warmup=10, num_samples=10, num_chains=100,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), data, extra_fields=("accept_prob",))
    acc = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["accept_prob"]).mean(1)
    means = np.asarray(mcmc.get_samples(group_by_chain=True)["mean"])
    stuck = int(np.sum(acc < 0.05))
    never_moved = sum(len(np.unique(m)) == 1 for m in means)
    assert stuck <= 1 and never_moved <= 1, (stuck, never_moved, np.sort(acc)[:5])
    assert acc.mean() > 0.6


@pytest.mark.parametrize("inv_mass", [None, np.array([0.5, 2.0, 1.5])])
def test_one_leapfrog_step_is_mala_with_h_eps_squared_over_two(inv_mass):
    # The conversion table: HMC(num_steps=1, step_size=eps, trajectory_length=None) makes the
    # proposal and the acceptance of MALA with h = eps^2 / 2 (momentum r = M^{1/2} xi).
    from numpyro.infer.hmc_util import euclidean_kinetic_energy, velocity_verlet

    from numpyro_ebm.infer import langevin

    a = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
    potential = lambda z: 0.5 * z @ (a @ z) + jnp.sum(jnp.cos(z))
    eps = 0.4
    h = eps**2 / 2
    minv = jnp.ones(3) if inv_mass is None else jnp.asarray(inv_mass)
    state = langevin.init(jnp.array([0.5, -0.4, 1.0]), potential)
    prop = langevin.propose(jax.random.key(3), state, potential, h, inv_mass)
    r = prop.noise / jnp.sqrt(minv)
    _, vv_update = velocity_verlet(potential, euclidean_kinetic_energy)
    z1, r1, u1, _ = vv_update(eps, minv, (state.position, r, state.energy, state.energy_grad))
    delta_h = (u1 + euclidean_kinetic_energy(minv, r1)
               - state.energy - euclidean_kinetic_energy(minv, r))
    np.testing.assert_allclose(prop.state.position, z1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(prop.log_accept_ratio, -delta_h, rtol=1e-9, atol=1e-12)


def test_hmc_one_step_kernel_and_mala_accept_alike():
    # Through MCMC, with the settings of the conversion table and no adaptation, NumPyro's
    # one-step HMC and our MALA have the same mean acceptance (within 4.5 MCSE), while the
    # default trajectory_length (2 pi) would make the "one-step" HMC take 2 pi / eps steps.
    import arviz_stats
    from numpyro.infer import HMC

    def model():
        numpyro.sample("x", dist.Normal(0.0, jnp.array([0.5, 1.0, 2.0])).to_event(1))

    eps = 0.6
    fixed = dict(adapt_step_size=False, adapt_mass_matrix=False)
    runs = {}
    for name, kernel in (("hmc", HMC(model, num_steps=1, step_size=eps,
                                     trajectory_length=None, **fixed)),
                         ("mala", MALA(model, step_size=eps**2 / 2, **fixed))):
        mcmc = MCMC(kernel, num_warmup=100, num_samples=3000, num_chains=4,
                    chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.key(4), extra_fields=("accept_prob", "num_steps")
                 if name == "hmc" else ("accept_prob",))
        runs[name] = mcmc.get_extra_fields(group_by_chain=True)
    assert np.all(np.asarray(runs["hmc"]["num_steps"]) == 1)
    a, b = (np.asarray(runs[k]["accept_prob"], np.float64) for k in ("hmc", "mala"))
    se = np.hypot(float(arviz_stats.mcse(a)), float(arviz_stats.mcse(b)))
    assert 0.3 < b.mean() < 0.95
    assert abs(a.mean() - b.mean()) < 4.5 * se
