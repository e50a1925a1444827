"""Exact-start tests (numpyro_ebm.testing): size on MALA, power on planted bugs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _diagnostics_chains import PREC, exact_draws, potential

from numpyro_ebm import testing
from numpyro_ebm.infer import langevin


def _kernel(step, h, u=potential):
    def kernel(key, x):
        return step(key, langevin.init(x, u), u, h)[0].position
    return kernel


def _no_correction(h):
    def kernel(key, x):
        k1, k2 = jax.random.split(key)
        st = langevin.init(x, potential)
        prop = langevin.ula_step(k1, st, potential, h)[0]
        acc = jnp.log(jax.random.uniform(k2)) < -(prop.energy - st.energy)
        return jnp.where(acc, prop.position, x)
    return kernel


def _wrong_potential(x):
    return 0.5 * x @ (0.6 * jnp.asarray(PREC) @ x)  # wider target: the control


MALA = _kernel(langevin.mala_step, 0.2)


def test_one_step_invariance_mala_passes_with_powerful_control():
    res = testing.one_step_invariance(
        MALA, exact_draws(0, 2000), exact_draws(1, 2000), jax.random.key(0),
        energy_fn=potential, num_steps=5,
        control_kernel=_kernel(langevin.mala_step, 0.2, _wrong_potential))
    assert res.names == ("x0", "x1", "energy")
    assert res.kernel_passed and res.control_passed is False and res.passed


def test_one_step_invariance_flags_ula():
    res = testing.one_step_invariance(
        _kernel(langevin.ula_step, 0.2), exact_draws(0, 2000), exact_draws(1, 2000),
        jax.random.key(0), energy_fn=potential, num_steps=5)
    assert not res.kernel_passed and not res.passed


def test_besag_clifford_mala_uniform_bug_not():
    draws = exact_draws(2, 500)
    ok = testing.besag_clifford_ranks(MALA, draws, jax.random.key(1), potential)
    assert ok.passed, (ok.p_value, ok.within_bands)
    assert ok.ranks.min() >= 0 and ok.ranks.max() <= 9
    bad = testing.besag_clifford_ranks(_no_correction(0.2), draws, jax.random.key(1), potential)
    assert not bad.passed and bad.p_value < 1e-3


def test_besag_clifford_ties_from_a_sticky_correct_kernel():
    # pi-invariant kernel that repeats its state 80% of the time (exact ties): ranks must
    # stay uniform (a coin per tied comparison gave binomial ranks, p ~ 1e-50 at n=4000)
    def lazy(key, x):
        k1, k2 = jax.random.split(key)
        return jnp.where(jax.random.uniform(k1) < 0.8, x, jax.random.normal(k2, x.shape))

    draws = np.random.default_rng(1).standard_normal((2000, 1))
    res = testing.besag_clifford_ranks(lazy, draws, jax.random.key(0), lambda z: z[0])
    assert res.passed, (res.p_value, np.bincount(res.ranks, minlength=10))


@pytest.mark.slow
def test_sbc_conjugate_normal():
    # theta ~ N(0, 1), y_j ~ N(theta, 1), j < 5: posterior N(sum y / 6, 1 / 6).
    n_sim, n_obs, n_post, thin = 300, 5, 19, 10
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(n_sim)
    y = theta[:, None] + rng.standard_normal((n_sim, n_obs))

    post_mean, post_sd = y.sum(1) / (n_obs + 1), (n_obs + 1) ** -0.5
    start = post_mean + post_sd * rng.standard_normal(n_sim)  # exact, independent of theta

    def posterior_draws(step, h, key):
        def one(th, yy, k):
            u = lambda t: 0.5 * jnp.sum(t**2) + 0.5 * jnp.sum((yy - t[0]) ** 2)  # noqa: E731
            def body(st, kk):
                st = jax.lax.fori_loop(
                    0, thin, lambda i, s: step(jax.random.fold_in(kk, i), s, u, h)[0], st)
                return st, st.position
            return jax.lax.scan(body, langevin.init(jnp.atleast_1d(th), u),
                                jax.random.split(k, n_post))[1]
        return jax.jit(jax.vmap(one))(jnp.asarray(start), jnp.asarray(y),
                                      jax.random.split(key, n_sim))

    good = testing.sbc_ranks(theta, posterior_draws(langevin.mala_step, 0.1, jax.random.key(0)))
    res = testing.rank_uniformity(good, n_post + 1)
    assert res.passed, (res.p_value, res.within_bands)
    bad = testing.sbc_ranks(theta, posterior_draws(langevin.ula_step, 0.25, jax.random.key(0)))
    res = testing.rank_uniformity(bad, n_post + 1)
    assert not res.passed and not res.within_bands


def test_testing_bad_inputs():
    with pytest.raises(ValueError, match="draws must be finite with shape"):
        testing.one_step_invariance(MALA, np.zeros(5), np.zeros((20, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="reference_draws must have 2 columns"):
        testing.one_step_invariance(MALA, np.zeros((20, 2)), np.zeros((20, 3)),
                                    jax.random.key(0))
    with pytest.raises(ValueError, match="ranks must be integers in"):
        testing.rank_uniformity(np.array([0, 5]), 3)
    with pytest.raises(ValueError, match="posterior_draws must have shape"):
        testing.sbc_ranks(np.zeros(4), np.zeros((3, 5)))
