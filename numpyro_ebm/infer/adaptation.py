"""Warmup helpers of the Langevin kernels: a reasonable initial step and the initial metric.

- :func:`find_reasonable_step_size`: NumPyro's heuristic (Hoffman & Gelman 2014, Alg. 4)
  for one Langevin step: scale ``h`` by 4 (a leapfrog ``eps`` by 2, since ``h = eps^2/2``)
  until the acceptance of one proposal crosses 0.8.
- :func:`langevin_warmup_adapter`: NumPyro's warmup adapter for ``h``, started from that
  step and run as one-step HMC's until its first restart (robust from a start far in the
  tails), then on ``log h``.
- :func:`flat_inverse_mass_matrix`: the initial ``M^-1`` over the flattened coordinates,
  from ``None``, a vector, a matrix, or NumPyro's structured form (a dict whose keys are
  tuples of site names and whose values are the blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import HMCAdaptState, dual_averaging, warmup_adapter

from ..typing import Array, PRNGKey, PyTree
from .langevin import LangevinState, propose_with_noise
from .metric import make_metric

__all__ = ["find_reasonable_step_size", "flat_inverse_mass_matrix", "langevin_warmup_adapter"]

_TARGET_LOG_ACCEPT = float(np.log(0.8))
FAST_TARGET_ACCEPT = 0.8
"""Lowest acceptance targeted by dual averaging before its first restart (NumPyro HMC's
default target): while the chain travels in from its start a too-large step can freeze it,
a too-small one only slows it."""


def find_reasonable_step_size(
    potential_fn: Callable[[PyTree], Array],
    temperature: Any,
    step_size: Any,
    inverse_mass_matrix: Any,
    z_info: tuple[PyTree, Array, PyTree],
    rng_key: PRNGKey,
) -> Array:
    """A Langevin step ``h`` near the edge of 80% acceptance, from ``step_size``.

    Multiplies ``h`` by 4 while one proposal from ``z`` has acceptance above 0.8, or divides
    it by 4 while it is below (a NaN or non-finite proposal counts as below), and stops at
    the first change of direction (NumPyro's ``find_reasonable_step_size`` for one leapfrog
    step, whose ``eps`` doubles when our ``h`` quadruples). Unlike NumPyro's, every trial
    uses the same innovation ``xi`` (common random numbers): the search compiles without
    random draws in its loop, and its trials differ only in ``h``. Bind ``potential_fn`` and
    ``temperature`` with :func:`functools.partial` to get the callable NumPyro's
    ``warmup_adapter`` expects.

    Parameters
    ----------
    potential_fn
        ``U(z)`` (the energy of the chain).
    temperature
        ``T`` of the target ``exp(-U / T)``.
    step_size
        Starting ``h > 0``.
    inverse_mass_matrix
        Flat ``M^-1`` (vector or matrix), as NumPyro's adapter holds it.
    z_info
        ``(z, U(z), grad U(z))``.
    rng_key
        PRNG key of the trial proposals.
    """
    z, pe, grad = z_info
    flat, _ = ravel_pytree(z)
    metric = make_metric(inverse_mass_matrix, flat.shape[0], flat.dtype)
    state = LangevinState(z, pe, grad)
    h0 = jnp.asarray(step_size, flat.dtype)
    finfo = jnp.finfo(h0.dtype)
    zero, one = jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32)

    # one innovation for every trial (common random numbers): no random draws inside the
    # loop, whose threefry code dominated the compile time of a kernel's init
    xi = jax.random.normal(rng_key, flat.shape, flat.dtype)

    def body(carry):
        h, _, direction = carry
        # exact powers of two, so every compilation (vmapped or not) gives the same bits
        h = h * jnp.where(direction > 0, 4.0, jnp.where(direction < 0, 0.25, 1.0))
        ratio = propose_with_noise(xi, state, potential_fn, h, metric,
                                   temperature).log_accept_ratio
        return h, direction, jnp.where(ratio > _TARGET_LOG_ACCEPT, one, -one)

    def cond(carry):
        h, last, direction = carry
        in_range = ((h > finfo.tiny) | (direction >= 0)) & ((h < finfo.max) | (direction <= 0))
        return in_range & ((last == 0) | (direction == last))

    return jax.lax.while_loop(cond, body, (h0, zero, zero))[0]


def _site_indices(z: dict) -> dict[str, np.ndarray]:
    """Flat (``ravel_pytree``) indices of each site of a dict of unconstrained values."""
    index: dict[str, list[np.ndarray]] = {}
    offset = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(z)[0]:  # ravel_pytree's order
        k = int(np.prod(jnp.shape(leaf), dtype=int))
        index.setdefault(path[0].key, []).append(np.arange(offset, offset + k))
        offset += k
    return {site: np.concatenate(parts) for site, parts in index.items()}


def _structured_form_error(detail: str) -> ValueError:
    return ValueError(
        "inverse_mass_matrix as a dict must be NumPyro's structured form: keys are tuples "
        "of site names, e.g. {('a',): jnp.ones(3), ('b', 'c'): jnp.eye(5)}, each value a "
        "vector (diagonal block) or a square matrix (dense block) over those sites' "
        f"unconstrained coordinates in the order of the tuple; {detail}"
    )


def _from_structured(blocks: dict, z: Any, dense_mass: bool, size: int) -> Array:
    """A flat ``M^-1`` (vector, or dense block-diagonal matrix) from NumPyro's dict form."""
    if not isinstance(z, dict):
        raise _structured_form_error(
            f"the positions are not a dict of sites (got {type(z).__name__})")
    index = _site_indices(z)
    seen: set[str] = set()
    dtype = ravel_pytree(z)[0].dtype
    out = jnp.eye(size, dtype=dtype) if dense_mass else jnp.ones(size, dtype)
    for sites, block in blocks.items():
        if not (isinstance(sites, tuple) and sites and all(isinstance(s, str) for s in sites)):
            raise _structured_form_error(f"got the key {sites!r}")
        unknown = [s for s in sites if s not in index]
        if unknown or seen.intersection(sites):
            raise _structured_form_error(
                f"key {sites!r} names unknown or repeated sites (sites: {sorted(index)})")
        seen.update(sites)
        idx = np.concatenate([index[s] for s in sites])
        k = idx.shape[0]
        shape = tuple(np.shape(block))
        if shape not in ((k,), (k, k)):
            raise _structured_form_error(
                f"the block {sites!r} has shape {shape}, expected ({k},) or ({k}, {k})")
        if len(shape) == 2 and not dense_mass:
            raise ValueError(
                f"inverse_mass_matrix block {sites!r} of shape {shape} (dense) needs "
                f"dense_mass=True; with dense_mass=False pass its diagonal, shape ({k},)")
        block = jnp.asarray(block, dtype)
        if dense_mass:
            block = jnp.diag(block) if block.ndim == 1 else block
            out = out.at[np.ix_(idx, idx)].set(block)
        else:
            out = out.at[idx].set(block)
    return out


