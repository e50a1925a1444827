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

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.distributions import Distribution

from ..checks import one_of, positive_float, positive_int
from ..energy import batched_energy, check_energy
from ..infer import langevin
from ..typing import Array, EnergyFn, Params
from .base import ByValue, Metrics, Objective, from_spec, unpaired_batch
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


@partial(jax.jit, static_argnames=("capacity", "margin"))
def _pcd_start(batch: Array, capacity: int, margin: float) -> PCDState:
    """An empty buffer and the reinit box: ``batch``'s bounding box widened by ``margin``
    times its width on each side (one compiled program: run eagerly, each of these small
    operations compiled a program of its own, about 0.13 s in a new process)."""
    lo, hi = jnp.min(batch, 0), jnp.max(batch, 0)
    width = hi - lo
    return PCDState(buffer_init(capacity, batch.shape[1:], batch.dtype),
                    lo - margin * width, hi + margin * width)


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
    a, b = positive_float(step, "step"), positive_float(noise, "noise")
    return LangevinSettings(a, b * b / (2.0 * a))


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
    step = _STEPS[one_of(sampler, "sampler", sorted(_STEPS))]
    num_steps = positive_int(num_steps, "num_steps")
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


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class _Chains:
    """The negative-phase sampler: ``num_steps`` Langevin steps of size ``h`` at ``T``."""

    num_steps: int
    step_size: float
    temperature: float
    sampler: str

    def run(self, key, energy_fn, params, x0) -> tuple[Array, ChainStats]:
        return run_chains(key, energy_fn, params, x0, num_steps=self.num_steps,
                          step_size=self.step_size, temperature=self.temperature,
                          sampler=self.sampler)


@dataclass(frozen=True)
class _Guard:
    """``is_healthy``: finite metrics, bounded energies and gap, chains not frozen."""

    max_abs_energy: float | None
    max_energy_gap: float | None
    min_acceptance: float | None

    def __call__(self, metrics: Metrics) -> Array:
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in metrics.values()]))
        if self.min_acceptance is not None:
            ok = ok & (metrics["acceptance_rate"] >= self.min_acceptance)
        if self.max_abs_energy is not None:
            ok = ok & (metrics["energy_abs_max"] <= self.max_abs_energy)
        if self.max_energy_gap is not None:
            ok = ok & (jnp.abs(metrics["energy_gap"]) <= self.max_energy_gap)
        return ok


ULA_MIN_ACCEPTANCE = 0.9
"""Default ``min_acceptance`` of ULA chains: the Metropolis acceptance they would have had."""


def _settings(num_steps, step_size, temperature, sampler, max_abs_energy, max_energy_gap,
              min_acceptance) -> tuple[_Chains, _Guard]:
    one_of(sampler, "sampler", sorted(_STEPS))
    chains = _Chains(positive_int(num_steps, "num_steps"),
                     positive_float(step_size, "step_size"),
                     positive_float(temperature, "temperature"), sampler)
    if isinstance(min_acceptance, str):
        one_of(min_acceptance, "min_acceptance", ["auto"])
        # guard ULA that is meant to sample the model (T = 1); paper-style cold short-run
        # chains (T != 1, see cold_langevin) are biased on purpose
        sampling_model = sampler == "ula" and chains.temperature == 1.0
        min_acceptance = ULA_MIN_ACCEPTANCE if sampling_model else None
    bounds = [None if v is None else positive_float(v, name)
              for name, v in (("max_abs_energy", max_abs_energy),
                              ("max_energy_gap", max_energy_gap))]
    if min_acceptance is not None:
        rate = positive_float(min_acceptance, "min_acceptance", allow_zero=True)
        if rate > 1.0:
            raise ValueError(f"min_acceptance must be in [0, 1] or None, got {min_acceptance!r}")
        min_acceptance = rate
    return chains, _Guard(bounds[0], bounds[1], min_acceptance)


def _negative_phase(energy_fn, params, data, x0, key, chains: _Chains, alpha: float):
    """Run the chains from ``x0`` at stop-gradient params; return loss pieces and metrics."""
    samples, stats = chains.run(key, energy_fn, jax.lax.stop_gradient(params), x0)
    samples = jax.lax.stop_gradient(samples)
    loss, (e_data, e_samp) = cd_loss(energy_fn, params, data, samples, alpha)
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


def _init_check(energy_fn, params, batch, objective: str) -> Array:
    batch = unpaired_batch(batch, objective)
    check_energy(energy_fn, params, batch.shape[1:], dtype=batch.dtype)
    return batch


