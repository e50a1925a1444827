"""Sample-quality metrics: MMD^2 with a permutation test, Frechet distance, Fisher divergence.

Each metric comes with a calibrated test or an error bar:

- :func:`mmd`: unbiased ``MMD^2_u`` with a Gaussian kernel (median heuristic or fixed
  bandwidth) and a permutation p-value (Gretton et al. 2012, "A kernel two-sample test").
- :func:`frechet_distance`: the Frechet (2-Wasserstein) distance between Gaussians fitted
  to two sets (Dowson & Landau 1982; the "FID" of Heusel et al. 2017 on given features),
  with a bootstrap standard error and a permutation p-value.
- :func:`fisher_divergence`: ``E_p |grad log p - grad log q|^2`` when both scores are known,
  with a standard error (ArviZ MCSE for chains) (Hyvarinen 2005; Lyu 2009).

All computations are in float64 NumPy; inputs are ``(n, dim)`` arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from arviz_stats import mcse

from ..checks import all_finite, nonnegative_int, positive_float
from .stats import points, result_repr

__all__ = ["MMDResult", "mmd", "median_bandwidth", "FrechetResult", "frechet_distance",
           "FisherResult", "fisher_divergence"]


def _pair(x: Any, y: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = points(x, names[0]), points(y, names[1])
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"{names[1]} must have dim {a.shape[1]} like {names[0]}; got shape "
                         f"{b.shape}")
    return a, b


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng((int(seed), tag))  # not the stream of numpy seed `seed`


def _permutation_p(observed: float, replicates: np.ndarray) -> float:
    """``(1 + #{T_b >= T}) / (1 + B)``: exact level under exchangeability."""
    return float((1.0 + np.sum(replicates >= observed)) / (1.0 + replicates.size))


# ----------------------------------------------------------------------------------- MMD
class MMDResult(NamedTuple):
    """Result of :func:`mmd`; ``print(result)`` shows the scalars and the arrays' shapes.

    Attributes
    ----------
    mmd_squared : unbiased estimate ``MMD^2_u`` (can be slightly negative when equal).
    stderr : delete-one jackknife standard error of ``mmd_squared`` (NaN when ``m < 3`` or
        ``n < 3``). An error bar for a nonzero MMD; use ``p_value`` to test equality.
    p_value : permutation p-value of ``H0: equal distributions``.
    bandwidth : the Gaussian kernel's ``sigma`` used.
    permutations : ``(num_permutations,)`` ``MMD^2_u`` of the label permutations.
    num_x : size ``m`` of the first sample ``x``.
    num_y : size ``n`` of the second sample ``y``.
    """

    mmd_squared: float
    stderr: float
    p_value: float
    bandwidth: float
    permutations: np.ndarray
    num_x: int
    num_y: int

    __repr__ = result_repr


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: Any, y: Any, max_points: int = 1000, seed: int = 0) -> float:
    """Median heuristic: ``sigma`` = median Euclidean distance between distinct points of
    the pooled sample (at most ``max_points`` of them, drawn without replacement).

    Gretton et al. (2012), section 8. Raises ``ValueError`` when all points coincide.
    """
    a, b = _pair(x, y, ("x", "y"))
    z = np.concatenate([a, b])
    if z.shape[0] > max_points:
        z = z[_rng(seed, 0x3D3).choice(z.shape[0], max_points, replace=False)]
    d = np.sqrt(_sq_dists(z, z)[np.triu_indices(z.shape[0], 1)])
    sigma = float(np.median(d))
    if not sigma > 0:
        raise ValueError("median bandwidth is 0 (more than half the pairs of points coincide); "
                         "pass a fixed bandwidth=")
    return sigma


def _mmd_u(k0: np.ndarray, labels: np.ndarray, m: int, n: int) -> np.ndarray:
    """``MMD^2_u`` for each column of 0/1 ``labels`` ``(N, B)`` (1: first sample).

    ``k0`` is the pooled kernel matrix with a zero diagonal, so that ``a^T k0 a`` sums
    ``k(x_i, x_j)`` over ``i != j``.
    """
    a = labels.astype(np.float64)
    b = 1.0 - a
    ka = k0 @ a
    kb = k0 @ b
    xx = np.sum(a * ka, 0) / (m * (m - 1))
    yy = np.sum(b * kb, 0) / (n * (n - 1))
    xy = np.sum(b * ka, 0) / (m * n)
    return xx + yy - 2.0 * xy


