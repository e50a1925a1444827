"""Noise-contrastive estimation (NCE) and likelihood-ratio estimation by classification.

NCE (Gutmann & Hyvarinen 2010, 2012) fits ``log p_m(x) = -E(x) - c`` with the log normaliser
``c = log Z`` as a free (trainable) parameter, by logistic regression of data against
``nu`` noise samples per data point:
``G(u) = log p_m(u) - log q(u)``,
``loss = [sum_x softplus(log nu - G(x)) + sum_y softplus(G(y) - log nu)] / ((1 + nu) B)``.
Its minimiser has ``p_m = p_data``, so the learned ``c`` is the log partition function.

Ratio estimation (the "learned likelihood" of simulation-based inference) is the same
classifier with data = simulator pairs ``(x, theta) ~ p(x, theta)`` and noise = mismatched
pairs ``~ p(x) p(theta)`` (theta shuffled within the batch). With logit
``-E(x, theta) - log nu`` the minimiser is
``-E(params, x, theta) = log p(x | theta) - log p(x)``: no normaliser is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp
from numpyro.distributions import Distribution

from ..energy import batched_energy, check_energy
from ..typing import Array, EnergyFn, Params
from .base import ByValue, Metrics, Objective, all_metrics_finite, from_spec, unpaired_batch

__all__ = [
    "NCEExtras",
    "logistic_nce_loss",
    "noise_contrastive_estimation",
    "noise_log_prob",
    "normalized_distribution",
    "ratio_estimation",
]


class NCEExtras(NamedTuple):
    """Trainable extras of NCE: the log normaliser ``log Z`` (so ``log p = -E - log Z``)."""

    log_normalizer: jax.Array


def check_noise_ratio(noise_ratio: Any, name: str = "noise_ratio") -> int:
    """Return ``noise_ratio`` as an int >= 1 or raise ``ValueError`` naming it."""
    if isinstance(noise_ratio, bool) or not isinstance(noise_ratio, int | np.integer):
        raise TypeError(f"{name} must be an int >= 1 (noise samples per data point), "
                        f"got {type(noise_ratio).__name__}: {noise_ratio!r}")
    if noise_ratio < 1:
        raise ValueError(f"{name} must be >= 1 (noise samples per data point), got {noise_ratio}")
    return int(noise_ratio)


def logistic_nce_loss(
    log_ratio_data: jax.Array, log_ratio_noise: jax.Array, noise_ratio: int
) -> tuple[jax.Array, jax.Array]:
    """NCE logistic loss from log ratios ``G = log p_m - log q`` of data and noise points.

    ``loss = [sum softplus(log nu - G_data) + sum softplus(G_noise - log nu)] / n_total``,
    written with ``softplus = logaddexp(., 0)`` so that very confident classifiers
    (huge ``|G|``) neither overflow nor lose the gradient. Returns ``(loss, accuracy)``.
    """
    log_nu = math.log(noise_ratio)
    logit_d = log_ratio_data - log_nu
    logit_n = log_ratio_noise - log_nu
    total = logit_d.size + logit_n.size
    loss = (jnp.sum(jax.nn.softplus(-logit_d)) + jnp.sum(jax.nn.softplus(logit_n))) / total
    correct = jnp.sum(logit_d > 0) + jnp.sum(logit_n <= 0)
    return loss, correct / total


def _event_noise(noise: Distribution, event_shape: tuple[int, ...]) -> Distribution:
    """``noise`` as a distribution whose events have ``event_shape`` (batch dims moved in)."""
    full = tuple(noise.batch_shape) + tuple(noise.event_shape)
    if full != tuple(event_shape):
        raise ValueError(
            f"noise has batch_shape {tuple(noise.batch_shape)} and event_shape "
            f"{tuple(noise.event_shape)} (together {full}), but the data's event_shape is "
            f"{tuple(event_shape)}; expected a noise distribution over one data event, e.g. "
            "dist.Normal(jnp.zeros(d), 1.0).to_event(1) for data of shape (N, d)."
        )
    nb = len(noise.batch_shape)
    return noise.to_event(nb) if nb else noise


def _check_noise(noise: Any) -> Distribution:
    if not isinstance(noise, Distribution):
        raise TypeError(
            "noise must be a numpyro.distributions.Distribution with sample and log_prob "
            f"(e.g. dist.Normal(jnp.zeros(d), 1.0).to_event(1)), got {type(noise).__name__}"
        )
    return noise


def noise_log_prob(noise: Distribution, u: Array) -> Array:
    """``log q(u)`` for a batch ``u`` of events; a ``MultivariateNormal`` without solves.

    NumPyro's ``MultivariateNormal.log_prob`` does one triangular solve against the whole
    batch; inside a training step on XLA:CPU that solve cost 5-10x the rest of an NCE step
    (measured, ``benchmarks/bench_nce.py``). Here the ``d x d`` inverse of the Cholesky
    factor is formed once per call and applied by a matrix product:
    ``log q(u) = -|L^-1 (u - m)|^2 / 2 - sum log diag L - (d / 2) log 2 pi``.
    """
    if isinstance(noise, dist.MultivariateNormal) and noise.batch_shape == ():
        tril = noise.scale_tril
        d = tril.shape[-1]
        inv = solve_triangular(tril, jnp.eye(d, dtype=tril.dtype), lower=True)
        z = (u - noise.loc) @ inv.T
        half_log_det = jnp.sum(jnp.log(jnp.diagonal(tril)))
        return -0.5 * jnp.sum(z * z, -1) - half_log_det - 0.5 * d * math.log(2 * math.pi)
    return noise.log_prob(u)


@partial(jax.jit, static_argnums=0)
def _nce_start(energy_fn: EnergyFn, params: Params, q: Distribution, key) -> Array:
    """Starting ``log Z`` from 1024 noise draws (one compilation per energy and shapes)."""
    y = q.sample(key, (1024,))
    return initial_log_normalizer(energy_fn, params, y, noise_log_prob(q, y))


@dataclass(frozen=True)
class _NCE:
    noise: ByValue  # a Distribution, compared by value
    noise_ratio: int

    def _noise(self, event_shape: tuple[int, ...]) -> Distribution:
        return _event_noise(self.noise.value, event_shape)

    def init(self, key, energy_fn: EnergyFn, params: Params, batch):
        batch = unpaired_batch(batch, "noise_contrastive_estimation")
        event_shape = tuple(batch.shape[1:])
        check_energy(energy_fn, params, event_shape)
        q = self._noise(event_shape)
        return NCEExtras(_nce_start(energy_fn, params, q, key).astype(batch.dtype)), ()

    def loss(self, energy_fn: EnergyFn, params: Params, extras: NCEExtras, state, batch, key):
        batch = unpaired_batch(batch, "noise_contrastive_estimation")
        event_shape = tuple(batch.shape[1:])
        q = self._noise(event_shape)
        nu = self.noise_ratio
        y = jax.lax.stop_gradient(q.sample(key, (nu * batch.shape[0],)))
        k = len(event_shape)
        log_z = extras.log_normalizer
        g_data = -batched_energy(energy_fn, params, batch, k) - log_z - noise_log_prob(q, batch)
        g_noise = -batched_energy(energy_fn, params, y, k) - log_z - noise_log_prob(q, y)
        value, acc = logistic_nce_loss(g_data, g_noise, nu)
        return value, (state, {"accuracy": acc, "log_normalizer": log_z})

    def is_healthy(self, metrics: Metrics) -> Array:
        return all_metrics_finite(metrics)


def noise_contrastive_estimation(noise: Distribution, noise_ratio: int = 1) -> Objective:
    """NCE with a fixed noise distribution and a trainable log normaliser.

    Model ``log p_m(x) = -E(params, x) - log Z``; ``log Z`` is trained jointly with
    ``params`` and returned in ``extras`` (an :class:`NCEExtras`). The loss is
    :func:`logistic_nce_loss` with ``nu = noise_ratio`` fresh noise draws per data point.

    Parameters
    ----------
    noise
        Any NumPyro distribution over one data event with ``sample`` and ``log_prob``.
        It should cover the data (heavier tails than the data are safest). Its parameters
        are part of the objective's value: equal noise (same class, bitwise-equal
        parameters) gives equal objectives that share compiled code.
    noise_ratio
        ``nu >= 1``, noise samples per data point (larger: lower variance, closer to MLE).

    Returns
    -------
    Objective
        An :class:`~numpyro_ebm.objectives.Objective`; metrics ``accuracy`` and
        ``log_normalizer``.
    """
    noise = _check_noise(noise)
    nu = check_noise_ratio(noise_ratio)
    return from_spec(_NCE(ByValue(noise), nu), f"nce(nu={nu})")


def initial_log_normalizer(energy_fn: EnergyFn, params: Params, y: jax.Array,
                           log_q: jax.Array) -> jax.Array:
    """Importance estimate ``log mean exp(-E(y) - log q(y))`` from ``y ~ q`` (0 if not finite).

    The starting value of the trainable ``log Z`` in NCE and FCE.
    """
    k = y.ndim - 1
    log_z = logsumexp(-batched_energy(energy_fn, params, y, k) - log_q) - math.log(y.shape[0])
    return jnp.where(jnp.isfinite(log_z), log_z, 0.0)


def normalized_distribution(
    energy_fn: EnergyFn,
    result: Any,
    event_shape: tuple[int, ...] | int,
    **kwargs: Any,
):
    """The fitted energy as a *normalized* :class:`~numpyro_ebm.EnergyDistribution`.

    ``log_prob(x) = -E(result.params, x) - result.extras.log_normalizer``: a proper density
    that may be observed with latent parameters elsewhere in a model. ``result`` is a
    :class:`~numpyro_ebm.training.FitResult` (or anything with ``params`` and ``extras``) from an
    NCE or FCE fit. Extra keyword arguments go to ``EnergyDistribution``.
    """
    from ..distribution import EnergyDistribution

    extras = getattr(result, "extras", None)
    log_z = getattr(extras, "log_normalizer", None)
    if log_z is None and isinstance(extras, dict):
        log_z = extras.get("log_normalizer")
    if log_z is None:
        raise ValueError(
            "result.extras has no log_normalizer: normalized_distribution needs the result "
            f"of an NCE or FCE fit, got extras={extras!r}"
        )
    return EnergyDistribution(
        energy_fn, result.params, event_shape=event_shape, log_normalizer=log_z, **kwargs
    )


# --------------------------------------------------------------------- ratio estimation
def _check_pairs(batch: Any) -> tuple[jax.Array, jax.Array]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            "ratio_estimation needs paired simulations: a tuple (x, theta) of arrays with the "
            f"same leading dimension, got {type(batch).__name__}"
        )
    x, theta = (jnp.asarray(b) for b in batch)
    if x.ndim < 1 or theta.ndim < 1 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            "ratio_estimation: x and theta must share the leading (simulation) dimension, got "
            f"shapes {x.shape} and {theta.shape}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"ratio_estimation needs batch_size >= 2 to mismatch pairs, got "
                         f"{x.shape[0]}")
    return x, theta


def _derangement(key, n: int) -> jax.Array:
    """Indices ``s`` with ``s[i] != i``: one random cycle through all ``n`` items."""
    perm = jax.random.permutation(key, n)
    return jnp.zeros((n,), perm.dtype).at[perm].set(jnp.roll(perm, -1))


@dataclass(frozen=True)
class _RatioEstimation:
    noise_ratio: int

    def init(self, key, energy_fn: EnergyFn, params: Params, batch):
        x, theta = _check_pairs(batch)
        check_energy(energy_fn, params, tuple(x.shape[1:]),
                     jax.ShapeDtypeStruct(theta.shape[1:], theta.dtype))
        return (), ()

    def loss(self, energy_fn: EnergyFn, params: Params, extras, state, batch, key):
        x, theta = _check_pairs(batch)
        n, nu = x.shape[0], self.noise_ratio
        keys = jax.random.split(key, nu)
        idx = jnp.concatenate([_derangement(k, n) for k in keys])
        g_data = -_pair_energies(energy_fn, params, x, theta)
        g_noise = -_pair_energies(energy_fn, params, jnp.tile(x, (nu,) + (1,) * (x.ndim - 1)),
                                  theta[idx])
        value, acc = logistic_nce_loss(g_data, g_noise, nu)
        return value, (state, {"accuracy": acc})

    def is_healthy(self, metrics: Metrics) -> Array:
        return all_metrics_finite(metrics)


def _pair_energies(energy_fn, params, x, theta):
    return jax.vmap(lambda xi, ti: energy_fn(params, xi, ti))(x, theta)


def ratio_estimation(noise_ratio: int = 1) -> Objective:
    """Learn a log likelihood ratio from simulator pairs by classification.

    Data are pairs ``(x_i, theta_i) ~ p(theta) p(x | theta)``; contrast pairs
    ``(x_i, theta_s(i))`` (``s`` a random derangement, ``noise_ratio`` of them per pair)
    follow ``p(x) p(theta)``. With logit ``-E(params, x, theta) - log nu`` the optimum is

    ``-E(params, x, theta) = log p(x | theta) - log p(x)``,

    with ``p(x)`` the prior-predictive density of the simulations. Use the result as a
    likelihood with :func:`numpyro_ebm.likelihood.ratio_factor`. The batch is the tuple
    ``(x, theta)``; ``extras`` is empty.
    """
    nu = check_noise_ratio(noise_ratio)
    return from_spec(_RatioEstimation(nu), f"ratio_estimation(nu={nu})")
