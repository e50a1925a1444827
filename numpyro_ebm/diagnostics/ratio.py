"""The Langevin log acceptance ratio recomputed independently in float64.

Written apart from ``infer/langevin.py`` on purpose: potentials and gradients come from JAX
with 64-bit enabled, the Gaussian proposal densities from NumPy/SciPy,

    log q(y | x) = log N(y; x - h M^-1 grad U(x), 2 h T M^-1),
    R = -(U(y) - U(x)) / T + log q(x | y) - log q(y | x),

and the innovation ``xi = L^-1 (y - x + h M^-1 grad U(x)) / sqrt(2 h T)`` with ``L L^T = M^-1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np
from scipy.linalg import solve_triangular

from .potential import potential_and_grad
from .transitions import Transitions

__all__ = ["Recomputed", "log_proposal_density", "recompute"]

_LOG2PI = float(np.log(2.0 * np.pi))


class Recomputed(NamedTuple):
    """Float64 recomputation of every transition (arrays ``(chain, draw[, dim])``)."""

    log_accept_ratio: np.ndarray  # -inf where U or grad U is non-finite at the proposal
    innovation: np.ndarray  # recovered standard-normal innovation xi (NaN where y non-finite)
    forward_log_prob: np.ndarray  # log q(y | x)
    backward_log_prob: np.ndarray  # log q(x | y)
    potential: np.ndarray  # U(x)
    proposal_potential: np.ndarray  # U(y)


def log_proposal_density(
    y: np.ndarray, x: np.ndarray, grad_x: np.ndarray, step_size: float,
    inverse_mass_matrix: np.ndarray | None = None, temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``log q(y | x)`` and the whitened residual for one chain (``x, y``: ``(draw, dim)``).

    ``inverse_mass_matrix`` is None, ``(dim,)`` or ``(dim, dim)``.
    """
    d = x.shape[-1]
    scale = np.sqrt(2.0 * step_size * temperature)
    m = inverse_mass_matrix
    if m is None:
        drift, white, logdet_l = grad_x, lambda r: r, 0.0
    elif m.ndim == 1:
        drift, white, logdet_l = grad_x * m, lambda r: r / np.sqrt(m), 0.5 * np.sum(np.log(m))
    else:
        chol = np.linalg.cholesky(m)
        drift = grad_x @ m.T
        white = lambda r: solve_triangular(chol, r.T, lower=True).T  # noqa: E731
        logdet_l = float(np.sum(np.log(np.diag(chol))))
    resid = y - (x - step_size * drift)
    xi = white(resid) / scale
    logq = -0.5 * np.sum(xi**2, -1) - d * np.log(scale) - logdet_l - 0.5 * d * _LOG2PI
    return logq, xi


def recompute(transitions: Transitions, potential_fn: Callable[[jax.Array], jax.Array]
              ) -> Recomputed:
    """Recompute ratios, proposal densities and innovations for all transitions."""
    tr = transitions
    x, y = tr.position, tr.proposal
    ux, gx = potential_and_grad(potential_fn, x)
    y_ok = np.all(np.isfinite(y), -1)
    uy, gy = potential_and_grad(potential_fn, np.where(y_ok[..., None], y, x))
    with np.errstate(over="ignore", invalid="ignore"):  # far-out states: inf, not a warning
        return _recompute(tr, x, y, ux, gx, uy, gy, y_ok)


def _recompute(tr, x, y, ux, gx, uy, gy, y_ok):
    ok = y_ok & np.isfinite(uy) & np.all(np.isfinite(gy), -1)
    uy = np.where(ok, uy, np.inf)
    fwd = np.empty(x.shape[:2])
    bwd = np.empty(x.shape[:2])
    xi = np.empty(x.shape)
    T = tr.temperature
    for c in range(tr.num_chains):
        m = None if tr.inverse_mass_matrix is None else tr.inverse_mass_matrix[c]
        h = float(tr.step_size[c])
        ysafe = np.where(y_ok[c][:, None], y[c], x[c])
        fwd[c], xi[c] = log_proposal_density(ysafe, x[c], gx[c], h, m, T)
        gsafe = np.where(ok[c][:, None], gy[c], 0.0)
        bwd[c], _ = log_proposal_density(x[c], ysafe, gsafe, h, m, T)
    ratio = np.where(ok, -(uy - ux) / T + bwd - fwd, -np.inf)
    xi = np.where(y_ok[..., None], xi, np.nan)
    bwd = np.where(ok, bwd, -np.inf)
    return Recomputed(ratio, xi, fwd, bwd, ux, uy)
