"""Langevin kernels as NumPyro ``MCMCKernel``s: :class:`MALA` and :class:`ULA`.

Both move ``z' = z - h M^-1 grad U(z) + sqrt(2 h T) M^-1/2 xi`` on the unconstrained
potential ``U`` (target ``exp(-U / T)``) with the functional core
(:func:`~numpyro_ebm.infer.langevin.propose` then
:func:`~numpyro_ebm.infer.langevin.accept`). The two kernels differ in one place,
:meth:`_LangevinKernel._is_adjusted`: whether step ``i`` is Metropolis-corrected (MALA:
always; ULA: during warmup only, by default).

Step size ``h`` and inverse mass matrix ``M^-1`` are tuned during warmup by NumPyro's own
adapter (:func:`numpyro.infer.hmc_util.warmup_adapter`) from a reasonable initial ``h``: dual
averaging as one-step HMC's until its first restart (robust from a start in the tails), then
on ``log h`` toward ``target_accept_prob``; Welford covariance in Stan's windows (see
:func:`~numpyro_ebm.infer.adaptation.langevin_warmup_adapter`). The adapter's state holds OUR
``h`` (``adapt_state.step_size`` is ``h``, not a leapfrog ``eps``; ``h = eps^2 / 2``). ULA
adapts ``h`` on the acceptance probability MALA would have had.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro.distributions.constraints import is_dependent
from numpyro.handlers import seed, substitute, trace
from numpyro.infer.gibbs import conditioned
from numpyro.infer.hmc_util import HMCAdaptState
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import find_valid_initial_params, initialize_model, unconstrain_fn
from numpyro.util import identity, is_prng_key

from ..checks import in_range, is_concrete, positive_float
from ..likelihood import check_model as guard_model
from ..typing import Array, PRNGKey, PyTree
from . import langevin
from ._program_cache import run_cached
from .adaptation import (
    find_reasonable_step_size,
    flat_inverse_mass_matrix,
    langevin_warmup_adapter,
    restart_step_size,
)
from .metric import check_inverse_mass_matrix, from_adapt_state

__all__ = ["MALAState", "ULAState", "MALA", "ULA"]


class MALAState(NamedTuple):
    """State of :class:`MALA` / :class:`ULA` (one chain; leading chain axis if vectorized).

    Fields: ``i`` (iteration, counting warmup), ``z`` (unconstrained position),
    ``z_grad`` (``grad U(z)``), ``potential_energy`` (``U(z)``), ``accept_prob``
    (``min(1, e^R)`` of the last step; for ULA the would-be MALA value), ``diverging``
    (last proposal non-finite, or ``R < -max_delta_energy``), ``log_accept_ratio``
    (``R``), ``forward_log_prob`` (``log q(proposal | z_prev)``), ``backward_log_prob``
    (``log q(z_prev | proposal)``), ``proposal`` (unconstrained, same pytree as ``z``),
    ``noise`` (the standard-normal innovation ``xi``, flattened), ``adapt_state`` (NumPyro's
    ``HMCAdaptState``; ``adapt_state.step_size`` is the Langevin ``h`` for the NEXT step),
    ``rng_key``, ``mean_accept_prob`` (running mean, reset after warmup) and
    ``log_det_sqrt`` (``0.5 log det M^-1`` of ``adapt_state``'s metric, kept with it: it
    changes only when warmup adapts ``M^-1``, so a sampling step takes no logarithms of it).
    """

    i: Array
    z: PyTree
    z_grad: PyTree
    potential_energy: Array
    accept_prob: Array
    diverging: Array
    log_accept_ratio: Array
    forward_log_prob: Array
    backward_log_prob: Array
    proposal: PyTree
    noise: Array
    adapt_state: HMCAdaptState
    rng_key: Array
    mean_accept_prob: Array
    log_det_sqrt: Array


ULAState = MALAState
"""ULA uses the same state type; ``accept_prob`` is MALA's would-be acceptance."""


