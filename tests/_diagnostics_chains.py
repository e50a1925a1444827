"""Chains on a correlated 2-D Gaussian for the diagnostics tests (started at stationarity).

Kernels: correct MALA, MALA without the proposal correction (accepts with ``-dU`` only and
logs that ratio), ULA, and a systematic-scan Gibbs sampler (exact, not reversible).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from numpyro_ebm.diagnostics import from_langevin
from numpyro_ebm.infer import langevin

RHO = 0.8
COV = np.array([[1.0, RHO], [RHO, 1.0]])
PREC = np.linalg.inv(COV)
CHOL = np.linalg.cholesky(COV)


def potential(x):
    """``U(x) = x^T P x / 2`` of N(0, COV)."""
    return 0.5 * x @ (jnp.asarray(PREC) @ x)


def exact_draws(seed: int, n: int, chains: int | None = None) -> np.ndarray:
    shape = (n, 2) if chains is None else (chains, n, 2)
    return np.random.default_rng(seed).standard_normal(shape) @ CHOL.T


def _no_correction_step(key, state, energy_fn, h):
    """MALA missing ``log q(x|y) - log q(y|x)``: the planted bug."""
    k_prop, k_acc = jax.random.split(key)
    _, info = langevin.ula_step(k_prop, state, energy_fn, h)
    prop = info.proposal
    log_r = -(prop.energy - state.energy)
    acc = jnp.log(jax.random.uniform(k_acc)) < log_r
    new = jax.tree.map(lambda a, b: jnp.where(acc, a, b), prop, state)
    return new, info._replace(log_accept_ratio=log_r, is_accepted=acc)


STEPS = {"mala": langevin.mala_step, "ula": langevin.ula_step,
         "no_correction": _no_correction_step}


@partial(jax.jit, static_argnames=("kind", "num_draws"))
def _scan(kind, x0, key, h, num_draws):
    step = STEPS[kind]

    def one_chain(x, k):
        def body(s, kk):
            s2, info = step(kk, s, potential, h)
            return s2, (s2.position, info)

        return jax.lax.scan(body, langevin.init(x, potential), jax.random.split(k, num_draws))[1]

    return jax.vmap(one_chain)(x0, jax.random.split(key, x0.shape[0]))


def langevin_transitions(kind: str, h: float, seed: int, chains: int = 4, draws: int = 2000):
    """Transitions of ``chains`` chains started from exact draws."""
    x0 = jnp.asarray(exact_draws(seed, chains))
    pos, info = _scan(kind, x0, jax.random.key(seed), jnp.asarray(h), draws)
    return from_langevin(x0, pos, info, h)


@partial(jax.jit, static_argnames=("num_draws",))
def _gibbs(x0, key, num_draws):
    sd = np.sqrt(1.0 - RHO**2)

    def one_chain(x, k):
        def body(x, kk):
            e1, e2 = jax.random.normal(kk, (2,))
            x1 = RHO * x[1] + sd * e1
            x2 = RHO * x1 + sd * e2
            x = jnp.stack([x1, x2])
            return x, x

        return jax.lax.scan(body, x, jax.random.split(k, num_draws))[1]

    return jax.vmap(one_chain)(x0, jax.random.split(key, x0.shape[0]))


def gibbs_draws(seed: int, chains: int = 4, draws: int = 2000) -> np.ndarray:
    """Systematic-scan Gibbs (x1 then x2): exact conditionals, invariant, not reversible."""
    x0 = jnp.asarray(exact_draws(seed, chains))
    return np.asarray(_gibbs(x0, jax.random.key(seed), draws))
