"""Detailed-balance checks and the ``detailed_balance`` entry point.

- ratio consistency: max ``|R_logged - R_recomputed|``; innovations: a KS test that the
  recovered innovations are N(0, 1).
- fluctuation identity: ``d_t = min(1, e^R) - 2 1{R > 0} - 1{R = 0}`` has mean 0 for
  ``x ~ pi``, ``y ~ q(.|x)`` (``R(x, y) = -R(y, x)`` and a change of measure give
  ``E[e^R 1{R < 0}] = P(R > 0)``); per-chain z from ArviZ's MCSE, Holm across chains.
- reversibility: ``a_t = f(x_t) g(x_{t+k}) - g(x_t) f(x_{t+k})`` has mean 0 for a
  reversible stationary chain; z per (chain, lag, feature), Holm over all.
- Stein discrepancy: :func:`~numpyro_ebm.diagnostics.kernel_stein_discrepancy` of the states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import xarray as xr
from scipy import stats

from .ratio import Recomputed, recompute
from .report import Check, DetailedBalanceReport, Verdict, skipped
from .stats import holm, mean_z_scores, two_sided_p
from .stein import kernel_stein_discrepancy
from .transitions import Transitions

__all__ = [
    "ratio_consistency",
    "fluctuation_identity",
    "reversibility",
    "detailed_balance",
]


def ratio_consistency(
    transitions: Transitions, recomputed: Recomputed, alpha: float = 0.01,
    tolerance: float | None = None,
) -> tuple[Verdict, Verdict]:
    """Ratio consistency (logged vs recomputed log ratio) and the innovations' KS test.

    The ratio statistic is ``max |R_logged - R| / (1 + (|U(x)| + |U(y)|) / T)``; its
    ``tolerance`` defaults to ``10 sqrt(eps)`` of the logged ratio's dtype (3.5e-3 for
    float32, 1.5e-7 for float64).
    """
    xi = recomputed.innovation
    xi = xi[np.all(np.isfinite(xi), -1)].ravel()
    ks = stats.kstest(xi, "norm")
    innov = Verdict(Check.INNOVATIONS, float(ks.statistic), float(ks.pvalue), alpha,
                    bool(ks.pvalue > alpha), xr.Dataset())
    logged = transitions.log_accept_ratio
    if logged is None or transitions.source != "kernel":
        return skipped(Check.RATIO_CONSISTENCY, "no kernel log ratio logged"), innov
    tol = 10.0 * np.sqrt(transitions.log_ratio_eps) if tolerance is None else float(tolerance)
    rec = recomputed.log_accept_ratio
    both_inf = ~np.isfinite(rec) & ~np.isfinite(logged) & (np.sign(rec) == np.sign(logged))
    with np.errstate(over="ignore", invalid="ignore"):
        err = _ratio_error(logged, rec, recomputed, transitions.temperature, both_inf)
    details = xr.Dataset({"abs_error": (("chain", "draw"), err)})
    stat = float(err.max())
    return Verdict(Check.RATIO_CONSISTENCY, stat, np.nan, tol, bool(stat <= tol), details), innov


def _ratio_error(logged, rec, recomputed, temperature, both_inf):
    scale = 1.0 + (np.abs(recomputed.potential) + np.abs(np.where(
        np.isfinite(recomputed.proposal_potential), recomputed.proposal_potential, 0.0))
                   ) / temperature
    err = np.where(both_inf, 0.0, np.abs(logged - rec) / scale)
    return np.where(np.isnan(err), np.inf, err)


def fluctuation_identity(recomputed: Recomputed, alpha: float = 0.01) -> Verdict:
    """Fluctuation identity: per-chain z of ``mean d_t`` (ArviZ MCSE), Holm across chains."""
    r = recomputed.log_accept_ratio
    with np.errstate(over="ignore"):
        acc = np.exp(np.minimum(r, 0.0))
    d = acc - 2.0 * (r > 0) - 1.0 * (r == 0)
    da = xr.DataArray(d, dims=("chain", "draw"))
    mean, se, z = mean_z_scores(da)
    p_adj = holm(two_sided_p(z.values))
    bad = np.mean(~np.isfinite(r), axis=1)  # non-finite proposals carry no information
    details = xr.Dataset({"d": da, "mean": mean, "mcse": se, "z": z,
                          "p_holm": ("chain", p_adj), "nonfinite_fraction": ("chain", bad)})
    note = "most proposals non-finite: kernel diverged" if np.any(bad > 0.5) else ""
    passed = bool(p_adj.min() > alpha) and not note
    return Verdict(Check.FLUCTUATION_IDENTITY, float(np.max(np.abs(z.values))),
                   float(p_adj.min()), alpha, passed, details, note)


def _features(x: np.ndarray, coords: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature pairs (f, g): (x_i, x_j) for i < j and (x_i, x_i^2), standardised."""
    z = (x - x.mean((0, 1))) / np.maximum(x.std((0, 1)), 1e-300)
    f, g, names = [], [], []
    for a, i in enumerate(coords):
        for j in coords[a + 1:]:
            f.append(z[..., i]), g.append(z[..., j]), names.append(f"x{i}*x{j}")
        sq = z[..., i] ** 2
        f.append(z[..., i]), g.append(sq - sq.mean()), names.append(f"x{i}*x{i}^2")
    return np.stack(f, -1), np.stack(g, -1), names


