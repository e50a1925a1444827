"""Kernel Stein discrepancy: the Stein kernel against autodiff, bootstrap size and power."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _diagnostics_chains import PREC, exact_draws, langevin_transitions

from numpyro_ebm import NumpyroEBMWarning
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
    res = kernel_stein_discrepancy(x, score, block_length=1, num_bootstrap=500)
    assert res.p_value > 0.05
    assert res.num_samples == 1000 and res.bootstrap.shape == (500,)


def test_ula_large_step_has_small_p_value():
    tr = langevin_transitions("ula", 0.2, seed=0)
    res = kernel_stein_discrepancy(tr.position, score, num_bootstrap=500, max_samples=1000)
    assert res.p_value < 0.01
    assert res.num_samples == 1000  # 4 chains x 2000 draws thinned by 8
    # the block length follows the chains' autocorrelation: above 1 for MCMC
    assert res.block_length > 1


def test_ksd_blocks_do_not_change_the_statistic():
    x = exact_draws(2, 300)
    a = kernel_stein_discrepancy(x, score, chunk_size=7, num_bootstrap=50)
    b = kernel_stein_discrepancy(x, score, chunk_size=1000, num_bootstrap=50)
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
    with pytest.raises(ValueError, match="block_length must be a positive int"):
        kernel_stein_discrepancy(x, score, block_length=0)
    with pytest.raises(ValueError, match=r"block_length must be at most the draws per chain"):
        kernel_stein_discrepancy(x, score, block_length=11)


def _ar1(rng, chains, n, rho, dim=2):
    x = np.empty((chains, n, dim))
    x[:, 0] = rng.normal(size=(chains, dim))
    e = rng.normal(size=(chains, n, dim)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


@pytest.mark.slow
@pytest.mark.parametrize("rho,draws,max_samples", [(0.5, 400, 800), (0.9, 400, 800),
                                                   (0.95, 400, 800), (0.95, 1600, 800)])
def test_ksd_size_on_ar1_chains(rho, draws, max_samples):
    # exact N(0, I) marginals, autocorrelated: the rejection rate at 5% must be within
    # 2.5 MCSE of 5% (the sign-flip bootstrap with blocks ~2 tau rejected 14-20%)
    reps = 200
    rng = np.random.default_rng(int(rho * 100) + draws)
    p = []
    for r in range(reps):
        x = _ar1(rng, 2, draws, rho)
        with warnings.catch_warnings():  # the size (not the power) of short-chain tests
            warnings.simplefilter("ignore", NumpyroEBMWarning)
            p.append(kernel_stein_discrepancy(x, scores=-x, num_bootstrap=200,
                                              max_samples=max_samples, seed=r).p_value)
    rate = np.mean(np.array(p) < 0.05)
    mcse = np.sqrt(0.05 * 0.95 / reps)
    assert abs(rate - 0.05) < 2.5 * mcse, rate


def test_ksd_warns_when_the_block_length_leaves_the_test_without_power():
    # issue 15: rho = 0.99 AR(1) chains of 2000 draws get a default block of ~1000 draws
    x = _ar1(np.random.default_rng(15), 1, 2000, 0.99)
    with pytest.warns(NumpyroEBMWarning, match=r"block length \d+ is more than a quarter of "
                                               r"the 2000 draws.*Run longer chains"):
        res = kernel_stein_discrepancy(x, scores=-x, num_bootstrap=50)
    assert res.block_length > 500
    with pytest.warns(NumpyroEBMWarning, match="little power"):
        kernel_stein_discrepancy(x, scores=-x, num_bootstrap=50, block_length=501)
    with warnings.catch_warnings():  # a block of a quarter of the draws or less: silent
        warnings.simplefilter("error")
        kernel_stein_discrepancy(x, scores=-x, num_bootstrap=50, block_length=500)
