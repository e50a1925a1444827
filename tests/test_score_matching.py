"""Score matching objectives against closed forms (Hyvarinen 2005, Vincent 2011, Song 2019)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import numpyro_ebm as ne
from numpyro_ebm.objectives.score_matching import sample_projections
from numpyro_ebm.partition import grid_log_normalizer

QUAD, _ = ne.quadratic_energy(jnp.zeros(1), jnp.eye(1))
EXACT = ne.exact_score_matching()
KEY = jax.random.key(0)


def _gaussian_data(d: int, n: int = 400, seed: int = 0):
    a = jax.random.normal(jax.random.key(seed), (d, d)) / jnp.sqrt(d) + jnp.eye(d)
    x = jax.random.normal(jax.random.key(seed + 1), (n, d)) @ a.T + jnp.arange(d) * 0.1
    xbar = x.mean(0)
    cov = (x - xbar).T @ (x - xbar) / n  # the (biased) sample covariance
    return x, xbar, cov


def _loss(objective, params, x, key=KEY, energy=QUAD):
    return objective.loss(energy, params, (), (), x, key)[0]


@pytest.fixture(scope="module")
def loss_and_grad():
    return jax.jit(jax.value_and_grad(_loss, argnums=1), static_argnums=0)


# ----------------------------------------------------------------------------- exact SM
@pytest.mark.parametrize("d", [2, 10])
def test_exact_sm_is_the_closed_form_quadratic_and_minimised_by_inverse_covariance(
        d, loss_and_grad):
    x, xbar, cov = _gaussian_data(d)
    star = {"mean": xbar, "precision": jnp.linalg.inv(cov)}
    value, grad = loss_and_grad(EXACT, star, x)
    # J(m, P) = 0.5 tr(P^2 C_m) - tr P with C_m = S + (xbar - m)(xbar - m)^T; at the optimum
    # J = -0.5 tr(S^-1) and every gradient vanishes (Hyvarinen 2005)
    np.testing.assert_allclose(value, -0.5 * jnp.trace(star["precision"]), rtol=1e-12)
    for g in jax.tree.leaves(grad):
        np.testing.assert_allclose(g, 0.0, atol=1e-10)
    # elsewhere the loss is the quadratic closed form
    a = jax.random.normal(jax.random.key(9), (d, d)) * 0.3
    p = a + a.T + jnp.eye(d)  # symmetric: grad E = P (x - m), Hess E = P
    m = xbar + 0.5
    c = cov + jnp.outer(xbar - m, xbar - m)
    closed = 0.5 * jnp.trace(p @ p @ c) - jnp.trace(p)
    np.testing.assert_allclose(_loss(EXACT, {"mean": m, "precision": p}, x), closed, rtol=1e-12)


def test_fit_with_exact_sm_converges_to_the_closed_form():
    x, xbar, cov = _gaussian_data(2)
    res = ne.fit(QUAD, {"mean": jnp.zeros(2), "precision": jnp.eye(2)}, x, EXACT,
                 key=KEY, optimizer=optax.adam(0.05), num_steps=1500, batch_size=x.shape[0],
                 steps_per_chunk=500, progress_bar=False)
    np.testing.assert_allclose(res.params["mean"], xbar, atol=1e-6)
    np.testing.assert_allclose(res.params["precision"], jnp.linalg.inv(cov), atol=1e-6)
    assert set(res.history) >= {"grad_norm_sq", "trace_hessian"}


# ----------------------------------------------------------------------------- sliced SM
# float32 rows of 12: half-cost words (numpyro_ebm/_random.py)
@pytest.mark.parametrize("dtype, d", [(jnp.float64, 4), (jnp.float32, 12)])
@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_projections_have_identity_second_moment(kind, dtype, d):
    n = 20000
    v = np.asarray(sample_projections(KEY, n, d, kind, dtype), np.float64)
    outer = v[:, :, None] * v[:, None, :]
    se = outer.std(0) / np.sqrt(n)
    dev = np.abs(outer.mean(0) - np.eye(d))
    assert np.all(dev <= 5 * se + 1e-12), (dev, se)
    if kind == "sphere":
        rtol = 1e-12 if dtype == jnp.float64 else 1e-6
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), np.sqrt(d), rtol=rtol)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian", "sphere"])
def test_sliced_trace_estimate_is_unbiased(kind):
    # Hutchinson: E[v^T H v] = tr H with H = P (quadratic energy); with 3 projections the
    # estimate is their mean, not their sum (a factor-3 bug would be ~100 SE away)
    d = 5
    a = jax.random.normal(jax.random.key(4), (d, d))
    prec = a @ a.T / d + jnp.eye(d)
    params = {"mean": jnp.zeros(d), "precision": prec}
    x = jax.random.normal(KEY, (8, d))
    obj = ne.sliced_score_matching(3, kind)

    @jax.jit
    def traces(keys):
        return jax.vmap(lambda k: obj.loss(QUAD, params, (), (), x, k)[1][1]["trace_hessian"])(
            keys)

    t = np.asarray(traces(jax.random.split(jax.random.key(1), 4000)))
    se = t.std() / np.sqrt(t.size)
    assert abs(t.mean() - float(jnp.trace(prec))) < 5 * se
    assert se < 0.05 * float(jnp.trace(prec))  # the check above has power


@pytest.mark.parametrize("vr", [False, True], ids=["ssm", "ssm_vr"])
def test_sliced_sm_has_the_exact_sm_optimum_in_expectation(vr):
    # E_v[grad SSM(theta)] = grad J(theta): zero at the closed form (within 5 SE per
    # coordinate), clearly non-zero at a wrong precision (the control)
    x, xbar, cov = _gaussian_data(2)
    obj = ne.sliced_score_matching(1, "rademacher", variance_reduction=vr)
    star = {"mean": xbar, "precision": jnp.linalg.inv(cov)}
    wrong = {"mean": xbar, "precision": 1.3 * jnp.linalg.inv(cov)}

    @jax.jit
    def grads(params, keys):
        g = jax.vmap(lambda k: jax.grad(lambda p: _loss(obj, p, x, k))(params))(keys)
        return jnp.concatenate([g["mean"].reshape(len(keys), -1),
                                g["precision"].reshape(len(keys), -1)], 1)

    keys = jax.random.split(jax.random.key(2), 2000)
    for params, centred in ((star, True), (wrong, False)):
        g = np.asarray(grads(params, keys))
        dev, se = np.abs(g.mean(0)), g.std(0) / np.sqrt(len(g))
        # (SSM-VR's mean gradient is deterministic: se = 0 there, so allow float round-off)
        z = dev / np.maximum(se, 1e-300)
        assert (np.all(dev < 5 * se + 1e-10) if centred else np.max(z) > 10), (dev, se)


# ----------------------------------------------------------------------------- denoising SM
# float32 rows of 10: half-cost noise (numpyro_ebm/_random.py)
@pytest.mark.parametrize("dtype, d", [(jnp.float64, 2), (jnp.float32, 10)])
def test_dsm_fits_the_smoothed_precision(dtype, d):
    # unit-variance data smoothed by N(0, sigma^2): the DSM optimum is P = I / (1 + sigma^2)
    # (Vincent 2011); its expected gradient vanishes there and not at P = I
    sigma = 0.5
    obj = ne.denoising_score_matching(sigma)
    x = jax.random.normal(jax.random.key(3), (100_000, d), dtype)

    @jax.jit
    def grads(prec):
        params = {"mean": jnp.zeros(d, dtype), "precision": prec.astype(dtype)}
        xs = x.reshape(200, 500, d)
        keys = jax.random.split(jax.random.key(4), 200)
        g = jax.vmap(lambda xb, k: jax.grad(lambda p: _loss(obj, p, xb, k))(params))(xs, keys)
        return g["precision"].reshape(200, -1)

    for prec, centred in ((jnp.eye(d) / (1 + sigma**2), True), (jnp.eye(d), False)):
        g = np.asarray(grads(prec))
        z = np.abs(g.mean(0)) / (g.std(0) / np.sqrt(len(g)))
        assert (np.all(z < 5) if centred else np.max(z) > 10), z


def test_noise_conditional_dsm_fits_every_level():
    # E(v, x, s) = 0.5 |x|^2 / (v + s^2) is the exact smoothed energy of N(0, I) at every
    # level iff v = 1, so the sigma^2-weighted multi-level DSM gradient in v vanishes there
    def energy(params, x, s):
        return 0.5 * x @ x / (params["v"] + s**2)

    obj = ne.denoising_score_matching(sigmas=ne.geometric_sigmas(2.0, 0.05, 6),
                                      noise_conditional=True)
    x = jax.random.normal(jax.random.key(5), (200, 500, 3))

    @jax.jit
    def grads(v):
        keys = jax.random.split(jax.random.key(6), 200)
        return jax.vmap(lambda xb, k: jax.grad(
            lambda p: obj.loss(energy, p, (), (), xb, k)[0])({"v": v})["v"])(x, keys)

    for v, centred in ((1.0, True), (1.5, False)):
        g = np.asarray(grads(jnp.asarray(v)))
        z = abs(g.mean()) / (g.std() / np.sqrt(len(g)))
        assert (z < 5 if centred else z > 10), z


def test_geometric_sigmas_and_bad_settings():
    np.testing.assert_allclose(ne.geometric_sigmas(1.0, 0.01, 3), [1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="sigma must be positive"):
        ne.denoising_score_matching(0.0)
    with pytest.raises(ValueError, match="sigmas must be a non-empty 1-D"):
        ne.denoising_score_matching(sigmas=[])
    with pytest.raises(ValueError, match="num_projections"):
        ne.sliced_score_matching(0)
    with pytest.raises(ValueError, match="projection must be one of"):
        ne.sliced_score_matching(projection="uniform")
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        ne.geometric_sigmas(0.1, 1.0, 3)


def test_equal_settings_give_equal_objectives():
    # hashable by value: fit reuses compiled steps across equal objectives
    assert ne.sliced_score_matching(2) == ne.sliced_score_matching(2)
    assert ne.denoising_score_matching(0.1) == ne.denoising_score_matching(0.1)
    assert ne.denoising_score_matching(0.1) != ne.denoising_score_matching(0.2)


# ----------------------------------------------------------------------------- two moons
TWO_MOONS = ne.datasets.two_moons(noise=0.1)
SMOOTHED = ne.datasets.two_moons(noise=float(np.sqrt(0.1**2 + 0.1**2)))  # DSM sigma = 0.1
MARGIN = 0.25  # nats; the held-out mean's own MC standard error is about 0.016


@pytest.mark.slow
@pytest.mark.parametrize("objective, target", [
    (ne.exact_score_matching(), TWO_MOONS),
    (ne.sliced_score_matching(), TWO_MOONS),
    (ne.sliced_score_matching(variance_reduction=True), TWO_MOONS),
    (ne.denoising_score_matching(0.1), SMOOTHED),
], ids=["exact", "sliced", "sliced_vr", "denoising"])
def test_mlp_on_two_moons_reaches_the_true_held_out_likelihood(objective, target):
    x = TWO_MOONS.sample(jax.random.key(0), 4000).astype(jnp.float32)
    held_out = TWO_MOONS.sample(jax.random.key(1), 2000)
    energy, params = ne.mlp_energy(jax.random.key(2), 2, (64, 64), dtype=jnp.float32)
    res = ne.fit(energy, params, x, objective, key=jax.random.key(3), num_steps=600,
                 batch_size=256, optimizer=optax.adam(5e-3), steps_per_chunk=300,
                 progress_bar=False)
    log_z = grid_log_normalizer(energy, res.params, [-2.5, -2.0], [3.5, 2.5], 200)
    ll = float(-jnp.mean(jax.vmap(lambda xi: energy(res.params, xi))(held_out)) - log_z)
    best = float(jnp.mean(target.log_prob(held_out)))  # what this objective aims at
    gaussian = ne.datasets.gaussian(x.mean(0), jnp.cov(x.T).astype(float))
    assert ll > best - MARGIN, (ll, best)
    assert ll > float(jnp.mean(gaussian.log_prob(held_out))) + 0.5  # far beyond a Gaussian


def test_fit_passes_the_noise_level_to_a_noise_conditional_energy():
    energy, params = ne.mlp_energy(jax.random.key(0), 2, (8,), context_dim=1)
    x = TWO_MOONS.sample(jax.random.key(1), 64)
    obj = ne.denoising_score_matching(sigmas=ne.geometric_sigmas(1.0, 0.1, 4),
                                      noise_conditional=True)
    res = ne.fit(energy, params, x, obj, key=KEY, num_steps=5, batch_size=32,
                 progress_bar=False)
    assert res.stopped_reason == "completed" and np.all(np.isfinite(res.history["loss"]))
    # the same energy without the level is rejected before training, naming the shapes
    with pytest.raises(ValueError, match=r"x of shape \(2,\)"):
        ne.fit(energy, params, x, ne.denoising_score_matching(0.1), key=KEY, num_steps=5,
               batch_size=32, progress_bar=False)


def test_an_energy_without_the_level_fails_with_a_note_naming_data_and_context():
    """Field report: a noise-conditional objective with an energy that takes no context
    failed deep inside the chunk's trace with no word about the data or the context. The
    loss is now traced abstractly before the chunk, and its error carries a note naming the
    objective, the data's shape and ``context_dim``."""
    energy, params = ne.mlp_energy(jax.random.key(0), 2, (8,))
    x = TWO_MOONS.sample(jax.random.key(1), 48)
    obj = ne.denoising_score_matching(sigmas=[1.0, 0.1], noise_conditional=True)
    with pytest.raises(ValueError, match="3 features") as info:
        ne.fit(energy, params, x, obj, key=KEY, num_steps=5, batch_size=16,
               progress_bar=False)
    note = " ".join(getattr(info.value, "__notes__", []))
    assert "denoising_score_matching_conditional" in note and "(48, 2)" in note
    assert "context_dim=1" in note


def test_dsm_schedule_weights_each_level_by_sigma_squared():
    # every level is optimal at the same params, so the gradient tests above cannot see the
    # weighting; with the same draws a one-level schedule is exactly sigma^2 times plain DSM
    params = {"mean": jnp.zeros(2), "precision": 2.0 * jnp.eye(2)}
    x = jax.random.normal(jax.random.key(8), (50, 2))
    plain = _loss(ne.denoising_score_matching(0.5), params, x)
    weighted = _loss(ne.denoising_score_matching(sigmas=[0.5]), params, x)
    np.testing.assert_allclose(weighted, 0.25 * plain, rtol=1e-6)
