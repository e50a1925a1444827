"""Annealed Langevin dynamics (Song & Ermon 2019) over a decreasing noise schedule.

At noise level ``sigma_i`` (``i = 1..L``, decreasing) it runs ``n_steps_each`` unadjusted
Langevin steps on the noise-conditional score ``s(x, sigma_i) ~ grad log p_sigma_i(x)``:

    x' = x + h_i s(x, sigma_i) + sqrt(2 h_i T) xi,    h_i = eps * sigma_i^2 / (2 sigma_L^2).

Song & Ermon write ``x' = x + alpha_i / 2 * s + sqrt(alpha_i) z`` with
``alpha_i = eps * sigma_i^2 / sigma_L^2``; so their ``alpha_i = 2 h_i`` and their ``eps``
is our ``eps`` (the step at the last level is ``h_L = eps / 2``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _random, checks
from ..typing import Array

__all__ = ["annealed_langevin", "annealed_step_sizes"]



def annealed_step_sizes(sigmas: Any, eps: Any) -> Array:
    """Per-level Langevin steps ``h_i = eps * sigma_i^2 / (2 sigma_L^2)`` (our convention)."""
    sigmas = jnp.asarray(sigmas)
    return eps * sigmas**2 / (2.0 * sigmas[-1] ** 2)


def _check(score_fn, x0, sigmas, eps, n_steps_each, temperature) -> None:
    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable score_fn(x, sigma), got {score_fn!r}")
    if jnp.ndim(x0) < 1:
        raise ValueError(
            f"x0 must have shape (num_chains,) + event_shape, got shape {jnp.shape(x0)}"
        )
    checks.positive_int(n_steps_each, "n_steps_each")
    sig = checks.real_array(sigmas, "sigmas", ndim=1)
    if sig.size == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D array, got shape {sig.shape}")
    if checks.is_concrete(sigmas):
        s = np.asarray(sigmas, dtype=float)
        if not (np.all(s > 0) and np.all(np.diff(s) <= 0)):
            raise ValueError(f"sigmas must be positive and non-increasing, got {s}")
    checks.positive_float(eps, "eps")
    checks.positive_float(temperature, "temperature", allow_zero=True)
    out = jax.eval_shape(score_fn, jax.ShapeDtypeStruct(jnp.shape(x0)[1:], jnp.result_type(x0)),
                         jax.ShapeDtypeStruct((), sig.dtype))
    if tuple(out.shape) != tuple(jnp.shape(x0)[1:]):
        raise ValueError(
            f"score_fn(x, sigma) must return the shape of one event {tuple(jnp.shape(x0)[1:])}"
            f" (x0 has shape (num_chains,) + event_shape = {tuple(jnp.shape(x0))}), "
            f"got {tuple(out.shape)}"
        )


def annealed_langevin(
    key: Any,
    score_fn: Callable[[Array, Array], Array],
    x0: Any,
    sigmas: Any,
    eps: Any,
    n_steps_each: int = 100,
    *,
    temperature: Any = 1.0,
    denoise: bool = False,
    return_trajectory: bool = False,
) -> Array | tuple[Array, Array]:
    """Annealed Langevin sampling from a noise-conditional score.

    Parameters
    ----------
    key
        PRNG key (``jax.random.key`` or legacy ``PRNGKey``).
    score_fn
        ``score_fn(x, sigma) -> grad_x log p_sigma(x)`` for ONE event ``x`` (vmapped here).
        For an energy, ``-grad E``.
    x0
        Starting points, shape ``(num_chains,) + event_shape``.
    sigmas
        Noise levels, positive and non-increasing, shape ``(L,)``.
    eps
        Song & Ermon's step parameter: ``h_i = eps sigma_i^2 / (2 sigma_L^2)``.
    n_steps_each
        Langevin steps per noise level.
    temperature
        Noise temperature ``T >= 0`` (``T < 1``: the "cold" settings of some EBM papers;
        ``T = 0`` is gradient ascent on ``log p``).
    denoise
        Finish with one Tweedie step ``x + sigma_L^2 s(x, sigma_L)`` (no noise).
    return_trajectory
        Also return every intermediate state, shape ``(L * n_steps_each,) + x0.shape``.

    Returns
    -------
    Array or tuple
        Final samples (shape of ``x0``), and the trajectory if asked. A step whose result is
        non-finite for a chain leaves that chain where it was.
    """
    _check(score_fn, x0, sigmas, eps, n_steps_each, temperature)
    x0 = jnp.asarray(x0)
    sigmas = jnp.asarray(sigmas, x0.dtype)
    h_levels = annealed_step_sizes(sigmas, jnp.asarray(eps, x0.dtype))
    sig_steps = jnp.repeat(sigmas, n_steps_each)
    h_steps = jnp.repeat(h_levels, n_steps_each)
    keys = jax.random.split(key, sig_steps.shape[0])
    batched_score = jax.vmap(score_fn, in_axes=(0, None))
    event_axes = tuple(range(1, x0.ndim))

    def step(x, inp):
        k, sigma, h = inp
        xi = _random.normal(k, x.shape, x.dtype)
        x_new = x + h * batched_score(x, sigma) + jnp.sqrt(2.0 * h * temperature) * xi
        ok = jnp.all(jnp.isfinite(x_new), axis=event_axes, keepdims=True)
        x_new = jnp.where(ok, x_new, x)
        return x_new, (x_new if return_trajectory else None)

    x, traj = jax.lax.scan(step, x0, (keys, sig_steps, h_steps))
    if denoise:
        x_d = x + sigmas[-1] ** 2 * batched_score(x, sigmas[-1])
        x = jnp.where(jnp.isfinite(x_d), x_d, x)
    return (x, traj) if return_trajectory else x
