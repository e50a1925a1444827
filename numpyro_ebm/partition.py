"""Estimates of the log normaliser ``log Z = log int exp(-E(x)) dx``.

Grid normalisation is exact up to quadrature error in one or two dimensions. In higher
dimension, annealed importance sampling (AIS, Neal 2001) along the geometric path
``gamma_b(x) = exp(-b E(x) - (1 - b) E_0(x))`` from a Gaussian base ``N(m, s^2)`` gives a
stochastic lower bound (forward, from base draws) and, from draws of the target, an upper
bound (reverse AIS); MALA transitions from :mod:`numpyro_ebm.infer.langevin`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .energy import EnergyFn, Params, batched_energy, check_energy, check_params_finite
from .infer import langevin

__all__ = ["grid_log_normalizer", "AISResult", "ais_log_normalizer", "HeldOutLogLikelihood",
           "held_out_log_likelihood"]


def grid_log_normalizer(energy_fn: EnergyFn, params: Params, lo: Sequence[float],
                        hi: Sequence[float], num_points: int = 256) -> jax.Array:
    """``log Z`` by the midpoint rule on a box grid (events of shape ``(d,)``, ``d <= 2``).

    ``log Z ~= logsumexp_k(-E(x_k)) + log(cell volume)`` over ``num_points`` cell midpoints
    per dimension in ``[lo, hi]``; exact as the grid refines if the box holds the mass.
    """
    lo = np.atleast_1d(np.asarray(lo, dtype=float))
    hi = np.atleast_1d(np.asarray(hi, dtype=float))
    if lo.shape != hi.shape or lo.ndim != 1 or lo.size not in (1, 2):
        raise ValueError(f"lo and hi must be sequences of 1 or 2 bounds of equal length, got "
                         f"lo={lo.tolist()}, hi={hi.tolist()}")
    if not np.all(np.isfinite(lo) & np.isfinite(hi) & (hi > lo)):
        raise ValueError(f"need finite lo < hi per dimension, got lo={lo.tolist()}, "
                         f"hi={hi.tolist()}")
    if isinstance(num_points, bool) or int(num_points) != num_points or num_points < 2:
        raise ValueError(f"num_points must be an int >= 2, got {num_points!r}")
    d, n = lo.size, int(num_points)
    check_energy(energy_fn, params, (d,), name="energy_fn")
    dtype = jnp.result_type(float)
    width = (hi - lo) / n
    axes = [jnp.asarray(lo[i] + width[i] * (np.arange(n) + 0.5), dtype) for i in range(d)]
    grid = jnp.stack([a.reshape(-1) for a in jnp.meshgrid(*axes, indexing="ij")], -1)
    return _log_sum_exp_neg_energy(energy_fn, params, grid) + float(np.sum(np.log(width)))


@partial(jax.jit, static_argnums=0)
def _log_sum_exp_neg_energy(energy_fn: EnergyFn, params: Params, grid: jax.Array) -> jax.Array:
    return logsumexp(-jax.lax.map(lambda x: energy_fn(params, x), grid, batch_size=4096))


class AISResult(NamedTuple):
    """AIS estimate of ``log Z``: forward ``log_z`` (lower bound in expectation) with its
    delta-method ``stderr``; ``upper`` from reverse AIS (nan without target draws).

    ``bracket`` is ``(log_z - 2 stderr, upper + 2 upper_stderr)``.
    """

    log_z: float
    stderr: float
    upper: float
    upper_stderr: float
    log_weights: np.ndarray
    reverse_log_weights: np.ndarray | None
    effective_sample_size: float
    acceptance_rate: float

    @property
    def bracket(self) -> tuple[float, float]:
        return (self.log_z - 2 * self.stderr, self.upper + 2 * self.upper_stderr)


def _log_mean_exp(lw: np.ndarray) -> tuple[float, float, float]:
    """``log mean e^lw``, its delta-method standard error and the weights' ESS."""
    lw = np.asarray(lw, np.float64)
    m = lw.max()
    w = np.exp(lw - m)
    est = m + math.log(w.mean())
    se = float(w.std(ddof=1) / (math.sqrt(w.size) * w.mean()))
    return float(est), se, float(w.sum() ** 2 / np.sum(w**2))


@partial(jax.jit, static_argnums=(0, 6))
def _anneal(energy_fn, params, x0, betas, base, step_size, num_mcmc_steps, key):
    """Run AIS along ``betas`` from particles ``x0``; returns log weights and mean accept."""
    mean, scale = base

    def e0(x):
        return 0.5 * jnp.sum(((x - mean) / scale) ** 2)

    def level(carry, inp):
        x, lw, h, acc_sum = carry
        b_prev, b, k = inp
        lw = lw + (b - b_prev) * (jax.vmap(e0)(x) - jax.vmap(lambda z: energy_fn(params, z))(x))
        target = lambda z: b * energy_fn(params, z) + (1 - b) * e0(z)  # noqa: E731

        def move(x, kk):
            st = langevin.init(x, target)
            for kj in jax.random.split(kk, num_mcmc_steps):
                st, info = langevin.mala_step(kj, st, target, h)
            return st.position, info.acceptance_rate

        x, acc = jax.vmap(move)(x, jax.random.split(k, x.shape[0]))
        a = jnp.mean(acc)
        h = h * jnp.exp(jnp.clip(2.0 * (a - 0.6), -1.0, 1.0))  # steer toward 0.6 acceptance
        return (x, lw, h, acc_sum + a), None

    keys = jax.random.split(key, betas.shape[0] - 1)
    init = (x0, jnp.zeros(x0.shape[0], x0.dtype), jnp.asarray(step_size, x0.dtype),
            jnp.zeros((), x0.dtype))
    (x, lw, _, acc_sum), _ = jax.lax.scan(level, init, (betas[:-1], betas[1:], keys))
    return lw, acc_sum / (betas.shape[0] - 1)


