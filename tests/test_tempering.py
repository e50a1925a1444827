"""Non-reversible parallel tempering: mode weights within MCSE where MALA alone fails, the
adapted schedule, round trips against the 1 / (2 + 2 Lambda) bound, every chain method,
ArviZ, pickling, NumPyro HMC/NUTS as explorers, the prior reference with a learned
likelihood factor, and bad input."""

import functools
import pickle

import arviz
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import assert_means_within_mcse, assert_moments_within_mcse
from numpyro.infer import HMC, MCMC, NUTS

import numpyro_ebm as ebm
from numpyro_ebm.infer.tempering import (
    NRPT,
    NRPT_FIELDS,
    _deo_permutation,
    _round_ends,
    _updated_schedule,
    round_trip_bound,
)

MEANS = jnp.array([[-4.0, -4.0], [-4.0, 4.0], [4.0, -4.0], [4.0, 4.0]])
WEIGHTS = jnp.array([0.1, 0.2, 0.3, 0.4])


def mixture_energy(params, x):
    """Four well-separated isotropic Gaussians (sd 0.5) with weights 0.1 ... 0.4."""
    sq = jnp.sum((x - params["means"]) ** 2, -1) / (2 * 0.5**2)
    return -jax.scipy.special.logsumexp(jnp.log(params["weights"]) - sq)


def mixture_model():
    numpyro.sample("x", ebm.EnergyDistribution(
        mixture_energy, {"means": MEANS, "weights": WEIGHTS}, event_shape=(2,)))


def _mode_indicators(x):
    x = np.asarray(x)
    label = 2 * (x[..., 0] > 0) + (x[..., 1] > 0)  # quadrant = mode (modes are 16 sd apart)
    return np.stack([label == j for j in range(4)], -1).astype(float)


@pytest.fixture(scope="module")
def mixture_run():
    kernel = NRPT(mixture_model, num_replicas=8, reference_scale=4.0)
    mcmc = MCMC(kernel, num_warmup=500, num_samples=2500, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(0), extra_fields=NRPT_FIELDS)
    return mcmc


@pytest.mark.slow
def test_nrpt_gets_mode_weights_within_mcse_where_mala_fails(mixture_run):
    ind = _mode_indicators(mixture_run.get_samples(group_by_chain=True)["x"])
    assert_means_within_mcse(ind, np.asarray(WEIGHTS), [f"w{j}" for j in range(4)],
                             n_mcse=4.5, min_ess=100)
    # MALA alone: every chain stays in the mode it started in, so the pooled weights are
    # multiples of 1/4 and at least 0.1 away from the truth in some mode
    mala = MCMC(ebm.MALA(mixture_model), num_warmup=300, num_samples=1000, num_chains=4,
                chain_method="vectorized", progress_bar=False)
    mala.run(jax.random.key(1))
    mind = _mode_indicators(mala.get_samples(group_by_chain=True)["x"])
    assert np.all(mind.std(axis=1) == 0), "a MALA chain switched modes"
    assert np.max(np.abs(mind.mean((0, 1)) - np.asarray(WEIGHTS))) >= 0.1 - 1e-12


@pytest.mark.slow
def test_adapted_schedule_equalises_rejections_and_round_trips_obey_bound(mixture_run):
    ef = mixture_run.get_extra_fields(group_by_chain=True)
    rej = 1.0 - np.asarray(ef["swap_accept_prob"]).mean(1)  # (chain, pair)
    # the adapted schedule equalises the per-pair rejection rates (uniform betas do not:
    # on this target their first-pair rejection is far above the last)
    assert np.all(rej.std(-1) < 0.25 * rej.mean(-1)), rej
    betas = np.asarray(ef["betas"])
    assert np.all(betas[:, 0] == betas[:, -1])  # no adaptation after warmup
    assert np.all(np.diff(betas[:, -1], axis=-1) > 0)
    lam = np.asarray(ef["barrier"])[:, -1]
    np.testing.assert_allclose(lam, rej.sum(-1), rtol=1e-10)  # Lambda = sum of rejections
    rate = np.asarray(ef["round_trips"])[:, -1] / 2500
    assert np.all(rate > 0.05)
    assert np.all(rate <= round_trip_bound(lam) * 1.1)  # the N -> inf bound (finite N: below)
    assert np.all(np.diff(np.asarray(ef["round_trips"]), axis=1) >= 0)


