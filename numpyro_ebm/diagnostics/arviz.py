"""ArviZ integration: the extra fields to collect, ``to_datatree``, ``from_datatree``, ``diagnose``.

``arviz.from_numpyro(mcmc)`` already works on MALA/ULA runs (ArviZ renames
``accept_prob -> acceptance_rate``, ``potential_energy -> lp`` (sign flipped) and
``adapt_state.step_size -> step_size``, the Langevin ``h``). Dict-valued fields (the
unconstrained ``proposal``) are dropped by ArviZ; :func:`to_datatree` adds them flattened,
with the unconstrained positions, and a ``langevin`` group holding ``h``, ``M^-1`` and ``T``.

Runs of other kernels (NumPyro's NUTS and HMC, ...) log no Langevin proposals; for them
:func:`to_datatree` adds the unconstrained positions only and :func:`diagnose` draws Langevin
*probe* proposals from every state (:func:`~numpyro_ebm.diagnostics.probe_transitions`).
Nothing here reads NumPyro's private attributes: the model's arguments are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from arviz_base import dict_to_dataset, from_numpyro
# isort: on
from numpyro.infer.util import potential_energy, unconstrain_fn

from ..checks import positive_float
from ..infer import MALA, ULA
from .balance import detailed_balance
from .report import DetailedBalanceReport
from .transitions import Transitions, make_transitions, probe_transitions

__all__ = ["DIAGNOSTIC_FIELDS", "to_datatree", "from_datatree", "flat_potential",
           "unconstrained_draws", "add_group", "diagnose"]

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
"""Pass as ``mcmc.run(..., extra_fields=DIAGNOSTIC_FIELDS)`` for numpyro_ebm's MALA/ULA runs.

NumPyro's own kernels (NUTS, HMC) have no such fields and NumPyro fails on them
(``TypeError: tuple indices must be integers or slices, not str``): run those without
extra fields; :func:`diagnose` checks them with Langevin probe proposals.
"""

_UDIM = "unconstrained_dim"
_ARGS_ADVICE = ("pass the model's arguments as given to mcmc.run: "
                "model_args=(...), model_kwargs={...}")


def _is_langevin_run(mcmc: Any) -> bool:
    """True when ``mcmc`` ran numpyro_ebm's :class:`~numpyro_ebm.infer.MALA` or ``ULA``."""
    return isinstance(mcmc.sampler, MALA | ULA)


