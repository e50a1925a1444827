"""Classifier two-sample test (C2ST) with the SBI benchmark's protocol.

A classifier is trained to tell ``samples`` from ``reference``; its held-out accuracy is
0.5 when the two are indistinguishable and 1.0 when they are perfectly separated
(Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests"). The protocol is that of
the SBI benchmark (Lueckmann et al. 2021, ``sbibm.metrics.c2st``): both sets z-scored with
the *reference's* mean and standard deviation; scikit-learn's ``MLPClassifier`` with two
hidden layers of ``10 * dim`` ReLU units, Adam, ``max_iter=10000``; shuffled ``n_folds``-fold
cross-validation; the accuracy is the mean over folds.

Needs scikit-learn (optional extra ``sbi``: ``pip install 'numpyro-ebm[sbi]'``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from ..checks import positive_int
from .stats import points, result_repr

__all__ = ["C2STResult", "c2st"]


class C2STResult(NamedTuple):
    """Result of :func:`c2st`.

    Attributes
    ----------
    accuracy : mean held-out accuracy over the folds (0.5: indistinguishable).
    fold_accuracies : ``(n_folds,)`` held-out accuracy of each fold.
    stderr : binomial standard error of the pooled held-out accuracy,
        ``sqrt(acc (1 - acc) / n)`` with ``n`` the total number of points.
    p_value : one-sided binomial p-value of ``H0: the sets are equal in distribution``,
        ``P(Binomial(n, p0) >= correct)`` with ``p0`` the majority fraction (0.5 for equal
        sizes). The held-out predictions of cross-validation are slightly anti-correlated
        with the training folds' labels under H0, which makes this test conservative.
    num_reference : number of reference points.
    num_samples : number of sample points.
    """

    accuracy: float
    fold_accuracies: np.ndarray
    stderr: float
    p_value: float
    num_reference: int
    num_samples: int

    __repr__ = result_repr


def _sklearn():
    try:
        from sklearn.model_selection import KFold, cross_val_score
        from sklearn.neural_network import MLPClassifier
    except ImportError as err:  # pragma: no cover - exercised only without scikit-learn
        raise ImportError(
            "c2st needs scikit-learn; install the optional extra: "
            "pip install 'numpyro-ebm[sbi]'"
        ) from err
    return KFold, cross_val_score, MLPClassifier


def c2st(reference: Any, samples: Any, *, n_folds: int = 5, seed: int = 0) -> C2STResult:
    """Classifier two-sample test: held-out accuracy of an MLP telling the sets apart.

    Parameters
    ----------
    reference : (n_ref, dim) array
        Draws from the reference distribution (e.g. a reference posterior); it sets the
        z-scoring.
    samples : (n, dim) array
        Draws to judge. Use as many as ``reference`` (the SBI benchmark uses 10,000 each):
        with unequal sizes the chance level is the majority fraction, not 0.5.
    n_folds : int
        Folds of the shuffled cross-validation (>= 2).
    seed : int
        Seeds the fold split and the classifier's initialisation.

    Returns
    -------
    C2STResult
        ``accuracy`` (mean over folds), per-fold accuracies, a standard error and a
        binomial p-value.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, a reference coordinate with zero spread, or too
        few points for ``n_folds``.
    ImportError
        scikit-learn is not installed (extra ``sbi``).
    """
    x = points(reference, "reference")
    y = points(samples, "samples")
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"samples must have dim {x.shape[1]} like reference; got shape "
                         f"{y.shape}")
    folds = positive_int(n_folds, "n_folds")
    n = x.shape[0] + y.shape[0]
    if folds < 2 or folds > n:
        raise ValueError(f"n_folds must be in [2, {n}] (the number of points); got {n_folds}")
    mean, sd = x.mean(0), x.std(0, ddof=1)
    if np.any(sd <= 0):
        raise ValueError(f"reference has zero spread in coordinate(s) "
                         f"{np.flatnonzero(sd <= 0).tolist()}; cannot z-score")
    KFold, cross_val_score, MLPClassifier = _sklearn()
    data = np.concatenate([(x - mean) / sd, (y - mean) / sd])
    target = np.concatenate([np.zeros(x.shape[0]), np.ones(y.shape[0])])
    dim = x.shape[1]
    clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim),
                        max_iter=10000, solver="adam", random_state=int(seed))
    split = KFold(n_splits=folds, shuffle=True, random_state=int(seed))
    scores = np.asarray(cross_val_score(clf, data, target, cv=split, scoring="accuracy"))
    acc = float(scores.mean())
    # every point is held out exactly once: count its correct predictions
    sizes = np.array([len(test) for _, test in split.split(data)])
    correct = int(round(float(np.sum(scores * sizes))))
    p0 = max(x.shape[0], y.shape[0]) / n
    p_value = float(stats.binom.sf(correct - 1, n, p0))
    pooled = correct / n
    stderr = float(np.sqrt(pooled * (1.0 - pooled) / n))
    return C2STResult(acc, scores, stderr, p_value, x.shape[0], y.shape[0])