def ais_log_normalizer(
    energy_fn: EnergyFn,
    params: Params,
    key: Any,
    event_dim: int,
    *,
    num_particles: int = 256,
    num_temperatures: int = 200,
    num_mcmc_steps: int = 2,
    base_mean: Any = 0.0,
    base_scale: Any = 1.0,
    step_size: float | None = None,
    target_draws: Any = None,
) -> AISResult:
    """AIS estimate of ``log Z`` for events of shape ``(event_dim,)``.

    Path ``b_k = (k / K)^4`` (dense near the base); at each level ``num_mcmc_steps``
    MALA steps whose ``h`` is steered toward 60% acceptance from level to level (starting
    at ``step_size``, default ``0.5 * min(base_scale)^2``). ``target_draws`` (exact or
    trusted draws of the target, ``(n, event_dim)``) enable reverse AIS, whose estimate
    ``upper`` is an upper bound in expectation: ``E[log_z] <= log Z <= E[upper]``.
    """
    d = int(event_dim)
    check_energy(energy_fn, params, (d,), name="energy_fn")
    check_params_finite(params)
    for name, v in (("num_particles", num_particles), ("num_temperatures", num_temperatures),
                    ("num_mcmc_steps", num_mcmc_steps)):
        if isinstance(v, bool) or int(v) != v or v < (2 if name == "num_temperatures" else 1):
            raise ValueError(f"{name} must be a positive int (>= 2 for temperatures); got {v!r}")
    dtype = jnp.result_type(float)
    mean = jnp.broadcast_to(jnp.asarray(base_mean, dtype), (d,))
    scale = jnp.broadcast_to(jnp.asarray(base_scale, dtype), (d,))
    if not (bool(jnp.all(scale > 0)) and bool(jnp.all(jnp.isfinite(mean)))):
        raise ValueError(f"base_scale must be > 0 and base_mean finite; got {base_scale!r}, "
                         f"{base_mean!r}")
    h = 0.5 * float(jnp.min(scale)) ** 2 if step_size is None else float(step_size)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"step_size must be finite and > 0; got {step_size!r}")
    if target_draws is not None:
        xt = jnp.asarray(target_draws, dtype)
        if xt.ndim != 2 or xt.shape[1] != d or not bool(jnp.all(jnp.isfinite(xt))):
            raise ValueError(f"target_draws must be finite with shape (n, {d}); got "
                             f"{np.shape(target_draws)}")
    log_z0 = float(jnp.sum(jnp.log(scale))) + 0.5 * d * math.log(2 * math.pi)
    betas = jnp.asarray((np.arange(int(num_temperatures)) / (num_temperatures - 1)) ** 4, dtype)
    k_fwd, k_x0, k_rev = jax.random.split(key, 3)
    x0 = mean + scale * jax.random.normal(k_x0, (int(num_particles), d), dtype)
    lw, acc = _anneal(energy_fn, params, x0, betas, (mean, scale), h, int(num_mcmc_steps),
                      k_fwd)
    lw = np.asarray(lw, np.float64)
    if not np.all(np.isfinite(lw)):
        raise FloatingPointError(f"AIS produced {int(np.sum(~np.isfinite(lw)))} non-finite "
                                 "log weights; check the energy and base_scale")
    est, se, ess = _log_mean_exp(lw)
    upper, upper_se, lw_r = math.nan, math.nan, None
    if target_draws is not None:
        lw_r, _ = _anneal(energy_fn, params, xt, betas[::-1], (mean, scale), h,
                          int(num_mcmc_steps), k_rev)
        lw_r = np.asarray(lw_r, np.float64)
        r_est, upper_se, _ = _log_mean_exp(lw_r)
        upper = log_z0 - r_est
    return AISResult(log_z0 + est, se, upper, upper_se, lw, lw_r, ess, float(acc))


class HeldOutLogLikelihood(NamedTuple):
    """Mean held-out ``log p(x) = -E(x) - log Z`` and its standard error."""

    mean: float
    stderr: float


def held_out_log_likelihood(energy_fn: EnergyFn, params: Params, data: Any,
                            log_z: float | AISResult) -> HeldOutLogLikelihood:
    """Average ``-E(x_i) - log Z`` over ``data`` (``(n, d)``); with an :class:`AISResult`
    the standard error adds its ``stderr`` in quadrature to that of the mean."""
    x = jnp.asarray(data)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"data must have shape (n, d) with n >= 2; got {np.shape(data)}")
    lz, lz_se = (log_z.log_z, log_z.stderr) if isinstance(log_z, AISResult) else (
        float(log_z), 0.0)
    if not math.isfinite(lz):
        raise ValueError(f"log_z must be finite; got {log_z!r}")
    ll = -np.asarray(batched_energy(energy_fn, params, x, 1), np.float64) - lz
    if not np.all(np.isfinite(ll)):
        raise FloatingPointError("energy is non-finite at some held-out points")
    se = math.sqrt(ll.var(ddof=1) / ll.size + lz_se**2)
    return HeldOutLogLikelihood(float(ll.mean()), se)