@pytest.mark.slow
def test_uniform_schedule_has_unequal_rejections():
    kernel = NRPT(mixture_model, num_replicas=8, reference_scale=4.0, adapt_schedule=False)
    mcmc = MCMC(kernel, num_warmup=100, num_samples=400, num_chains=1, progress_bar=False)
    mcmc.run(jax.random.key(2), extra_fields=("swap_accept_prob", "betas"))
    ef = mcmc.get_extra_fields()
    np.testing.assert_allclose(ef["betas"][-1], np.linspace(0, 1, 8))
    rej = 1.0 - np.asarray(ef["swap_accept_prob"]).mean(0)
    assert rej.std() > 0.25 * rej.mean(), rej


def _gauss_potential(z):
    return 0.5 * jnp.sum((z - jnp.array([1.0, -1.0])) ** 2 / jnp.array([1.0, 4.0]))


@pytest.fixture(scope="module")
def chain_method_runs():
    out = {}
    for method in ("sequential", "parallel", "vectorized"):
        mcmc = MCMC(NRPT(potential_fn=_gauss_potential, num_replicas=4), num_warmup=100,
                    num_samples=200, num_chains=2, chain_method=method,
                    progress_bar=method == "sequential")
        mcmc.run(jax.random.key(3), init_params=jnp.array([[0.0, 0.0], [-1.0, 1.0]]),
                 extra_fields=NRPT_FIELDS)
        out[method] = mcmc
    return out


def test_chain_methods_agree(chain_method_runs):
    ref = np.asarray(chain_method_runs["sequential"].get_samples(group_by_chain=True))
    assert ref.shape == (2, 200, 2)
    for mcmc in chain_method_runs.values():
        z = np.asarray(mcmc.get_samples(group_by_chain=True))
        np.testing.assert_allclose(z, ref, rtol=1e-6, atol=1e-8)
        ef = mcmc.get_extra_fields(group_by_chain=True)
        assert ef["swap_accept_prob"].shape == (2, 200, 3)
        assert ef["replica_step_size"].shape == (2, 200, 4)
        assert np.all(np.isfinite(ef["replica_step_size"]))
        # the machines at each scan are a permutation of 0..3
        np.testing.assert_array_equal(np.sort(ef["machine"], -1),
                                      np.broadcast_to(np.arange(4), (2, 200, 4)))
    assert not np.allclose(ref[0], ref[1])


def test_arviz_datatree_pickle_and_second_run(chain_method_runs):
    mcmc = chain_method_runs["vectorized"]
    tree = arviz.from_numpyro(mcmc)
    ss = tree["sample_stats"]
    for name in ("swap_accept_prob", "replica_step_size", "barrier", "round_trips", "betas"):
        assert name in ss, name
    assert ss["swap_accept_prob"].shape == (2, 200, 3)
    kernel = mcmc.sampler
    assert "Lambda" in kernel.get_diagnostics_str(jax.tree.map(lambda v: v[0], mcmc.last_state))
    sample_fn = kernel._sample_fn
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=NRPT_FIELDS)
    assert kernel._sample_fn is sample_fn  # continued, not re-initialised
    np.testing.assert_array_equal(mcmc.last_state.i, 100 + 2 * 200)
    clone = pickle.loads(pickle.dumps(mcmc))
    assert clone.sampler._sample_fn is None and clone.sampler.model is None
    np.testing.assert_array_equal(clone.get_samples(), mcmc.get_samples())


