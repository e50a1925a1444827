"""Multi-class contrastive ratio estimation (NRE-B; Durkan, Murray & Papamakarios 2020,
"On contrastive learning for likelihood-free inference", ICML).

Each simulated pair ``(x_i, theta_i)`` is shown with ``K - 1`` other parameters
``theta_j`` of the batch (``K`` "atoms"); a classifier with logits
``f(x_i, theta) = -E(params, x_i, theta)`` must pick the true one:

``loss = -mean_i log softmax_k f(x_i, theta_ik)[true]``.

The minimiser is ``-E(params, x, theta) = log p(x | theta) - log p(x) + c(x)``: the log
likelihood ratio up to a function of ``x`` alone, which cancels in any posterior over
``theta`` (``p(theta | x) ∝ p(theta) exp(-E(params, x, theta))``). Larger ``K`` gives a
sharper contrast (the binary objective,
:func:`~numpyro_ebm.objectives.ratio_estimation`, sees one alternative per pair).

The batch is the tuple ``(x, theta)`` (shapes ``(B,) + x_event`` and ``(B,) + theta_event``),
as for ``ratio_estimation``; the energy is ``energy_fn(params, x, theta) -> scalar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from ..checks import positive_int
from ..energy import check_energy
from ..typing import Array, EnergyFn, Params
from .base import Objective, all_metrics_finite, from_spec

__all__ = ["contrastive_ratio_estimation"]


def _pairs(batch: Any, num_atoms: int) -> tuple[Array, Array]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            "contrastive_ratio_estimation needs paired simulations: a tuple (x, theta) of "
            f"arrays with the same leading dimension, got {type(batch).__name__}")
    x, theta = (jnp.asarray(b) for b in batch)
    if x.ndim < 1 or theta.ndim < 1 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            "contrastive_ratio_estimation: x and theta must share the leading (simulation) "
            f"dimension, got shapes {x.shape} and {theta.shape}")
    if x.shape[0] < num_atoms:
        raise ValueError(
            f"contrastive_ratio_estimation: batch_size must be >= num_atoms = {num_atoms} "
            f"(the contrasting parameters come from the batch), got {x.shape[0]}")
    return x, theta


@dataclass(frozen=True)
class _ContrastiveRatioEstimation:
    num_atoms: int

    def init(self, key: Any, energy_fn: EnergyFn, params: Params, batch: Any):
        x, theta = _pairs(batch, self.num_atoms)
        check_energy(energy_fn, params, tuple(x.shape[1:]),
                     jax.ShapeDtypeStruct(theta.shape[1:], theta.dtype))
        return (), ()

    def loss(self, energy_fn: EnergyFn, params: Params, extras: Any, state: Any,
             batch: Any, key: Any):
        x, theta = _pairs(batch, self.num_atoms)
        n, k = x.shape[0], self.num_atoms
        # K - 1 distinct offsets in 1..n-1: pair i meets theta_{(i + offset) mod n}
        offsets = 1 + jax.random.choice(key, n - 1, (k - 1,), replace=False)
        idx = jnp.concatenate([jnp.arange(n)[:, None],
                               (jnp.arange(n)[:, None] + offsets[None]) % n], 1)  # (n, K)

        def logits(xi, ids):
            return jax.vmap(lambda t: -energy_fn(params, xi, t))(theta[ids])

        f = jax.vmap(logits)(x, idx)  # (n, K); column 0 is the true pair
        loss = -jnp.mean(jax.nn.log_softmax(f, axis=1)[:, 0])
        accuracy = jnp.mean(jnp.argmax(f, axis=1) == 0)
        return loss, (state, {"accuracy": accuracy})

    def is_healthy(self, metrics: dict[str, Array]) -> Array:
        return all_metrics_finite(metrics)


def contrastive_ratio_estimation(num_atoms: int = 10) -> Objective:
    """NRE-B: learn a log likelihood ratio by picking the true ``theta`` among ``K`` atoms.

    Parameters
    ----------
    num_atoms
        ``K >= 2``: the true parameter plus ``K - 1`` parameters of other pairs in the
        batch (distinct, drawn afresh each step). ``K = 2`` is a softmax form of the binary
        classifier; Durkan et al. (2020) and the SBI benchmark use ``K = 10``.

    Returns
    -------
    Objective
        An :class:`~numpyro_ebm.objectives.Objective` for :func:`numpyro_ebm.fit`; the batch is
        ``(x, theta)`` and ``energy_fn(params, x, theta)``; ``extras`` is empty; metric
        ``accuracy`` (how often the true pair has the largest logit; chance is ``1 / K``).
        The learned ``-E`` equals ``log p(x | theta) - log p(x)`` up to a function of ``x``.
        Equal settings give equal (and equally hashed) objectives, so fits share compiled code.

    Raises
    ------
    ValueError
        If ``num_atoms`` is not an int >= 2 (at fit time: a batch smaller than ``K``).
    """
    k = positive_int(num_atoms, "num_atoms")
    if k < 2:
        raise ValueError(f"num_atoms must be an int >= 2 (the true pair and at least one "
                         f"contrast), got {num_atoms!r}")
    return from_spec(_ContrastiveRatioEstimation(k), f"contrastive_ratio_estimation(K={k})")
