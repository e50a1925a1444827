"""Learned likelihood factors and the guard against doubly intractable models.

A ratio ``-E(params, x, theta) = log p(x | theta) - log p(x)`` learned by
:func:`~numpyro_ebm.objectives.ratio_estimation` is a valid likelihood for ``theta``: the
posterior ``p(theta | x_1..N) ∝ p(theta) prod_i exp(-E(params, x_i, theta))`` needs no
theta-dependent normaliser, so NUTS, HMC and the Langevin kernels sample it exactly.

An *unnormalized* energy ``p(x | theta) ∝ exp(-E(x; theta))`` whose parameters depend on
latent sites is not: its log density lacks ``-log Z(theta)`` per observation and the
posterior is wrong. :func:`check_model` finds that pattern before sampling.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer.initialization import init_to_sample
from numpyro.infer.inspect import get_dependencies

from .distribution import UNNORMALIZED_FACTOR, EnergyDistribution
from .energy import EnergyFn, Params, batched_energy, check_params_finite

__all__ = ["DoublyIntractableError", "UNNORMALIZED_FACTOR", "check_model", "ratio_factor"]


_ALTERNATIVES = (
    "Valid alternatives: (1) keep the energy's parameters fixed (not sampled); "
    "(2) learn log Z with noise-contrastive estimation and observe the normalized "
    "distribution, numpyro_ebm.objectives.normalized_distribution(energy_fn, result, "
    "event_shape); (3) learn a likelihood ratio -E(params, x, theta) = log p(x|theta) - "
    "log p(x) with numpyro_ebm.objectives.ratio_estimation() and use "
    "numpyro_ebm.likelihood.ratio_factor(name, energy_fn, params, x_obs, theta), which needs "
    "no theta-dependent normaliser. If Z truly does not depend on these sites (e.g. they only "
    "shift the location of the energy), declare it with a constant log_normalizer= on the "
    "EnergyDistribution (our kernels also take check_model=False). (4) If log Z is known in "
    "closed form as a function of the sampled sites, pass it as log_normalizer= computed from "
    "them; the library's closed-form energies provide it, e.g. gamma_energy's "
    "energy_fn.log_normalizer(params) or quadratic_energy's. See the docs page 'NCE, FCE and "
    "learned likelihoods'."
)


class DoublyIntractableError(ValueError):
    """An unnormalized energy's parameters depend on latent sites (posterior would be wrong)."""


def ratio_factor(
    name: str,
    energy_fn: EnergyFn,
    params: Params,
    x: Any,
    theta: Any,
    *,
    event_ndim: int = 1,
) -> jax.Array:
    """Add a learned log likelihood ratio as the likelihood of observed ``x`` given ``theta``.

    ``numpyro.factor(name, sum_i -E(params, x_i, theta))``, with ``-E = log p(x|theta) -
    log p(x)`` learned by :func:`~numpyro_ebm.objectives.ratio_estimation`. ``x`` has shape
    ``batch + event`` (``event_ndim`` trailing event dims; the batch is iid observations
    sharing one ``theta``). ``theta`` may be latent: the ratio has no theta-dependent
    normaliser. Returns the per-observation log ratios (shape ``batch``).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the factor's site name), got {type(name).__name__}")
    event_ndim = int(event_ndim)
    x = jnp.asarray(x)
    if event_ndim < 0 or x.ndim < event_ndim:
        raise ValueError(
            f"event_ndim must be between 0 and x.ndim = {x.ndim} (x has shape {x.shape}), "
            f"got {event_ndim}"
        )
    check_params_finite(params, "params")
    log_ratio = -batched_energy(energy_fn, params, x, event_ndim, theta)
    numpyro.factor(name, jnp.sum(log_ratio))
    return log_ratio


def _unnormalized_energy(fn: Any) -> bool:
    while isinstance(fn, dist.Independent | dist.ExpandedDistribution | dist.MaskedDistribution):
        fn = fn.base_dist
    return isinstance(fn, EnergyDistribution) and not fn.is_normalized


def _energy_sites(model, args: tuple, kwargs: dict) -> list[tuple[str, str]]:
    """``(site, shown name)`` of unnormalized-energy sites, by one shape-only model run.

    A flagged site may carry the name to show (``energy_factor``'s marker site names its
    factor)."""
    found: list[tuple[str, str]] = []

    def run():
        model_ = handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_sample)
        trace = handlers.trace(model_).get_trace(*args, **kwargs)
        for site in trace.values():
            if site["type"] != "sample":
                continue
            flagged = (site.get("infer") or {}).get(UNNORMALIZED_FACTOR, False)
            if flagged or _unnormalized_energy(site["fn"]):
                shown = flagged if isinstance(flagged, str) else site["name"]
                found.append((site["name"], shown))
        return 0

    jax.eval_shape(run)
    return found


def check_model(model, *args: Any, **kwargs: Any) -> None:
    """Raise :class:`DoublyIntractableError` if a model drops an unknown ``log Z(theta)``.

    Finds every unnormalized :class:`~numpyro_ebm.EnergyDistribution` site (observed or
    latent) and every factor flagged with :data:`UNNORMALIZED_FACTOR`, and asks
    ``numpyro.infer.inspect.get_dependencies`` whether its log density depends on other
    latent sites. If so, the model's density lacks ``-log Z(theta)`` (per observation) and
    any posterior over those latents is wrong. Shape-only tracing: nothing is compiled.

    Silent on valid patterns: energies with fixed parameters, normalized energies
    (``log_normalizer`` set, e.g. learned by NCE), and :func:`ratio_factor`.
    Call it as ``check_model(model, *model_args, **model_kwargs)`` before sampling.
    """
    if not callable(model):
        raise TypeError(f"model must be a callable NumPyro model, got {type(model).__name__}")
    sites = _energy_sites(model, args, kwargs)
    if not sites:
        return
    deps = get_dependencies(model, args, kwargs)["prior_dependencies"]
    for site, name in sites:
        upstream = sorted(u for u in deps.get(site, {}) if u not in (site, name))
        if upstream:
            raise DoublyIntractableError(
                f"Site {name!r} is an unnormalized energy whose parameters depend on the "
                f"latent site(s) {upstream}: its normaliser Z depends on them, and the model "
                f"density is missing -log Z({', '.join(upstream)}) for each event at {name!r}, "
                "so the posterior would be wrong (a doubly intractable model). "
                + _ALTERNATIVES
            )
