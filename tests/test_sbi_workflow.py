"""The SBI workflow: simulations checked (NaN rows, shapes), a standardised ratio fit,
multi-chain posterior sampling through NumPyro, observation-range warning, and the
contrastive (NRE-B) objective."""

import math
import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from numpyro_ebm import NumpyroEBMWarning, fit
from numpyro_ebm.nn import mlp_energy
from numpyro_ebm.objectives import contrastive_ratio_estimation, ratio_estimation
from numpyro_ebm.sbi import (
    EnsembleEnergy,
    StandardizedEnergy,
    check_observation,
    check_simulations,
    expected_coverage,
    fit_ratio,
    sample_posterior,
    standardize,
)

PRIOR = dist.Normal(jnp.zeros(2), 1.0).to_event(1)


def _simulate(key, n, noise=0.5):
    k1, k2 = jax.random.split(key)
    theta = jax.random.normal(k1, (n, 2))
    return theta, theta + noise * jax.random.normal(k2, (n, 2))


# ----------------------------------------------------------------------------- bad input
def test_nan_rows_raise_by_default_and_are_dropped_and_counted_on_request():
    theta, x = _simulate(jax.random.key(0), 50)
    x = np.asarray(x).copy()
    x[[3, 7], 1] = np.nan
    x[11, 0] = np.inf
    t = np.asarray(theta).copy()
    t[20, 0] = np.nan
    with pytest.raises(ValueError, match=r"4 row\(s\) with NaN or inf \(1 in theta, 3 in x; "
                                         r"first at row 3\)"):
        check_simulations(t, x)
    sims = check_simulations(t, x, on_nonfinite="drop")
    assert sims.num_dropped == 4 and sims.theta.shape == (46, 2) and sims.x.shape == (46, 2)
    assert bool(jnp.all(jnp.isfinite(sims.x))) and bool(jnp.all(jnp.isfinite(sims.theta)))
    # the kept rows are the finite ones, in order, still paired
    keep = np.setdiff1d(np.arange(50), [3, 7, 11, 20])
    assert np.array_equal(np.asarray(sims.x), x[keep])
    assert np.array_equal(np.asarray(sims.theta), t[keep])
    with pytest.raises(ValueError, match="on_nonfinite must be one of"):
        check_simulations(t, x, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="all 2 simulations contain NaN"):
        check_simulations(np.zeros((2, 1)), np.full((2, 1), np.nan), on_nonfinite="drop")


def test_fit_ratio_refuses_nan_simulations_and_counts_dropped_ones():
    theta, x = _simulate(jax.random.key(1), 200)
    x = x.at[5].set(jnp.nan)
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_ratio(theta, x, key=jax.random.key(0), hidden=(8,), num_epochs=1)
    r = fit_ratio(theta, x, key=jax.random.key(0), hidden=(8,), num_epochs=2, batch_size=32,
                  on_nonfinite="drop")
    assert r.num_dropped == 1
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(r.params))