def _require_mcmc(mcmc: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``mcmc`` is a ``numpyro.infer.MCMC`` that has run."""
    if not isinstance(mcmc, numpyro.infer.MCMC):
        raise TypeError(
            f"{name} takes a numpyro.infer.MCMC object after mcmc.run(...), got "
            f"{type(mcmc).__name__}; for draws in an array use arviz (e.g. "
            "arviz_base.from_dict) and, for Langevin transitions, "
            "numpyro_ebm.diagnostics.detailed_balance on make_transitions(...)")
    if mcmc.last_state is None:
        raise ValueError(f"{name}: the MCMC object has not run yet; call mcmc.run(...) first")


def _flatten_chains(tree: Any) -> np.ndarray:
    """Pytree of ``(chain, draw, ...)`` leaves -> ``(chain, draw, dim)`` in ravel order."""
    leaves = jax.tree.leaves(tree)
    c, n = np.shape(leaves[0])[:2]
    return np.concatenate([np.asarray(v, np.float64).reshape(c, n, -1) for v in leaves], -1)


def _one_chain_z(mcmc: Any) -> Any:
    z = mcmc.last_state.z
    return jax.tree.map(lambda v: v[0], z) if mcmc.num_chains > 1 else z


def _call_model(fn: Callable, *args: Any) -> Any:
    """Run ``fn`` (which runs the model); a missing model argument gets the advice."""
    try:
        return fn(*args)
    except TypeError as err:
        if "argument" not in str(err):
            raise
        raise TypeError(f"calling the model failed ({err}); {_ARGS_ADVICE}") from err


def unconstrained_draws(mcmc: Any, model_args: tuple = (), model_kwargs: dict | None = None
                        ) -> np.ndarray:
    """The run's draws in unconstrained space, flattened: ``(chain, draw, dim)`` float64.

    Works for any NumPyro kernel. For a model with arguments pass ``model_args`` /
    ``model_kwargs`` as given to ``mcmc.run`` (constrained sites are unconstrained by
    running the model).
    """
    samples = mcmc.get_samples(group_by_chain=True)
    z_last = mcmc.last_state.z
    model = getattr(mcmc.sampler, "model", None)
    if model is not None:
        sites = {k: samples[k] for k in z_last}
        kwargs = model_kwargs or {}
        unc = jax.vmap(jax.vmap(lambda p: unconstrain_fn(model, model_args, kwargs, p)))
        samples = _call_model(unc, sites)
    return _flatten_chains(samples)


def flat_potential(mcmc: Any, model_args: tuple = (), model_kwargs: dict | None = None
                   ) -> Callable[[jax.Array], jax.Array]:
    """The kernel's potential ``U`` as a function of one flat unconstrained position.

    Uses the kernel's public ``get_potential_fn`` (numpyro_ebm's kernels, NumPyro's HMC and
    NUTS) or, for other kernels of a model, :func:`numpyro.infer.util.potential_energy`.
    Pass ``model_args`` / ``model_kwargs`` as given to ``mcmc.run``. The result is checked
    against the potential energy of the run's last state: a mismatch (wrong arguments)
    raises ``ValueError``.
    """
    kernel = mcmc.sampler
    _, unravel = ravel_pytree(_one_chain_z(mcmc))
    kwargs = model_kwargs or {}
    if hasattr(kernel, "get_potential_fn"):
        potential = _call_model(kernel.get_potential_fn, tuple(model_args), kwargs)
    elif getattr(kernel, "model", None) is not None:
        def potential(z):
            return potential_energy(kernel.model, tuple(model_args), kwargs, z)
    else:
        raise TypeError(f"cannot get the potential of a {type(kernel).__name__} run: build "
                        "the transitions yourself and call detailed_balance(transitions, U)")
    fn = lambda x: potential(unravel(x))  # noqa: E731
    _check_last_potential(mcmc, fn)
    return fn


def _check_last_potential(mcmc: Any, fn: Callable) -> None:
    """``fn`` must reproduce ``last_state.potential_energy`` (catches wrong model args)."""
    logged = getattr(mcmc.last_state, "potential_energy", None)
    if logged is None:
        return
    logged = np.asarray(logged, np.float64).reshape(-1)[0]
    got = float(_call_model(fn, ravel_pytree(_one_chain_z(mcmc))[0]))
    if not np.isclose(got, logged, rtol=1e-4, atol=1e-4 * (1.0 + abs(logged))):
        raise ValueError(
            f"the potential built from model_args/model_kwargs gives U = {got:.6g} at the "
            f"run's last state, where the run logged {logged:.6g}; {_ARGS_ADVICE}")


def _langevin_group(mcmc: Any, chains: np.ndarray) -> xr.DataTree:
    """``step_size`` (chain), ``inverse_mass_matrix`` and the kernel's ``temperature``."""
    ad = mcmc.last_state.adapt_state
    c = chains.size
    h = np.broadcast_to(np.asarray(ad.step_size, np.float64), (c,))
    m = np.asarray(ad.inverse_mass_matrix, np.float64)
    if mcmc.num_chains == 1:  # last_state has a chain dim only for several chains
        m = m[None]
    mdims = ("chain", _UDIM) if m.ndim == 2 else ("chain", _UDIM, _UDIM + "_bis")
    return xr.DataTree(xr.Dataset(
        {"step_size": ("chain", h), "inverse_mass_matrix": (mdims, m)},
        coords={"chain": chains},
        attrs={"temperature": float(np.asarray(mcmc.sampler.temperature))}))


def _langevin_fields(mcmc: Any) -> dict:
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
    return fields


