"""Energy discrepancy (Schroder, Ou, Lim, Li, Vollmer & Duncan 2023): MCMC-free and score-free.

With a Gaussian perturbation ``y = x + s xi`` (``t = s^2``), the contrastive potential of an
energy ``E`` is ``E_t(y) = -log E_{x' ~ N(y, t I)}[exp(-E(x'))]`` and the energy discrepancy
``ED(p, E) = E_p[E(x)] - E_p E_{y|x}[E_t(y)]`` is minimised exactly by ``E = -log p + c``.
The estimator of the paper draws, for each data point ``x_i``, one ``xi_i`` and ``M``
negatives ``x_ij = x_i + s xi_i + s xi'_ij`` and minimises

``L = mean_i log( w / M + (1 / M) sum_j exp(E(x_i) - E(x_ij)) )``.

The weight ``w`` stabilises training (it bounds the loss below by ``log(w / M)``). With
``w = 1`` the loss is the classification loss of picking the data point ``x_i`` out of
``{x_i, x_i1, ..., x_iM}`` given ``y_i``; the ``x_ij`` follow ``q(. | y_i)`` and ``x_i`` follows
``p(. | y_i)``, so the Bayes-optimal logits are ``log p(x) + c``: the estimator is consistent
for every ``M`` (tested on Gaussian data with a quadratic energy). No ``log Z``, no MCMC, no
derivatives of ``E`` with respect to ``x``: a step costs ``M + 1`` energy evaluations per
data point and one backward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from .. import _random
from ..checks import positive_float, positive_int
from ..energy import batched_energy, check_energy
from ..typing import Array, EnergyFn, Params
from .base import Metrics, Objective, all_metrics_finite, from_spec, unpaired_batch

__all__ = ["energy_discrepancy"]

_NAME = "energy_discrepancy"


@dataclass(frozen=True)
class _EnergyDiscrepancy:
    noise_scale: float  # s = sqrt(t)
    num_samples: int  # M
    weight: float  # w

    def init(self, key, energy_fn: EnergyFn, params: Params, batch):
        batch = unpaired_batch(batch, _NAME)
        check_energy(energy_fn, params, tuple(batch.shape[1:]), dtype=batch.dtype)
        return (), ()

    def loss(self, energy_fn: EnergyFn, params: Params, extras, state, batch, key):
        x = unpaired_batch(batch, _NAME)
        k = x.ndim - 1
        k_y, k_neg = jax.random.split(key)
        s, m = self.noise_scale, self.num_samples
        y = x + s * _random.normal(k_y, x.shape, x.dtype)
        x_neg = y + s * _random.normal(k_neg, (m,) + x.shape, x.dtype)  # (M, B, ...)
        e_pos = batched_energy(energy_fn, params, x, k)
        e_neg = batched_energy(energy_fn, params, x_neg.reshape((-1,) + x.shape[1:]), k)
        e_neg = e_neg.reshape(m, x.shape[0])
        diff = e_pos[None, :] - e_neg  # (M, B)
        if self.weight > 0:
            stab = jnp.full((1, x.shape[0]), math.log(self.weight), diff.dtype)
            diff = jnp.concatenate([stab, diff], 0)
        per_point = logsumexp(diff, axis=0) - math.log(m)
        metrics = {"energy_data": jnp.mean(e_pos), "energy_negatives": jnp.mean(e_neg),
                   "data_lowest": jnp.mean(e_pos < jnp.min(e_neg, 0))}
        return jnp.mean(per_point), (state, metrics)

    def is_healthy(self, metrics: Metrics) -> Array:
        return all_metrics_finite(metrics)


def energy_discrepancy(noise_scale: float, num_samples: int = 16, *,
                       weight: float = 1.0) -> Objective:
    """Energy discrepancy with Gaussian perturbations (Schroder et al. 2023).

    ``L = mean_i log( w / M + (1 / M) sum_j exp(E(x_i) - E(x_ij)) )`` with negatives
    ``x_ij = x_i + s xi_i + s xi'_ij`` (one ``xi_i`` per data point, ``M`` draws
    ``xi'_ij``, all standard normal).

    Parameters
    ----------
    noise_scale
        ``s = sqrt(t) > 0``, the standard deviation of each of the two perturbations. Small
        ``s`` behaves like score matching (local); large ``s`` sees more of the landscape but
        gives noisier gradients. Choose it near the scale of the data's structure.
    num_samples
        ``M >= 1`` negatives per data point (cost: ``M + 1`` energy evaluations per point).
    weight
        ``w >= 0``, the stabilising weight of the paper. ``w = 1`` (default) makes the loss a
        classification loss that is consistent for every ``M``; ``w = 0`` is the plain
        estimator, which may diverge; other values bias the minimiser for finite ``M``.

    Returns
    -------
    Objective
        An :class:`~numpyro_ebm.objectives.Objective` (no extras, no state); metrics
        ``energy_data`` (mean ``E`` of the batch), ``energy_negatives`` (mean ``E`` of the
        negatives) and ``data_lowest`` (fraction of points whose energy is below all of their
        negatives').
    """
    s = positive_float(noise_scale, "noise_scale")
    m = positive_int(num_samples, "num_samples")
    w = positive_float(weight, "weight", allow_zero=True)
    return from_spec(_EnergyDiscrepancy(s, m, w), f"ed(s={s:g}, M={m}, w={w:g})")
