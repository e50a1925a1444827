"""Conditional noise-contrastive estimation (CNCE; Ceylan & Gutmann 2018).

Each data point ``x`` is contrasted with ``kappa`` perturbed copies ``y = x + s * eps``,
``eps ~ N(0, I)``. The classifier tells the ordered pair ``(x, y)`` from ``(y, x)``; the
perturbation is symmetric, so its density cancels and so does ``Z``:
``G(x, y) = E(y) - E(x)``, ``loss = mean softplus(E(x) - E(y))``.
No noise density, no ``log Z`` parameter: it learns the energy only (up to a constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .. import _random
from ..checks import positive_float
from ..energy import batched_energy, check_energy
from ..typing import Array, EnergyFn, Params
from .base import Metrics, Objective, all_metrics_finite, from_spec, unpaired_batch
from .nce import check_noise_ratio

__all__ = ["conditional_noise_contrastive_estimation"]


@dataclass(frozen=True)
class _CNCE:
    noise_scale: float
    noise_ratio: int

    def init(self, key, energy_fn: EnergyFn, params: Params, batch):
        batch = unpaired_batch(batch, "conditional_noise_contrastive_estimation")
        check_energy(energy_fn, params, tuple(batch.shape[1:]))
        return (), ()

    def loss(self, energy_fn: EnergyFn, params: Params, extras, state, batch, key):
        batch = unpaired_batch(batch, "conditional_noise_contrastive_estimation")
        k = batch.ndim - 1
        eps = _random.normal(key, (self.noise_ratio,) + batch.shape, batch.dtype)
        e_x = batched_energy(energy_fn, params, batch, k)
        e_y = batched_energy(energy_fn, params, batch + self.noise_scale * eps, k)
        diff = e_x - e_y  # -G(x, y): the logit of the true order is E(y) - E(x)
        value = jnp.mean(jax.nn.softplus(diff))
        return value, (state, {"accuracy": jnp.mean(diff < 0)})

    def is_healthy(self, metrics: Metrics) -> Array:
        return all_metrics_finite(metrics)


def conditional_noise_contrastive_estimation(noise_scale: float, noise_ratio: int = 1
                                             ) -> Objective:
    """CNCE objective with Gaussian perturbations of scale ``noise_scale``.

    Parameters
    ----------
    noise_scale
        ``s > 0``: the standard deviation of the perturbation ``y = x + s eps``. Small ``s``
        approaches score matching; larger ``s`` sees more of the energy landscape.
    noise_ratio
        ``kappa >= 1`` perturbed copies per data point.

    Returns
    -------
    An :class:`~numpyro_ebm.objectives.Objective` (no extras); metric ``accuracy``.
    """
    scale = positive_float(noise_scale, "noise_scale")
    kappa = check_noise_ratio(noise_ratio)
    return from_spec(_CNCE(scale, kappa), f"cnce(s={scale:g}, kappa={kappa})")
