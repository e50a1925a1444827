"""NCE and ratio estimation: stability, known answers (Gutmann & Hyvarinen), learned log Z."""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
import pytest

from numpyro_ebm import EnergyDistribution, datasets, fit
from numpyro_ebm.energy import batched_energy
from numpyro_ebm.nn import mlp_energy
from numpyro_ebm.objectives import (
    NCEExtras,
    conditional_noise_contrastive_estimation,
    logistic_nce_loss,
    noise_contrastive_estimation,
    noise_log_prob,
    normalized_distribution,
    ratio_estimation,
)
from numpyro_ebm.objectives.nce import _derangement
from numpyro_ebm.partition import grid_log_normalizer

STD_NORMAL = dist.Normal(0.0, 1.0)


def gh_energy(a, x):
    """Gutmann-Hyvarinen model: E = a x^2 / 2, log p = -a x^2 / 2 - log Z (c = -log Z)."""
    return 0.5 * a * x**2


# ----------------------------------------------------------------------------- stability
def test_logistic_loss_is_exact_and_finite_for_huge_logits():
    big = 1e300
    g_data = jnp.array([big, -big])  # one confidently right, one confidently wrong
    g_noise = jnp.array([-big, big])
    loss, acc = logistic_nce_loss(g_data, g_noise, 1)
    assert float(loss) == pytest.approx(big / 2)  # (0 + big + 0 + big) / 4
    assert float(acc) == 0.5
    grads = jax.grad(lambda gd, gn: logistic_nce_loss(gd, gn, 1)[0], argnums=(0, 1))(
        g_data, g_noise)
    # d softplus(-g)/dg = -sigmoid(-g); d softplus(g)/dg = sigmoid(g); divided by 4
    assert jnp.allclose(grads[0], jnp.array([0.0, -0.25]))
    assert jnp.allclose(grads[1], jnp.array([0.0, 0.25]))


def test_nce_loss_finite_for_very_confident_energy():
    obj = noise_contrastive_estimation(STD_NORMAL, 3)
    x = jnp.linspace(-3, 3, 64)
    key = jax.random.key(0)
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda a, lz: obj.loss(gh_energy, a, NCEExtras(lz), (), x, key)[0], (0, 1)))
    for a, log_z in [(1e12, -1e6), (-1e8, 1e6)]:
        val, grads = value_and_grad(jnp.asarray(a), jnp.asarray(log_z))
        assert jnp.isfinite(val) and val > 1.0
        assert all(jnp.isfinite(g) for g in grads)


def test_nce_loss_at_truth_has_zero_expected_gradient():
    # p_m = p_data = noise: E[grad] = 0 exactly at a = 1, log Z = log sqrt(2 pi); check the
    # batch mean against its Monte Carlo standard error over 200 independent batches
    obj = noise_contrastive_estimation(STD_NORMAL, 2)
    truth = (jnp.asarray(1.0), NCEExtras(jnp.asarray(0.5 * math.log(2 * math.pi))))

    def grad_one(key):
        kx, kn = jax.random.split(key)
        x = jax.random.normal(kx, (128,))
        g = jax.grad(lambda p, e: obj.loss(gh_energy, p, e, (), x, kn)[0], (0, 1))(*truth)
        return jnp.stack([g[0], g[1].log_normalizer])

    g = jax.jit(jax.vmap(grad_one))(jax.random.split(jax.random.key(1), 200))
    z = g[:, 0].mean() / (g[:, 0].std() / math.sqrt(g.shape[0]))
    assert abs(float(z)) < 4.0, z
    assert float(g[:, 0].std()) > 0.01  # the a-gradient is random, not trivially zero
    # here log p_m = log q, so G = 0 for every point and the log Z gradient,
    # B nu / (1 + nu) - nu B / (1 + nu), vanishes exactly in every batch
    assert float(jnp.abs(g[:, 1]).max()) < 1e-12


# ----------------------------------------------------------------------------- known answer
def _gh_estimates(nu: int, repeats: int, t: int = 2000):
    """NCE estimates (a, c) for `repeats` independent data sets, each fitted to the optimum."""
    obj = noise_contrastive_estimation(STD_NORMAL, nu)

    def fit_one(key):
        kx, kn = jax.random.split(key)
        x = jax.random.normal(kx, (t,))

        def grad(th):
            g = jax.grad(lambda u: obj.loss(gh_energy, u[0], NCEExtras(u[1]), (), x, kn)[0])(th)
            return g, g

        def newton(_, th):  # the loss is convex in (a, log Z)
            hess, g = jax.jacfwd(grad, has_aux=True)(th)
            return th - jnp.linalg.solve(hess, g)

        th = jax.lax.fori_loop(0, 6, newton, jnp.array([0.8, 0.5]))
        return th, jnp.linalg.norm(grad(th)[0])

    keys = jax.random.split(jax.random.key(100 + nu), repeats)
    th, gnorm = jax.jit(lambda k: jax.lax.map(fit_one, k, batch_size=100))(keys)
    return th[:, 0], -th[:, 1], gnorm