def _mmd_jackknife_se(k0: np.ndarray, m: int, n: int) -> float:
    """Two-sample delete-one jackknife standard error of ``MMD^2_u`` (Arvesen 1969):
    ``Var = (m-1)/m sum_i (T_(-i) - T_(.x))^2 + (n-1)/n sum_j (T_(-j) - T_(.y))^2``, where
    ``T_(-i)`` leaves out ``x_i``. Every leave-one-out statistic follows from the kernel
    matrix's row sums, so the cost is ``O((m + n)^2)``."""
    if m < 3 or n < 3:
        return float("nan")
    kxx, kyy, kxy = k0[:m, :m], k0[m:, m:], k0[:m, m:]
    rx, ry = kxx.sum(1), kyy.sum(1)  # row sums (zero diagonals)
    cx, cy = kxy.sum(1), kxy.sum(0)
    sxx, syy, sxy = rx.sum(), ry.sum(), cx.sum()
    t_x = ((sxx - 2.0 * rx) / ((m - 1) * (m - 2)) + syy / (n * (n - 1))
           - 2.0 * (sxy - cx) / ((m - 1) * n))
    t_y = (sxx / (m * (m - 1)) + (syy - 2.0 * ry) / ((n - 1) * (n - 2))
           - 2.0 * (sxy - cy) / (m * (n - 1)))
    var = (m - 1) / m * np.sum((t_x - t_x.mean()) ** 2) + (n - 1) / n * np.sum(
        (t_y - t_y.mean()) ** 2)
    return float(np.sqrt(var))


