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

from ..checks import is_concrete
from ..typing import Array, PRNGKey, PyTree
from .langevin import LangevinState, propose_with_noise
from .metric import make_metric

__all__ = [
    "SEARCH_RUNGS",
    "find_reasonable_step_size",
    "flat_inverse_mass_matrix",
    "langevin_warmup_adapter",
    "restart_step_size",
]

_TARGET_LOG_ACCEPT = float(np.log(0.8))
FAST_TARGET_ACCEPT = 0.8
"""Lowest acceptance targeted by dual averaging before its first restart (NumPyro HMC's
default target): while the chain travels in from its start a too-large step can freeze it,
a too-small one only slows it."""


SEARCH_RUNGS = 9
"""Trial step sizes per batch of the search when it runs op by op: ``h0 4^k`` for
``k = -4..4`` in the first batch, then 9 further steps in the search's direction per batch."""


def find_reasonable_step_size(
    potential_fn: Callable[[PyTree], Array],
    temperature: Any,
    step_size: Any,
    inverse_mass_matrix: Any,
    z_info: tuple[PyTree, Array, PyTree],
    rng_key: PRNGKey,
    *,
    chain_axis: bool = False,
) -> Array:
    """A Langevin step ``h`` near the edge of 80% acceptance, from ``step_size``.

    Multiplies ``h`` by 4 while one proposal from ``z`` has acceptance above 0.8, or divides
    it by 4 while it is below (a NaN or non-finite proposal counts as below), and stops at
    the first change of direction, or where ``h`` leaves the normal floating-point range
    (NumPyro's ``find_reasonable_step_size`` for one leapfrog step, whose ``eps`` doubles
    when our ``h`` quadruples). Unlike NumPyro's, every trial uses the same innovation
    ``xi`` (common random numbers), so the trials differ only in ``h``. Bind
    ``potential_fn`` and ``temperature`` with :func:`functools.partial` to get the callable
    NumPyro's ``warmup_adapter`` expects.

    How it runs depends on its inputs, not its answer. With concrete inputs (a call outside
    ``jit``; the kernels' init traces it into one cached program) the trials are evaluated
    in batches, one vectorized evaluation per batch
    of :data:`SEARCH_RUNGS` step sizes ``h0 4^k`` (first ``k = -4..4``, then further in the
    search's direction until every chain has stopped), and the answer is read off the
    batches: the step the one-at-a-time search stops at, wherever that is. This compiles
    no loop program: the batches' operations are compiled once per shape and reused by
    later runs, where a ``while_loop`` over a new potential is compiled again on every run.
    With traced inputs (under ``jit``, ``pmap`` or ``vmap``) it is that ``lax.while_loop``.

    Parameters
    ----------
    potential_fn
        ``U(z)`` (the energy of the chain).
    temperature
        ``T`` of the target ``exp(-U / T)``.
    step_size
        Starting ``h > 0``; shape ``(C,)`` with ``chain_axis``.
    inverse_mass_matrix
        Flat ``M^-1`` (vector or matrix, or ``None`` for the identity), as NumPyro's adapter
        holds it; with ``chain_axis``, one per chain (leading axis ``C``).
    z_info
        ``(z, U(z), grad U(z))``; with ``chain_axis``, every leaf has a leading axis ``C``.
    rng_key
        PRNG key of the trials' innovation; with ``chain_axis``, ``C`` keys.
    chain_axis
        ``True``: search for ``C`` chains at once (one batch of trials for all of them)
        and return shape ``(C,)``.

    Returns
    -------
    Array
        ``h`` (shape ``()``, or ``(C,)`` with ``chain_axis``), in the dtype of ``z``.
    """
    if not chain_axis:
        one = lambda tree: jax.tree.map(lambda v: jnp.expand_dims(v, 0), tree)
        h = find_reasonable_step_size(
            potential_fn, temperature, jnp.reshape(jnp.asarray(step_size), (1,)),
            one(inverse_mass_matrix), one(z_info), one(rng_key), chain_axis=True)
        return h[0]
    flat = jax.vmap(lambda z: ravel_pytree(z)[0])(z_info[0])
    xi = jax.vmap(lambda k, f: jax.random.normal(k, f.shape, f.dtype))(rng_key, flat)
    h0 = jnp.broadcast_to(jnp.asarray(step_size, flat.dtype), flat.shape[:1])
    trials = partial(_trial_accepts, potential_fn, temperature)
    if is_concrete((h0, inverse_mass_matrix, z_info, xi)):
        batch = jax.vmap(trials)  # (C,), (C, R) steps ... -> (C, R) booleans
        return jnp.asarray(_search_in_batches(
            lambda hs: np.asarray(batch(inverse_mass_matrix, z_info, xi, jnp.asarray(hs))),
            np.asarray(h0)))
    search = lambda m, zi, x, h: _search_loop(lambda hh: trials(m, zi, x, hh[None])[0], h)
    return jax.vmap(search)(inverse_mass_matrix, z_info, xi, h0)


def _trial_accepts(potential_fn, temperature, inverse_mass_matrix, z_info, xi, hs):
    """Whether the proposal with innovation ``xi`` from ``z`` has acceptance above 0.8,
    at each step of ``hs`` (shape ``(R,)``): one vectorized evaluation for all of them."""
    z, pe, grad = z_info
    flat, _ = ravel_pytree(z)
    metric = make_metric(inverse_mass_matrix, flat.shape[0], flat.dtype)
    state = LangevinState(z, pe, grad)
    ratio = lambda h: propose_with_noise(xi, state, potential_fn, h, metric,
                                         temperature).log_accept_ratio
    return jax.vmap(ratio)(hs) > _TARGET_LOG_ACCEPT