def test_explorer_states_hold_the_annealed_potential_after_swaps(chain_method_runs):
    # U_1 and its gradient are derived from the explorer's U_beta (no re-evaluation after
    # the swap): every replica's cached potential and gradient must still be exactly the
    # annealed potential (1 - beta) U_0 + beta U_1 at its position
    mcmc = chain_method_runs["vectorized"]
    kernel, st = mcmc.sampler, mcmc.last_state
    ef = mcmc.get_extra_fields(group_by_chain=True)
    assert np.any(np.diff(ef["machine"], axis=1) != 0)  # swaps happened

    def annealed(zf, beta, reference):
        u0, u1 = kernel._potentials(zf, reference, (), {})
        return (1.0 - beta) * u0 + beta * u1

    for c in range(2):
        ref = jax.tree.map(lambda v, c=c: v[c], st.reference)
        zf, betas = st.explorer.z["z"][c], st.betas[c]
        u, g = jax.vmap(jax.value_and_grad(annealed), (0, 0, None))(zf, betas, ref)
        np.testing.assert_allclose(st.explorer.potential_energy[c], u, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(st.explorer.z_grad["z"][c], g, rtol=1e-10, atol=1e-12)


def test_target_is_evaluated_once_per_replica_per_scan_plus_one():
    # A counting potential: the explorers evaluate U_1 once per replica per move; after the
    # swaps only the reference replica's fresh draw needs U_1 and its gradient (it was
    # N more evaluations per scan before: one per replica).
    count = [0]

    def tick(z):
        count[0] += int(np.prod(np.shape(z)[:-1], dtype=int))

    def potential(z):
        jax.debug.callback(tick, z)
        return _gauss_potential(z)

    n = 4

    def evaluations(num_samples):
        count[0] = 0
        mcmc = MCMC(NRPT(potential_fn=potential, num_replicas=n), num_warmup=10,
                    num_samples=num_samples, progress_bar=False)
        mcmc.run(jax.random.key(0), init_params=jnp.zeros(2))
        jax.effects_barrier()
        return count[0]

    assert evaluations(40) - evaluations(20) == 20 * (n + 1)


def test_a_stuck_explorer_is_named_once_after_warmup():
    stuck = functools.partial(ebm.MALA, step_size=50.0, adapt_step_size=False)
    mcmc = MCMC(NRPT(potential_fn=_gauss_potential, num_replicas=4, explorer=stuck),
                num_warmup=20, num_samples=10, progress_bar=False)
    with pytest.warns(ebm.NumpyroEBMWarning) as record:
        mcmc.run(jax.random.key(0), init_params=jnp.zeros(2))
        jax.effects_barrier()
    assert len(record) == 1, [str(w.message) for w in record]
    msg = str(record[0].message)
    assert "explorer stopped moving in replica 1 (beta=0.333, acceptance" in msg
    assert "replica 0 " not in msg  # the Gaussian reference replica is drawn exactly
    # the adapted default explorer moves: no warning (the suite turns it into an error)
    mcmc = MCMC(NRPT(potential_fn=_gauss_potential, num_replicas=4), num_warmup=20,
                num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2))
    jax.effects_barrier()


def test_mala_explorer_gaussian_moments_within_mcse():
    def model():
        numpyro.sample("x", ebm.EnergyDistribution(
            *ebm.quadratic_energy([1.0, -1.0], covariance=[[1.0, 0.6], [0.6, 2.0]]),
            event_shape=(2,)))

    mcmc = MCMC(NRPT(model, num_replicas=4, explore_steps=2), num_warmup=300,
                num_samples=2000, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(4))
    assert_moments_within_mcse(mcmc.get_samples(group_by_chain=True)["x"], [1.0, -1.0],
                               [[1.0, 0.6], [0.6, 2.0]])


@pytest.mark.slow
@pytest.mark.parametrize("explorer", [HMC, functools.partial(NUTS, max_tree_depth=4)])
def test_numpyro_hmc_and_nuts_explore_a_constrained_site(explorer):
    # a positive site: replicas move on the unconstrained (log) scale, samples come back
    # constrained; Gamma(3, 2) has mean 1.5 and variance 0.75
    def model():
        numpyro.sample("s", dist.Gamma(3.0, 2.0))

    mcmc = MCMC(NRPT(model, explorer=explorer, num_replicas=3), num_warmup=200,
                num_samples=1500, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(5), extra_fields=("replica_step_size",))
    s = np.asarray(mcmc.get_samples(group_by_chain=True)["s"])
    assert np.all(s > 0)
    assert_moments_within_mcse(s, 1.5, 0.75)
    assert np.all(np.isfinite(mcmc.get_extra_fields()["replica_step_size"]))


def _ratio_energy(params, x, theta):
    """A 'learned' log ratio that is exactly the N(theta, 1) log likelihood (+ const)."""
    return 0.5 * jnp.sum((x - theta) ** 2)


def sbi_model(x_obs):
    theta = numpyro.sample("theta", dist.Normal(0.0, 2.0).expand([1]).to_event(1))
    ebm.ratio_factor("lik", _ratio_energy, {}, x_obs, theta)