def test_shape_mismatches_are_named():
    with pytest.raises(ValueError, match=r"theta has 10 rows \(shape \(10, 2\)\), x has 9"):
        check_simulations(np.zeros((10, 2)), np.zeros((9, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(num_simulations, dim\)"):
        check_simulations(np.zeros((10, 2)), np.zeros((10, 2, 2)))
    theta, x = _simulate(jax.random.key(2), 100)
    r = fit_ratio(theta, x, key=jax.random.key(0), hidden=(8,), num_epochs=1, batch_size=32)
    with pytest.raises(ValueError, match=r"x_obs must have shape \(2,\) or \(n_iid, 2\).*"
                                         r"got shape \(3,\)"):
        check_observation(r, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"prior must be a distribution over theta of shape "
                                         r"\(2,\)"):
        sample_posterior(r, dist.Normal(jnp.zeros(3), 1.0).to_event(1), jnp.zeros(2),
                         key=jax.random.key(0))
    with pytest.raises(TypeError, match="prior must be a numpyro Distribution"):
        sample_posterior(r, "normal", jnp.zeros(2), key=jax.random.key(0))
    # the coverage check names a column mismatch too (was a JAX broadcasting TypeError)
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\) \(the ratio was fit on x "
                                         r"with 2 columns\), got shape \(10, 3\)"):
        expected_coverage(r, prior, theta[:10], jnp.zeros((10, 3)), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 2\) to match the "
                                         r"prior's event shape \(2,\), got shape \(10, 1\)"):
        expected_coverage(r, prior, theta[:10, :1], x[:10], key=jax.random.key(0))


def test_observation_outside_the_simulations_warns_and_inside_does_not():
    theta, x = _simulate(jax.random.key(3), 100)
    r = fit_ratio(theta, x, key=jax.random.key(0), hidden=(8,), num_epochs=1, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_observation(r, jnp.zeros(2)).shape == (1, 2)
    with pytest.warns(NumpyroEBMWarning, match=r"outside the range of the simulations in "
                                               r"column\(s\) \[1\]"):
        check_observation(r, jnp.array([0.0, 50.0]))


# ----------------------------------------------------------------------------- standardisation
def test_standardized_energy_z_scores_inputs_and_hashes_by_value():
    inner, params = mlp_energy(jax.random.key(0), 2, (4,), context_dim=1)
    theta = jnp.array([[1.0], [3.0], [5.0]])
    x = jnp.array([[10.0, -1.0], [20.0, -1.0], [30.0, -1.0]])  # second column constant
    e = standardize(inner, theta, x)
    assert isinstance(e, StandardizedEnergy)
    assert e.x_scale[1] == 1.0 and e.theta_loc == (3.0,)
    z_x = (x[0] - jnp.array([20.0, -1.0])) / jnp.array([math.sqrt(200 / 3), 1.0])
    z_t = (theta[0] - 3.0) / math.sqrt(8 / 3)
    assert float(e(params, x[0], theta[0])) == pytest.approx(float(inner(params, z_x, z_t)))
    assert e == standardize(inner, theta, x) and hash(e) == hash(standardize(inner, theta, x))


# ----------------------------------------------------------------------------- ensembles
def test_an_ensemble_averages_its_members_log_ratios_and_its_first_member_is_the_single_fit():
    theta, x = _simulate(jax.random.key(4), 200)
    kw = dict(key=jax.random.key(0), hidden=(8,), num_epochs=3, batch_size=32)
    single = fit_ratio(theta, x, **kw)
    ens = fit_ratio(theta, x, num_ensemble=3, **kw)
    assert isinstance(ens.energy_fn, EnsembleEnergy) and ens.energy_fn.member == single.energy_fn
    assert len(ens.member_fit_results) == 3 and len(single.member_fit_results) == 1
    members = [jax.tree.map(lambda p, m=m: p[m], ens.params) for m in range(3)]
    # member 0 is the single fit (same keys); the others differ (own init and batch order)
    for a, b in zip(jax.tree.leaves(members[0]), jax.tree.leaves(single.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(jax.tree.leaves(members[1])[0]),
                           np.asarray(jax.tree.leaves(members[0])[0]))
    x0, t = jnp.array([0.3, -0.2]), jnp.array([[0.1, 0.5], [-1.0, 2.0]])
    each = np.stack([[-float(single.energy_fn(p, x0, ti)) for ti in t] for p in members])
    np.testing.assert_allclose(np.asarray(ens.log_ratio(x0, t)), each.mean(0), rtol=1e-5,
                               atol=1e-6)
    draws = sample_posterior(ens, PRIOR, x0, key=jax.random.key(1), num_samples=200,
                             num_chains=4, num_warmup=20).get_samples()["theta"]
    assert draws.shape == (200, 2) and bool(jnp.all(jnp.isfinite(draws)))
    with pytest.raises(ValueError, match="num_ensemble must be"):
        fit_ratio(theta, x, num_ensemble=0, **kw)


def test_weight_decay_shrinks_the_weights_and_rejects_negative_values():
    theta, x = _simulate(jax.random.key(5), 200)
    kw = dict(key=jax.random.key(0), hidden=(16,), num_epochs=20, batch_size=32,
              learning_rate=1e-2)
    plain = fit_ratio(theta, x, **kw).params
    decayed = fit_ratio(theta, x, weight_decay=0.5, **kw).params

    def norm(p):
        return sum(float(jnp.sum(leaf**2)) for leaf in jax.tree.leaves(p))

    assert norm(decayed) < 0.8 * norm(plain)
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0"):
        fit_ratio(theta, x, weight_decay=-1.0, **kw)


# ----------------------------------------------------------------------------- the objective
def test_contrastive_objective_is_a_value_and_rejects_bad_settings():
    assert contrastive_ratio_estimation(5) == contrastive_ratio_estimation(5)
    assert hash(contrastive_ratio_estimation(5)) == hash(contrastive_ratio_estimation(5))
    assert contrastive_ratio_estimation(5) != contrastive_ratio_estimation(6)
    for bad in (1, 0, 2.5, "ten", True):
        with pytest.raises(ValueError, match="num_atoms must be"):
            contrastive_ratio_estimation(bad)
    energy, params = mlp_energy(jax.random.key(0), 2, (4,), context_dim=2)
    theta, x = _simulate(jax.random.key(0), 8)
    with pytest.raises(ValueError, match="batch_size must be >= num_atoms = 10"):
        fit(energy, params, (x, theta), contrastive_ratio_estimation(10), key=jax.random.key(0),
            num_steps=1, batch_size=8, progress_bar=False)
    with pytest.raises(TypeError, match=r"paired simulations: a tuple \(x, theta\)"):
        contrastive_ratio_estimation(2).loss(energy, params, (), (), x, jax.random.key(0))


def test_contrastive_loss_at_a_known_ratio_equals_the_direct_formula():
    # with -E = log N(x; theta, s^2) (the true ratio up to a function of x) the loss is
    # -mean log softmax over the K candidate thetas; recompute it by brute force
    s, k, n = 0.5, 4, 16
    theta, x = _simulate(jax.random.key(4), n, s)

    def energy(params, xi, ti):
        return 0.5 * jnp.sum((xi - ti) ** 2) / params

    obj = contrastive_ratio_estimation(k)
    key = jax.random.key(5)
    loss, (_, metrics) = obj.loss(energy, s**2, (), (), (x, theta), key)
    offsets = 1 + jax.random.choice(key, n - 1, (k - 1,), replace=False)
    total = 0.0
    for i in range(n):
        cands = [i] + [int((i + o) % n) for o in offsets]
        logits = np.array([-float(energy(s**2, x[i], theta[c])) for c in cands])
        total += -(logits[0] - np.log(np.sum(np.exp(logits))))
    assert float(loss) == pytest.approx(total / n, rel=1e-6)
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0


# ----------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("objective", [contrastive_ratio_estimation(5), ratio_estimation()])
def test_fit_and_sample_recover_a_conjugate_posterior(objective):
    # theta ~ N(0, I), x ~ N(theta, 0.25 I): posterior N(0.8 x, 0.2 I). 4000 simulations,
    # a small MLP; tolerances cover the ratio's approximation error (generous: a broken
    # standardisation or sampler is off by far more) and MC error.
    theta, x = _simulate(jax.random.key(6), 4000)
    r = fit_ratio(theta, x, key=jax.random.key(7), objective=objective, hidden=(32, 32),
                  activation="swish", num_epochs=30, batch_size=128, learning_rate=2e-3,
                  patience=5)
    assert r.fit_result.history["val_loss"].size >= 2
    x_obs = jnp.array([0.8, -0.5])
    mcmc = sample_posterior(r, PRIOR, x_obs, key=jax.random.key(8), num_samples=2000,
                            num_chains=20, num_warmup=150, num_proposals=10_000)
    draws = np.asarray(mcmc.get_samples()["theta"])
    assert draws.shape == (2000, 2)
    assert np.allclose(draws.mean(0), 0.8 * np.asarray(x_obs), atol=0.15)
    assert np.allclose(draws.std(0), math.sqrt(0.2), rtol=0.2)
    tree = az.from_numpyro(mcmc)
    assert tree["posterior"]["theta"].shape[:2] == (20, 100)


# ----------------------------------------------------------------------------- compiled once
@pytest.mark.slow
def test_a_second_observation_compiles_nothing_and_matches_numpyros_loop():
    """sample_posterior is one jitted function of (prior, params, x_obs, key): a new
    observation, key and prior parameters reuse it; its draws equal those of the same
    chains run through MCMC.run (progress_bar=True), and the result behaves as a run."""
    from helpers import count_compiles

    theta, x = _simulate(jax.random.key(9), 200)
    r = fit_ratio(theta, x, key=jax.random.key(0), hidden=(8,), num_epochs=1, batch_size=32)
    settings = dict(num_samples=40, num_chains=4, num_warmup=10, num_proposals=500,
                    max_tree_depth=3)
    first = sample_posterior(r, PRIOR, jnp.array([0.1, 0.2]), key=jax.random.key(1),
                             **settings)
    first_draws = np.asarray(first.get_samples()["theta"])  # get_samples' reshape compiled
    other_prior = dist.Normal(jnp.full(2, 0.5), 2.0).to_event(1)
    with count_compiles() as compiles:
        second = sample_posterior(r, other_prior, jnp.array([-0.3, 0.4]),
                                  key=jax.random.key(2), **settings)
        draws = np.asarray(second.get_samples()["theta"])
    assert len(compiles) == 0, f"{len(compiles)} compilation(s) for a second observation"
    assert draws.shape == (40, 2) and np.all(np.isfinite(draws))
    assert not np.array_equal(draws, first_draws)
    looped = sample_posterior(r, other_prior, jnp.array([-0.3, 0.4]), key=jax.random.key(2),
                              progress_bar=True, **settings)
    np.testing.assert_allclose(draws, np.asarray(looped.get_samples()["theta"]), atol=1e-4)
    assert second.get_samples(group_by_chain=True)["theta"].shape == (4, 10, 2)
    assert second.get_extra_fields()["diverging"].shape == (40,)
    tree = az.from_numpyro(second)
    assert tree["posterior"]["theta"].shape == (4, 10, 2)
    assert "diverging" in tree["sample_stats"]