def _search_loop(accepts: Callable[[Array], Array], h0: Array) -> Array:
    """The one-at-a-time search as a ``lax.while_loop`` (traced inputs)."""
    finfo = jnp.finfo(h0.dtype)
    zero, one = jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32)

    def body(carry):
        h, _, direction = carry
        # exact powers of two, so every compilation (vmapped or not) gives the same bits
        h = h * jnp.where(direction > 0, 4.0, jnp.where(direction < 0, 0.25, 1.0))
        return h, direction, jnp.where(accepts(h), one, -one)

    def cond(carry):
        h, last, direction = carry
        in_range = ((h > finfo.tiny) | (direction >= 0)) & ((h < finfo.max) | (direction <= 0))
        return in_range & ((last == 0) | (direction == last))

    return jax.lax.while_loop(cond, body, (h0, zero, zero))[0]


def _search_in_batches(accepts: Callable[[np.ndarray], np.ndarray], h0: np.ndarray):
    """The one-at-a-time search's answer from batches of trials (concrete inputs).

    ``accepts(hs)`` evaluates the trials ``hs`` (shape ``(C, R)``, ``h0 4^k``) of ``C``
    chains at once. A chain's walk visits ``k = 0, d, 2d, ...`` with ``d`` the direction at
    ``k = 0``, and stops at the first ``k != 0`` whose direction differs, or at the first
    ``h`` beyond the normal range in direction ``d`` (the loop's ``cond``). ``h0 4^k`` is
    ``ldexp(h0, 2k)``: exactly the loop's repeated products by 4 or 1/4 (exact in the
    normal range; the loop rounds once, at its one step below it).
    """
    finfo = np.finfo(h0.dtype)
    num_chains, half = h0.shape[0], SEARCH_RUNGS // 2
    ks = np.tile(np.arange(-half, half + 1), (num_chains, 1))
    direction = np.zeros(num_chains, int)  # 0: not yet known
    result = np.full(num_chains, np.nan, h0.dtype)
    todo = np.ones(num_chains, bool)
    while todo.any():
        with np.errstate(over="ignore", under="ignore"):  # the loop's inf and subnormals
            hs = np.ldexp(h0[:, None], 2 * ks).astype(h0.dtype)
        up = accepts(hs)
        for c in np.flatnonzero(todo):
            if direction[c] == 0:  # the first batch: walk from k = 0 (column `half`)
                direction[c] = 1 if up[c, half] else -1
                cols = half + direction[c] * np.arange(half + 1)
            else:
                cols = np.arange(SEARCH_RUNGS)
            for j in cols:
                d, h = (1 if up[c, j] else -1), hs[c, j]
                out = not (h < finfo.max) if direction[c] > 0 else not (h > finfo.tiny)
                if (ks[c, j] != 0 and d != direction[c]) or out:
                    result[c], todo[c] = h, False
                    break
            ks[c] = ks[c, cols[-1]] + direction[c] * np.arange(1, SEARCH_RUNGS + 1)
    return result


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


def restart_step_size(adapt_state: HMCAdaptState, step_size: Any) -> HMCAdaptState:
    """``adapt_state`` at the Langevin step ``h = step_size``, dual averaging restarted.

    What the adapter's ``init`` does with the step it found: ``step_size`` becomes ``h`` and
    dual averaging starts afresh, centred on ``10 eps`` with ``eps = sqrt(2 h)`` (NumPyro's
    centre for one-step HMC). Works on one chain's state or, elementwise, on a batch.
    """
    h = jnp.asarray(step_size)
    ss_init, _ = dual_averaging()
    centre = jnp.log(10.0) + jnp.log(_leapfrog(h))
    ss_state = ss_init(centre) if h.ndim == 0 else jax.vmap(ss_init)(centre)
    return adapt_state._replace(step_size=h, ss_state=ss_state)


def langevin_warmup_adapter(
    num_warmup: int,
    potential_fn: Callable[[PyTree], Array],
    temperature: Any = 1.0,
    *,
    adapt_step_size: bool = True,
    find_step_size: bool = True,
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
    find_step_size
        ``False``: ``init`` keeps the given ``h`` (dual averaging centred on it) and does
        not search; for a caller that searches for a batch of chains at once
        (``find_reasonable_step_size(..., chain_axis=True)``, then
        :func:`restart_step_size`), as the kernels do.
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
        # no key in the state: NumPyro's update would split it every step for nothing
        return lambda *args, **kw: wa_init(*args, **kw)._replace(rng_key=None), wa_update
    target = kwargs.get("target_accept_prob", 0.8)
    fast_target = jnp.maximum(target, FAST_TARGET_ACCEPT)
    find = partial(find_reasonable_step_size, potential_fn, temperature)
    ss_init, _ = dual_averaging()

    def init(z_info, rng_key, step_size=0.1, inverse_mass_matrix=None, mass_matrix_size=None):
        if find_step_size:
            rng_key, key_ss = jax.random.split(rng_key)
        st = wa_init(z_info, rng_key, step_size, inverse_mass_matrix, mass_matrix_size)
        # no key in the state: NumPyro's update splits it every step (a threefry program
        # in every warmup step, 0.4 s of a sample loop's compile time) only to pass it to a
        # step-size search at window ends, which we do not run
        st = st._replace(rng_key=None)
        h = st.step_size
        if find_step_size:
            h = find(h, st.inverse_mass_matrix, z_info, key_ss)
        return restart_step_size(st, h)

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
