"""Annealed Langevin dynamics: exact step mapping and the exact Gaussian recursion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_ebm import annealed_langevin
from numpyro_ebm.infer.annealed import annealed_step_sizes

MU, S2 = jnp.array([1.0, -2.0]), 0.5  # data N(MU, S2 I); smoothed: N(MU, (S2 + sigma^2) I)


def smoothed_score(x, sigma):
    return -(x - MU) / (S2 + sigma**2)


def test_step_sizes_follow_song_ermon():
    sig = jnp.array([4.0, 2.0, 1.0])
    # their alpha_i = eps sigma_i^2 / sigma_L^2 = 2 h_i
    np.testing.assert_allclose(annealed_step_sizes(sig, 0.1), 0.1 * sig**2 / 1.0 / 2)


def test_noiseless_steps_are_exact_gradient_steps():
    sig = jnp.array([3.0, 1.0])
    x0 = jnp.array([[2.0, 0.0], [-1.0, 4.0]])
    x, traj = annealed_langevin(jax.random.key(0), smoothed_score, x0, sig, 0.2, 2,
                                temperature=0.0, return_trajectory=True)
    h = np.asarray(annealed_step_sizes(sig, 0.2))
    expect = np.asarray(x0)
    for hi, si in zip(np.repeat(h, 2), np.repeat(np.asarray(sig), 2)):
        expect = expect - hi * (expect - np.asarray(MU)) / (S2 + si**2)
    np.testing.assert_allclose(x, expect, rtol=1e-12)
    assert traj.shape == (4, 2, 2)
    np.testing.assert_allclose(traj[-1], x)


@pytest.mark.parametrize("denoise", [False, True])
def test_final_distribution_matches_exact_recursion(denoise):
    # For a Gaussian target every step is linear: m' = MU + a (m - MU), v' = a^2 v + 2 h T,
    # a = 1 - h / (S2 + sigma^2); the final samples are exactly N(m_L, v_L).
    n, T, eps, k = 20_000, 0.8, 0.1, 30
    sig = jnp.geomspace(3.0, 0.1, 8)
    x0 = 4.0 * jax.random.normal(jax.random.key(1), (n, 2))
    x = np.asarray(annealed_langevin(jax.random.key(2), smoothed_score, x0, sig, eps, k,
                                     temperature=T, denoise=denoise))
    m, v = np.zeros(2), 16.0
    for hi, si in zip(np.repeat(np.asarray(annealed_step_sizes(sig, eps)), k),
                      np.repeat(np.asarray(sig), k)):
        a = 1.0 - hi / (S2 + si**2)
        m, v = np.asarray(MU) + a * (m - np.asarray(MU)), a**2 * v + 2 * hi * T
    if denoise:
        c = S2 / (S2 + float(sig[-1]) ** 2)
        m, v = np.asarray(MU) + c * (m - np.asarray(MU)), c**2 * v
    np.testing.assert_array_less(np.abs(x.mean(0) - m), 4.5 * np.sqrt(v / n))
    np.testing.assert_array_less(np.abs(x.var(0, ddof=1) - v), 4.5 * v * np.sqrt(2 / (n - 1)))


def test_nonfinite_score_leaves_chain_in_place():
    bad = lambda x, s: jnp.where(x[0] > 0, jnp.nan, 1.0) * -x
    x0 = jnp.array([[1.0, 1.0], [-1.0, 1.0]])
    x = annealed_langevin(jax.random.key(3), bad, x0, jnp.array([1.0]), 0.1, 5)
    np.testing.assert_array_equal(x[0], x0[0])
    assert np.all(np.isfinite(x)) and not np.allclose(x[1], x0[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigmas": jnp.array([1.0, 2.0])}, "non-increasing"),
        ({"sigmas": jnp.array([1.0, -0.5])}, "positive"),
        ({"eps": 0.0}, "eps must be (finite and )?> 0"),
        ({"n_steps_each": 0}, "n_steps_each must be a positive int"),
        ({"x0": jnp.zeros((4, 3))}, r"score_fn\(x, sigma\) must return the shape"),
        ({"temperature": -1.0}, "temperature must be (finite and )?>= 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"sigmas": jnp.array([2.0, 1.0]), "eps": 0.1, "n_steps_each": 3,
            "x0": jnp.zeros((4, 2))} | kwargs
    score = smoothed_score if "x0" not in kwargs else (lambda x, s: jnp.zeros(2))
    with pytest.raises(ValueError, match=match):
        annealed_langevin(jax.random.key(0), score, args.pop("x0"), args.pop("sigmas"),
                          args.pop("eps"), **args)