# ----------------------------------------------------------------------------- CD-k
@dataclass(frozen=True)
class _CD:
    chains: _Chains
    alpha: float
    guard: _Guard

    def init(self, key, energy_fn, params, batch):
        _init_check(energy_fn, params, batch, "contrastive_divergence")
        return (), ()

    def loss(self, energy_fn, params, extras, state, batch, key):
        batch = unpaired_batch(batch, "contrastive_divergence")
        value, _, metrics = _negative_phase(energy_fn, params, batch, batch, key,
                                            self.chains, self.alpha)
        return value, (state, metrics)

    def is_healthy(self, metrics: Metrics) -> Array:
        return self.guard(metrics)


def contrastive_divergence(
    *,
    num_steps: int,
    step_size: float,
    temperature: float = 1.0,
    sampler: str = "mala",
    alpha: float = 0.0,
    max_abs_energy: float | None = 1e5,
    max_energy_gap: float | None = 1e4,
    min_acceptance: float | str | None = "auto",
) -> Objective:
    """CD-k: negative samples from ``num_steps`` Langevin steps started at the data batch.

    Parameters
    ----------
    num_steps
        ``k``, Langevin steps per training step.
    step_size
        ``h`` of the Langevin step ``x' = x - h grad E + sqrt(2 h T) xi`` (positive); see
        :func:`cold_langevin` for the ``(step, noise)`` form of EBM papers.
    temperature
        ``T`` of that step (positive): the chains target ``exp(-E / T)``; ``T = 1`` is the
        model itself.
    sampler
        ``"mala"`` (Metropolis-adjusted, unbiased for ``exp(-E/T)``) or ``"ula"``.
    alpha
        Weight of the energy-magnitude regulariser ``mean E(data)^2 + mean E(samples)^2``.
    max_abs_energy
        ``is_healthy`` is false when ``max |E|`` over data and samples exceeds this
        (``None``: no limit). ``fit`` stops at the first unhealthy step and rolls back the
        update before it; any non-finite metric is unhealthy too.
    max_energy_gap
        ``is_healthy`` is false when ``|mean E(data) - mean E(samples)|`` exceeds this
        (``None``: no limit).
    min_acceptance
        ``is_healthy`` is false when the mean acceptance rate of the chains falls below
        this (``None``: no limit). For ULA the acceptance rate is the Metropolis rate its
        moves would have had, a measure of its discretisation error: ``"auto"`` (default)
        guards ULA at ``T = 1`` at ``0.9`` (more than 10% would-be rejections per step: the
        negatives are biased and the model starts to degrade silently, long before the
        energies explode) and leaves MALA unguarded (low acceptance freezes MALA chains,
        which stalls learning but does not bias it), as well as cold ULA (``T != 1``, biased
        on purpose; see :func:`cold_langevin`).

    Returns
    -------
    An :class:`~numpyro_ebm.objectives.Objective` with empty extras and state ``()``.
    """
    chains, guard = _settings(num_steps, step_size, temperature, sampler, max_abs_energy,
                              max_energy_gap, min_acceptance)
    alpha = positive_float(alpha, "alpha", allow_zero=True)
    return from_spec(_CD(chains, alpha, guard), f"cd{chains.num_steps}")


# ----------------------------------------------------------------------------- PCD
def _check_reinit(reinit: Any) -> Any:
    """``reinit`` as a hashable setting: a distribution is held by value."""
    if reinit is None or (isinstance(reinit, str) and reinit == "data"):
        return reinit
    if isinstance(reinit, Distribution):
        return ByValue(reinit)
    if callable(reinit):
        return reinit  # compared by identity: pass the same callable to share compiled code
    raise TypeError(
        "reinit must be None (uniform over the data's bounding box), \"data\" (the current "
        "batch), a NumPyro Distribution "
        f"or a callable reinit(key, n) -> (n,) + event_shape, got {type(reinit).__name__}"
    )