def reversibility(
    positions: np.ndarray, lags: Sequence[int] = (1, 2, 4), coords: Sequence[int] | None = None,
    alpha: float = 0.01,
) -> Verdict:
    """Reversibility: lagged antisymmetry z over (chain, lag, feature), Holm over all.

    Tests reversibility, not correctness: a correct non-reversible kernel fails it.
    """
    x = np.asarray(positions, np.float64)
    if x.ndim == 2:
        x = x[None]
    n = x.shape[1]
    lags = [int(k) for k in lags]
    if not lags or min(lags) < 1 or max(lags) > n // 4:
        raise ValueError(f"lags must be integers in [1, {n // 4}] (a quarter of the draws); "
                         f"got {lags}")
    coords = list(range(min(x.shape[2], 4))) if coords is None else [int(i) for i in coords]
    if any(not 0 <= i < x.shape[2] for i in coords):
        raise ValueError(f"coords must index the {x.shape[2]} coordinates; got {coords}")
    f, g, names = _features(x, coords)
    zs, means, ses = [], [], []
    for k in lags:
        a = f[:, :-k] * g[:, k:] - g[:, :-k] * f[:, k:]
        m, s, z = mean_z_scores(xr.DataArray(a, dims=("chain", "draw", "feature")))
        zs.append(z.values), means.append(m.values), ses.append(s.values)
    dims = ("chain", "lag", "feature")
    z = np.stack(zs, 1)
    p_adj = holm(two_sided_p(z))
    coords_ = {"lag": lags, "feature": names}
    details = xr.Dataset({"z": (dims, z), "mean": (dims, np.stack(means, 1)),
                          "mcse": (dims, np.stack(ses, 1)), "p_holm": (dims, p_adj)},
                         coords=coords_)
    return Verdict(Check.REVERSIBILITY, float(np.max(np.abs(z))), float(p_adj.min()), alpha,
                   bool(p_adj.min() > alpha), details)


def detailed_balance(
    transitions: Transitions,
    potential_fn: Callable[[jax.Array], jax.Array],
    *,
    alpha: float = 0.01,
    lags: Sequence[int] = (1, 2, 4),
    coords: Sequence[int] | None = None,
    ratio_tolerance: float | None = None,
    ksd: bool = True,
    ksd_kwargs: dict[str, Any] | None = None,
) -> DetailedBalanceReport:
    """Run every check on Langevin transitions; returns a mapping check name -> verdict.

    Checks: ratio consistency and innovations (kernel transitions only), fluctuation
    identity, reversibility and (``ksd=True``) Stein discrepancy. ``potential_fn(x)`` is the
    reference potential ``U`` of one flat position (target ``exp(-U / T)``). Each check is
    at level ``alpha`` (Holm inside a check).
    """
    if not callable(potential_fn):
        raise TypeError(f"potential_fn must be callable U(x) -> scalar; got {potential_fn!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    rec = recompute(transitions, potential_fn)
    d1, innov = ratio_consistency(transitions, rec, alpha, ratio_tolerance)
    if transitions.source != "kernel":
        innov = skipped(Check.INNOVATIONS, "probe proposals")
    results = [d1, innov, fluctuation_identity(rec, alpha),
               reversibility(transitions.position, lags, coords, alpha)]
    if ksd:
        T = transitions.temperature
        res = kernel_stein_discrepancy(
            transitions.position, lambda z: -jax.grad(potential_fn)(z) / T,
            **(ksd_kwargs or {}))
        details = xr.Dataset({"bootstrap_ksd": ("bootstrap", res.bootstrap)},
                             attrs={"num_samples": res.num_samples,
                                    "block_length": res.block_length})
        results.append(Verdict(Check.STEIN_DISCREPANCY, res.ksd_squared, res.p_value,
                               alpha, bool(res.p_value > alpha), details))
    return DetailedBalanceReport(results, alpha)
