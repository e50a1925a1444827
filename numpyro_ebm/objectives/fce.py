"""Flow contrastive estimation (FCE; Gao et al. 2020): NCE against a trainable flow.

The noise is a normalizing flow ``q_alpha`` (exact samples and log density). With
``G(u) = -E(u) - log Z - log q_alpha(u)``, the energy (and ``log Z``) *minimise* the NCE
logistic loss (:func:`~numpyro_ebm.objectives.nce.logistic_nce_loss`) while the flow
*maximises* it, ``min_{E, log Z} max_alpha L``: the flow chases the data where the energy
is still wrong, which keeps the classification task informative. One optimizer step
serves both players: the flow parameters pass through
:func:`~numpyro_ebm.objectives.reverse_gradient` inside the loss.

Schedule: at step ``t`` (a counter in the objective state) the energy's gradient is kept
when ``t % energy_every == 0`` and the flow's when ``t % flow_every == 0``; otherwise it is
zeroed (stateful optimizers such as Adam may still move by momentum).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..checks import positive_int
from ..energy import batched_energy, check_energy
from ..flows import CouplingFlow, FlowDistribution
from ..typing import Array, EnergyFn, Params
from .base import (
    ByValue,
    Metrics,
    Objective,
    all_metrics_finite,
    from_spec,
    reverse_gradient,
    unpaired_batch,
)
from .nce import check_noise_ratio, initial_log_normalizer, logistic_nce_loss

__all__ = ["FCEExtras", "FCEState", "flow_contrastive_estimation", "flow_distribution"]


class FCEExtras(NamedTuple):
    """Trainable extras of FCE: ``log Z`` of the energy and the flow's parameters."""

    log_normalizer: Array
    flow: Params


class FCEState(NamedTuple):
    """Non-trainable FCE state: the step counter driving the alternation schedule."""

    step: Array


def _gate(tree: Any, on: Array) -> Any:
    """Identity in value; gradient passes only where ``on`` is true."""
    return jax.tree.map(lambda t: jnp.where(on, t, jax.lax.stop_gradient(t)), tree)


@partial(jax.jit, static_argnums=(0, 1))
def _fce_start(energy_fn: EnergyFn, flow_fn: Any, params: Params, flow_params: Any, key) -> Array:
    """Starting ``log Z`` from 1024 flow draws (one compilation per energy, flow and shapes)."""
    y, log_q = flow_fn.sample_and_log_prob(flow_params, key, 1024)
    return initial_log_normalizer(energy_fn, params, y, log_q)


@dataclass(frozen=True)
class _FCE:
    flow_fn: CouplingFlow
    flow_params: ByValue  # the initial flow parameters, compared by value
    noise_ratio: int
    flow_every: int
    energy_every: int

    def _batch(self, batch) -> Array:
        batch = unpaired_batch(batch, "flow_contrastive_estimation")
        if tuple(batch.shape[1:]) != (self.flow_fn.dim,):
            raise ValueError(f"flow_contrastive_estimation: data events have shape "
                             f"{tuple(batch.shape[1:])} but the flow is over "
                             f"({self.flow_fn.dim},)")
        return batch

    def init(self, key, energy_fn: EnergyFn, params: Params, batch):
        batch = self._batch(batch)
        check_energy(energy_fn, params, (self.flow_fn.dim,))
        flow_params = self.flow_params.value
        log_z = _fce_start(energy_fn, self.flow_fn, params, flow_params, key).astype(batch.dtype)
        return FCEExtras(log_z, flow_params), FCEState(jnp.zeros((), jnp.int32))

    def loss(self, energy_fn: EnergyFn, params: Params, extras: FCEExtras, state: FCEState,
             batch, key):
        batch = self._batch(batch)
        energy_on = state.step % self.energy_every == 0
        flow_on = state.step % self.flow_every == 0
        params = _gate(params, energy_on)
        log_z = _gate(extras.log_normalizer, energy_on)
        flow_p = reverse_gradient(_gate(extras.flow, flow_on))
        nu = self.noise_ratio
        y, log_q_y = self.flow_fn.sample_and_log_prob(flow_p, key, nu * batch.shape[0])
        log_q_x = jax.vmap(lambda x: self.flow_fn.log_prob(flow_p, x))(batch)
        g_data = -batched_energy(energy_fn, params, batch, 1) - log_z - log_q_x
        g_noise = -batched_energy(energy_fn, params, y, 1) - log_z - log_q_y
        value, acc = logistic_nce_loss(g_data, g_noise, nu)
        metrics = {"accuracy": acc, "log_normalizer": extras.log_normalizer,
                   "flow_log_likelihood": jnp.mean(log_q_x)}
        return value, (FCEState(state.step + 1), metrics)

    def is_healthy(self, metrics: Metrics) -> Array:
        return all_metrics_finite(metrics)


def flow_contrastive_estimation(
    flow_fn: CouplingFlow,
    flow_params: Params,
    noise_ratio: int = 1,
    *,
    flow_every: int = 1,
    energy_every: int = 1,
) -> Objective:
    """FCE objective: NCE whose noise is a flow trained adversarially against the energy.

    Parameters
    ----------
    flow_fn
        The flow, a :class:`~numpyro_ebm.flows.CouplingFlow` from
        :func:`numpyro_ebm.flows.coupling_flow`.
    flow_params
        Its initial parameters (initialising the flow at the data's mean and std helps).
        They are compared by value: equal settings give equal objectives that share
        compiled code.
    noise_ratio
        ``nu >= 1`` flow samples per data point.
    flow_every
        Update the flow only on steps ``t`` with ``t % flow_every == 0``.
    energy_every
        Update the energy (and ``log Z``) only on steps ``t`` with ``t % energy_every == 0``.

    Returns
    -------
    Objective
        An :class:`~numpyro_ebm.objectives.Objective` with ``extras`` an :class:`FCEExtras`
        (``log_normalizer``, ``flow``) and state an :class:`FCEState`; metrics ``accuracy``,
        ``log_normalizer`` and ``flow_log_likelihood`` (mean ``log q`` of the data batch).
        Get the fitted flow with :func:`flow_distribution`.
    """
    if not isinstance(flow_fn, CouplingFlow):
        raise TypeError(f"flow_fn must be a CouplingFlow (from numpyro_ebm.flows.coupling_flow),"
                        f" got {type(flow_fn).__name__}")
    FlowDistribution(flow_fn, flow_params)  # validates the parameters
    nu = check_noise_ratio(noise_ratio)
    spec = _FCE(flow_fn, ByValue(flow_params), nu, positive_int(flow_every, "flow_every"),
                positive_int(energy_every, "energy_every"))
    return from_spec(spec, f"fce(nu={nu})")


def flow_distribution(flow_fn: CouplingFlow, result: Any) -> FlowDistribution:
    """The flow fitted by FCE (``result.extras.flow``) as a NumPyro distribution."""
    extras = getattr(result, "extras", None)
    if not isinstance(extras, FCEExtras):
        raise ValueError(f"result.extras must be FCEExtras from an FCE fit, got {extras!r}")
    return FlowDistribution(flow_fn, extras.flow)