@dataclass(frozen=True)
class _PCD:
    chains: _Chains
    alpha: float
    guard: _Guard
    capacity: int
    reinit_prob: float
    reinit: Any  # None, "data", ByValue(Distribution) or a callable
    box_margin: float

    def draw_fresh(self, state: PCDState, batch: Array, key, n: int) -> Array:
        """``n`` fresh chain starts from ``reinit``."""
        if self.reinit is None:
            lo, hi = state.reinit_low, state.reinit_high
            return jax.random.uniform(key, (n, *lo.shape), lo.dtype, lo, hi)
        if isinstance(self.reinit, str):  # "data"
            return batch
        if isinstance(self.reinit, ByValue):
            return self.reinit.value.sample(key, (n,))
        return self.reinit(key, n)

    def init(self, key, energy_fn, params, batch):
        batch = unpaired_batch(batch, "persistent_contrastive_divergence")
        if batch.shape[0] > self.capacity:
            raise ValueError(
                f"buffer_size must be >= the batch size; got buffer_size={self.capacity} for "
                f"batches of {batch.shape[0]}"
            )
        _init_check(energy_fn, params, batch, "persistent_contrastive_divergence")
        state = _pcd_start(batch, self.capacity, self.box_margin)
        n = batch.shape[0]
        out = jax.eval_shape(lambda k: self.draw_fresh(state, batch, k, n), key)
        if tuple(out.shape) != batch.shape:
            raise ValueError(
                f"reinit must return shape (n,) + event_shape = {batch.shape} for "
                f"n={n}, got {tuple(out.shape)}"
            )
        return (), state

    def loss(self, energy_fn, params, extras, state: PCDState, batch, key):
        batch = unpaired_batch(batch, "persistent_contrastive_divergence")
        k_draw, k_run = jax.random.split(key)
        fresh_fn: Callable[[Any, int], Array] = lambda k, n: self.draw_fresh(state, batch, k, n)
        x0, fresh = buffer_draw(state.buffer, k_draw, batch.shape[0], fresh_fn,
                                self.reinit_prob)
        value, samples, metrics = _negative_phase(energy_fn, params, batch, x0, k_run,
                                                  self.chains, self.alpha)
        # a batch larger than the buffer (e.g. fit's validation set) keeps its last rows
        buffer = buffer_push(state.buffer, samples[-self.capacity:])
        metrics["reinit_fraction"] = jnp.mean(fresh.astype(samples.dtype))
        metrics["buffer_fill"] = buffer.count / self.capacity
        return value, (state._replace(buffer=buffer), metrics)

    def is_healthy(self, metrics: Metrics) -> Array:
        return self.guard(metrics)


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
    min_acceptance: float | str | None = "auto",
) -> Objective:
    """Persistent CD (Du & Mordatch 2019): chains restart from a replay buffer.

    Each step draws one chain start per data point from the buffer, replacing each by a draw
    from ``reinit`` with probability ``reinit_prob``, runs ``num_steps`` Langevin steps and
    writes the results back (first in, first out).

    Parameters
    ----------
    num_steps
        Langevin steps per training step, from each chain's start (buffer or ``reinit``).
    step_size
        ``h`` of the Langevin step, as in :func:`contrastive_divergence`.
    temperature
        ``T`` of the Langevin step, as in :func:`contrastive_divergence`.
    sampler
        ``"mala"`` or ``"ula"``, as in :func:`contrastive_divergence`.
    alpha
        Weight of the energy-magnitude regulariser, as in :func:`contrastive_divergence`.
    max_abs_energy
        Health limit on ``max |E|``, as in :func:`contrastive_divergence`.
    max_energy_gap
        Health limit on ``|mean E(data) - mean E(samples)|``, as in
        :func:`contrastive_divergence`.
    min_acceptance
        Health limit on the chains' mean acceptance rate, as in
        :func:`contrastive_divergence`.
    buffer_size
        Capacity of the buffer (at least the batch size).
    reinit_prob
        Probability that a chain restarts from ``reinit`` instead of the buffer.
    reinit
        Where fresh chains start: ``None`` (default), uniform over the bounding box of the
        first batch widened by ``box_margin`` times its width on each side; ``"data"``, the
        current data batch (``reinit_prob=1`` is then CD-k); a NumPyro distribution with the
        data's event shape (compared by value); or a callable
        ``reinit(key, n) -> (n,) + event_shape`` (compared by identity: reuse the same
        function object to share compiled code between fits).
    box_margin
        With ``reinit=None``: how far the uniform box extends beyond the first batch's
        bounding box on each side, as a fraction of its width (``>= 0``).

    Returns
    -------
    An :class:`~numpyro_ebm.objectives.Objective` whose state is a :class:`PCDState`.
    """
    chains, guard = _settings(num_steps, step_size, temperature, sampler, max_abs_energy,
                              max_energy_gap, min_acceptance)
    alpha = positive_float(alpha, "alpha", allow_zero=True)
    capacity = positive_int(buffer_size, "buffer_size")
    prob = positive_float(reinit_prob, "reinit_prob", allow_zero=True)
    if prob > 1:
        raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob!r}")
    margin = positive_float(box_margin, "box_margin", allow_zero=True)
    spec = _PCD(chains, alpha, guard, capacity, prob, _check_reinit(reinit), margin)
    return from_spec(spec, f"pcd{chains.num_steps}")
