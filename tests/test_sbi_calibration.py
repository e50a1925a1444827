"""Expected coverage / SBC of an amortized ratio: an honest ratio passes, a planted
overconfident one (logits doubled) is flagged (Hermans et al. 2022)."""

import jax
import numpy as np
import pytest

from numpyro_ebm.sbi import expected_coverage, get_task

TASK = get_task("gaussian_linear")
THETA, X = TASK.sample_joint(jax.random.key(11), 300)


def _true_log_ratio(scale):
    # log p(x | theta) is the true log ratio up to log p(x), a function of x alone
    return lambda x, theta: scale * TASK.log_likelihood(theta, x)


def test_honest_ratio_is_calibrated_and_doubled_logits_are_flagged():
    honest = expected_coverage(_true_log_ratio(1.0), TASK.prior, THETA, X,
                               key=jax.random.key(12), num_prior_samples=5000)
    assert not honest.overconfident and not honest.conservative
    assert np.all(np.abs(honest.z) < 3.0)
    # SBC ranks of an exact posterior are uniform: mean 1/2 within 5 SE (var 1/12)
    assert np.all(np.abs(honest.marginal_ranks.mean(0) - 0.5) < 5 * np.sqrt(1 / 12 / 300))
    doubled = expected_coverage(_true_log_ratio(2.0), TASK.prior, THETA, X,
                                key=jax.random.key(12), num_prior_samples=5000)
    assert doubled.overconfident and not doubled.conservative
    assert np.all(doubled.coverage[3:] < doubled.levels[3:] - 0.15)
    # halved logits: a too-wide posterior is conservative, not overconfident
    halved = expected_coverage(_true_log_ratio(0.5), TASK.prior, THETA, X,
                               key=jax.random.key(12), num_prior_samples=5000)
    assert halved.conservative and not halved.overconfident


def test_expected_coverage_rejects_bad_arguments():
    with pytest.raises(ValueError, match="one row per held-out simulation"):
        expected_coverage(_true_log_ratio(1.0), TASK.prior, THETA, X[:10],
                          key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"levels must be a non-empty sequence in \(0, 1\)"):
        expected_coverage(_true_log_ratio(1.0), TASK.prior, THETA, X, key=jax.random.key(0),
                          levels=(0.5, 1.0))
    with pytest.raises(TypeError, match="log_ratio must be a LearnedRatio or a callable"):
        expected_coverage("ratio", TASK.prior, THETA, X, key=jax.random.key(0))
    with pytest.raises(ValueError, match="non-finite"):
        expected_coverage(_true_log_ratio(1.0), TASK.prior, THETA, X.at[0, 0].set(np.nan),
                          key=jax.random.key(0))


def _learned_posterior_moments(ratio, x_obs, n=200_000):
    """Mean, sd and their standard errors of the learned posterior p(theta) r(x_obs, theta)
    by self-normalised importance sampling from N(x/2, (1.5 sd)^2 I) (exact up to IS error)."""
    import jax.numpy as jnp
    import numpyro.distributions as dist

    q = dist.Normal(jnp.asarray(x_obs) / 2, 1.5 * np.sqrt(0.05)).to_event(1)
    t = q.sample(jax.random.key(5), (n,))
    log_r = jax.lax.map(lambda th: -ratio.energy_fn(ratio.params, x_obs, th), t,
                        batch_size=8192)
    w = np.asarray(jax.nn.softmax(TASK.prior.log_prob(t) + log_r - q.log_prob(t)), np.float64)
    t = np.asarray(t, np.float64)
    mean = w @ t
    sd = np.sqrt(w @ (t - mean) ** 2)
    ess = 1.0 / np.sum(w**2)
    return mean, sd, sd / np.sqrt(ess), sd / np.sqrt(2 * ess)


@pytest.mark.slow
def test_gaussian_linear_posterior_moments_at_ten_thousand_simulations():
    # known answer: N(x / 2, 0.05 I). A ratio fit on 10^4 simulations, SIR-started NUTS
    # chains (40 x 50 draws). Two separate checks, because their errors differ fivefold:
    # 1. the SAMPLER, with no allowance: NUTS draws match the learned posterior's own moments
    #    (importance sampling, 200,000 draws) within 4.5 standard errors (ArviZ MCSE of
    #    the chains combined with the IS error).
    # 2. the ESTIMATOR against the closed form, with a stated allowance. Measured (issue 11,
    #    x_obs = observation 0, the learned posterior by IS, so no sampler error): the ratio
    #    fit on 10^4 simulations is off by 0.12-0.28 posterior sd in its worst mean
    #    coordinate over six fits (relu 64x64 / 128x128 / 128^3, swish 64x64 / 128x128,
    #    5-30 epochs of patience, float32 and float64; this one: 0.235 sd), and relu nets
    #    are overconfident (sds 0.90-0.94x; swish 0.96-1.03x). Larger nets and longer
    #    training do not shrink it: it is the statistical error of a ratio learned from
    #    9,000 training pairs (NRE's published C2ST at 10^4 is 0.56, not 0.50), not the
    #    sampler (check 1) nor early stopping. The chains' MCSE is 0.02 sd, so a
    #    closed-form check within 4.5 MCSE alone fails by 5-14 MCSE (measured); the
    #    allowance is the measured worst case: 0.3 sd for means and 10% for sds. A broken
    #    standardisation or likelihood is off by several sd.
    import arviz as az

    from numpyro_ebm.sbi import fit_ratio, sample_posterior

    theta, x = TASK.sample_joint(jax.random.key(21), 10_000)
    ratio = fit_ratio(theta, x, key=jax.random.key(22), hidden=(64, 64), activation="swish",
                      num_epochs=100, batch_size=128, patience=10)
    _, x_obs = TASK.observation(0)
    mcmc = sample_posterior(ratio, TASK.prior, x_obs, key=jax.random.key(23),
                            num_samples=2000, num_chains=40, num_warmup=150)
    draws = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"], np.float64)
    assert np.all(np.asarray(az.ess(draws, method="bulk")) > 400)
    # 1. sampler vs the learned posterior
    is_mean, is_sd, is_mean_se, is_sd_se = _learned_posterior_moments(ratio, x_obs)
    mcse = np.asarray(az.mcse(draws, method="mean"))
    sd_mcse = np.asarray(az.mcse(draws, method="sd"))
    z_mean = (draws.mean((0, 1)) - is_mean) / np.hypot(mcse, is_mean_se)
    z_sd = (draws.std((0, 1)) - is_sd) / np.hypot(sd_mcse, is_sd_se)
    assert np.all(np.abs(z_mean) < 4.5), z_mean
    assert np.all(np.abs(z_sd) < 4.5), z_sd
    # 2. the learned posterior vs the closed form
    mean, sd = np.asarray(x_obs) / 2, np.sqrt(0.05)
    assert np.all(np.abs(is_mean - mean) < 0.3 * sd + 4.5 * is_mean_se), (is_mean - mean) / sd
    assert np.all(np.abs(is_sd / sd - 1) < 0.10 + 4.5 * is_sd_se / sd), is_sd / sd