_TRACING_ERRORS = (jax.errors.UnexpectedTracerError, jax.errors.ConcretizationTypeError,
                   jax.errors.TracerArrayConversionError,
                   jax.errors.TracerIntegerConversionError)


def _traced_initialize(init: Callable, key: PRNGKey, model_args: tuple,
                       model_kwargs: dict) -> Any:
    """NumPyro's ``initialize_model`` for one chain, traced but not run: its potential and
    postprocessing generators and a zero prototype of the positions; ``None`` when the model
    is not :func:`_plain_model`, needs concrete values, or its generators keep values of the
    trace (a support whose bounds the model computes): then NumPyro's initialisation runs."""
    box = {}

    def traced(k):
        box["info"] = info = init(k)
        return info.param_info

    try:
        jax.make_jaxpr(traced)(key)
        info = box["info"]
        if not _plain_model(info.model_trace):
            return None
        z0 = _prototype(info.model_trace, info.param_info.z)
        # a generator holding a tracer of that trace fails here, at tracing
        jax.make_jaxpr(lambda z: info.potential_fn(*model_args, **model_kwargs)(z))(z0)
        jax.make_jaxpr(lambda z: info.postprocess_fn(*model_args, **model_kwargs)(z))(z0)
    except _TRACING_ERRORS:  # a model that needs concrete values: NumPyro's run instead
        return None
    return info._replace(param_info=info.param_info._replace(
        z=z0, potential_energy=None, z_grad=None), model_trace=None)


def _prototype(model_trace: dict, z: dict) -> dict:
    """Zeros shaped as the positions ``z``, keyed in the model's order of its latent sites.

    NumPyro's ``find_valid_initial_params`` draws ``init_to_uniform``'s positions site by
    site in the order of its prototype; ``initialize_model``'s prototype follows the model
    (``z`` itself, out of a JAX loop, is sorted by name), so this order gives HMC's
    positions for the same keys.
    """
    names = [name for name, site in model_trace.items() if name in z
             and site["type"] == "sample" and not site["is_observed"]]
    names += [name for name in z if name not in names]
    return {name: jnp.zeros(jnp.shape(z[name]), z[name].dtype) for name in names}


def _arguments_valid(model: Callable, model_args: tuple, model_kwargs: dict,
                     values: dict) -> Array:
    """Whether every distribution of the model that validates its arguments (NumPyro's
    default) has valid arguments at the constrained ``values``: NumPyro's ``validate_args``
    check, traced (under tracing NumPyro skips it; its ``initialize_model`` runs the model
    and raises)."""
    model_trace = trace(substitute(seed(model, 0), data=values)).get_trace(
        *model_args, **model_kwargs)
    ok = jnp.array(True)
    for site in model_trace.values():
        fn = site["fn"] if site["type"] == "sample" else None
        while fn is not None:
            if getattr(fn, "_validate_args", False):
                for name, value in fn.get_args().items():
                    constraint = fn.arg_constraints.get(name)
                    if value is not None and constraint is not None and not is_dependent(
                            constraint):
                        ok = ok & jnp.all(constraint(value))
            fn = getattr(fn, "base_dist", None)
    return ok


def _plain_model(model_trace: dict) -> bool:
    """Whether NumPyro's initial-position search can run on the model as written: only
    continuous latent sites, observed sites, deterministic sites and plates without
    subsampling (no ``param``/``mutable`` values, enumeration or subsample indices, which
    ``initialize_model`` substitutes first)."""
    for site in model_trace.values():
        kind = site["type"]
        if kind == "sample":
            if not site["is_observed"] and site["fn"].support.is_discrete:
                return False
        elif kind == "plate":
            if site["value"] is None:
                return False
        elif kind != "deterministic":
            return False
    return True


