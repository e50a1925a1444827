"""MCMC maximum likelihood: contrastive divergence (CD-k) and persistent CD with a replay buffer.

The log-likelihood gradient of ``p(x) = exp(-E(x)) / Z`` is
``grad log p(x) = -grad E(x) + E_model[grad E]``; the model expectation is estimated with
negative samples from ``k`` Langevin steps (:mod:`numpyro_ebm.infer.langevin`) started at the
data (CD-k) or at a replay buffer of past samples (PCD). The loss we minimise is

    L = mean E(data) - mean E(sg(samples)) + alpha (mean E(data)^2 + mean E(samples)^2),

whose gradient is the MLE gradient estimate (``sg`` = stop-gradient: samples carry no
gradient into the params). The sampler follows the library convention
``x' = x - h grad E(x) + sqrt(2 h T) xi`` (target ``exp(-E / T)``); use
:func:`cold_langevin` to translate the independent step/noise scales of EBM papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution

from ..energy import EnergyFn, Params, batched_energy, check_energy
from ..infer import langevin
from .base import Objective
from .replay_buffer import ReplayBuffer, buffer_draw, buffer_init, buffer_push

__all__ = [
    "LangevinSettings",
    "PCDState",
    "ChainStats",
    "cold_langevin",
    "run_chains",
    "cd_loss",
    "contrastive_divergence",
    "persistent_contrastive_divergence",
]

Array = jax.Array
_STEPS = {"mala": langevin.mala_step, "ula": langevin.ula_step}


class LangevinSettings(NamedTuple):
    """Langevin step size ``h`` and temperature ``T`` in the library convention."""

    step_size: float
    temperature: float


class PCDState(NamedTuple):
    """Persistent CD state: the replay buffer and the default reinit box ``[low, high]``."""

    buffer: ReplayBuffer
    reinit_low: Array
    reinit_high: Array


class ChainStats(NamedTuple):
    """Per-run averages over chains and steps of a batch of Langevin chains."""

    acceptance_rate: Array  # MALA's rate (ULA: the rate MALA would have had)
    grad_norm: Array  # mean |grad_x E| along the chains
    diverging: Array  # fraction of proposals with non-finite energy or gradient
    move: Array  # mean distance between start and end of a chain


def cold_langevin(step: float, noise: float) -> LangevinSettings:
    """Map the "cold" update ``x' = x - a grad E + b xi`` of EBM papers to ``(h, T)``.

    ``h = a`` and ``T = b^2 / (2 a)``: such a sampler targets ``exp(-E / T)``, a sharpened
    model when ``T < 1``, not the model itself.
    """
    a, b = _positive(step, "step"), _positive(noise, "noise")
    return LangevinSettings(a, b * b / (2.0 * a))


def _positive(value: Any, name: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number, got {value!r}") from err
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {want}, got {value!r}")
    return v


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def run_chains(
    key: Any,
    energy_fn: EnergyFn,
    params: Params,
    x0: Array,
    *,
    num_steps: int,
    step_size: Any,
    temperature: Any = 1.0,
    sampler: str = "mala",
) -> tuple[Array, ChainStats]:
    """Run ``num_steps`` Langevin steps on each row of ``x0`` (vmapped chains, ``lax.scan``).

    Returns the final positions (same shape as ``x0``) and :class:`ChainStats`.
    """
    if sampler not in _STEPS:
        raise ValueError(f"sampler must be one of {sorted(_STEPS)}, got {sampler!r}")
    num_steps = _positive_int(num_steps, "num_steps")
    step = _STEPS[sampler]
    n = x0.shape[0]
    energy = lambda x: energy_fn(params, x)
    states = jax.vmap(lambda x: langevin.init(x, energy))(x0)

    def one_step(states, k):
        keys = jax.random.split(k, n)
        grad_norm = jnp.sqrt(jnp.sum(states.energy_grad.reshape(n, -1) ** 2, -1))
        new, info = jax.vmap(
            lambda kk, s: step(kk, s, energy, step_size, None, temperature)
        )(keys, states)
        return new, (info.acceptance_rate, grad_norm, info.diverging)

    final, (acc, gnorm, div) = jax.lax.scan(one_step, states, jax.random.split(key, num_steps))
    x = final.position
    move = jnp.mean(jnp.sqrt(jnp.sum((x - x0).reshape(n, -1) ** 2, -1)))
    stats = ChainStats(jnp.mean(acc), jnp.mean(gnorm), jnp.mean(div.astype(x.dtype)), move)
    return x, stats


def cd_loss(
    energy_fn: EnergyFn, params: Params, data: Array, samples: Array, alpha: float = 0.0
) -> tuple[Array, tuple[Array, Array]]:
    """``mean E(data) - mean E(sg(samples)) + alpha (mean E(data)^2 + mean E(samples)^2)``.

    Returns the loss and the per-event energies ``(E(data), E(samples))``.
    """
    ndim = data.ndim - 1
    e_data = batched_energy(energy_fn, params, data, ndim)
    e_samp = batched_energy(energy_fn, params, jax.lax.stop_gradient(samples), ndim)
    loss = jnp.mean(e_data) - jnp.mean(e_samp)
    if alpha:
        loss = loss + alpha * (jnp.mean(e_data**2) + jnp.mean(e_samp**2))
    return loss, (e_data, e_samp)


def _nearest_distance(samples: Array, data: Array) -> Array:
    """Mean over samples of the Euclidean distance to the nearest data point."""
    a = samples.reshape(samples.shape[0], -1)
    b = data.reshape(data.shape[0], -1)
    d2 = jnp.sum(a**2, -1)[:, None] + jnp.sum(b**2, -1)[None, :] - 2.0 * a @ b.T
    return jnp.mean(jnp.sqrt(jnp.maximum(jnp.min(d2, -1), 0.0)))


def _health_check(max_abs_energy: float | None, max_energy_gap: float | None,
                  min_acceptance: float | None):
    def is_healthy(metrics: dict[str, Array]) -> Array:
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
        if min_acceptance is not None:
            ok = ok & (metrics["acceptance_rate"] >= min_acceptance)
        if max_abs_energy is not None:
            ok = ok & (metrics["energy_abs_max"] <= max_abs_energy)
        if max_energy_gap is not None:
            ok = ok & (jnp.abs(metrics["energy_gap"]) <= max_energy_gap)
        return ok

    return is_healthy


def _check_batch(batch: Any) -> Array:
    if isinstance(batch, tuple | list):
        raise TypeError(
            "contrastive divergence fits an unconditional energy: batch must be one array of "
            f"shape (batch_size,) + event_shape, got a {type(batch).__name__} of "
            f"{len(batch)} arrays"
        )
    batch = jnp.asarray(batch)
    if batch.ndim < 1 or batch.shape[0] < 1:
        raise ValueError(
            f"batch must have shape (batch_size,) + event_shape with batch_size >= 1, "
            f"got shape {batch.shape}"
        )
    return batch


def _common_args(num_steps, step_size, temperature, sampler, alpha, max_abs_energy,
                 max_energy_gap, min_acceptance) -> dict[str, Any]:
    if sampler not in _STEPS:
        raise ValueError(f"sampler must be one of {sorted(_STEPS)}, got {sampler!r}")
    for name, v in (("max_abs_energy", max_abs_energy), ("max_energy_gap", max_energy_gap)):
        if v is not None:
            _positive(v, name)
    if min_acceptance is not None and not 0.0 <= _positive(
            min_acceptance, "min_acceptance", allow_zero=True) <= 1.0:
        raise ValueError(f"min_acceptance must be in [0, 1] or None, got {min_acceptance!r}")
    return {
        "num_steps": _positive_int(num_steps, "num_steps"),
        "step_size": _positive(step_size, "step_size"),
        "temperature": _positive(temperature, "temperature"),
        "sampler": sampler,
        "alpha": _positive(alpha, "alpha", allow_zero=True),
    }


def _negative_phase(energy_fn, params, data, x0, key, cfg):
    """Run the chains from ``x0`` at stop-gradient params; return loss pieces and metrics."""
    samples, stats = run_chains(
        key, energy_fn, jax.lax.stop_gradient(params), x0, num_steps=cfg["num_steps"],
        step_size=cfg["step_size"], temperature=cfg["temperature"], sampler=cfg["sampler"],
    )
    samples = jax.lax.stop_gradient(samples)
    loss, (e_data, e_samp) = cd_loss(energy_fn, params, data, samples, cfg["alpha"])
    metrics = {
        "energy_data": jnp.mean(e_data),
        "energy_samples": jnp.mean(e_samp),
        "energy_gap": jnp.mean(e_data) - jnp.mean(e_samp),
        "energy_abs_max": jnp.maximum(jnp.max(jnp.abs(e_data)), jnp.max(jnp.abs(e_samp))),
        "langevin_grad_norm": stats.grad_norm,
        "acceptance_rate": stats.acceptance_rate,
        "diverging": stats.diverging,
        "chain_move": stats.move,
        "sample_data_distance": _nearest_distance(samples, data),
    }
    return loss, samples, metrics


def contrastive_divergence(
    *,
    num_steps: int,
    step_size: float,
    temperature: float = 1.0,
    sampler: str = "mala",
    alpha: float = 0.0,
    max_abs_energy: float | None = 1e5,
    max_energy_gap: float | None = 1e4,
    min_acceptance: float | None = None,
) -> Objective:
    """CD-k: negative samples from ``num_steps`` Langevin steps started at the data batch.

    Parameters
    ----------
    num_steps
        ``k``, Langevin steps per training step.
    step_size, temperature
        ``h`` and ``T`` of ``x' = x - h grad E + sqrt(2 h T) xi``; see :func:`cold_langevin`.
    sampler
        ``"mala"`` (Metropolis-adjusted, unbiased for ``exp(-E/T)``) or ``"ula"``.
    alpha
        Weight of the energy-magnitude regulariser ``mean E(data)^2 + mean E(samples)^2``.
    max_abs_energy, max_energy_gap, min_acceptance
        ``is_healthy`` is false when any metric is non-finite, when ``max |E|`` or
        ``|mean E(data) - mean E(samples)|`` exceeds these, or when the mean acceptance
        rate falls below ``min_acceptance`` (frozen chains; ``None`` disables a check).

    Returns
    -------
    An :class:`~numpyro_ebm.objectives.Objective` with empty extras and state ``()``.
    """
    cfg = _common_args(num_steps, step_size, temperature, sampler, alpha, max_abs_energy,
                       max_energy_gap, min_acceptance)

    def init(key, energy_fn, params, batch):
        batch = _check_batch(batch)
        check_energy(energy_fn, params, batch.shape[1:], dtype=batch.dtype)
        return (), ()

    def loss(energy_fn, params, extras, state, batch, key):
        batch = _check_batch(batch)
        value, _, metrics = _negative_phase(energy_fn, params, batch, batch, key, cfg)
        return value, (state, metrics)

    return Objective(init, loss, f"cd{cfg['num_steps']}",
                     _health_check(max_abs_energy, max_energy_gap, min_acceptance))


def _reinit_fn(reinit: Any) -> Callable[[PCDState, Array, Any, int], Array]:
    if isinstance(reinit, str) and reinit == "data":
        return lambda state, batch, key, n: batch
    if reinit is None:
        def uniform_box(state, batch, key, n):
            lo, hi = state.reinit_low, state.reinit_high
            return jax.random.uniform(key, (n, *lo.shape), lo.dtype, lo, hi)

        return uniform_box
    if isinstance(reinit, Distribution):
        return lambda state, batch, key, n: reinit.sample(key, (n,))
    if callable(reinit):
        return lambda state, batch, key, n: reinit(key, n)
    raise TypeError(
        "reinit must be None (uniform over the data's bounding box), \"data\" (the current "
        "batch), a NumPyro Distribution "
        f"or a callable reinit(key, n) -> (n,) + event_shape, got {type(reinit).__name__}"
    )


def persistent_contrastive_divergence(
    *,
    num_steps: int,
    step_size: float,
    temperature: float = 1.0,
    sampler: str = "mala",
    buffer_size: int = 10_000,
    reinit_prob: float = 0.05,
    reinit: Any = None,
    box_margin: float = 0.1,
    alpha: float = 0.0,
    max_abs_energy: float | None = 1e5,
    max_energy_gap: float | None = 1e4,
    min_acceptance: float | None = None,
) -> Objective:
    """Persistent CD (Du & Mordatch 2019): chains restart from a replay buffer.

    Each step draws one chain start per data point from the buffer, replacing each by a draw
    from ``reinit`` with probability ``reinit_prob``, runs ``num_steps`` Langevin steps and
    writes the results back (first in, first out).

    Parameters
    ----------
    num_steps, step_size, temperature, sampler, alpha
        As in :func:`contrastive_divergence`.
    max_abs_energy, max_energy_gap, min_acceptance
        As in :func:`contrastive_divergence`.
    buffer_size
        Capacity of the buffer (at least the batch size).
    reinit_prob
        Probability that a chain restarts from ``reinit`` instead of the buffer.
    reinit
        Where fresh chains start: ``None`` (default), uniform over the bounding box of the
        first batch widened by ``box_margin`` times its width on each side; ``"data"``, the
        current data batch (``reinit_prob=1`` is then CD-k); a NumPyro distribution with the
        data's event shape; or a callable ``reinit(key, n) -> (n,) + event_shape``.

    Returns
    -------
    An :class:`~numpyro_ebm.objectives.Objective` whose state is a :class:`PCDState`.
    """
    cfg = _common_args(num_steps, step_size, temperature, sampler, alpha, max_abs_energy,
                       max_energy_gap, min_acceptance)
    capacity = _positive_int(buffer_size, "buffer_size")
    prob = _positive(reinit_prob, "reinit_prob", allow_zero=True)
    if prob > 1:
        raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob!r}")
    margin = _positive(box_margin, "box_margin", allow_zero=True)
    draw_fresh = _reinit_fn(reinit)

    def init(key, energy_fn, params, batch):
        batch = _check_batch(batch)
        if batch.shape[0] > capacity:
            raise ValueError(
                f"buffer_size must be >= the batch size; got buffer_size={capacity} for "
                f"batches of {batch.shape[0]}"
            )
        check_energy(energy_fn, params, batch.shape[1:], dtype=batch.dtype)
        lo, hi = jnp.min(batch, 0), jnp.max(batch, 0)
        width = hi - lo
        state = PCDState(buffer_init(capacity, batch.shape[1:], batch.dtype),
                         lo - margin * width, hi + margin * width)
        n = batch.shape[0]
        out = jax.eval_shape(lambda k: draw_fresh(state, batch, k, n), key)
        if tuple(out.shape) != batch.shape:
            raise ValueError(
                f"reinit must return shape (n,) + event_shape = {batch.shape} for "
                f"n={n}, got {tuple(out.shape)}"
            )
        return (), state

    def loss(energy_fn, params, extras, state, batch, key):
        batch = _check_batch(batch)
        k_draw, k_run = jax.random.split(key)
        x0, fresh = buffer_draw(
            state.buffer, k_draw, batch.shape[0], lambda k, n: draw_fresh(state, batch, k, n),
            prob,
        )
        value, samples, metrics = _negative_phase(energy_fn, params, batch, x0, k_run, cfg)
        # a batch larger than the buffer (e.g. fit's validation set) keeps its last rows
        buffer = buffer_push(state.buffer, samples[-capacity:])
        metrics["reinit_fraction"] = jnp.mean(fresh.astype(samples.dtype))
        metrics["buffer_fill"] = buffer.count / capacity
        return value, (state._replace(buffer=buffer), metrics)

    return Objective(init, loss, f"pcd{cfg['num_steps']}",
                     _health_check(max_abs_energy, max_energy_gap, min_acceptance))