@pytest.mark.slow
@pytest.mark.parametrize("nu", [1, 10])
def test_gutmann_hyvarinen_asymptotic_mse(nu):
    # Model log p = -a x^2/2 + c, data N(0,1), noise N(0,1), T = 2000 data, nu T noise.
    # With g = grad log p_m = (-x^2/2, 1), M = E[g g^T] = [[3/4, -1/2], [-1/2, 1]] and
    # C = Cov(g) = diag(1/2, 0), the NCE sandwich covariance is (1 + 1/nu) M^-1 C M^-1 =
    # (1 + 1/nu) [[2, 1], [1, 1/2]]: T MSE(a) -> 2 (1 + 1/nu), T MSE(c) -> (1 + 1/nu) / 2.
    repeats, t = 1000, 2000
    a, c, gnorm = _gh_estimates(nu, repeats, t)
    assert float(gnorm.max()) < 1e-10  # every repeat is at its optimum
    c_true = -0.5 * math.log(2 * math.pi)
    mse_a = t * jnp.mean((a - 1.0) ** 2)
    mse_c = t * jnp.mean((c - c_true) ** 2)
    # relative Monte Carlo SE of an MSE from 1000 Gaussian estimates: sqrt(2/1000) = 4.5%,
    # so the 15% band is 3.3 standard errors
    assert mse_a == pytest.approx(2 * (1 + 1 / nu), rel=0.15)
    assert mse_c == pytest.approx((1 + 1 / nu) / 2, rel=0.15)
    # learned c recovers -log sqrt(2 pi): mean within 3 Monte Carlo standard errors
    se = float(jnp.std(c)) / math.sqrt(repeats)
    assert abs(float(jnp.mean(c)) - c_true) < 3 * se


# ----------------------------------------------------------------------------- fitted models
@pytest.mark.slow
def test_nce_learned_log_z_matches_grid_normaliser():
    toy = datasets.two_moons()
    x = toy.sample(jax.random.key(0), 4000)
    x_test = toy.sample(jax.random.key(1), 4000)
    energy_fn, params = mlp_energy(jax.random.key(2), 2, (32, 32))
    noise = dist.Normal(x.mean(0), 1.2 * x.std(0)).to_event(1)  # moment-matched noise
    result = fit(energy_fn, params, x, noise_contrastive_estimation(noise, 4),
                 key=jax.random.key(3), num_steps=1500, batch_size=256,
                 optimizer=optax.adam(optax.cosine_decay_schedule(1e-2, 1500)),
                 progress_bar=False)
    assert result.stopped_reason == "completed"
    learned = normalized_distribution(energy_fn, result, (2,))
    log_z_grid = grid_log_normalizer(energy_fn, result.params, [-6.0, -6.0], [6.0, 6.0])
    ll_learned = float(jnp.mean(learned.log_prob(x_test)))
    ll_grid = float(jnp.mean(-learned.energy(x_test) - log_z_grid))
    # the two held-out log-likelihoods differ only by log Z: agree within 0.02 nats
    # (the same grid normalises the true moons density to 1e-15)
    assert abs(ll_learned - ll_grid) < 0.02
    # and the fit is a real density model of the moons (true value about -1.01 nats)
    assert ll_grid > float(jnp.mean(toy.log_prob(x_test))) - 0.15


class _Result(NamedTuple):
    params: Any
    extras: Any


def test_normalized_distribution_from_result():
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (4,))
    result = _Result(params, NCEExtras(jnp.asarray(1.5)))
    d = normalized_distribution(energy_fn, result, (2,))
    assert isinstance(d, EnergyDistribution) and d.is_normalized
    x = jax.random.normal(jax.random.key(1), (5, 2))
    expected = -batched_energy(energy_fn, params, x, 1) - 1.5
    assert jnp.allclose(d.log_prob(x), expected)
    with pytest.raises(ValueError, match="log_normalizer"):
        normalized_distribution(energy_fn, _Result(params, ()), (2,))