def test_prior_reference_with_a_likelihood_factor_gives_the_conjugate_posterior():
    x_obs = jnp.array([[1.2], [0.4], [2.0]])
    n, prior_var = 3, 4.0
    post_var = 1.0 / (1.0 / prior_var + n)
    post_mean = post_var * float(x_obs.sum())
    mcmc = MCMC(NRPT(sbi_model, reference="prior", num_replicas=4), num_warmup=300,
                num_samples=2000, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(6), x_obs, extra_fields=("swap_accept_prob",))
    assert_moments_within_mcse(mcmc.get_samples(group_by_chain=True)["theta"], [post_mean],
                               [[post_var]])
    assert np.all(np.asarray(mcmc.get_extra_fields()["swap_accept_prob"]) > 0)


def test_updated_schedule_equalises_cumulative_barrier():
    betas = jnp.linspace(0.0, 1.0, 5)
    rej = jnp.array([0.8, 0.1, 0.05, 0.05])
    new = _updated_schedule(betas, rej)
    lam_old = np.concatenate([[0.0], np.cumsum(rej)])
    # piecewise-linear Lambda(beta) at the new betas is k Lambda / 4
    np.testing.assert_allclose(np.interp(new, betas, lam_old), np.arange(5) * 1.0 / 4,
                               atol=1e-12)
    assert new[0] == 0 and new[-1] == 1 and new[1] < betas[1]  # crowded where it is hard
    np.testing.assert_array_equal(_updated_schedule(betas, jnp.zeros(4)), betas)


def test_deo_permutation_and_round_ends_and_bound():
    perm = _deo_permutation(jnp.array([True, False, False, False, True]))
    np.testing.assert_array_equal(perm, [1, 0, 2, 3, 5, 4])
    np.testing.assert_array_equal(_round_ends(100), [8, 24, 100])
    np.testing.assert_array_equal(_round_ends(5), [5])
    assert _round_ends(0).size == 0
    assert round_trip_bound(0.0) == 0.5 and round_trip_bound(1.0) == 0.25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_replicas=1), "num_replicas must be >= 2"),
        (dict(num_replicas=2.5), "num_replicas must be a positive int"),
        (dict(explore_steps=0), "explore_steps must be a positive int"),
        (dict(reference="flat"), "reference must be one of"),
        (dict(reference_scale=0.0), "reference_scale must be finite"),
        (dict(reference_loc=np.nan), "reference_loc must be finite"),
        (dict(betas=[0.0, 0.6, 0.5, 1.0], num_replicas=4), "betas must be strictly"),
        (dict(betas=[0.0, 1.0]), r"shape \(8,\)"),
        (dict(explorer="MALA"), "explorer must be a callable"),
        (dict(reference="prior", adapt_reference=True), "adapt_reference=True"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        NRPT(mixture_model, **kwargs)


def test_bad_setups_raise_before_sampling():
    with pytest.raises(ValueError, match="exactly one of model= or potential_fn="):
        NRPT()
    with pytest.raises(ValueError, match="reference='prior' needs a model"):
        NRPT(potential_fn=_gauss_potential, reference="prior")
    mcmc = MCMC(NRPT(potential_fn=_gauss_potential), num_warmup=2, num_samples=2,
                progress_bar=False)
    with pytest.raises(ValueError, match="needs init_params"):
        mcmc.run(jax.random.key(0))
    mcmc = MCMC(NRPT(mixture_model, reference="prior"), num_warmup=2, num_samples=2,
                progress_bar=False)
    with pytest.raises(ValueError, match="observed sites or factors"):
        mcmc.run(jax.random.key(0))
    mcmc = MCMC(NRPT(mixture_model, explorer=lambda m: object()), num_warmup=2,
                num_samples=2, progress_bar=False)
    with pytest.raises(TypeError, match="must return a numpyro MCMCKernel"):
        mcmc.run(jax.random.key(0))


def test_doubly_intractable_model_is_refused():
    def model():
        loc = numpyro.sample("loc", dist.Normal(0.0, 1.0))
        f, p = ebm.quadratic_energy(jnp.zeros(1), jnp.eye(1))
        numpyro.sample("x", ebm.EnergyDistribution(f, {**p, "mean": loc * jnp.ones(1)},
                                                   event_shape=(1,)), obs=jnp.ones((1,)))

    mcmc = MCMC(NRPT(model), num_warmup=2, num_samples=2, progress_bar=False)
    with pytest.raises(ebm.DoublyIntractableError):
        mcmc.run(jax.random.key(0))