def flat_inverse_mass_matrix(inverse_mass_matrix: Any, z: PyTree, dense_mass: bool) -> Any:
    """The initial ``M^-1`` over ``ravel_pytree(z)``'s coordinates, or ``None`` (identity).

    Accepts ``None``, a vector ``(n,)``, a matrix ``(n, n)`` (needs ``dense_mass=True``) or
    NumPyro's structured dict ``{(site, ...): block}``; sites not named in the dict get an
    identity block. Only concrete shapes are checked (values may be tracers).

    Raises
    ------
    ValueError
        A wrong shape, a dense matrix with ``dense_mass=False``, or a malformed dict (the
        message names the expected form).
    """
    m = inverse_mass_matrix
    size = ravel_pytree(z)[0].shape[0]
    if m is None:
        return None
    if isinstance(m, dict):
        return _from_structured(m, z, dense_mass, size)
    shape = tuple(np.shape(m))
    if shape not in ((size,), (size, size)):
        raise ValueError(
            f"inverse_mass_matrix must have shape ({size},) or ({size}, {size}) for "
            f"{size} unconstrained coordinates, got shape {shape} (or pass NumPyro's "
            "structured form, a dict keyed by tuples of site names)"
        )
    if len(shape) == 2 and not dense_mass:
        # NumPyro's adapter would silently keep only the diagonal
        raise ValueError(
            f"inverse_mass_matrix of shape {shape} (dense) needs dense_mass=True; with "
            f"dense_mass=False pass its diagonal, a vector of shape ({size},)"
        )
    return m


def _leapfrog(h: Any) -> Any:
    """NumPyro's one-step-HMC ``eps`` of a Langevin ``h`` (``h = eps^2 / 2``)."""
    return jnp.sqrt(2.0 * h)


def _langevin(eps: Any) -> Any:
    """The Langevin ``h = eps^2 / 2`` of a leapfrog ``eps`` (at least the smallest normal)."""
    return jnp.maximum(0.5 * eps**2, jnp.finfo(jnp.result_type(eps)).tiny)


