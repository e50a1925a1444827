"""Calibration of an amortized ratio without a reference posterior: expected coverage and
simulation-based calibration (Hermans et al. 2022, "A trust crisis in simulation-based
inference? Your posterior approximations can be unfaithful", TMLR; Talts et al. 2018).

For held-out simulations ``(theta*_i, x*_i) ~ p(theta) p(x | theta)``, the approximate
posterior ``q(theta | x) ∝ p(theta) r(x, theta)`` is represented by self-normalised
importance weights ``w_j ∝ r(x*_i, theta_j)`` on ``M`` prior draws ``theta_j``. Then

* ``hpd_mass_i = sum_j w_j 1[q(theta_j) > q(theta*_i)]``: the mass of the smallest
  highest-density region that contains ``theta*_i``; ``theta*_i`` lies in the level-``a``
  region iff ``hpd_mass_i < a``. The *expected coverage* at level ``a`` is the fraction of
  pairs with ``hpd_mass_i < a``; a calibrated posterior has coverage ``a`` at every level.
* ``marginal_ranks_ik = sum_j w_j 1[theta_jk < theta*_ik]``, uniform on ``[0, 1]`` for a
  calibrated posterior (SBC ranks, here as fractions).

Coverage below the nominal level means credible regions that are too small: an
*overconfident* posterior (Hermans et al. found this for most amortized methods and
proposed ensembles and balancing as remedies). It is flagged when, at some level,
``(a - coverage) / se > z`` with the binomial ``se = sqrt(a (1 - a) / n)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from ..checks import batch_array, positive_float, positive_int
from ..typing import Array, ArrayLike, PRNGKey
from .ratio import LearnedRatio, typed_key

__all__ = ["CalibrationResult", "expected_coverage"]

DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class CalibrationResult(NamedTuple):
    """Expected coverage and SBC ranks of an approximate posterior (see the module doc).

    ``levels`` and ``coverage`` (per level), ``stderr`` (binomial, per level),
    ``hpd_mass`` ``(n,)``, ``marginal_ranks`` ``(n, theta_dim)``, ``z`` (the per-level
    ``(level - coverage) / stderr``), ``overconfident`` (some ``z > threshold``) and
    ``conservative`` (some ``z < -threshold``).
    """

    levels: np.ndarray
    coverage: np.ndarray
    stderr: np.ndarray
    hpd_mass: np.ndarray
    marginal_ranks: np.ndarray
    z: np.ndarray
    overconfident: bool
    conservative: bool


def _log_ratio_fn(log_ratio) -> Callable[[Array, Array], Array]:
    if isinstance(log_ratio, LearnedRatio):
        energy, params = log_ratio.energy_fn, log_ratio.params
        return lambda x, t: -energy(params, x, t)
    if not callable(log_ratio):
        raise TypeError(f"log_ratio must be a LearnedRatio or a callable log_ratio(x, theta) "
                        f"for one pair, got {type(log_ratio).__name__}")
    return log_ratio


def expected_coverage(
    log_ratio: LearnedRatio | Callable[[Array, Array], Array],
    prior: dist.Distribution,
    theta: ArrayLike,
    x: ArrayLike,
    *,
    key: PRNGKey,
    levels: Sequence[float] = DEFAULT_LEVELS,
    num_prior_samples: int = 10_000,
    threshold: float = 3.0,
) -> CalibrationResult:
    """Expected coverage of highest-density regions and SBC ranks of ``p(theta) r(x, theta)``.

    Parameters
    ----------
    log_ratio
        A :class:`~numpyro_ebm.sbi.LearnedRatio`, or ``log_ratio(x, theta) -> scalar`` for
        one pair (any function of ``x`` alone may be added: it cancels).
    prior
        The prior the held-out ``theta`` were drawn from.
    theta
        Held-out parameters ``(n, theta_dim)``, not used in training.
    x
        Their simulations ``(n, x_dim)`` (one row per row of ``theta``).
    key
        For the ``num_prior_samples`` importance-sampling draws from the prior.
    levels
        Credibility levels in ``(0, 1)``.
    num_prior_samples
        Prior draws that importance-sample each posterior's highest-density regions.
    threshold
        ``z`` above which (below ``-threshold``: conservative) the posterior is flagged.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ValueError
        Mismatched rows of ``theta`` and ``x``, columns that do not match the prior or the
        ratio (both shapes named), levels outside ``(0, 1)``, or NaN/inf.
    """
    fn = _log_ratio_fn(log_ratio)
    theta = batch_array(theta, "theta", event_ndim=1)
    x = batch_array(x, "x")
    if theta.shape[0] != x.shape[0]:
        raise ValueError(f"theta and x must have one row per held-out simulation, got "
                         f"{theta.shape[0]} and {x.shape[0]} rows")
    _check_columns(log_ratio, prior, theta, x)
    lv = np.asarray(levels, dtype=float)
    if lv.ndim != 1 or lv.size == 0 or not np.all((lv > 0) & (lv < 1)):
        raise ValueError(f"levels must be a non-empty sequence in (0, 1), got {levels!r}")
    num_prior_samples = positive_int(num_prior_samples, "num_prior_samples")
    threshold = positive_float(threshold, "threshold")
    draws = prior.sample(typed_key(key), (num_prior_samples,)).astype(theta.dtype)
    log_prior = prior.log_prob(draws)
    mass, ranks = _hpd_and_ranks(fn, prior, draws, log_prior, theta, x)
    n = theta.shape[0]
    coverage = (mass[:, None] < lv[None]).mean(0)
    se = np.sqrt(lv * (1 - lv) / n)
    z = (lv - coverage) / se
    return CalibrationResult(lv, coverage, se, mass, ranks, z, bool(np.any(z > threshold)),
                             bool(np.any(z < -threshold)))


def _check_columns(log_ratio, prior: dist.Distribution, theta: Array, x: Array) -> None:
    """Name a column mismatch of ``theta`` (against the prior and the ratio) or ``x``
    (against the ratio) before anything broadcasts."""
    event = tuple(prior.event_shape) or tuple(prior.batch_shape)
    if event and event != tuple(theta.shape[1:]):
        raise ValueError(f"theta must have shape (n, {', '.join(map(str, event))}) to match "
                         f"the prior's event shape {event}, got shape {tuple(theta.shape)}")
    if isinstance(log_ratio, LearnedRatio):
        for name, arr, dim in (("theta", theta, log_ratio.theta_dim),
                               ("x", x, log_ratio.x_dim)):
            if arr.shape[1:] != (dim,):
                raise ValueError(
                    f"{name} must have shape (n, {dim}) (the ratio was fit on {name} with "
                    f"{dim} columns), got shape {tuple(arr.shape)}")


def _hpd_and_ranks(fn, prior, draws, log_prior, theta, x) -> tuple[np.ndarray, np.ndarray]:
    @jax.jit
    def one(pair):
        t_star, x_star = pair
        log_r = jax.vmap(lambda t: fn(x_star, t))(draws)
        log_w = log_r - logsumexp(log_r)  # self-normalised weights over prior draws
        dens = log_prior + log_r  # log q(theta_j | x*) + const
        dens_star = prior.log_prob(t_star) + fn(x_star, t_star)
        mass = jnp.sum(jnp.exp(log_w) * (dens > dens_star))
        ranks = jnp.exp(log_w) @ (draws < t_star).astype(log_w.dtype)
        return mass, ranks

    mass, ranks = jax.lax.map(one, (theta, x))
    return np.asarray(mass), np.asarray(ranks)