class _LangevinKernel(MCMCKernel):
    """Shared machinery of :class:`MALA` and :class:`ULA`; subclasses define ``_is_adjusted``."""

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        step_size: Any = 0.1,
        inverse_mass_matrix: Any = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool = False,
        target_accept_prob: Any = 0.574,
        init_strategy: Callable = init_to_uniform,
        temperature: Any = 1.0,
        regularize_mass_matrix: bool = True,
        check_model: bool = True,
        max_delta_energy: Any = 1000.0,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError(
                f"{type(self).__name__}: give exactly one of model= or potential_fn=; got "
                f"model={model!r}, potential_fn={potential_fn!r}"
            )
        if not isinstance(dense_mass, bool):
            raise TypeError(
                f"dense_mass must be True or False, got {dense_mass!r} (block-structured "
                "mass-matrix adaptation is not supported by the Langevin kernels; an initial "
                "inverse_mass_matrix may still be given in NumPyro's structured dict form)"
            )
        in_range(target_accept_prob, "target_accept_prob", 0.0, 1.0)
        self._model = model
        self._potential_fn = potential_fn
        self._step_size = positive_float(step_size, "step_size")
        check_inverse_mass_matrix(inverse_mass_matrix)  # values now; shapes at init
        self._inverse_mass_matrix = inverse_mass_matrix
        self._adapt_step_size = bool(adapt_step_size)
        self._adapt_mass_matrix = bool(adapt_mass_matrix)
        self._dense_mass = dense_mass
        self._target_accept_prob = target_accept_prob
        self._init_strategy = init_strategy
        self._temperature = positive_float(temperature, "temperature")
        self._max_delta_energy = positive_float(max_delta_energy, "max_delta_energy")
        self._regularize_mass_matrix = regularize_mass_matrix
        self._constrained_init = False  # True for a block of numpyro.infer.Gibbs
        self._check_model = bool(check_model)
        self._reset()

    def _reset(self) -> None:
        self._num_warmup = 0
        self._potential_fn_gen = None
        self._postprocess_fn = None
        self._sample_fn = None

    def _is_adjusted(self, i: Array) -> Any:
        """Whether step ``i`` (counting warmup) is Metropolis-corrected: the one variation."""
        raise NotImplementedError

    # ------------------------------------------------------------ read-only settings
    @property
    def model(self) -> Callable | None:
        """The NumPyro model (``None`` for a bare ``potential_fn``)."""
        return self._model

    @property
    def temperature(self) -> Any:
        """``T`` of the target ``exp(-U / T)``."""
        return self._temperature

    @property
    def max_delta_energy(self) -> Any:
        """A step with ``log_accept_ratio < -max_delta_energy`` is flagged ``diverging``."""
        return self._max_delta_energy

    @property
    def target_accept_prob(self) -> Any:
        """Target of step-size adaptation (MALA's, or ULA's would-be, acceptance)."""
        return self._target_accept_prob

    @property
    def num_warmup(self) -> int:
        """Warmup steps of the current run (set by :meth:`init`)."""
        return self._num_warmup

    # ------------------------------------------------------------ MCMCKernel API
    @property
    def sample_field(self) -> str:
        return "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    def get_diagnostics_str(self, state: MALAState) -> str:
        """Progress-bar text: current step size ``h`` and mean acceptance probability."""
        h = float(jnp.mean(state.adapt_state.step_size))
        acc = float(jnp.mean(state.mean_accept_prob))
        return f"step size {h:.2e}. acc. prob={acc:.2f}"

    def postprocess_fn(self, model_args, model_kwargs) -> Callable:
        """Map unconstrained ``z`` to constrained values plus deterministic sites."""
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*model_args, **(model_kwargs or {}))

    def get_potential_fn(self, model_args=(), model_kwargs=None) -> Callable:
        """Potential ``U`` (negative log joint, unconstrained) for the given model arguments."""
        if self._model is None:
            return self._potential_fn
        if self._potential_fn_gen is None:
            raise RuntimeError("get_potential_fn needs init() to have run first")
        return self._potential_fn_gen(*model_args, **(model_kwargs or {}))

    def _init_params(self, rng_key, model_args, model_kwargs, init_params):
        """Initial unconstrained positions, and the potential's generators (model only).

        Returns ``(params, draw, traced)``: the positions, or ``None`` and ``draw(keys)``,
        NumPyro's ``find_valid_initial_params`` for a batch of chains, to be run inside
        :meth:`init`'s compiled program (NumPyro's ``initialize_model`` would compile it on
        every run); ``traced``: NumPyro's ``initialize_model`` was only traced (so its
        validation of the distributions' arguments is left to :meth:`init`'s program).
        """
        if self._model is None:
            if init_params is None:
                raise ValueError(
                    f"{type(self).__name__}(potential_fn=...) needs init_params: pass "
                    "mcmc.run(key, init_params=...) with one position per chain"
                )
            return init_params, None, False
        if self._check_model and not self._constrained_init:
            # the doubly-intractable guard: an unnormalized energy whose params depend on
            # latent sites would give a wrong posterior (shape-only tracing, no compile)
            guard_model(self._model, *model_args, **(model_kwargs or {}))
        batch = not is_prng_key(rng_key)
        init = partial(initialize_model, model=self._model, dynamic_args=True,
                       init_strategy=self._init_strategy, model_args=model_args,
                       model_kwargs=model_kwargs)
        info, draw = None, None
        if is_concrete(rng_key):
            # NumPyro's initialisation traced, not run (it would compile its search, or run
            # the model op by op); the chains' positions are drawn in init's program
            info = _traced_initialize(init, rng_key[0] if batch else rng_key,
                                      model_args, model_kwargs or {})
        if info is not None and init_params is None:
            draw = partial(find_valid_initial_params, model=self._model,
                           init_strategy=self._init_strategy, model_args=model_args,
                           model_kwargs=model_kwargs, prototype_params=info.param_info.z)
        traced = info is not None  # NumPyro's run (and its argument validation) skipped
        if info is None:
            info = init(rng_key)
        self._potential_fn_gen = info.potential_fn
        self._postprocess_fn = info.postprocess_fn
        if init_params is None:
            return (None if draw else info.param_info.z), draw, traced
        if self._constrained_init:  # Gibbs hands non-HMC blocks constrained values
            unc = lambda p: unconstrain_fn(self._model, model_args, model_kwargs or {}, p)
            init_params = unc(init_params) if not batch else jax.vmap(unc)(init_params)
        return init_params, None, traced

    def _adapter(self, potential: Callable) -> tuple[Callable, Callable]:
        """NumPyro's warmup adapter, tuning ``h`` as one-step HMC tunes ``eps``; its init
        does not search for ``h`` (:meth:`init` searches for all chains at once)."""
        return langevin_warmup_adapter(
            self._num_warmup, potential, self._temperature,
            adapt_step_size=self._adapt_step_size, find_step_size=False,
            adapt_mass_matrix=self._adapt_mass_matrix,
            dense_mass=self._dense_mass,
            target_accept_prob=self._target_accept_prob,
            regularize_mass_matrix=self._regularize_mass_matrix,
        )

    def _init_one(self, params: PyTree, key: PRNGKey,
                  potential: Callable) -> tuple[MALAState, PRNGKey]:
        """One chain's state at the given ``h``, and the key of its step-size search."""
        flat, _ = ravel_pytree(params)
        inv_mm = flat_inverse_mass_matrix(self._inverse_mass_matrix, params, self._dense_mass)
        st = langevin.init(params, potential)
        key, key_wa = random.split(key)
        key_wa, key_search = random.split(key_wa)
        h = jax.lax.convert_element_type(self._step_size, flat.dtype)
        wa_init, _ = self._adapter(potential)
        wa_state = wa_init((params, st.energy, st.energy_grad), key_wa, h,
                           inverse_mass_matrix=inv_mm, mass_matrix_size=flat.shape[0])
        zero = jnp.zeros((), flat.dtype)
        return MALAState(
            i=jnp.array(0), z=params, z_grad=st.energy_grad, potential_energy=st.energy,
            accept_prob=zero, diverging=jnp.array(False), log_accept_ratio=zero,
            forward_log_prob=zero, backward_log_prob=zero, proposal=params,
            noise=jnp.zeros_like(flat), adapt_state=wa_state, rng_key=key,
            mean_accept_prob=zero,
            log_det_sqrt=from_adapt_state(wa_state).half_logdet(flat.dtype),
        ), key_search

    def _find_step_size(self, state: MALAState, key_search: PRNGKey, potential: Callable,
                        vectorized: bool) -> MALAState:
        """The reasonable initial ``h`` of every chain, searched for all chains at once
        (traced in :meth:`init`'s program: a ``while_loop`` over the chains)."""
        ad = state.adapt_state
        h = find_reasonable_step_size(
            potential, self._temperature, ad.step_size, ad.inverse_mass_matrix,
            (state.z, state.potential_energy, state.z_grad), key_search,
            chain_axis=vectorized)
        return state._replace(adapt_state=restart_step_size(ad, h))

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs) -> MALAState:
        """Initial state; a batch of keys (``chain_method="vectorized"``) gives a batch.

        With concrete keys the chains' initial positions (drawn as NumPyro's HMC draws them),
        states and step-size search run as one compiled program, compiled once per model
        and process (:func:`~numpyro_ebm.infer._program_cache.run_cached`): later runs of
        the same model, on any data of the same shapes, reuse it.

        Raises
        ------
        ValueError
            The potential or its gradient is non-finite at the initial position.
        RuntimeError
            NumPyro's: no valid initial position in 100 draws.
        """
        vectorized = not is_prng_key(rng_key)
        if vectorized:
            rng_key, key_model = jnp.swapaxes(jax.vmap(random.split)(rng_key), 0, 1)
        else:
            rng_key, key_model = random.split(rng_key)
        init_params, draw, traced = self._init_params(key_model, model_args, model_kwargs,
                                                      init_params)
        self._num_warmup = int(num_warmup)
        potential = self.get_potential_fn(model_args, model_kwargs)
        init_one = partial(self._init_one, potential=potential)
        self._sample_fn = self._sample_vectorized if vectorized else self._sample_single

        def program(keys, params, keys_model):
            valid = True
            if draw is not None:
                (params, _, _), valid = draw(keys_model)
            if traced:  # NumPyro's initialize_model would have raised on invalid arguments
                check = lambda z: _arguments_valid(
                    self._model, model_args, model_kwargs or {},
                    self.postprocess_fn(model_args, model_kwargs)(z))
                valid = valid & (jax.vmap(check) if vectorized else check)(params)
            state, key_search = (jax.vmap(init_one) if vectorized else init_one)(params, keys)
            if self._adapt_step_size:
                state = self._find_step_size(state, key_search, potential, vectorized)
            return state, valid

        args = (rng_key, init_params, key_model if draw is not None else None)
        if is_concrete(args):
            state, valid = run_cached(program, *args)
            if not np.all(valid):  # NumPyro's own errors, with its per-site warnings
                initialize_model(key_model, self._model, init_strategy=self._init_strategy,
                                 model_args=model_args, model_kwargs=model_kwargs)
        else:  # traced (pmap, or a caller's jit): part of the caller's program
            state, _ = program(*args)
        e, g = state.potential_energy, state.z_grad
        if is_concrete((e, g)) and not (np.all(np.isfinite(e)) and all(
                np.all(np.isfinite(v)) for v in jax.tree.leaves(g))):
            # every proposal would be rejected: the chain would stay there, step size -> 0
            raise ValueError(
                f"init_params: the potential or its gradient is non-finite at the initial "
                f"position (potential {np.asarray(e)}); expected a point where U and grad U "
                "are finite"
            )
        return state

    def _sample_single(self, state: MALAState, model_args, model_kwargs) -> MALAState:
        return self._step(state, state.i, state.adapt_state.window_idx, model_args,
                          model_kwargs)

    def _sample_vectorized(self, state: MALAState, model_args, model_kwargs) -> MALAState:
        # All chains share the iteration and the adaptation window. Passing them unbatched
        # keeps the warmup `lax.cond`s real branches under vmap (a batched predicate would
        # turn them into selects that run the adapter, with its window-end factorisation
        # and step-size search, on every sampling step).
        i, window = state.i[0], state.adapt_state.window_idx[0]
        return jax.vmap(self._step, in_axes=(0, None, None, None, None))(
            state, i, window, model_args, model_kwargs)

    def _step(self, state: MALAState, i, window, model_args, model_kwargs) -> MALAState:
        """One transition of one chain; ``i`` and ``window`` may be unbatched under vmap."""
        potential = self.get_potential_fn(model_args, model_kwargs)
        # two random-number calls per step (each is a loop of its own in the compiled step):
        # the chain's next key, and the step's noise drawn as the functional core draws it,
        # so that langevin.propose(key_step, ...) makes this step's proposal
        rng_key, key_step = random.split(state.rng_key)
        xi, log_u = langevin.draw_step_noise(key_step, state.z)
        ad = state.adapt_state._replace(window_idx=window)
        current = langevin.LangevinState(state.z, state.potential_energy, state.z_grad)
        proposal = langevin.propose_with_noise(xi, current, potential, ad.step_size,
                                               from_adapt_state(ad, state.log_det_sqrt),
                                               self._temperature)
        new, info = langevin.accept(None, current, proposal, self._is_adjusted(i),
                                    self._max_delta_energy, log_uniform=log_u)
        _, wa_update = self._adapter(potential)

        def adapt(args):
            a, t = args[0], i
            if not self._dense_mass:
                # per chain (batched under vmap), NumPyro's Welford and window-end branches
                # become selects: elementwise for a diagonal metric, and cheaper to compile
                # than branches nested in this one; a dense metric keeps its branches (a
                # Cholesky factorisation in every warmup step would cost more than it saves)
                a, t = a._replace(window_idx=state.adapt_state.window_idx), state.i
            a = wa_update(t, info.acceptance_rate,
                          (new.position, new.energy, new.energy_grad), a)
            return a, from_adapt_state(a).half_logdet(state.log_det_sqrt.dtype)

        adapt_state, log_det_sqrt = jax.lax.cond(
            i < self._num_warmup, adapt, lambda args: args, (ad, state.log_det_sqrt))
        itr = i + 1
        n = jnp.where(i < self._num_warmup, itr, itr - self._num_warmup)
        mean_acc = state.mean_accept_prob + (info.acceptance_rate - state.mean_accept_prob) / n
        return MALAState(
            i=state.i + 1, z=new.position, z_grad=new.energy_grad,
            potential_energy=new.energy, accept_prob=info.acceptance_rate,
            diverging=info.diverging, log_accept_ratio=info.log_accept_ratio,
            forward_log_prob=info.forward_log_prob, backward_log_prob=info.backward_log_prob,
            proposal=info.proposal.position, noise=info.noise, adapt_state=adapt_state,
            rng_key=rng_key, mean_accept_prob=mean_acc, log_det_sqrt=log_det_sqrt,
        )

    def sample(self, state: MALAState, model_args, model_kwargs) -> MALAState:
        """One Langevin step (and one adaptation update during warmup)."""
        if self._sample_fn is None:
            raise RuntimeError(f"{type(self).__name__}.init must be called before sample")
        return self._sample_fn(state, model_args, model_kwargs)

    # ------------------------------------------------------------ composition (Gibbs)
    def refresh(self, state: MALAState, model_args, model_kwargs) -> MALAState:
        """Recompute ``potential_energy`` and ``z_grad`` at ``state.z`` for new arguments."""
        potential = self.get_potential_fn(model_args, model_kwargs)
        pe, grad = jax.value_and_grad(potential)(state.z)
        return state._replace(potential_energy=pe, z_grad=grad)

    def wrap_model(self, wrapper: Callable) -> _LangevinKernel:
        """Copy bound to ``wrapper(model)`` (used by :class:`numpyro.infer.Gibbs`)."""
        if self._model is None:
            raise ValueError("wrap_model needs a kernel built from a model, not potential_fn")
        kernel = copy.copy(self)
        kernel._model = wrapper(self._model)
        kernel._constrained_init = self._constrained_init or wrapper is conditioned
        kernel._reset()
        return kernel

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_sample_fn"] = None
        return state


