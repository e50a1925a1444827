"""Kernel Stein discrepancy (IMQ kernel) with a dependent wild bootstrap p-value.

Stein kernel of ``k(x, y) = (c^2 + |x - y|^2)^beta`` and scores ``s = grad log p``
(Gorham & Mackey 2017), with ``u = c^2 + r^2``, ``r = x - y``:

    k_p = u^b s_x.s_y + 2 b u^(b-1) (s_y - s_x).r - 2 b d u^(b-1) - 4 b (b-1) u^(b-2) |r|^2.

``KSD^2`` is the V-statistic ``mean_ij k_p(x_i, x_j)``. Its null distribution is approximated
by ``mean_ij W_i W_j k_p(x_i, x_j)`` with *dependent* Gaussian multipliers ``W``
(Shao 2010, "The dependent wild bootstrap"; Leucht & Neumann 2013 for degenerate
V-statistics; Chwialkowski, Sejdinovic & Gretton 2014/2016 for kernel tests on Markov
chains): within each MCMC chain ``W_t = l^-1/2 sum_{j < l} xi_{t+j}``, ``xi`` i.i.d. N(0, 1),
whose autocorrelation is Bartlett's ``(1 - |h| / l)+``; chains get independent ``W``. The
bootstrap's conditional variance is then a Bartlett lag-window estimate of the statistic's
long-run variance, so the block length ``l`` must cover the chains' autocorrelation: it
defaults to ``4 tau`` with ``tau = n / ESS`` (ArviZ).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from arviz_stats import ess

from .._warnings import NumpyroEBMWarning
from ..checks import positive_int, real_array
from .stats import result_repr

__all__ = ["KSDResult", "stein_kernel_matrix", "kernel_stein_discrepancy",
           "bartlett_multipliers", "default_block_length"]


class KSDResult(NamedTuple):
    """KSD test: ``ksd_squared`` (V-statistic), bootstrap ``p_value`` and settings used.

    Attributes
    ----------
    ksd_squared : the V-statistic ``mean_ij k_p(x_i, x_j)`` (inf if it overflowed).
    p_value : dependent wild bootstrap p-value of ``H0: the samples follow p``.
    num_samples : points used (after thinning to ``max_samples``).
    block_length : the multipliers' block length ``l`` (1: i.i.d. multipliers).
    num_bootstrap : bootstrap replicates.
    bootstrap : ``(num_bootstrap,)`` replicates of ``KSD^2`` under the null.
    """

    ksd_squared: float
    p_value: float
    num_samples: int
    block_length: int
    num_bootstrap: int
    bootstrap: np.ndarray

    __repr__ = result_repr


def _parts(xa, sa, xb, sb, c, beta):
    """Stein kernel block ``k_p(x_a, x_b)``: one matrix product gives every inner product
    (``[x_a; s_a] [x_b; s_b]^T``), and ``u^beta`` is computed once (``1 / sqrt(u)`` for the
    default ``beta = -1/2``); the other powers follow by division."""
    na, nb, d = xa.shape[0], xb.shape[0], xa.shape[1]
    g = np.concatenate([xa, sa]) @ np.concatenate([xb, sb]).T
    xx, xs, sx, ss = g[:na, :nb], g[:na, nb:], g[na:, :nb], g[na:, nb:]
    r2 = np.maximum(np.sum(xa**2, 1)[:, None] + np.sum(xb**2, 1)[None, :] - 2.0 * xx, 0.0)
    u = c**2 + r2
    ub = 1.0 / np.sqrt(u) if beta == -0.5 else u**beta
    ub1 = ub / u  # u^(beta - 1)
    # (s_b - s_a).(x_a - x_b) for rows a, columns b
    cross = xs - np.sum(sb * xb, 1)[None, :] - np.sum(sa * xa, 1)[:, None] + sx
    return (ub * ss + 2 * beta * ub1 * (cross - d)
            - 4 * beta * (beta - 1) * (ub1 / u) * r2)


def stein_kernel_matrix(x: np.ndarray, scores: np.ndarray, c: float = 1.0,
                        beta: float = -0.5) -> np.ndarray:
    """The full ``(n, n)`` IMQ Stein kernel matrix (small ``n``; used for checks)."""
    x = np.asarray(x, np.float64)
    s = np.asarray(scores, np.float64)
    return _parts(x, s, x, s, c, beta)


def bartlett_multipliers(rng: np.random.Generator, num_chains: int, num_draws: int,
                         block_length: int, num_bootstrap: int) -> np.ndarray:
    """Gaussian multipliers ``(num_chains * num_draws, num_bootstrap)``, chain-major.

    Within a chain ``W_t = l^-1/2 sum_{j < l} xi_{t+j}`` (moving sums of i.i.d. N(0, 1)):
    ``Var W_t = 1`` and ``Corr(W_t, W_{t+h}) = (1 - |h| / l)+``; chains are independent.
    """
    ell = int(block_length)
    xi = rng.standard_normal((num_chains, num_draws + ell - 1, num_bootstrap))
    cs = np.concatenate([np.zeros((num_chains, 1, num_bootstrap)), np.cumsum(xi, 1)], 1)
    w = (cs[:, ell:] - cs[:, :-ell]) / np.sqrt(ell)
    return w.reshape(num_chains * num_draws, num_bootstrap)


def default_block_length(x: np.ndarray, factor: float = 4.0) -> int:
    """``ceil(factor * tau)``, ``tau = n / ESS`` (ArviZ ``ess(method="mean")``, worst
    coordinate) of chains ``x`` ``(chain, draw, dim)``; at most the number of draws."""
    n_eff = float(np.min(np.asarray(ess(x, method="mean"))))
    tau = max(1.0, x.shape[0] * x.shape[1] / max(n_eff, 1.0)) if np.isfinite(n_eff) else 1.0
    return int(min(x.shape[1], np.ceil(factor * tau)))


def _samples_and_scores(samples: Any, score_fn: Any, scores: Any
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 ``(chain, draw, dim)`` samples and their scores."""
    x = np.asarray(real_array(samples, "samples", finite=False), np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] < 4:
        raise ValueError(f"samples must have shape (n, dim) or (chain, draw, dim) with at least "
                         f"4 draws; got {np.shape(samples)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain non-finite values; expected finite draws")
    if (score_fn is None) == (scores is None):
        raise ValueError("give exactly one of score_fn= or scores=")
    if scores is None:
        with jax.enable_x64(True):
            s = np.asarray(jax.jit(jax.vmap(score_fn))(x.reshape(-1, x.shape[-1])), np.float64)
        s = s.reshape(x.shape)
    else:
        s = np.asarray(scores, np.float64).reshape(x.shape) if np.size(scores) == x.size else None
        if s is None:
            raise ValueError(f"scores must have the shape of samples {x.shape}; "
                             f"got {np.shape(scores)}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores are non-finite at some samples; expected finite grad log p")
    return x, s