# ----------------------------------------------------------------------------- conditional NCE
def test_conditional_nce_is_consistent_for_a_gaussian():
    # data N(0, 1), energy a x^2 / 2: the CNCE population optimum is a = 1 (p_m = p_data).
    # 200 data sets of 2000 points, each fitted exactly by Newton (the loss is convex in a);
    # the mean estimate must be within 3 Monte Carlo standard errors of 1.
    obj = conditional_noise_contrastive_estimation(1.0, 4)

    def fit_one(key):
        kx, kn = jax.random.split(key)
        x = jax.random.normal(kx, (2000,))
        f = lambda a: obj.loss(gh_energy, a, (), (), x, kn)[0]
        a = jax.lax.fori_loop(0, 8, lambda _, a: a - jax.grad(f)(a) / jax.hessian(f)(a),
                              jnp.asarray(0.5))
        return a, jax.grad(f)(a)

    a, g = jax.jit(jax.vmap(fit_one))(jax.random.split(jax.random.key(7), 200))
    assert float(jnp.abs(g).max()) < 1e-10
    se = float(jnp.std(a)) / math.sqrt(a.shape[0])
    assert abs(float(jnp.mean(a)) - 1.0) < 3 * se
    assert 0.005 < float(jnp.std(a)) < 0.2  # a genuine, reasonably efficient estimator


def test_conditional_nce_rejects_bad_arguments():
    with pytest.raises(ValueError, match="noise_scale must be finite and > 0"):
        conditional_noise_contrastive_estimation(0.0)
    with pytest.raises(TypeError, match="noise_scale must be a real"):
        conditional_noise_contrastive_estimation("wide")
    with pytest.raises(ValueError, match="noise_ratio"):
        conditional_noise_contrastive_estimation(0.5, 0)


# ----------------------------------------------------------------------------- ratio estimation
def test_derangement_has_no_fixed_points():
    keys = jax.random.split(jax.random.key(0), 500)
    idx = jax.jit(jax.vmap(lambda k: _derangement(k, 7)))(keys)
    assert not bool(jnp.any(idx == jnp.arange(7)))
    assert bool(jnp.all(jnp.sort(idx, axis=1) == jnp.arange(7)))  # permutations
    assert len({tuple(r) for r in idx.tolist()}) > 100  # random, not one fixed cycle


def _true_log_ratio(x, theta, s):
    """log N(x; theta, s^2) - log N(x; 0, 1 + s^2) for theta ~ N(0, 1)."""
    return (dist.Normal(theta, s).log_prob(x) - dist.Normal(0.0, math.sqrt(1 + s**2)).log_prob(x))


def scaled_ratio_energy(w, x, theta):
    return -w * _true_log_ratio(x[0], theta[0], 0.5)


@pytest.mark.parametrize("nu", [1, 3])
def test_ratio_estimation_optimum_is_the_true_log_ratio(nu):
    # energy -w log r(x, theta): the population optimum is w = 1 (the logit is exactly the
    # log ratio there). Fitted by Newton on 20000 pairs; estimation error is O(1/sqrt(n)).
    n = 20000
    k1, k2, k3 = jax.random.split(jax.random.key(nu), 3)
    theta = jax.random.normal(k1, (n, 1))
    x = theta + 0.5 * jax.random.normal(k2, (n, 1))
    obj = ratio_estimation(nu)
    f = lambda w: obj.loss(scaled_ratio_energy, w, (), (), (x, theta), k3)[0]
    newton = jax.jit(lambda w: w - jax.grad(f)(w) / jax.hessian(f)(w))
    w = jnp.asarray(0.5)
    for _ in range(8):
        w = newton(w)
    assert abs(float(jax.jit(jax.grad(f))(w))) < 1e-10
    assert float(w) == pytest.approx(1.0, abs=0.05)


# ----------------------------------------------------------------------------- bad input
def test_nce_rejects_bad_arguments():
    with pytest.raises(TypeError, match="noise must be a numpyro"):
        noise_contrastive_estimation(lambda x: x)
    with pytest.raises(ValueError, match="noise_ratio must be >= 1.*got 0"):
        noise_contrastive_estimation(STD_NORMAL, 0)
    with pytest.raises(TypeError, match="noise_ratio must be an int"):
        noise_contrastive_estimation(STD_NORMAL, 1.5)
    obj = noise_contrastive_estimation(dist.Normal(jnp.zeros(3), 1.0), 1)
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (4,))
    with pytest.raises(ValueError, match=r"noise has batch_shape \(3,\).*event_shape is \(2,\)"):
        obj.init(jax.random.key(1), energy_fn, params, jnp.zeros((8, 2)))
    with pytest.raises(TypeError, match="ratio_estimation"):
        obj.init(jax.random.key(1), energy_fn, params, (jnp.zeros((8, 2)), jnp.zeros((8, 1))))