def _observed_group(dt: xr.DataTree, observed: Mapping[str, Any], coords: Any,
                    dims: Mapping[str, Any] | None) -> xr.Dataset:
    """``dt``'s ``observed_data`` with the arrays of ``observed`` added, built by ArviZ's
    ``dict_to_dataset`` (its ``coords``, ``dims`` and default ``<name>_dim_<i>`` names)."""
    if not isinstance(observed, Mapping):
        raise TypeError("observed_data must map variable names to arrays, e.g. "
                        f"observed_data={{'x': data}}; got {type(observed).__name__}")
    bad = [k for k in observed if not isinstance(k, str)]
    if bad:
        raise TypeError(f"observed_data's keys must be variable names (str); got {bad!r}")
    dims = {k: v for k, v in (dims or {}).items() if k in observed}
    for name, names in dims.items():
        if isinstance(names, str):
            raise TypeError(f"dims[{name!r}] must be a list of dimension names, e.g. "
                            f"['obs', 'feature']; got the string {names!r}")
    ds = dt["observed_data"].to_dataset() if "observed_data" in dt.children else xr.Dataset()
    # numpyro.factor is an observed site of a `Unit` distribution with an empty value: ArviZ
    # lists it as a size-0 variable, which stands for no data at all
    ds = ds.drop_vars([k for k, v in ds.data_vars.items() if v.size == 0])
    ds = ds.drop_vars([c for c in ds.coords if c not in {d for v in ds.data_vars.values()
                                                         for d in v.dims}])
    clash = sorted(set(observed) & set(ds.data_vars))
    if clash:
        raise ValueError(f"observed_data names {clash} that ArviZ already read from the "
                         "model's observed sites; pass other names or leave them out")
    new = dict_to_dataset({k: np.asarray(v) for k, v in observed.items()}, coords=coords,
                          dims={k: list(v) for k, v in dims.items()}, sample_dims=[],
                          inference_library=numpyro)
    return new if not ds.data_vars else xr.merge([ds, new], combine_attrs="override")


def to_datatree(mcmc: Any, *, model_args: tuple = (), model_kwargs: dict | None = None,
                observed_data: Mapping[str, Any] | None = None,
                **from_numpyro_kwargs: Any) -> xr.DataTree:
    """ArviZ DataTree of a run, with what the detailed-balance checks need.

    Adds ``position`` (unconstrained, flattened, dims ``(chain, draw, unconstrained_dim)``)
    to ``sample_stats``. For a MALA/ULA run (which must have run with
    ``extra_fields=DIAGNOSTIC_FIELDS`` and ``thinning=1``) also ``proposal`` and a
    ``langevin`` group with ``step_size`` (chain), ``inverse_mass_matrix`` and attribute
    ``temperature``. Pass ``model_args`` / ``model_kwargs`` as given to ``mcmc.run``.

    ``observed_data`` (``{name: array}``) is added to the ``observed_data`` group: data a
    model scores through ``numpyro.factor`` (a learned energy of the data) has no observed
    site, so ``arviz.from_numpyro`` holds only the factor's empty placeholder there (a
    size-0 variable named after the factor, dropped when ``observed_data`` is given).
    ArviZ builds the variables (``arviz_base.dict_to_dataset``): ``dims`` and ``coords``
    apply as to the model's own sites, unnamed dimensions are ``<name>_dim_<i>``, each with
    an index coordinate. A name ArviZ already filled from an observed site raises
    ``ValueError``, as do ``dims`` or ``coords`` that do not fit the array; a value that is
    not a mapping of ``str`` names, or a ``dims`` entry given as one string, raises
    ``TypeError``. Other keyword arguments go to ``arviz.from_numpyro``.
    """
    _require_mcmc(mcmc, "to_datatree")
    langevin = _is_langevin_run(mcmc)
    fields = _langevin_fields(mcmc) if langevin else None
    dt = from_numpyro(mcmc, **from_numpyro_kwargs)
    if observed_data is not None:
        dt["observed_data"] = xr.DataTree(_observed_group(
            dt, observed_data, from_numpyro_kwargs.get("coords"),
            from_numpyro_kwargs.get("dims")))
    position = unconstrained_draws(mcmc, model_args, model_kwargs)
    ss = dt["sample_stats"].to_dataset()
    if langevin:
        proposal = _flatten_chains(fields["proposal"])
        # snap to the logged proposal where the step was accepted (recovers its exact bits)
        close = np.all(np.abs(position - proposal) <= 1e-5 * (1.0 + np.abs(proposal)), -1)
        position = np.where(close[..., None], proposal, position)
        ss["proposal"] = (("chain", "draw", _UDIM), proposal)
    ss["position"] = (("chain", "draw", _UDIM), position)
    dt["sample_stats"] = xr.DataTree(ss)
    if langevin:
        dt["langevin"] = _langevin_group(mcmc, dt["sample_stats"]["chain"].values)
    return dt


