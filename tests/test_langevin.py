"""Functional Langevin core (numpyro_ebm.infer.langevin): exact formulas and known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from numpyro_ebm import datasets
from numpyro_ebm.infer import langevin

N_IID = 20_000  # independent chains: their final states are iid draws


def _gauss_energy(prec):
    return lambda x: 0.5 * x @ (prec @ x)


@jax.jit
def _run_1d(key, h, inv_mass, temperature, ula):
    """Final states of N_IID independent 1-D chains on N(0, 1) after 100 steps."""

    def energy(x):
        return 0.5 * jnp.sum(x**2)

    def chain(k):
        k0, k1 = jax.random.split(k)
        st = langevin.init(jax.random.normal(k0, (1,)), energy)

        def body(s, kk):
            ula_s, _ = langevin.ula_step(kk, s, energy, h, inv_mass, temperature)
            mala_s, _ = langevin.mala_step(kk, s, energy, h, inv_mass, temperature)
            return jax.tree.map(lambda a, b: jnp.where(ula, a, b), ula_s, mala_s), None

        st, _ = jax.lax.scan(body, st, jax.random.split(k1, 100))
        return st.position[0]

    return jax.vmap(chain)(jax.random.split(key, N_IID))


@pytest.mark.parametrize(
    "h, m, T",
    [(0.4, 1.0, 1.0), (0.2, 1.0, 1.0), (0.1, 1.0, 1.0), (0.2, 0.5, 2.0)],
)
def test_ula_stationary_variance_closed_form(h, m, T):
    # For N(0, s^2), ULA is an AR(1) chain with variance T s^2 / (1 - h m / (2 s^2)).
    x = np.asarray(_run_1d(jax.random.key(1), h, jnp.array([m]), T, True))
    expected = T / (1.0 - h * m / 2.0)
    var = x.var(ddof=1)
    se = expected * np.sqrt(2.0 / (x.size - 1))
    assert abs(var - expected) < 4.5 * se
    # the first-order bias T h m / 2 is resolved: the exact variance T is rejected
    assert abs(var - T) > 4.5 * se


def test_mala_is_unbiased_where_ula_is_not():
    x = np.asarray(_run_1d(jax.random.key(2), 0.4, jnp.array([1.0]), 1.0, False))
    se = np.sqrt(2.0 / (x.size - 1))
    assert abs(x.var(ddof=1) - 1.0) < 4.5 * se


def test_ula_dense_metric_closed_form():
    # With M^-1 = Sigma the ULA chain on N(0, Sigma) has covariance Sigma / (1 - h / 2).
    cov = jnp.array([[2.0, 1.2], [1.2, 1.0]])
    prec = jnp.linalg.inv(cov)
    energy = _gauss_energy(prec)
    h = 0.3

    @jax.jit
    def run(key):
        def chain(k):
            k0, k1 = jax.random.split(k)
            x0 = jnp.linalg.cholesky(cov) @ jax.random.normal(k0, (2,))

            def body(s, kk):
                return langevin.ula_step(kk, s, energy, h, cov)[0], None

            return jax.lax.scan(body, langevin.init(x0, energy), jax.random.split(k1, 100))[0]

        return jax.vmap(chain)(jax.random.split(key, N_IID)).position

    x = np.asarray(run(jax.random.key(3)))
    target = np.asarray(cov) / (1.0 - h / 2.0)
    emp = np.cov(x.T)
    n = x.shape[0]
    se = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / n)
    assert np.all(np.abs(emp - target) < 4.5 * se)


@pytest.mark.parametrize("metric", ["identity", "diag", "dense"])
def test_info_matches_independent_densities(metric):
    d = 3
    key = jax.random.key(4)
    a = jax.random.normal(key, (d, d))
    prec = a @ a.T + jnp.eye(d)
    energy = lambda x: 0.5 * x @ (prec @ x) + jnp.sum(jnp.sin(x))
    inv_mass = {"identity": None, "diag": jnp.array([0.5, 1.0, 2.0]),
                "dense": jnp.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.4], [0.0, 0.4, 0.7]])}[metric]
    h, T = 0.07, 1.7
    state = langevin.init(jnp.array([0.3, -0.2, 0.5]), energy)
    new, info = langevin.mala_step(jax.random.key(5), state, energy, h, inv_mass, T)
    cov_m = np.eye(d) if inv_mass is None else np.asarray(
        jnp.diag(inv_mass) if inv_mass.ndim == 1 else inv_mass)
    x, g = np.asarray(state.position), np.asarray(state.energy_grad)
    y, gy = np.asarray(info.proposal.position), np.asarray(info.proposal.energy_grad)
    fwd = stats.multivariate_normal(x - h * cov_m @ g, 2 * h * T * cov_m).logpdf(y)
    bwd = stats.multivariate_normal(y - h * cov_m @ gy, 2 * h * T * cov_m).logpdf(x)
    ratio = -(float(energy(y)) - float(energy(x))) / T + bwd - fwd
    np.testing.assert_allclose(info.forward_log_prob, fwd, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(info.backward_log_prob, bwd, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(info.log_accept_ratio, ratio, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(info.acceptance_rate, min(1.0, np.exp(ratio)), rtol=1e-10)
    # the proposal is x - h M^-1 g + sqrt(2 h T) B xi with B B^T = M^-1 and xi = info.noise
    resid = (y - x + h * cov_m @ g) / np.sqrt(2 * h * T)
    b = np.linalg.cholesky(cov_m)
    np.testing.assert_allclose(np.linalg.solve(b, resid), info.noise, rtol=1e-8, atol=1e-10)
    moved = bool(info.is_accepted)
    np.testing.assert_array_equal(new.position, y if moved else x)
    # the public helper agrees with the step's own forward density
    np.testing.assert_allclose(
        langevin.proposal_log_density(info.proposal.position, state.position,
                                      state.energy_grad, h, inv_mass, T),
        fwd, rtol=1e-10)


def _one_step_ks(energy_kernel, seed):
    """One MALA step from exact draws of a 2-D ill-conditioned Gaussian; KS p-values."""
    dens = datasets.gaussian(jnp.array([1.0, -1.0]), jnp.array([[4.0, 1.9], [1.9, 1.0]]))
    cov = dens.params["scale_tril"] @ dens.params["scale_tril"].T
    k0, k1, k2 = jax.random.split(jax.random.key(seed), 3)
    x = dens.sample(k0, N_IID)

    def step(k, xi):
        st = langevin.init(xi, energy_kernel)
        return langevin.mala_step(k, st, energy_kernel, 0.8, cov)

    new, info = jax.jit(jax.vmap(step))(jax.random.split(k1, N_IID), x)
    fresh = dens.sample(k2, N_IID)
    e_true = lambda z: -dens.log_prob(z)
    ps = [stats.ks_2samp(np.asarray(new.position[:, j]), np.asarray(fresh[:, j])).pvalue
          for j in range(2)]
    ps.append(stats.ks_2samp(np.asarray(e_true(new.position)), np.asarray(e_true(fresh))).pvalue)
    return np.array(ps), float(jnp.mean(info.is_accepted))


def test_one_mala_step_leaves_exact_draws_invariant():
    dens = datasets.gaussian(jnp.array([1.0, -1.0]), jnp.array([[4.0, 1.9], [1.9, 1.0]]))
    energy = lambda x: dens.energy_fn(dens.params, x)
    ps, acc = _one_step_ks(energy, 6)
    assert 0.2 < acc < 0.95  # the step really moves the draws
    assert np.all(ps > 1e-3)


def test_one_mala_step_detects_a_wrong_energy():
    wrong = datasets.gaussian(jnp.array([1.0, -1.0]), jnp.array([[6.0, 1.9], [1.9, 1.0]]))
    energy = lambda x: wrong.energy_fn(wrong.params, x)
    ps, _ = _one_step_ks(energy, 6)
    assert np.min(ps) < 1e-6


@pytest.mark.parametrize("step", ["mala", "ula"])
def test_nan_region_is_rejected_and_counted(step):
    def energy(x):
        return jnp.where(x[0] > 0.8, jnp.nan, 0.5 * jnp.sum(x**2))

    fn = langevin.mala_step if step == "mala" else langevin.ula_step

    @jax.jit
    def run(key):
        def body(s, k):
            s2, info = fn(k, s, energy, 0.3)
            return s2, (s2.position, info.diverging, info.proposal.position, info.is_accepted)

        return jax.lax.scan(body, langevin.init(jnp.zeros(2), energy),
                            jax.random.split(key, 2000))[1]

    pos, div, prop, acc = run(jax.random.key(7))
    assert np.all(np.isfinite(pos))
    assert np.all(pos[:, 0] <= 0.8)
    n_bad = int(np.sum(np.asarray(prop[:, 0]) > 0.8))
    assert n_bad > 20
    assert int(div.sum()) == n_bad
    assert not np.any(np.asarray(acc)[np.asarray(div)])


def test_pytree_positions_and_bad_metric_shape():
    energy = lambda p: 0.5 * jnp.sum(p["a"] ** 2) + 0.5 * p["b"] ** 2
    st = langevin.init({"a": jnp.zeros(2), "b": jnp.array(0.0)}, energy)
    new, info = langevin.mala_step(jax.random.key(8), st, energy, 0.5, jnp.ones(3))
    assert jax.tree.structure(new.position) == jax.tree.structure(st.position)
    assert info.noise.shape == (3,)
    with pytest.raises(ValueError, match=r"inverse_mass_matrix.*size 3.*got shape \(2,\)"):
        langevin.mala_step(jax.random.key(8), st, energy, 0.5, jnp.ones(2))


# ---------------------------------------------------------------- the factored core
def test_metric_factors_from_matrix_and_from_numpyro_adapt_state():
    from numpyro.infer.hmc_util import warmup_adapter

    from numpyro_ebm.infer.metric import Metric, from_adapt_state, make_metric

    m = np.array([[2.0, 0.6, 0.1], [0.6, 1.0, 0.3], [0.1, 0.3, 0.5]])
    wa_init, _ = warmup_adapter(10, dense_mass=True)
    ad = wa_init((jnp.zeros(3),), jax.random.key(0), 0.1, inverse_mass_matrix=jnp.asarray(m))
    v = np.array([0.3, -1.2, 0.7])
    for metric in (make_metric(m, 3), from_adapt_state(ad)):
        b, b_inv = np.asarray(metric.sqrt_factor), np.asarray(metric.inverse_sqrt_factor)
        np.testing.assert_allclose(b @ b.T, m, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b_inv @ b, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(metric.mul(v), m @ v, rtol=1e-12)
        np.testing.assert_allclose(metric.whiten(metric.sqrt_mul(v)), v, rtol=1e-12)
        np.testing.assert_allclose(metric.half_logdet(jnp.float64),
                                   0.5 * np.linalg.slogdet(m)[1], rtol=1e-12)
    diag = make_metric(np.array([4.0, 0.25]), 2)
    np.testing.assert_allclose(diag.sqrt_mul(np.ones(2)), [2.0, 0.5])
    np.testing.assert_allclose(diag.whiten(np.ones(2)), [0.5, 2.0])
    assert make_metric(None, 2) == Metric()
    # a Metric is a pytree: it passes through jit
    assert jax.jit(lambda mm: mm.mul(jnp.ones(2)))(diag).shape == (2,)


def test_metric_keeps_its_log_determinant():
    from numpyro_ebm.infer.metric import Metric, make_metric

    m = np.array([[2.0, 0.6], [0.6, 1.0]])
    for inv_mm in (m, np.array([4.0, 0.25])):
        metric = make_metric(inv_mm, 2)  # computed once, at construction
        full = m if inv_mm.ndim == 2 else np.diag(inv_mm)
        np.testing.assert_allclose(metric.log_det_sqrt, 0.5 * np.linalg.slogdet(full)[1],
                                   rtol=1e-12)
    # a given value is used as is (a sampling step takes no logarithms of the factor)
    cached = Metric(jnp.full(2, 4.0), jnp.full(2, 2.0), jnp.full(2, 0.5), jnp.asarray(7.0))
    assert float(cached.half_logdet(jnp.float64)) == 7.0
    assert float(cached._replace(log_det_sqrt=None).half_logdet(jnp.float64)) == \
        pytest.approx(2 * np.log(2.0))
    assert cached._replace(log_det_sqrt=None).with_log_det().log_det_sqrt == \
        pytest.approx(2 * np.log(2.0))
    assert make_metric(None, 2).with_log_det() == Metric()


def test_metropolis_hastings_rule():
    keys = jax.random.split(jax.random.key(9), 20_000)
    mh = jax.vmap(langevin.metropolis_hastings, in_axes=(0, None))
    acc, rate = mh(keys, jnp.log(0.3))
    np.testing.assert_allclose(rate, 0.3, rtol=1e-12)
    p = float(np.mean(acc))
    assert abs(p - 0.3) < 4.5 * np.sqrt(0.3 * 0.7 / keys.shape[0])
    assert np.all(mh(keys, 0.5)[0])  # a favourable move is always taken
    for bad in (jnp.nan, -jnp.inf):
        acc, rate = mh(keys, bad)
        assert not np.any(acc) and np.all(rate == 0.0)


def test_diverging_means_energy_error_beyond_max_delta_energy():
    # On E = 50 x^2 a step h = 1 overshoots enormously: log r ~ -1e4 (NumPyro's HMC calls a
    # transition with energy error above max_delta_energy = 1000 diverging).
    energy = lambda x: 50.0 * jnp.sum(x**2)
    state = langevin.init(jnp.array([1.0]), energy)
    for step in (langevin.mala_step, langevin.ula_step):
        _, info = step(jax.random.key(0), state, energy, 1.0)
        assert float(info.log_accept_ratio) < -1000 and bool(info.diverging)
        _, info = step(jax.random.key(0), state, energy, 1.0, max_delta_energy=1e9)
        assert np.isfinite(info.log_accept_ratio) and not bool(info.diverging)
    # an ordinary rejected step (ratio between -1000 and 0) is not a divergence
    _, info = langevin.mala_step(jax.random.key(0), state, energy, 0.03)
    assert -1000 < float(info.log_accept_ratio) < 0 and not bool(info.diverging)


def test_accept_is_the_one_path_of_both_steps():
    energy = lambda x: 0.5 * jnp.sum(x**2)
    state = langevin.init(jnp.array([0.4, -0.3]), energy)
    key = jax.random.key(11)
    prop = langevin.propose(key, state, energy, 0.8)
    assert isinstance(prop, langevin.LangevinProposal)
    xi, log_u = langevin.draw_step_noise(key, state.position)  # one draw for both
    np.testing.assert_array_equal(prop.noise, xi)
    for adjusted, step in ((True, langevin.mala_step), (False, langevin.ula_step)):
        new, info = langevin.accept(None, state, prop, adjusted, log_uniform=log_u)
        new2, info2 = step(key, state, energy, 0.8)
        jax.tree.map(np.testing.assert_array_equal, (new, info), (new2, info2))


def test_step_noise_is_standard_normal_and_its_log_uniform_uniform():
    keys = jax.random.split(jax.random.key(4), 20_000)
    xi, log_u = jax.vmap(langevin.draw_step_noise, in_axes=(0, None))(keys, jnp.zeros(3))
    assert xi.shape == (20_000, 3) and log_u.shape == (20_000,)
    n = keys.shape[0]
    u = np.exp(np.asarray(log_u))
    assert np.all((u > 0) & (u <= 1))
    for q in (0.1, 0.5, 0.9):  # P(u < q) = q within 5 MCSE
        assert abs(np.mean(u < q) - q) < 5 * np.sqrt(q * (1 - q) / n)
    assert abs(np.mean(u) - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert np.all(np.abs(np.mean(xi, 0)) < 5 / np.sqrt(n))
    assert np.all(np.abs(np.var(xi, 0) - 1) < 5 * np.sqrt(2 / n))
    # u is independent of xi: no correlation with xi or xi^2 beyond 5 standard errors
    for v in (np.asarray(xi), np.asarray(xi) ** 2):
        corr = [np.corrcoef(u, v[:, j])[0, 1] for j in range(3)]
        assert np.all(np.abs(corr) < 5 / np.sqrt(n))
    # the accept rule with the given log u: acceptance 0.3 for a ratio of 0.3
    acc, _ = jax.vmap(lambda lu: langevin.metropolis_hastings(
        None, jnp.log(0.3), log_uniform=lu))(log_u)
    assert abs(float(np.mean(acc)) - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)


def test_metropolis_hastings_needs_exactly_one_source_of_randomness():
    with pytest.raises(ValueError, match="exactly one of key and log_uniform"):
        langevin.metropolis_hastings(None, jnp.log(0.3))
    with pytest.raises(ValueError, match="exactly one of key and log_uniform"):
        langevin.metropolis_hastings(jax.random.key(0), jnp.log(0.3),
                                     log_uniform=jnp.log(0.5))


@pytest.mark.parametrize("key", [jax.random.key(5), jax.random.PRNGKey(5)])
def test_one_key_gives_ula_and_mala_the_same_proposal(key):
    # both steps draw their noise from the key the same way, so ULA's move is the
    # proposal MALA accepts or rejects; with a huge step MALA rejects and stays
    energy = lambda x: 0.5 * jnp.sum(x**2)
    state = langevin.init(jnp.array([0.4, -0.3, 1.2]), energy)
    for h in (0.3, 50.0):
        ula_new, ula_info = langevin.ula_step(key, state, energy, h)
        mala_new, mala_info = langevin.mala_step(key, state, energy, h)
        np.testing.assert_array_equal(ula_info.noise, mala_info.noise)
        np.testing.assert_array_equal(ula_new.position, mala_info.proposal.position)
        np.testing.assert_array_equal(ula_info.log_accept_ratio, mala_info.log_accept_ratio)
        if h == 50.0:
            assert not bool(mala_info.is_accepted)
            np.testing.assert_array_equal(mala_new.position, state.position)


@pytest.mark.parametrize("unadjusted", [False, 0, np.False_, np.array(False)])
def test_accept_without_correction_needs_no_key_for_any_false(unadjusted):
    energy = lambda x: 0.5 * jnp.sum(x**2)
    state = langevin.init(jnp.array([0.4, -0.3]), energy)
    prop = langevin.propose(jax.random.key(3), state, energy, 0.8)
    new, info = langevin.accept(None, state, prop, unadjusted)
    np.testing.assert_array_equal(new.position, prop.state.position)  # moved, no MH draw
    assert bool(info.is_accepted)


def test_propose_with_noise_is_propose_with_its_innovation_given():
    # propose draws xi ~ N(0, I) from its key and moves by it; given that xi, the move,
    # the MH ratio and both log q terms are the same numbers
    energy = lambda x: 0.5 * jnp.sum(x**2) + jnp.sum(jnp.sin(x))
    state = langevin.init(jnp.array([0.4, -0.3, 1.2]), energy)
    key = jax.random.key(8)
    prop = langevin.propose(key, state, energy, 0.3, jnp.array([1.0, 2.0, 0.5]))
    xi = jax.random.normal(key, (3,))
    prop2 = langevin.propose_with_noise(xi, state, energy, 0.3, jnp.array([1.0, 2.0, 0.5]))
    jax.tree.map(np.testing.assert_array_equal, prop, prop2)
    # a different innovation is a different move
    other = langevin.propose_with_noise(-xi, state, energy, 0.3)
    assert not np.allclose(other.state.position, prop.state.position)
    with pytest.raises(ValueError, match=r"xi must have shape \(3,\).*got shape \(2,\)"):
        langevin.propose_with_noise(xi[:2], state, energy, 0.3)
