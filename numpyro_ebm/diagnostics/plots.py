"""Plots: detailed-balance z-scores against their thresholds; a 2-D energy landscape.

Matplotlib only (optional extra ``plots``). Chains themselves are best looked at with
``arviz_plots`` (``plot_trace``, ``plot_ess``...) on the DataTree from
:func:`~numpyro_ebm.diagnostics.to_datatree`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy import stats

from .report import DetailedBalanceReport

__all__ = ["plot_detailed_balance", "plot_energy_2d"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("plots need matplotlib: pip install 'numpyro-ebm[plots]'") from err
    return plt


def plot_detailed_balance(result: DetailedBalanceReport | xr.Dataset | xr.DataTree,
                          axes: Any = None):
    """Fluctuation-identity z per chain and reversibility z per lag (one dot per chain and
    feature) with Bonferroni thresholds ``+-Phi^-1(1 - alpha / 2m)`` (Holm rejects nothing
    inside them).

    ``result`` is a report, its ``to_dataset()`` or a DataTree group holding it.
    Returns the matplotlib ``(fig, axes)``.
    """
    ds = result.to_dataset() if isinstance(result, DetailedBalanceReport) else result
    if isinstance(ds, xr.DataTree):
        ds = ds.to_dataset()
    if "fluctuation_identity_z" not in ds or "reversibility_z" not in ds:
        raise ValueError("result must hold fluctuation_identity_z and reversibility_z (from "
                         "detailed_balance(...)); got "
                         f"variables {sorted(ds.data_vars)}")
    alpha = float(ds.attrs.get("alpha", 0.01))
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    ax2, ax3 = np.ravel(axes)[:2]
    z2 = ds["fluctuation_identity_z"].values
    t2 = stats.norm.isf(alpha / (2 * z2.size))
    ax2.axhspan(-t2, t2, color="0.9")
    chains = np.arange(z2.size)
    ax2.plot(chains, z2, "o", color="C0")
    out = np.abs(z2) > t2
    ax2.plot(chains[out], z2[out], "o", color="C3", label="rejected")
    ax2.set(xlabel="chain", ylabel="z", title="fluctuation identity", xticks=chains)
    z3 = ds["reversibility_z"]
    t3 = stats.norm.isf(alpha / (2 * z3.size))
    lags = ds["reversibility_lag"].values
    ax3.axhspan(-t3, t3, color="0.9")
    for j, feat in enumerate(ds["reversibility_feature"].values):
        vals = z3.isel(reversibility_feature=j).values  # (chain, lag)
        for c in range(vals.shape[0]):
            ax3.plot(lags + 0.05 * (j - 1), vals[c], "o", ms=4, color=f"C{j % 10}",
                     label=str(feat) if c == 0 else None)
    ax3.set(xlabel="lag", ylabel="z", title="reversibility", xticks=lags)
    ax3.legend(fontsize="small", ncols=2)
    return fig, axes


def plot_energy_2d(energy_fn: Any, params: Any, samples: Any = None,
                   bounds: tuple[tuple[float, float], tuple[float, float]] = ((-3.0, 3.0),
                                                                           (-3.0, 3.0)),
                   ax: Any = None, num_points: int = 120, levels: int = 30):
    """Filled contours of ``exp(-E)`` (normalised on the grid) with optional samples.

    ``energy_fn(params, x)`` for ``x`` of shape ``(2,)``; ``samples`` ``(..., 2)``.
    Returns the matplotlib axes.
    """
    (x0, x1), (y0, y1) = bounds
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"bounds must be ((xmin, xmax), (ymin, ymax)) with min < max; "
                         f"got {bounds}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4), constrained_layout=True)
    gx, gy = np.meshgrid(np.linspace(x0, x1, num_points), np.linspace(y0, y1, num_points))
    pts = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], -1))
    e = np.asarray(jax.vmap(lambda z: energy_fn(params, z))(pts), np.float64)
    if not np.any(np.isfinite(e)):
        raise ValueError("energy_fn is non-finite everywhere in bounds")
    logp = -(e - np.nanmin(np.where(np.isfinite(e), e, np.nan)))
    ax.contourf(gx, gy, np.exp(logp).reshape(gx.shape), levels=levels, cmap="viridis")
    if samples is not None:
        s = np.asarray(samples).reshape(-1, 2)
        ax.scatter(s[:, 0], s[:, 1], s=2, color="white", alpha=0.5, linewidths=0)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal")
    return ax