def langevin_warmup_adapter(
    num_warmup: int,
    potential_fn: Callable[[PyTree], Array],
    temperature: Any = 1.0,
    *,
    adapt_step_size: bool = True,
    **kwargs: Any,
) -> tuple[Callable[..., HMCAdaptState], Callable[..., HMCAdaptState]]:
    """NumPyro's ``warmup_adapter`` for a Langevin ``h``, robust from a start in the tails.

    At init, :func:`find_reasonable_step_size` replaces the given ``h``. Until the first
    restart of dual averaging (the end of Stan's first slow mass-matrix window; all of a
    warmup shorter than 20 steps), the chain may still be travelling in from its start, and a
    step that is right where it was can freeze it where it arrives. There dual averaging
    runs exactly as ``HMC(num_steps=1, trajectory_length=None)``'s (Hoffman & Gelman 2014,
    NumPyro's constants): on the leapfrog scale ``eps = sqrt(2 h)``, centred on ``10 eps``,
    toward an acceptance of at least :data:`FAST_TARGET_ACCEPT` (NumPyro HMC's default
    target; a higher ``target_accept_prob`` is kept). From the first restart on (centred on
    ten times the current ``h``, as NumPyro re-centres at every later window end) it runs on
    ``log h`` toward ``target_accept_prob``; the step that sampling uses is the average of
    that phase. NumPyro's HMC searches only with ``find_heuristic_step_size=True`` (default
    off), and then at every window end too; we search once, at init, so that no search
    loop (potential evaluations in a ``while_loop``) is compiled into every step. The
    state's ``step_size`` is always our ``h``.

    Parameters
    ----------
    num_warmup
        Warmup steps (Stan's windows follow from it).
    potential_fn
        ``U(z)`` of the chain (for the reasonable-step search).
    temperature
        ``T`` of the target ``exp(-U / T)``.
    adapt_step_size
        Tune ``h``; without it ``h`` stays as given.
    **kwargs
        ``adapt_mass_matrix``, ``dense_mass``, ``target_accept_prob``,
        ``regularize_mass_matrix`` of :func:`numpyro.infer.hmc_util.warmup_adapter`.

    Returns
    -------
    tuple
        ``(init, update)`` with NumPyro's signatures: ``init(z_info, rng_key, step_size,
        inverse_mass_matrix, mass_matrix_size)`` and ``update(t, accept_prob, z_info, state)``,
        where ``z_info = (z, U(z), grad U(z))``.
    """
    wa_init, wa_update = warmup_adapter(num_warmup, adapt_step_size=adapt_step_size, **kwargs)
    if not adapt_step_size:
        return wa_init, wa_update
    target = kwargs.get("target_accept_prob", 0.8)
    fast_target = jnp.maximum(target, FAST_TARGET_ACCEPT)
    find = partial(find_reasonable_step_size, potential_fn, temperature)
    ss_init, _ = dual_averaging()

    def init(z_info, rng_key, step_size=0.1, inverse_mass_matrix=None, mass_matrix_size=None):
        rng_key, key_ss = jax.random.split(rng_key)
        st = wa_init(z_info, rng_key, step_size, inverse_mass_matrix, mass_matrix_size)
        h = find(st.step_size, st.inverse_mass_matrix, z_info, key_ss)
        return st._replace(step_size=h, ss_state=ss_init(jnp.log(10.0) + jnp.log(_leapfrog(h))))

    def update(t, accept_prob, z_info, state):
        # One copy of NumPyro's adapter for both phases (the phase selects its target and
        # the scale it adapts, eps or h): two copies under a `lax.cond` compiled the
        # adapter, with its window-end mass-matrix code, twice into every sample loop.
        fast = state.window_idx <= 1
        _, wa_update_phase = warmup_adapter(
            num_warmup, adapt_step_size=True,
            **{**kwargs, "target_accept_prob": jnp.where(fast, fast_target, target)})
        h = state.step_size
        st = wa_update_phase(t, accept_prob, z_info,
                             state._replace(step_size=jnp.where(fast, _leapfrog(h), h)))
        h = jnp.where(fast, _langevin(st.step_size), st.step_size)
        # at the first restart, re-centre on ten times h (NumPyro centres on 10 eps)
        restarted = fast & (st.window_idx > 1)
        ss_state = jax.tree.map(lambda a, b: jnp.where(restarted, a, b),
                                ss_init(jnp.log(10.0) + jnp.log(h)), st.ss_state)
        return st._replace(step_size=h, ss_state=ss_state)

    return init, update
