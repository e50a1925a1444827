"""A fixed-size replay buffer of negative samples for persistent contrastive divergence.

Jit-friendly: the buffer is a :class:`ReplayBuffer` of arrays (samples, write pointer, fill
count), so it can live in an objective's state, pass through ``lax.scan`` and be saved in a
checkpoint. Writes are first-in-first-out; draws pick uniformly among the filled slots and
replace each draw, with probability ``reinit_prob``, by a fresh start (Du & Mordatch, 2019):
``x0_i = reinit_i if u_i < reinit_prob or the buffer is empty, else buffer[j_i]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..typing import Array

__all__ = ["ReplayBuffer", "buffer_init", "buffer_draw", "buffer_push"]


class ReplayBuffer(NamedTuple):
    """Samples ``(capacity,) + event_shape``, next write slot and number of filled slots."""

    samples: Array
    pointer: Array  # int32 scalar in [0, capacity)
    count: Array  # int32 scalar in [0, capacity]


def buffer_init(capacity: int, event_shape: tuple[int, ...], dtype: Any = None) -> ReplayBuffer:
    """An empty buffer of ``capacity`` events of shape ``event_shape`` (zeros, count 0)."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"capacity must be a positive int, got {capacity!r}")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    samples = jnp.zeros((capacity, *tuple(event_shape)), dtype)
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(samples, zero, zero)


def buffer_draw(
    buffer: ReplayBuffer,
    key: Any,
    n: int,
    reinit_fn: Callable[[Any, int], Array],
    reinit_prob: Any = 0.05,
) -> tuple[Array, Array]:
    """Draw ``n`` chain starts: buffer entries, each replaced by ``reinit_fn`` w.p. ``reinit_prob``.

    Returns ``(x0, reinit)`` with ``x0`` of shape ``(n,) + event_shape`` and ``reinit`` a
    boolean ``(n,)`` mask of the fresh starts (all true while the buffer is empty).
    """
    capacity = buffer.samples.shape[0]
    k_idx, k_u, k_new = jax.random.split(key, 3)
    hi = jnp.maximum(buffer.count, 1)
    idx = jax.random.randint(k_idx, (n,), 0, hi) % capacity
    old = buffer.samples[idx]
    fresh = jnp.asarray(reinit_fn(k_new, n), old.dtype)
    if fresh.shape != old.shape:
        raise ValueError(
            f"reinit must return shape {old.shape} for n={n}, got {fresh.shape}"
        )
    reinit = (jax.random.uniform(k_u, (n,)) < reinit_prob) | (buffer.count == 0)
    mask = reinit.reshape((n,) + (1,) * (old.ndim - 1))
    return jnp.where(mask, fresh, old), reinit


def buffer_push(buffer: ReplayBuffer, x: Array) -> ReplayBuffer:
    """Write ``x`` (``(n,) + event_shape``, ``n <= capacity``) first-in-first-out."""
    capacity = buffer.samples.shape[0]
    n = x.shape[0]
    if n > capacity:
        raise ValueError(f"cannot push {n} samples into a buffer of capacity {capacity}")
    if x.shape[1:] != buffer.samples.shape[1:]:
        raise ValueError(
            f"pushed samples have event shape {x.shape[1:]}, buffer holds "
            f"{buffer.samples.shape[1:]}"
        )
    slots = (buffer.pointer + jnp.arange(n, dtype=jnp.int32)) % capacity
    samples = buffer.samples.at[slots].set(x.astype(buffer.samples.dtype))
    pointer = ((buffer.pointer + n) % capacity).astype(jnp.int32)
    count = jnp.minimum(buffer.count + n, capacity).astype(jnp.int32)
    return ReplayBuffer(samples, pointer, count)
