"""D5 kernel Stein discrepancy: the Stein kernel against autodiff, size and power."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _diagnostics_chains import PREC, exact_draws, langevin_transitions

from numpyro_ebm.diagnostics import kernel_stein_discrepancy
from numpyro_ebm.diagnostics.stein import stein_kernel_matrix


def score(x):
    return -jnp.asarray(PREC) @ x


def test_stein_kernel_matches_autodiff():
    # k_p(x, y) = s_x.s_y k + s_x.grad_y k + s_y.grad_x k + tr(grad_x grad_y k)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    s = rng.normal(size=(6, 3))
    c, beta = 1.3, -0.5

    def k(a, b):
        return (c**2 + jnp.sum((a - b) ** 2)) ** beta

    def kp(a, sa, b, sb):
        gx, gy = jax.grad(k, 0)(a, b), jax.grad(k, 1)(a, b)
        tr = jnp.trace(jax.jacfwd(jax.grad(k, 1), 0)(a, b))
        return sa @ sb * k(a, b) + sa @ gy + sb @ gx + tr

    want = jax.vmap(lambda a, sa: jax.vmap(lambda b, sb: kp(a, sa, b, sb))(x, s))(x, s)
    np.testing.assert_allclose(stein_kernel_matrix(x, s, c, beta), want, rtol=1e-10)


def test_exact_draws_have_large_p_value():
    x = exact_draws(11, 1000)
    res = kernel_stein_discrepancy(x, score, flip_probability=0.5, num_bootstrap=500)
    assert res.p_value > 0.05
    assert res.num_samples == 1000 and res.bootstrap.shape == (500,)


def test_ula_large_step_has_small_p_value():
    tr = langevin_transitions("ula", 0.2, seed=0)
    res = kernel_stein_discrepancy(tr.position, score, num_bootstrap=500, max_samples=1000)
    assert res.p_value < 0.01
    assert res.num_samples == 1000  # 4 chains x 2000 draws thinned by 8
    # the flip probability follows the chains' autocorrelation: below 1/2 for MCMC
    assert 0 < res.flip_probability < 0.5


def test_ksd_blocks_do_not_change_the_statistic():
    x = exact_draws(2, 300)
    a = kernel_stein_discrepancy(x, score, block_size=7, num_bootstrap=50)
    b = kernel_stein_discrepancy(x, score, block_size=1000, num_bootstrap=50)
    full = stein_kernel_matrix(x, np.asarray(jax.vmap(score)(jnp.asarray(x)))).mean()
    np.testing.assert_allclose([a.ksd_squared, b.ksd_squared], full, rtol=1e-10)
    np.testing.assert_allclose(a.bootstrap, b.bootstrap, rtol=1e-8)


def test_ksd_bad_inputs():
    x = exact_draws(0, 10)
    with pytest.raises(ValueError, match="exactly one of score_fn= or scores="):
        kernel_stein_discrepancy(x)
    with pytest.raises(ValueError, match="samples must have shape"):
        kernel_stein_discrepancy(np.zeros(5), score)
    with pytest.raises(ValueError, match="non-finite"):
        kernel_stein_discrepancy(np.full((10, 2), np.nan), score)
    with pytest.raises(ValueError, match="scores must have the shape"):
        kernel_stein_discrepancy(x, scores=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="flip_probability must be in"):
        kernel_stein_discrepancy(x, score, flip_probability=0.9)