def mmd(x: Any, y: Any, *, bandwidth: str | float = "median", num_permutations: int = 1000,
        seed: int = 0) -> MMDResult:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel and a permutation test.

    ``MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_ij k(x_i, y_j)``
    with ``k(u, v) = exp(-|u - v|^2 / (2 sigma^2))`` (Gretton et al. 2012, eq. 3). The
    permutation test relabels the pooled points ``num_permutations`` times; its level is
    exact for any sample size. The standard error is the two-sample delete-one jackknife
    (Arvesen 1969), computed from the kernel matrix's row sums: it matches the sampling
    sd of ``MMD^2_u`` when the distributions differ and is conservative (too large) when
    they are equal, where the estimate's sd shrinks like ``1/n`` instead of ``1/sqrt(n)``.

    Parameters
    ----------
    x : (m, dim) array, m >= 2
    y : (n, dim) array, n >= 2
    bandwidth : ``"median"`` or float
        ``"median"``: :func:`median_bandwidth` of the pooled sample; a float: a fixed
        ``sigma > 0`` in the units of the data.
    num_permutations : int
        Label permutations for the p-value (0 skips the test; ``p_value`` is NaN).
    seed : int
        Seeds the permutations (and the median's subsample).

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, a non-positive bandwidth or an unknown rule.

    Notes
    -----
    Memory and time are ``O((m + n)^2)`` and ``O((m + n)^2 num_permutations)``.
    """
    a, b = _pair(x, y, ("x", "y"))
    nperm = nonnegative_int(num_permutations, "num_permutations")
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(f"bandwidth must be 'median' or a float > 0; got {bandwidth!r}")
        sigma = median_bandwidth(a, b, seed=seed)
    else:
        sigma = positive_float(bandwidth, "bandwidth")
    z = np.concatenate([a, b])
    k0 = np.exp(-_sq_dists(z, z) / (2.0 * sigma**2))
    np.fill_diagonal(k0, 0.0)
    m, n = a.shape[0], b.shape[0]
    labels = np.r_[np.ones(m, bool), np.zeros(n, bool)]
    stat = float(_mmd_u(k0, labels[:, None], m, n)[0])
    rng = _rng(seed, 0x33D)
    perms = np.empty(nperm)
    for i0 in range(0, nperm, 256):  # chunks of label permutations: (N, 256) at a time
        cols = np.stack([rng.permutation(labels) for _ in range(min(256, nperm - i0))], 1)
        perms[i0:i0 + cols.shape[1]] = _mmd_u(k0, cols, m, n)
    p = _permutation_p(stat, perms) if nperm else float("nan")
    return MMDResult(stat, _mmd_jackknife_se(k0, m, n), p, float(sigma), perms, m, n)


# ------------------------------------------------------------------------------ Frechet
class FrechetResult(NamedTuple):
    """Result of :func:`frechet_distance`; ``print(result)`` shows the scalars and the
    arrays' shapes.

    Attributes
    ----------
    distance : squared Frechet distance of the fitted Gaussians (>= 0).
    stderr : bootstrap standard error (both sets resampled; NaN without bootstrap).
    p_value : permutation p-value of ``H0: equal distributions`` (NaN without permutations).
    bootstrap : ``(num_bootstrap,)`` bootstrap replicates of the distance.
    num_reference : number of reference points.
    num_samples : number of sample points.
    """

    distance: float
    stderr: float
    p_value: float
    bootstrap: np.ndarray
    num_reference: int
    num_samples: int

    __repr__ = result_repr


def _moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means ``(..., dim)`` and covariances ``(..., dim, dim)`` of point sets ``(..., n, dim)``."""
    mean = z.mean(-2)
    c = z - mean[..., None, :]
    return mean, np.einsum("...ni,...nj->...ij", c, c) / (z.shape[-2] - 1)


def _fd(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """``|m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` (batched over leading dims),
    by symmetric eigensolves: the square root's trace is the sum of the roots of the
    eigenvalues of ``S1^1/2 S2 S1^1/2``."""
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)
    inner = np.linalg.eigvalsh(root @ s2 @ root)
    cross = np.sum(np.sqrt(np.clip(inner, 0.0, None)), -1)
    tr = np.trace(s1, axis1=-2, axis2=-1) + np.trace(s2, axis1=-2, axis2=-1)
    return np.maximum(np.sum((m1 - m2) ** 2, -1) + tr - 2.0 * cross, 0.0)


def _fd_batches(r: np.ndarray, s: np.ndarray, count: int, draw) -> np.ndarray:
    """``count`` replicates ``_fd(draw(...))`` in batches (bounded memory)."""
    out = np.empty(count)
    batch = max(1, 2**22 // ((len(r) + len(s)) * r.shape[1]))
    for i0 in range(0, count, batch):
        rb, sb = draw(min(batch, count - i0))
        out[i0:i0 + len(rb)] = _fd(*_moments(rb), *_moments(sb))
    return out


def frechet_distance(reference: Any, samples: Any, *, num_bootstrap: int = 200,
                     num_permutations: int = 200, seed: int = 0) -> FrechetResult:
    """Squared Frechet distance between Gaussians fitted to two sets of points.

    ``FD = |mu_r - mu_s|^2 + tr(S_r + S_s - 2 (S_r^1/2 S_s S_r^1/2)^1/2)`` with sample means
    and covariances: the 2-Wasserstein distance between the fitted Gaussians (Dowson &
    Landau 1982), i.e. FID (Heusel et al. 2017) when the inputs are network features. It
    compares only first and second moments, and its estimate is biased upwards by
    ``O(dim / n)`` (Chong & Forsyth 2020): compare values at equal sample sizes.

    Parameters
    ----------
    reference : (n_r, dim) array, n_r >= 2
        Reference draws (e.g. data, or draws of the true distribution).
    samples : (n_s, dim) array, n_s >= 2
        Draws to compare with them (e.g. a model's samples).
    num_bootstrap : int
        Bootstrap replicates (each set resampled with replacement) for ``stderr``; 0 skips.
    num_permutations : int
        Label permutations of the pooled sets for ``p_value``; 0 skips.
    seed : int

    Raises
    ------
    ValueError
        Wrong shapes or non-finite values.
    """
    r, s = _pair(reference, samples, ("reference", "samples"))
    nboot = nonnegative_int(num_bootstrap, "num_bootstrap")
    nperm = nonnegative_int(num_permutations, "num_permutations")
    dist = float(_fd(*_moments(r), *_moments(s)))
    rng = _rng(seed, 0xFD)
    boot = _fd_batches(r, s, nboot, lambda b: (
        r[rng.integers(0, len(r), (b, len(r)))], s[rng.integers(0, len(s), (b, len(s)))]))
    z = np.concatenate([r, s])

    def permuted(b):
        zp = z[rng.permuted(np.broadcast_to(np.arange(len(z)), (b, len(z))), axis=1)]
        return zp[:, :len(r)], zp[:, len(r):]

    perms = _fd_batches(r, s, nperm, permuted)
    stderr = float(boot.std(ddof=1)) if nboot > 1 else float("nan")
    p = _permutation_p(dist, perms) if nperm else float("nan")
    return FrechetResult(dist, stderr, p, boot, len(r), len(s))


# ----------------------------------------------------------------------- Fisher divergence
class FisherResult(NamedTuple):
    """Result of :func:`fisher_divergence`.

    Attributes
    ----------
    divergence : estimate of ``E_p |grad log p(x) - grad log q(x)|^2`` (>= 0).
    stderr : its standard error (``sd / sqrt(n)``; ArviZ MCSE for chain-shaped samples).
    num_samples : number of points used.
    """

    divergence: float
    stderr: float
    num_samples: int

    __repr__ = result_repr


def _scores(value: Any, x: np.ndarray, name: str) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1])
    if callable(value):
        with jax.enable_x64(True):
            s = np.asarray(jax.jit(jax.vmap(value))(flat), np.float64)
        if s.shape != flat.shape:
            raise ValueError(f"{name} must map one point of shape ({x.shape[-1]},) to a score "
                             f"of the same shape; got shape {s.shape[1:]}")
        s = s.reshape(x.shape)
    else:
        s = np.asarray(value, np.float64)
        if s.shape != x.shape:
            raise ValueError(f"{name} must be a callable or an array of the samples' shape "
                             f"{x.shape}; got shape {s.shape}")
    all_finite(s, name)
    return s


