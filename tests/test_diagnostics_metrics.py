"""Sample-quality metrics (MMD^2, Frechet distance, Fisher divergence) on pairs of known
distributions: closed forms, null behaviour (rejection rates), power on shifts."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_ebm.diagnostics import (
    C2STResult,
    KSDResult,
    fisher_divergence,
    frechet_distance,
    median_bandwidth,
    mmd,
)


def _normal(seed, n, dim=2, shift=0.0, scale=1.0):
    z = np.random.default_rng(seed).normal(size=(n, dim)) * scale
    z[:, 0] += shift
    return z


def _rate_ok(p_values, level=0.05):
    """Rejection rate at ``level`` within 4 binomial MCSE of ``level``."""
    rate = np.mean(np.asarray(p_values) < level)
    mcse = np.sqrt(level * (1 - level) / len(p_values))
    return abs(rate - level) < 4 * mcse, rate


# ------------------------------------------------------------------------------ MMD
def _mmd2_gaussians(mu, sigma, dim):
    # N(0, I) vs N(mu, I), Gaussian kernel: E k = det(I + C / s^2)^-1/2 exp(-d^T (s^2 + C)^-1 d / 2)
    kxx = (1 + 2 / sigma**2) ** (-dim / 2)
    kxy = kxx * np.exp(-0.5 * np.sum(np.square(mu)) / (sigma**2 + 2))
    return 2 * kxx - 2 * kxy


def test_mmd_unbiased_against_closed_form():
    mu, sigma = np.array([0.5, 0.0]), 1.0
    want = _mmd2_gaussians(mu, sigma, 2)
    est = np.array([mmd(_normal(2 * s, 100), _normal(2 * s + 1, 100, shift=0.5),
                        bandwidth=sigma, num_permutations=0).mmd_squared for s in range(60)])
    mcse = est.std(ddof=1) / np.sqrt(est.size)
    assert abs(est.mean() - want) < 4 * mcse, (est.mean(), want, mcse)


def _sd_ratio(shift, seeds=200, n=100):
    """rms of the jackknife SE over the empirical sd of MMD^2_u, and the ratio's MCSE
    (the sd of an sd estimated from R draws is about sd / sqrt(2 (R - 1)))."""
    res = [mmd(_normal(2 * s, n), _normal(2 * s + 1, n, shift=shift), bandwidth=1.0,
               num_permutations=0) for s in range(seeds)]
    est = np.array([r.mmd_squared for r in res])
    se = np.array([r.stderr for r in res])
    return np.sqrt(np.mean(se**2)) / est.std(ddof=1), 1 / np.sqrt(2 * (seeds - 1))


def test_mmd_stderr_matches_the_sampling_sd():
    # shift 1 (sd units), 100 + 100 points, 200 seeds: measured ratio 1.03
    ratio, mcse = _sd_ratio(1.0)
    assert abs(ratio - 1) < 4 * mcse, (ratio, mcse)
    # equal distributions: the estimate's sd shrinks like 1/n and the jackknife is
    # conservative (measured ratio 1.42), as documented
    ratio, mcse = _sd_ratio(0.0)
    assert ratio > 1 + 2 * mcse, (ratio, mcse)
    assert np.isnan(mmd(_normal(0, 2), _normal(1, 5), bandwidth=1.0).stderr)


@pytest.mark.slow
def test_mmd_permutation_test_size():
    null = [mmd(_normal(2 * s, 40), _normal(2 * s + 1, 40), num_permutations=199,
                seed=s).p_value for s in range(300)]
    ok, rate = _rate_ok(null)
    assert ok, rate


def test_mmd_detects_a_shift():
    shifted = mmd(_normal(0, 200), _normal(1, 200, shift=0.5))
    assert shifted.p_value < 0.01 and shifted.mmd_squared > 0
    assert shifted.permutations.shape == (1000,)
    assert (shifted.num_x, shifted.num_y) == (200, 200)


def test_result_reprs_are_concise():
    x, y = _normal(0, 200), _normal(1, 150, shift=0.5)
    res = mmd(x, y)
    text = repr(res)
    assert text == str(res) and len(text) < 200, text
    for part in ("MMDResult(", f"mmd_squared={res.mmd_squared:.4g}",
                 f"stderr={res.stderr:.4g}", f"p_value={res.p_value:.4g}",
                 "permutations=<array (1000,)>", "num_x=200", "num_y=150"):
        assert part in text, (part, text)
    assert "array([" not in text and res.permutations.shape == (1000,)
    fd = frechet_distance(x, y, num_bootstrap=50, num_permutations=0)
    text = repr(fd)
    assert len(text) < 200 and "bootstrap=<array (50,)>" in text, text
    assert "num_reference=200" in text and "p_value=nan" in text, text
    assert fd.bootstrap.shape == (50,) and (fd.num_reference, fd.num_samples) == (200, 150)
    fisher = repr(fisher_divergence(x, -x, -x))
    assert fisher == "FisherResult(divergence=0, stderr=0, num_samples=200)", fisher
    c2 = C2STResult(0.52, np.full(5, 0.52), 0.01, 0.3, 1000, 1000)
    assert repr(c2) == ("C2STResult(accuracy=0.52, fold_accuracies=<array (5,)>, "
                        "stderr=0.01, p_value=0.3, num_reference=1000, num_samples=1000)")
    ksd = KSDResult(0.1, 0.5, 100, 1, 1000, np.zeros(1000))
    assert "bootstrap=<array (1000,)>" in repr(ksd) and len(repr(ksd)) < 200


def test_median_bandwidth_rule():
    x, y = _normal(0, 300, dim=3), _normal(1, 300, dim=3)
    # |x - x'|^2 ~ 2 chi^2_3: the median distance is sqrt(2 * median(chi^2_3)) = 1.53
    assert median_bandwidth(x, y) == pytest.approx(np.sqrt(2 * 2.366), rel=0.05)
    assert mmd(x, y, num_permutations=0).bandwidth == median_bandwidth(x, y)
    # a fixed bandwidth is used as given
    assert mmd(x, y, bandwidth=0.7, num_permutations=0).bandwidth == 0.7


def test_mmd_bad_inputs():
    x = _normal(0, 10)
    with pytest.raises(ValueError, match=r"x must have shape \(n, dim\)"):
        mmd(x[:, 0], x)
    with pytest.raises(ValueError, match="y must have dim 2 like x"):
        mmd(x, x[:, :1])
    with pytest.raises(ValueError, match="bandwidth must be 'median' or a float"):
        mmd(x, x, bandwidth="silverman")
    with pytest.raises(ValueError, match="bandwidth must be finite and > 0"):
        mmd(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="num_permutations must be an int >= 0"):
        mmd(x, x, num_permutations=-1)
    with pytest.raises(ValueError, match="median bandwidth is 0"):
        mmd(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="y contains 1 non-finite"):
        mmd(x, np.where(np.arange(20).reshape(10, 2) == 3, np.inf, x))


# -------------------------------------------------------------------------- Frechet
def test_frechet_closed_form_and_error_bar():
    # N(0, I) vs N(mu, diag(s^2)): FD = |mu|^2 + sum (1 - s_i)^2
    scale = np.array([1.0, 1.5])
    want = 0.8**2 + 0.5**2
    res = frechet_distance(_normal(0, 4000), _normal(1, 4000, shift=0.8, scale=scale), seed=0)
    assert abs(res.distance - want) < 4 * res.stderr, (res.distance, want, res.stderr)
    assert res.p_value < 0.01
    assert res.bootstrap.shape == (200,)


def test_frechet_permutation_test_size():
    null = [frechet_distance(_normal(2 * s, 40), _normal(2 * s + 1, 40), num_bootstrap=0,
                             num_permutations=99, seed=s).p_value for s in range(300)]
    ok, rate = _rate_ok(null)
    assert ok, rate


def test_frechet_equal_sets_is_zero():
    x = _normal(0, 50, dim=3)
    res = frechet_distance(x, x.copy(), num_bootstrap=0, num_permutations=0)
    assert res.distance == pytest.approx(0.0, abs=1e-10)
    assert np.isnan(res.stderr) and np.isnan(res.p_value)
    with pytest.raises(ValueError, match="samples must have dim 3 like reference"):
        frechet_distance(x, x[:, :2])


# -------------------------------------------------------------------------- Fisher
def test_fisher_divergence_closed_form():
    # p = N(0, I_d), q = N(0, s^2 I_d): |s_p - s_q|^2 = c^2 |x|^2, c = 1/s^2 - 1; F = d c^2
    s, d = 1.5, 3
    c = 1 / s**2 - 1
    x = _normal(0, 2000, dim=d)
    res = fisher_divergence(x, lambda z: -z / s**2, lambda z: -z)
    assert abs(res.divergence - d * c**2) < 4 * res.stderr, res
    assert res.num_samples == 2000
    # equal scores: exactly zero; a shift mu: exactly |mu|^2 (no noise)
    assert fisher_divergence(x, lambda z: -z, lambda z: -z).divergence == 0.0
    mu = jnp.array([0.3, 0.0, -0.4])
    res = fisher_divergence(x, lambda z: -(z - mu), lambda z: -z)
    assert res.divergence == pytest.approx(0.25) and res.stderr == pytest.approx(0, abs=1e-12)
    # precomputed scores give the same answer
    same = fisher_divergence(x, -(x - np.asarray(mu)), -x)
    assert same.divergence == pytest.approx(0.25)


def test_fisher_divergence_stderr_is_honest_on_chains():
    # AR(1) chains (rho = 0.9) with N(0, 1) marginals: the MCSE z-scores of the estimate
    # against the truth are ~N(0, 1); the i.i.d. formula's would be ~sqrt(19) too wide
    s, rho = 1.5, 0.9
    c2 = (1 / s**2 - 1) ** 2
    z = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        x = np.empty((2, 2000, 1))
        x[:, 0] = rng.normal(size=(2, 1))
        e = rng.normal(size=(2, 2000, 1)) * np.sqrt(1 - rho**2)
        for t in range(1, 2000):
            x[:, t] = rho * x[:, t - 1] + e[:, t]
        res = fisher_divergence(x, -x / s**2, -x)
        z.append((res.divergence - c2) / res.stderr)
    z = np.array(z)
    # sd of 40 N(0, 1) draws: within [0.6, 1.5] with probability > 0.999
    assert 0.6 < z.std(ddof=1) < 1.5, z.std(ddof=1)


def test_fisher_divergence_bad_inputs():
    x = _normal(0, 10)
    with pytest.raises(ValueError, match="model_score must map one point"):
        fisher_divergence(x, lambda z: z[0], lambda z: -z)
    with pytest.raises(ValueError, match="true_score must be a callable or an array"):
        fisher_divergence(x, lambda z: -z, np.zeros(3))
    with pytest.raises(ValueError, match="model_score contains"):
        fisher_divergence(x, lambda z: z / 0.0 * 0.0, lambda z: -z)
    with pytest.raises(ValueError, match="at least 4 draws per chain"):
        fisher_divergence(np.zeros((2, 3, 2)), lambda z: -z, lambda z: -z)