def from_datatree(dt: xr.DataTree) -> Transitions:
    """Transitions from the :func:`to_datatree` DataTree of a MALA/ULA run.

    Draw ``t`` holds the state after step ``t`` and the proposal of step ``t``, so the
    pairs are ``(position[t-1], proposal[t])`` with ``log_accept_ratio[t]`` (each chain's
    first draw is dropped).
    """
    for group, var in (("sample_stats", "position"), ("sample_stats", "proposal"),
                       ("langevin", "step_size")):
        if group not in dt.children or var not in dt[group].data_vars:
            raise ValueError(
                f"dt has no {group}/{var}: build it with numpyro_ebm.diagnostics."
                "to_datatree(mcmc) from a MALA/ULA run; runs of other kernels have no "
                "Langevin proposals (use diagnose(mcmc) or probe_transitions)")
    ss, lg = dt["sample_stats"], dt["langevin"]
    x = ss["position"].values
    y = ss["proposal"].values
    ratio = ss["log_accept_ratio"].values
    m = lg["inverse_mass_matrix"].values if "inverse_mass_matrix" in lg.data_vars else None
    if m is not None and m.ndim == 2:  # per-chain diagonal -> dense: unambiguous shapes
        m = np.einsum("cd,de->cde", m, np.eye(m.shape[1]))
    return make_transitions(x[:, :-1], y[:, 1:], lg["step_size"].values, m,
                            lg.attrs.get("temperature", 1.0), ratio[:, 1:])


def add_group(dt: xr.DataTree, dataset: xr.Dataset, name: str = "detailed_balance"
              ) -> xr.DataTree:
    """Store a diagnostics dataset as group ``name`` of ``dt`` (in place; returns ``dt``)."""
    dt[name] = xr.DataTree(dataset)
    return dt


def _probe_step(mcmc: Any, probe_step_size: float | None) -> float:
    """The probe's Langevin ``h``: given, or ``eps^2 / 2`` of the run's leapfrog step."""
    if probe_step_size is not None:
        return positive_float(probe_step_size, "probe_step_size")
    eps = getattr(getattr(mcmc.last_state, "adapt_state", None), "step_size", None)
    if eps is None:
        raise ValueError(f"a {type(mcmc.sampler).__name__} run has no step size to derive "
                         "the probes' Langevin step from; pass probe_step_size=h")
    return float(np.mean(np.asarray(eps, np.float64)) ** 2 / 2.0)


def diagnose(mcmc: Any, *, model_args: tuple = (), model_kwargs: dict | None = None,
             probe_step_size: float | None = None, probe_seed: int | None = None,
             group: str = "detailed_balance", observed_data: Mapping[str, Any] | None = None,
             **kwargs: Any) -> tuple[xr.DataTree, DetailedBalanceReport]:
    """:func:`to_datatree` + :func:`detailed_balance` on the kernel's own potential.

    A MALA/ULA run (with ``extra_fields=DIAGNOSTIC_FIELDS``) is checked on its logged
    transitions. Any other run (NUTS, HMC, ...) is checked through Langevin probe proposals
    drawn from its states (:func:`probe_transitions`; ratio consistency and innovations do
    not apply) with Langevin step ``probe_step_size``, by default ``eps^2 / 2`` of the run's
    adapted leapfrog step ``eps`` (one leapfrog step of HMC is a Langevin step of that
    ``h``); ``probe_seed`` (default 0) seeds the probes. The probe arguments are refused for
    MALA/ULA runs (they are checked on their own proposals).

    Pass ``model_args`` / ``model_kwargs`` as given to ``mcmc.run``; ``observed_data`` goes
    to :func:`to_datatree` (the data a ``numpyro.factor`` scores). Returns the DataTree
    (with the report stored as group ``group``) and the report; ``kwargs`` go to
    :func:`detailed_balance`.
    """
    _require_mcmc(mcmc, "diagnose")
    dt = to_datatree(mcmc, model_args=model_args, model_kwargs=model_kwargs,
                     observed_data=observed_data)
    potential = flat_potential(mcmc, model_args, model_kwargs)
    if _is_langevin_run(mcmc):
        given = [k for k, v in (("probe_step_size", probe_step_size),
                                ("probe_seed", probe_seed)) if v is not None]
        if given:
            raise ValueError(f"{given} apply to runs of other kernels; a "
                             f"{type(mcmc.sampler).__name__} run is checked on its own "
                             "logged proposals: drop them")
        transitions, attrs = from_datatree(dt), {"source": "kernel"}
    else:
        h = _probe_step(mcmc, probe_step_size)
        transitions = probe_transitions(dt["sample_stats"]["position"].values, potential, h,
                                        seed=0 if probe_seed is None else probe_seed)
        attrs = {"source": "probe", "probe_step_size": h}
    report = detailed_balance(transitions, potential, **kwargs)
    ds = report.to_dataset()
    ds.attrs.update(attrs)
    return add_group(dt, ds, group), report
