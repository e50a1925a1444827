"""C2ST (SBI benchmark protocol): chance level on equal distributions, Bayes accuracy on
shifted Gaussians, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats

from numpyro_ebm.diagnostics import C2STResult, c2st


def _gaussians(seed, n, shift=0.0, dim=2):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    y[:, 0] += shift
    return x, y


def test_c2st_equal_distributions_at_chance():
    x, y = _gaussians(0, 300)
    res = c2st(x, y, seed=0)
    assert isinstance(res, C2STResult)
    assert res.fold_accuracies.shape == (5,)
    np.testing.assert_allclose(res.accuracy, res.fold_accuracies.mean())
    assert abs(res.accuracy - 0.5) < 4 * res.stderr
    assert res.p_value > 0.01
    assert res.num_reference == res.num_samples == 300


def test_c2st_shift_reaches_bayes_accuracy():
    # N(0, I) vs N(delta e_1, I), equal sizes: the Bayes classifier's accuracy is Phi(delta/2)
    delta = 1.0
    x, y = _gaussians(1, 500, shift=delta)
    res = c2st(x, y, seed=1)
    assert abs(res.accuracy - stats.norm.cdf(delta / 2)) < 4 * res.stderr, res
    assert res.p_value < 1e-10


def test_c2st_z_scores_with_the_reference():
    # an affine change of units applied to both sets leaves the result unchanged
    x, y = _gaussians(2, 300, shift=1.0)
    a = c2st(x, y, seed=3)
    b = c2st(100.0 * x + 7.0, 100.0 * y + 7.0, seed=3)
    np.testing.assert_allclose(a.fold_accuracies, b.fold_accuracies)


@pytest.mark.slow
def test_c2st_null_rejection_rate():
    # 12 equal-distribution pairs: rejections at 5% as Binomial(12, <= 0.05) allows
    # (P(>= 4) = 0.002), mean accuracy within 4 MCSE of chance
    res = [c2st(*_gaussians(s, 300), seed=s) for s in range(12)]
    p = np.array([r.p_value for r in res])
    acc = np.array([r.accuracy for r in res])
    assert np.sum(p < 0.05) <= 3, p
    assert abs(acc.mean() - 0.5) < 4 * acc.std(ddof=1) / np.sqrt(acc.size), acc


def test_c2st_bad_inputs():
    x, y = _gaussians(0, 20)
    with pytest.raises(ValueError, match=r"reference must have shape \(n, dim\)"):
        c2st(x[:, 0], y)
    with pytest.raises(ValueError, match="samples must have dim 2"):
        c2st(x, y[:, :1])
    with pytest.raises(ValueError, match="samples contains 1 non-finite"):
        c2st(x, np.where(np.arange(40).reshape(20, 2) == 5, np.nan, y))
    with pytest.raises(ValueError, match="n_folds must be in"):
        c2st(x, y, n_folds=1)
    with pytest.raises(ValueError, match="n_folds must be a positive int"):
        c2st(x, y, n_folds=2.5)
    with pytest.raises(ValueError, match=r"zero spread in coordinate\(s\) \[1\]"):
        c2st(np.c_[x[:, :1], np.ones(20)], y)


def test_c2st_without_scikit_learn_names_the_extra(monkeypatch):
    x, y = _gaussians(0, 20)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    monkeypatch.setitem(sys.modules, "sklearn.model_selection", None)
    with pytest.raises(ImportError, match=r"numpyro-ebm\[sbi\]"):
        c2st(x, y)
