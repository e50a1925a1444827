"""Small helpers shared by the diagnostics: z-scores from ArviZ MCSE, Holm, point sets, and a
concise ``repr`` for result tuples."""

from __future__ import annotations

import numpy as np
import xarray as xr
from arviz_stats import mcse
from scipy import stats

from ..checks import all_finite

__all__ = ["holm", "mean_z_scores", "points", "result_repr", "two_sided_p"]


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (same shape): ``p_(i) (m - i + 1)``, made monotone."""
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    m = flat.size
    if m == 0:
        return p.copy()
    order = np.argsort(flat)
    adj = np.maximum.accumulate(flat[order] * (m - np.arange(m)))
    out = np.empty_like(flat)
    out[order] = np.minimum(adj, 1.0)
    return out.reshape(p.shape)


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value ``2 (1 - Phi(|z|))``."""
    return 2.0 * stats.norm.sf(np.abs(np.asarray(z, dtype=np.float64)))


def mean_z_scores(values: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Per-chain mean, its MCSE (ArviZ, ``method="mean"``) and ``z = mean / mcse``.

    ``values`` has dims ``("chain", "draw", ...)``; the draw dim is reduced.
    A zero MCSE gives ``z = 0`` for a zero mean and ``+-inf`` otherwise.
    """
    mean = values.mean("draw")
    se = mcse(values, sample_dims=["draw"], method="mean")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = xr.where(se > 0, mean / se, xr.where(mean == 0, 0.0, np.sign(mean) * np.inf))
    return mean, se, z


def points(value, name: str) -> np.ndarray:
    """``value`` as a finite float64 ``(n, dim)`` array with ``n >= 2``; ``ValueError``
    naming ``name`` otherwise."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, dim) with n >= 2 and dim >= 1; "
                         f"got shape {np.shape(value)}")
    all_finite(arr, name)
    return arr


def result_repr(result: tuple) -> str:
    """Concise ``repr`` of a result ``NamedTuple``: scalars to 4 significant digits, arrays by
    shape only (``bootstrap=<array (200,)>``); the arrays stay available as fields.

    Use as ``__repr__ = result_repr`` in the class body.
    """
    parts = []
    for name, value in zip(result._fields, result, strict=True):
        if isinstance(value, np.ndarray) and value.ndim > 0:
            parts.append(f"{name}=<array {value.shape}>")
        elif isinstance(value, float | np.floating):
            parts.append(f"{name}={float(value):.4g}")
        else:
            parts.append(f"{name}={value!r}")
    return f"{type(result).__name__}({', '.join(parts)})"