class MALA(_LangevinKernel):
    """Metropolis-adjusted Langevin algorithm as a NumPyro kernel.

    Proposal ``z' = z - h M^-1 grad U(z) + sqrt(2 h T) M^-1/2 xi``, accepted with
    ``log r = -(U(z') - U(z)) / T + log q(z | z') - log q(z' | z)`` (Roberts & Tweedie
    1996); one potential-and-gradient evaluation per step. Works with
    ``numpyro.infer.MCMC`` in every chain method.

    Parameters
    ----------
    model
        A NumPyro model (constrained sites are sampled in unconstrained space). Give
        exactly one of ``model`` and ``potential_fn``.
    potential_fn
        A potential ``U(z)`` on unconstrained positions (then ``MCMC.run`` needs
        ``init_params``).
    step_size
        Initial Langevin time step ``h > 0`` (NumPyro's leapfrog ``eps`` corresponds to
        ``h = eps^2 / 2``; BlackJAX's ``step_size`` is ``h``). With ``adapt_step_size`` it
        is only the start of a search for a reasonable ``h``.
    inverse_mass_matrix
        Initial ``M^-1``: ``None`` (identity), a vector (diagonal), a square matrix (dense,
        needs ``dense_mass=True``) over the flattened unconstrained coordinates, or NumPyro's
        structured form, a dict keyed by tuples of site names, e.g.
        ``{("a",): jnp.ones(3), ("b", "c"): jnp.eye(5)}`` (sites not named get identity).
    adapt_step_size
        Tune ``h`` during warmup: a reasonable initial ``h`` (acceptance near 0.8), then
        dual averaging (Hoffman & Gelman 2014): as ``HMC(num_steps=1,
        trajectory_length=None)`` until its first restart (on ``eps = sqrt(2 h)``, toward
        an acceptance of at least 0.8), then on ``log h`` toward ``target_accept_prob`` (see
        :func:`~numpyro_ebm.infer.adaptation.langevin_warmup_adapter`).
    adapt_mass_matrix
        Estimate ``M^-1`` during warmup (Welford covariance in Stan's windows).
    dense_mass
        ``True``: adapt a dense ``M^-1``; ``False``: a diagonal one. NumPyro's list of
        site tuples (block-structured adaptation) is refused with ``TypeError``.
    target_accept_prob
        Acceptance probability targeted by step-size adaptation, in ``(0, 1)`` (default
        0.574, the optimal MALA rate of Roberts & Rosenthal 1998), after the first restart
        of dual averaging; before it the target is at least 0.8, so with ``num_warmup < 20``
        (no restart) a target below 0.8 has no effect.
    init_strategy
        NumPyro per-site initialisation strategy (model only).
    temperature
        ``T > 0`` of the target ``exp(-U / T)``; 1 samples the model.
    regularize_mass_matrix
        Shrink the adapted ``M^-1`` toward the identity, as NumPyro's HMC does.
    check_model
        Run :func:`numpyro_ebm.check_model` at init: raise
        :class:`~numpyro_ebm.DoublyIntractableError` if an unnormalized energy's parameters
        depend on latent sites (its ``log Z(theta)`` would be missing). Pass ``False`` only
        when ``Z`` truly does not depend on them (e.g. a pure location shift).
    max_delta_energy
        A step whose log acceptance ratio is below ``-max_delta_energy`` is flagged
        ``diverging`` (NumPyro's HMC meaning: an energy error above 1000 by default), as is
        every non-finite proposal.

    Raises
    ------
    ValueError
        Both or neither of ``model`` / ``potential_fn``; a non-positive or non-finite
        ``step_size``, ``temperature`` or ``max_delta_energy``; ``target_accept_prob``
        outside ``(0, 1)``; a concrete ``inverse_mass_matrix`` (or a block of its dict
        form) with a non-finite, zero or negative diagonal entry, or a dense one that is not
        symmetric positive definite. Its shapes are checked at ``init``.
    """

    def _is_adjusted(self, i: Array) -> bool:
        return True