def kernel_stein_discrepancy(
    samples: Any,
    score_fn: Callable[[jax.Array], jax.Array] | None = None,
    *,
    scores: Any = None,
    c: float = 1.0,
    beta: float = -0.5,
    num_bootstrap: int = 1000,
    block_length: int | None = None,
    max_samples: int = 2000,
    chunk_size: int = 512,
    seed: int = 0,
) -> KSDResult:
    """KSD of ``samples`` against the score ``grad log p``, with a bootstrap p-value.

    Parameters
    ----------
    samples : (n, dim) or (chain, draw, dim) array
        Chains are thinned evenly to at most ``max_samples`` points in total.
    score_fn : callable, optional
        ``score_fn(x) -> grad log p(x)`` for ONE flat point (vmapped, float64).
    scores : array, optional
        The scores at ``samples`` precomputed (same shape); give exactly one of the two.
    c : float
        Scale of the IMQ kernel ``(c^2 + |x - y|^2)^beta``; ``c > 0``.
    beta : float
        Exponent of the IMQ kernel; ``beta < 0`` (in ``(-1, 0)`` for a KSD that
        detects non-convergence, Gorham & Mackey 2017).
    num_bootstrap : int
        Bootstrap replicates.
    block_length : int, optional
        Block length ``l`` of the dependent multipliers (after thinning). Default
        ``ceil(4 tau)``, ``tau = n / ESS`` (ArviZ, worst coordinate): the size study
        (``benchmarks/studies/ksd_bootstrap_size.py``) keeps the rejection rate at the
        nominal level on AR(1) chains up to ``rho = 0.95`` with it, where the Markov-chain
        wild bootstrap with blocks ``~2 tau`` rejected 14-20% at 5%. Pass 1 for i.i.d.
        draws (full power). A block longer than a quarter of the draws per chain leaves
        the test little power: a ``NumpyroEBMWarning`` says so (run longer chains).
    max_samples : int
    chunk_size : int
        Rows of the Stein kernel matrix held in memory at a time (does not change results).
    seed : int
        Seeds the multipliers (a stream of its own, not numpy's ``seed`` stream).

    Raises
    ------
    ValueError
        Wrong shapes, non-finite samples or scores, bad kernel parameters or sizes.
    """
    x, s = _samples_and_scores(samples, score_fn, scores)
    if beta >= 0 or c <= 0:
        raise ValueError(f"need c > 0 and beta < 0 for the IMQ kernel; got c={c}, beta={beta}")
    nboot = positive_int(num_bootstrap, "num_bootstrap")
    chunk = positive_int(chunk_size, "chunk_size")
    nc, nd, d = x.shape
    stride = max(1, int(np.ceil(nc * nd / positive_int(max_samples, "max_samples"))))
    x, s = x[:, ::stride], s[:, ::stride]
    if block_length is None:
        block_length = default_block_length(x)
    ell = positive_int(block_length, "block_length")
    if ell > x.shape[1]:
        raise ValueError(f"block_length must be at most the draws per chain after thinning "
                         f"({x.shape[1]}); got {block_length}")
    if 4 * ell > x.shape[1]:
        warnings.warn(
            f"kernel_stein_discrepancy: the bootstrap block length {ell} is more than a "
            f"quarter of the {x.shape[1]} draws per chain (after thinning), so the test has "
            "little power: few independent blocks remain and the p-value stays large even "
            "for a wrong target. Run longer chains (or pass block_length for nearly "
            "independent draws).", NumpyroEBMWarning, stacklevel=2)
    rng = np.random.default_rng((int(seed), 0x57E1))  # not the stream of numpy seed `seed`
    w = bartlett_multipliers(rng, x.shape[0], x.shape[1], ell, nboot)
    v, boot = _statistic_and_bootstrap(x.reshape(-1, d), s.reshape(-1, d), w, c, beta, chunk)
    n = w.shape[0]
    if not np.isfinite(v):
        return KSDResult(np.inf, 0.0, n, ell, nboot, boot)
    p = (1.0 + np.sum(boot >= v)) / (1.0 + boot.size)
    return KSDResult(float(v), float(p), n, ell, nboot, boot)


def _statistic_and_bootstrap(x, s, w, c, beta, chunk):
    """``mean_ij k_p`` and ``mean_ij W_i W_j k_p`` per column of ``w``, in row chunks."""
    n = x.shape[0]
    total, boot = 0.0, np.zeros(w.shape[1])
    with np.errstate(all="ignore"):  # overflow (a diverged chain) is reported as KSD = inf
        for i0 in range(0, n, chunk):
            blk = _parts(x[i0:i0 + chunk], s[i0:i0 + chunk], x, s, c, beta)
            total += blk.sum()
            boot += np.sum(w[i0:i0 + chunk] * (blk @ w), 0)
    return total / n**2, boot / n**2