def test_nce_accepts_batched_noise_as_event():
    obj = noise_contrastive_estimation(dist.Normal(jnp.zeros(2), 1.0), 2)
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (4,))
    extras, state = obj.init(jax.random.key(1), energy_fn, params, jnp.zeros((8, 2)))
    val, (_, metrics) = obj.loss(energy_fn, params, extras, state, jnp.zeros((8, 2)),
                                 jax.random.key(2))
    assert jnp.isfinite(val) and set(metrics) == {"accuracy", "log_normalizer"}


def test_objectives_accept_legacy_keys():
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (4,))
    cond_fn, cond_params = mlp_energy(jax.random.key(0), 2, (4,), context_dim=1)
    x = jax.random.normal(jax.random.key(1), (8, 2))
    cases = [
        (noise_contrastive_estimation(dist.Normal(jnp.zeros(2), 1.0).to_event(1)),
         energy_fn, params, x),
        (conditional_noise_contrastive_estimation(0.3), energy_fn, params, x),
        (ratio_estimation(2), cond_fn, cond_params, (x, x[:, :1])),
    ]
    for obj, fn, p, batch in cases:
        extras, state = obj.init(jax.random.PRNGKey(2), fn, p, batch)
        value, _ = jax.jit(lambda p, e, k, obj=obj, fn=fn, batch=batch, state=state:
                           obj.loss(fn, p, e, state, batch, k))(p, extras, jax.random.PRNGKey(3))
        assert jnp.isfinite(value), obj.name


def test_ratio_estimation_rejects_bad_batches():
    obj = ratio_estimation()
    energy_fn, params = mlp_energy(jax.random.key(0), 1, (4,), context_dim=1)
    with pytest.raises(TypeError, match=r"tuple \(x, theta\)"):
        obj.init(jax.random.key(1), energy_fn, params, jnp.zeros((8, 1)))
    with pytest.raises(ValueError, match=r"leading .* got shapes \(8, 1\) and \(7, 1\)"):
        obj.init(jax.random.key(1), energy_fn, params, (jnp.zeros((8, 1)), jnp.zeros((7, 1))))
    with pytest.raises(ValueError, match="noise_ratio"):
        ratio_estimation(-1)


# ----------------------------------------------------------------------------- MVN noise
def test_noise_log_prob_matches_numpyro_for_a_multivariate_normal():
    cov = jnp.array([[2.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 0.5]])
    q = dist.MultivariateNormal(jnp.array([0.5, -1.0, 2.0]), cov)
    u = jax.random.normal(jax.random.key(0), (7, 3)) * 2.0
    assert jnp.allclose(noise_log_prob(q, u), q.log_prob(u), rtol=1e-5, atol=1e-5)
    diag = dist.Normal(jnp.zeros(3), 2.0).to_event(1)  # other distributions: their log_prob
    assert jnp.array_equal(noise_log_prob(diag, u), diag.log_prob(u))


def _triangular_solve_widths(jaxpr) -> list[int]:
    """Right-hand-side widths of every triangular solve in a (nested) jaxpr."""
    widths = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "triangular_solve":
            widths.append(int(eqn.invars[1].aval.shape[-1]))
        for value in eqn.params.values():
            for inner in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr holds a Jaxpr
                if hasattr(inner, "eqns"):
                    widths += _triangular_solve_widths(inner)
    return widths


def test_nce_with_multivariate_normal_noise_equals_the_diagonal_form_without_batched_solves():
    """Issue: NCE with dist.MultivariateNormal noise ran ~8-11x slower than a diagonal Normal.

    NumPyro's MultivariateNormal.log_prob does one triangular solve against the whole batch,
    which cost milliseconds inside the training step on XLA:CPU. NCE now evaluates the
    noise density with the d x d inverse Cholesky factor: the same loss (same draws, same
    value) and no triangular solve wider than d in the traced step.
    """
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (8,))
    scale = jnp.array([1.5, 0.7])
    diag = noise_contrastive_estimation(dist.Normal(jnp.zeros(2), scale).to_event(1), 4)
    mvn = noise_contrastive_estimation(
        dist.MultivariateNormal(jnp.zeros(2), jnp.diag(scale**2)), 4)
    x = jax.random.normal(jax.random.key(1), (64, 2))
    extras, key = NCEExtras(jnp.asarray(0.3)), jax.random.key(2)

    def loss(obj, p):
        return obj.loss(energy_fn, p, extras, (), x, key)[0]

    assert jnp.allclose(loss(mvn, params), loss(diag, params), rtol=1e-5)
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: loss(mvn, p)))(params).jaxpr
    widths = _triangular_solve_widths(jaxpr)
    assert widths and max(widths) <= 2  # the d x d inverse only, never the batch