class ULA(_LangevinKernel):
    """Unadjusted Langevin algorithm as a NumPyro kernel (always moves; biased in ``h``).

    Same move as :class:`MALA` without the accept step: it samples ``exp(-U / T)`` only as
    ``h -> 0`` (bias of order ``h``; Durmus & Moulines 2017). Non-finite proposals are
    flagged ``diverging`` and the chain stays. ``accept_prob`` holds the acceptance
    probability MALA would have had; step-size adaptation (on by default) steers it toward
    ``target_accept_prob``; pass ``adapt_step_size=False`` for a fixed ``h``.

    Parameters
    ----------
    model
        A NumPyro model (constrained sites are sampled in unconstrained space). Give
        exactly one of ``model`` and ``potential_fn``.
    potential_fn
        A potential ``U(z)`` on unconstrained positions (then ``MCMC.run`` needs
        ``init_params``).
    step_size
        Initial Langevin time step ``h > 0`` (``h = eps^2 / 2`` for a leapfrog ``eps``).
    inverse_mass_matrix
        Initial ``M^-1``: ``None``, a vector, a square matrix (needs ``dense_mass=True``) or
        NumPyro's structured dict keyed by tuples of site names (see :class:`MALA`).
    adapt_step_size
        Tune ``h`` during warmup on the would-be MALA acceptance (reasonable initial ``h``,
        then dual averaging).
    adapt_mass_matrix
        Estimate ``M^-1`` during warmup (Welford covariance in Stan's windows).
    dense_mass
        ``True``: adapt a dense ``M^-1``; ``False``: a diagonal one.
    target_accept_prob
        Target of step-size adaptation for the would-be MALA acceptance (default 0.9: a
        small discretisation bias).
    init_strategy
        NumPyro per-site initialisation strategy (model only).
    temperature
        ``T > 0`` of the target ``exp(-U / T)``.
    regularize_mass_matrix
        Shrink the adapted ``M^-1`` toward the identity, as NumPyro's HMC does.
    metropolis_warmup
        If true (default), warmup steps are Metropolis-corrected (the same proposal,
        accepted with MALA's rule) so that trial step sizes of the adapter cannot throw
        the chain far out of the typical set; sampling steps are always unadjusted. With
        ``False``, warmup is unadjusted too.
    check_model
        Run the doubly-intractable guard :func:`numpyro_ebm.check_model` at init.
    max_delta_energy
        A step whose would-be log acceptance ratio is below ``-max_delta_energy`` is
        flagged ``diverging`` (default 1000), as is every non-finite proposal.
    """

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        step_size: Any = 0.1,
        inverse_mass_matrix: Any = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool = False,
        target_accept_prob: Any = 0.9,
        init_strategy: Callable = init_to_uniform,
        temperature: Any = 1.0,
        regularize_mass_matrix: bool = True,
        metropolis_warmup: bool = True,
        check_model: bool = True,
        max_delta_energy: Any = 1000.0,
    ):
        super().__init__(
            model=model, potential_fn=potential_fn, step_size=step_size,
            inverse_mass_matrix=inverse_mass_matrix, adapt_step_size=adapt_step_size,
            adapt_mass_matrix=adapt_mass_matrix, dense_mass=dense_mass,
            target_accept_prob=target_accept_prob, init_strategy=init_strategy,
            temperature=temperature, regularize_mass_matrix=regularize_mass_matrix,
            check_model=check_model, max_delta_energy=max_delta_energy,
        )
        self._metropolis_warmup = bool(metropolis_warmup)

    @property
    def metropolis_warmup(self) -> bool:
        """Whether warmup steps are Metropolis-corrected."""
        return self._metropolis_warmup

    def _is_adjusted(self, i: Array) -> Any:
        return (i < self._num_warmup) if self._metropolis_warmup else False