def fisher_divergence(samples: Any, model_score: Callable[[jax.Array], jax.Array] | Any,
                      true_score: Callable[[jax.Array], jax.Array] | Any) -> FisherResult:
    """Fisher divergence ``F(p || q) = E_{x ~ p} |grad log p(x) - grad log q(x)|^2``.

    For draws ``samples`` of ``p`` whose score ``true_score`` is known (a toy density, a
    simulator with a tractable likelihood) and a model score ``model_score``
    (``-grad E`` of an energy). ``F = 0`` iff the scores agree ``p``-almost everywhere; it is
    the objective that score matching minimises up to a constant (Hyvarinen 2005). The
    estimate is the sample mean of ``|s_p - s_q|^2`` with its standard error.

    Parameters
    ----------
    samples : (n, dim) i.i.d. draws, or (chain, draw, dim) MCMC draws (then the standard
        error is ArviZ's MCSE of the mean, which accounts for autocorrelation).
    model_score : callable or array
        The model's score ``-grad E``: ``score(x) -> (dim,)`` for ONE point ``x`` of shape
        ``(dim,)`` (vmapped, float64), or the scores at ``samples`` precomputed (same shape
        as ``samples``).
    true_score : callable or array
        The score ``grad log p`` of the distribution of ``samples``, in the same form.

    Raises
    ------
    ValueError
        Wrong shapes or non-finite samples or scores.
    """
    arr = np.asarray(samples, np.float64)
    if arr.ndim == 3:
        points(arr.reshape(-1, arr.shape[-1]), "samples")
        if arr.shape[1] < 4:
            raise ValueError(f"chain-shaped samples need at least 4 draws per chain; got "
                             f"shape {arr.shape}")
    else:
        arr = points(samples, "samples")
    diff = _scores(model_score, arr, "model_score") - _scores(true_score, arr, "true_score")
    sq = np.sum(diff**2, -1)
    if sq.ndim == 2:
        se = float(np.asarray(mcse(sq, method="mean")))
    else:
        se = float(sq.std(ddof=1) / np.sqrt(sq.size))
    return FisherResult(float(sq.mean()), se, int(sq.size))
