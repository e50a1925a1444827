"""ArviZ integration: the extra fields to collect, ``to_datatree`` and ``from_datatree``.

``arviz.from_numpyro(mcmc)`` already works on MALA/ULA runs (ArviZ renames
``accept_prob -> acceptance_rate``, ``potential_energy -> lp`` (sign flipped) and
``adapt_state.step_size -> step_size``, the Langevin ``h``). Dict-valued fields (the
unconstrained ``proposal``) are dropped by ArviZ; :func:`to_datatree` adds them flattened,
with the unconstrained positions, and a ``langevin`` group holding ``h``, ``M^-1`` and ``T``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree

# isort: off
# arviz_base.io_numpyro loads numpyro lazily (lazy_loader); imported before NumPyro's
# inference modules it left `numpyro.distributions.distribution` unset under pytest, which
# broke `numpyro.factor` later. Importing numpyro.infer first avoids that.
import numpyro.infer  # noqa: F401
from arviz_base import from_numpyro
# isort: on

from .balance import DetailedBalanceReport, detailed_balance
from .transitions import Transitions, make_transitions

__all__ = ["DIAGNOSTIC_FIELDS", "to_datatree", "from_datatree", "flat_potential",
           "add_group", "diagnose"]

DIAGNOSTIC_FIELDS: tuple[str, ...] = (
    "potential_energy",
    "accept_prob",
    "diverging",
    "log_accept_ratio",
    "forward_log_prob",
    "backward_log_prob",
    "proposal",
    "noise",
    "adapt_state.step_size",
)
"""Pass as ``mcmc.run(..., extra_fields=DIAGNOSTIC_FIELDS)`` for MALA/ULA runs."""

_UDIM = "unconstrained_dim"


def _flatten_chains(tree: Any) -> np.ndarray:
    """Pytree of ``(chain, draw, ...)`` leaves -> ``(chain, draw, dim)`` in ravel order."""
    leaves = jax.tree.leaves(tree)
    c, n = np.shape(leaves[0])[:2]
    return np.concatenate([np.asarray(v, np.float64).reshape(c, n, -1) for v in leaves], -1)


def _unconstrained_positions(mcmc: Any, proposal: np.ndarray) -> np.ndarray:
    """Unconstrained ``z`` of every draw; equal to the logged proposal where accepted."""
    kernel = mcmc.sampler
    samples = mcmc.get_samples(group_by_chain=True)
    z_last = mcmc.last_state.z
    if getattr(kernel, "model", None) is not None:
        from numpyro.infer.util import unconstrain_fn

        sites = {k: samples[k] for k in z_last}
        args, kwargs = getattr(mcmc, "_args", ()), getattr(mcmc, "_kwargs", {})
        unc = jax.vmap(jax.vmap(lambda p: unconstrain_fn(kernel.model, args, kwargs, p)))
        samples = unc(sites)
    z = _flatten_chains(samples)
    # snap to the logged proposal where the step was accepted (recovers its exact bits)
    close = np.all(np.abs(z - proposal) <= 1e-5 * (1.0 + np.abs(proposal)), -1)
    return np.where(close[..., None], proposal, z)


def to_datatree(mcmc: Any, **from_numpyro_kwargs: Any) -> xr.DataTree:
    """ArviZ DataTree of a MALA/ULA run, with what the detailed-balance tests need.

    ``mcmc`` must have run with ``extra_fields=DIAGNOSTIC_FIELDS``. Adds to
    ``sample_stats``: ``position`` and ``proposal`` (unconstrained, flattened, dims
    ``(chain, draw, unconstrained_dim)``); and a ``langevin`` group with ``step_size``
    (chain), ``inverse_mass_matrix`` and attribute ``temperature``.
    """
    fields = mcmc.get_extra_fields(group_by_chain=True)
    missing = [f for f in ("proposal", "log_accept_ratio") if f not in fields]
    if missing:
        raise ValueError(
            f"mcmc was run without the extra fields {missing}; run it with "
            "extra_fields=numpyro_ebm.diagnostics.DIAGNOSTIC_FIELDS"
        )
    thinning = getattr(mcmc, "thinning", 1)
    if thinning != 1:  # draw t-1 would not be the state proposal t was drawn from
        raise ValueError(
            f"mcmc was run with thinning={thinning}; the detailed-balance diagnostics pair "
            "each proposal with the previous draw and need thinning=1 (thin afterwards)"
        )
    dt = from_numpyro(mcmc, **from_numpyro_kwargs)
    proposal = _flatten_chains(fields["proposal"])
    position = _unconstrained_positions(mcmc, proposal)
    ss = dt["sample_stats"].to_dataset()
    ss["position"] = (("chain", "draw", _UDIM), position)
    ss["proposal"] = (("chain", "draw", _UDIM), proposal)
    dt["sample_stats"] = xr.DataTree(ss)
    ad = mcmc.last_state.adapt_state
    c = position.shape[0]
    h = np.broadcast_to(np.asarray(ad.step_size, np.float64), (c,))
    m = np.asarray(ad.inverse_mass_matrix, np.float64)
    if mcmc.num_chains == 1:  # last_state has a chain dim only for several chains
        m = m[None]
    mdims = ("chain", _UDIM) if m.ndim == 2 else ("chain", _UDIM, _UDIM + "_bis")
    temperature = float(np.asarray(getattr(mcmc.sampler, "_temperature", 1.0)))
    dt["langevin"] = xr.DataTree(xr.Dataset(
        {"step_size": ("chain", h), "inverse_mass_matrix": (mdims, m)},
        coords={"chain": dt["sample_stats"]["chain"].values},
        attrs={"temperature": temperature}))
    return dt


def from_datatree(dt: xr.DataTree) -> Transitions:
    """Transitions from a :func:`to_datatree` DataTree (drops each chain's first draw).

    Draw ``t`` holds the state after step ``t`` and the proposal of step ``t``, so the
    pairs are ``(position[t-1], proposal[t])`` with ``log_accept_ratio[t]``.
    """
    for group, var in (("sample_stats", "position"), ("sample_stats", "proposal"),
                       ("langevin", "step_size")):
        if group not in dt.children or var not in dt[group].data_vars:
            raise ValueError(f"dt has no {group}/{var}; build it with "
                             "numpyro_ebm.diagnostics.to_datatree(mcmc)")
    ss, lg = dt["sample_stats"], dt["langevin"]
    x = ss["position"].values
    y = ss["proposal"].values
    ratio = ss["log_accept_ratio"].values
    m = lg["inverse_mass_matrix"].values if "inverse_mass_matrix" in lg.data_vars else None
    if m is not None and m.ndim == 2:  # per-chain diagonal -> dense: unambiguous shapes
        m = np.einsum("cd,de->cde", m, np.eye(m.shape[1]))
    return make_transitions(x[:, :-1], y[:, 1:], lg["step_size"].values, m,
                            lg.attrs.get("temperature", 1.0), ratio[:, 1:])


def flat_potential(mcmc: Any, model_args: tuple = (), model_kwargs: dict | None = None
                   ) -> Callable[[jax.Array], jax.Array]:
    """The kernel's potential ``U`` as a function of one flat unconstrained position."""
    z = mcmc.last_state.z
    z = jax.tree.map(lambda v: v[0], z) if mcmc.num_chains > 1 else z
    _, unravel = ravel_pytree(z)
    args = model_args or getattr(mcmc, "_args", ())
    kwargs = model_kwargs if model_kwargs is not None else getattr(mcmc, "_kwargs", {})
    potential = mcmc.sampler.get_potential_fn(args, kwargs)
    return lambda x: potential(unravel(x))


def add_group(dt: xr.DataTree, dataset: xr.Dataset, name: str = "detailed_balance"
              ) -> xr.DataTree:
    """Store a diagnostics dataset as group ``name`` of ``dt`` (in place; returns ``dt``)."""
    dt[name] = xr.DataTree(dataset)
    return dt


def diagnose(mcmc: Any, *, model_args: tuple = (), model_kwargs: dict | None = None,
             group: str = "detailed_balance", **kwargs: Any
             ) -> tuple[xr.DataTree, DetailedBalanceReport]:
    """``to_datatree`` + :func:`detailed_balance` on the kernel's own potential.

    Returns the DataTree (with the report stored as group ``group``) and the report;
    ``kwargs`` go to :func:`detailed_balance`.
    """
    dt = to_datatree(mcmc)
    report = detailed_balance(from_datatree(dt), flat_potential(mcmc, model_args, model_kwargs),
                              **kwargs)
    return add_group(dt, report.to_dataset(), group), report
