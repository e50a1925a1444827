"""Non-reversible parallel tempering (NRPT) as a NumPyro ``MCMCKernel``.

Syed, Bouchard-Cote, Deligiannidis & Doucet (2021), "Non-reversible parallel tempering: a
scalable highly parallel MCMC scheme", JRSS-B 84(2). ``N`` replicas target the annealed
densities on the unconstrained (flattened) space

    pi_beta(z) ∝ exp(-U_beta(z)),   U_beta = (1 - beta) U_0 + beta U_1,

with ``0 = beta_0 < ... < beta_{N-1} = 1``,

from a reference ``U_0`` (a Gaussian, or the model's prior) to the target ``U_1`` (the
model's potential). One NRPT step ("scan"): every replica takes ``explore_steps`` moves of
an explorer kernel (our MALA/ULA, NumPyro's HMC/NUTS, ...) on its own ``pi_beta``; the
reference replica instead draws exactly from a Gaussian reference; then the deterministic
even/odd (DEO) swap: at even scans the pairs ``(0, 1), (2, 3), ...`` and at odd scans
``(1, 2), (3, 4), ...`` propose to exchange positions, accepted with

    log r_k = (beta_{k+1} - beta_k) (V(z_k) - V(z_{k+1})),   V = U_0 - U_1.

During warmup the schedule is tuned in rounds of doubling length (Syed et al., Alg. 4):
the swap rejection rates ``r_k`` (Rao-Blackwellised, ``1 - min(1, e^{log r_k})`` for every
pair at every scan) give the cumulative communication barrier ``Lambda(beta_k) =
sum_{j<k} r_j``; the new ``beta_k`` solve ``Lambda(beta_k) = k Lambda / (N - 1)``
(piecewise-linear interpolation), which equalises the rejection rates. The global barrier
``Lambda`` bounds the round-trip rate (reference -> target -> reference, all replicas
together): ``tau <= 1 / (2 + 2 Lambda)`` as ``N`` grows. The target replica's draws are the
samples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import initialize_model, potential_energy
from numpyro.util import identity, is_prng_key

from .._warnings import NumpyroEBMWarning
from ..checks import in_range, is_concrete, one_of, positive_int
from ..likelihood import check_model as guard_model
from ..typing import Array, PyTree
from .kernels import MALA
from .langevin import metropolis_hastings

__all__ = ["NRPT", "NRPTState", "GaussianReference", "NRPT_FIELDS", "round_trip_bound"]

NRPT_FIELDS: tuple[str, ...] = (
    "potential_energy",
    "accept_prob",
    "swap_accept_prob",
    "replica_accept_prob",
    "replica_step_size",
    "barrier",
    "round_trips",
    "betas",
    "machine",
)
"""Pass as ``mcmc.run(..., extra_fields=NRPT_FIELDS)`` to record the tempering statistics."""

_EXPLORER_FIELDS = ("z", "potential_energy", "z_grad")


def round_trip_bound(barrier: Any) -> Any:
    """The NRPT round-trip rate ``1 / (2 + 2 Lambda)`` (round trips per scan, all replicas).

    Syed et al. (2021), Theorem 3: the limit of the DEO round-trip rate as the number of
    replicas grows, for the global communication barrier ``Lambda``.
    """
    return 1.0 / (2.0 + 2.0 * np.asarray(barrier))


class GaussianReference(NamedTuple):
    """Diagonal Gaussian reference ``N(loc, diag(scale^2))`` on the flat unconstrained space."""

    loc: Array
    scale: Array


class NRPTState(NamedTuple):
    """State of :class:`NRPT` (one chain; leading chain axis if vectorized).

    ``N`` is the number of replicas, ``d`` the number of unconstrained coordinates.

    Fields: ``i`` (scan counter, counting warmup); ``z`` (the target replica's unconstrained
    position, the sample); ``potential_energy`` (``U_1(z)``); ``accept_prob`` and
    ``diverging`` (the target replica's last explorer move); ``explorer`` (the explorer's
    state for every replica, leading axis ``N``); ``betas`` ``(N,)``; ``reference``
    (:class:`GaussianReference`, unused with the prior reference); ``machine`` ``(N,)``
    (which replica copy, or "machine", sits at each inverse temperature: the index
    process); ``last_end`` ``(N,)`` (per machine, the end it touched last: 0 reference,
    1 target, -1 neither yet); ``round_trips`` (completed round trips, all machines,
    counted after warmup); ``swap_accept_prob`` ``(N - 1,)`` (``min(1, e^{log r_k})`` of
    every adjacent pair at this scan); ``rejection_sum`` ``(N - 1,)``,
    ``explorer_accept_sum`` ``(N,)`` (the explorers' acceptance) and ``num_stats``
    (sums over the current adaptation round, or over sampling); ``barrier`` (the running
    estimate of ``Lambda``); ``replica_accept_prob`` and ``replica_step_size`` ``(N,)``;
    ``moments`` (count, mean, sum of squares of the target replica's ``z`` in this round,
    for the fitted reference); ``rng_key``.
    """

    i: Array
    z: PyTree
    potential_energy: Array
    accept_prob: Array
    diverging: Array
    explorer: Any
    betas: Array
    reference: GaussianReference
    machine: Array
    last_end: Array
    round_trips: Array
    swap_accept_prob: Array
    rejection_sum: Array
    explorer_accept_sum: Array
    num_stats: Array
    barrier: Array
    replica_accept_prob: Array
    replica_step_size: Array
    moments: tuple[Array, Array, Array]
    rng_key: Array


class _AnnealedModel:
    """The model each explorer sees: one flat site ``z`` with potential ``U_beta(z)``.

    ``beta`` and the reference come in as model arguments, so one explorer (vmapped over
    replicas) serves every inverse temperature. The user's model runs inside
    ``handlers.block`` so that the explorer's handlers see only ``z``.
    """

    def __init__(self, kernel: NRPT, size: int):
        self.kernel = kernel
        self.size = size

    def __call__(self, beta, reference, model_args, model_kwargs):
        z = numpyro.sample("z", dist.ImproperUniform(constraints.real_vector, (), (self.size,)))
        with handlers.block():
            u0, u1 = self.kernel._potentials(z, reference, model_args, model_kwargs)
        numpyro.factor("annealed_potential", -((1.0 - beta) * u0 + beta * u1))


def _round_ends(num_warmup: int, first: int = 8) -> np.ndarray:
    """Ends of the warmup adaptation rounds: lengths ``first, 2 first, 4 first, ...``.

    The remainder joins the last round, so the last round ends at ``num_warmup``.
    """
    ends, end, length = [], 0, first
    while end + length <= num_warmup:
        end += length
        ends.append(end)
        length *= 2
    if num_warmup > 0 and (not ends or ends[-1] < num_warmup):
        if ends:
            ends[-1] = num_warmup
        else:
            ends.append(num_warmup)
    return np.asarray(ends, dtype=np.int64)


def _updated_schedule(betas: Array, rejection: Array) -> Array:
    """Betas that equalise the estimated rejection rates (Syed et al. 2021, Alg. 4)."""
    lam = jnp.concatenate([jnp.zeros((1,), betas.dtype), jnp.cumsum(rejection)])
    total = lam[-1]
    targets = jnp.linspace(0.0, 1.0, betas.shape[0], dtype=betas.dtype) * total
    new = jnp.interp(targets, lam, betas).at[0].set(0.0).at[-1].set(1.0)
    return jnp.where(total > 0, new, betas)


def _mix(beta: Array, a0: Array, a1: Array) -> Array:
    """``(1 - beta) a0 + beta a1``, exactly ``a0`` at ``beta = 0`` and ``a1`` at ``beta = 1``
    (so an infinite ``a1`` does not reach the reference replica as ``0 * inf = nan``)."""
    mixed = (1.0 - beta) * a0 + beta * a1
    return jnp.where(beta == 0, a0, jnp.where(beta == 1, a1, mixed))


STUCK_ACCEPT_RATE = 0.01
"""An explorer whose mean acceptance over the last warmup round is below this has stopped
moving: :class:`NRPT` warns, naming the replica."""


def _warn_stuck_explorers(mean_accept: np.ndarray, betas: np.ndarray, first: int) -> None:
    """One :class:`~numpyro_ebm.NumpyroEBMWarning` naming every stuck replica (host side)."""
    stuck = [k for k in range(first, mean_accept.shape[-1])
             if mean_accept[k] < STUCK_ACCEPT_RATE]
    if not stuck:
        return
    which = ", ".join(f"replica {k} (beta={betas[k]:.3g}, acceptance {mean_accept[k]:.2%})"
                      for k in stuck)
    warnings.warn(
        f"NRPT: the explorer stopped moving in {which}: mean acceptance over the last warmup "
        f"round below {STUCK_ACCEPT_RATE:.0%}. Those replicas change only by swaps, which "
        "slows mixing; their explorer's step size (recorded as replica_step_size) is too "
        "large for them.",
        NumpyroEBMWarning, stacklevel=2)


def _deo_permutation(swap: Array) -> Array:
    """``perm`` with ``new[j] = old[perm[j]]`` for non-overlapping accepted pair swaps."""
    s = swap.astype(jnp.int32)
    zero = jnp.zeros((1,), jnp.int32)
    n = swap.shape[0] + 1
    return jnp.arange(n) + jnp.concatenate([s, zero]) - jnp.concatenate([zero, s])


class NRPT(MCMCKernel):
    """Non-reversible parallel tempering with an adaptive schedule, as a NumPyro kernel.

    Syed, Bouchard-Cote, Deligiannidis & Doucet (2021, JRSS-B); see the module docstring
    for the algorithm. Works with ``numpyro.infer.MCMC`` in every chain method; each chain
    is a whole ladder of ``num_replicas`` replicas, and the target replica's draws are the
    samples (``postprocess_fn`` maps them to constrained values and deterministic sites).

    Parameters
    ----------
    model
        A NumPyro model; give this or ``potential_fn``, not both.
    potential_fn
        A potential ``U(z)`` on unconstrained positions, instead of ``model`` (then
        ``MCMC.run`` needs ``init_params``).
    explorer
        ``explorer(model) -> MCMCKernel``: builds the kernel that moves each replica, e.g.
        ``numpyro_ebm.MALA`` (default), ``functools.partial(numpyro_ebm.MALA,
        step_size=0.05)``, ``numpyro_ebm.ULA``, ``numpyro.infer.HMC`` or
        ``numpyro.infer.NUTS``. Its state must have the fields ``z``, ``potential_energy``
        and ``z_grad`` (as MALA/ULA/HMC/NUTS states do). Each replica has its own
        step-size (and mass-matrix) adaptation during warmup.
    num_replicas
        ``N >= 2`` replicas, including the reference (``beta = 0``) and target
        (``beta = 1``).
    explore_steps
        Explorer moves per replica per scan.
    reference
        ``"gaussian"`` (default): ``N(reference_loc, diag(reference_scale^2))`` on the flat
        unconstrained space, sampled exactly in the reference replica. ``"prior"``: the
        model with its observed sites and factors removed (the likelihood), explored like
        the other replicas; needs a model with observed sites.
    reference_loc
        Initial location of the Gaussian reference: a scalar or shape ``(d,)``, ``d`` the
        number of unconstrained coordinates.
    reference_scale
        Initial scale of the Gaussian reference, ``> 0``: a scalar or shape ``(d,)``.
    adapt_reference
        Refit the Gaussian reference's location and scale at the end of each warmup round
        to the target replica's draws of that round (moment matching, as in the
        variational reference of Surjanovic et al. 2022). Off by default: while the target
        replica still misses modes the fit misses them too.
    betas
        Initial schedule, increasing from 0 to 1, shape ``(N,)``; default uniform.
    adapt_schedule
        Tune the schedule during warmup from the swap rejection rates.
    init_strategy
        NumPyro initialisation strategy (model only); every replica starts from its own
        draw of it.
    check_model
        Run :func:`numpyro_ebm.check_model` at init (the doubly-intractable guard).

    Raises
    ------
    ValueError, TypeError
        Bad arguments, named, before anything is compiled.
    """

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        explorer: Callable[[Callable], MCMCKernel] = MALA,
        num_replicas: int = 8,
        explore_steps: int = 1,
        reference: str = "gaussian",
        reference_loc: Any = 0.0,
        reference_scale: Any = 1.0,
        adapt_reference: bool = False,
        betas: Any = None,
        adapt_schedule: bool = True,
        init_strategy: Callable = init_to_uniform,
        check_model: bool = True,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError(
                f"NRPT: give exactly one of model= or potential_fn=; got model={model!r}, "
                f"potential_fn={potential_fn!r}"
            )
        if not callable(explorer):
            raise TypeError(
                f"explorer must be a callable model -> MCMCKernel (e.g. numpyro_ebm.MALA or "
                f"numpyro.infer.NUTS), got {type(explorer).__name__}: {explorer!r}"
            )
        self._num_replicas = positive_int(num_replicas, "num_replicas")
        if self._num_replicas < 2:
            raise ValueError(f"num_replicas must be >= 2, got {num_replicas!r}")
        self._explore_steps = positive_int(explore_steps, "explore_steps")
        self._reference = one_of(reference, "reference", ("gaussian", "prior"))
        if reference == "prior" and model is None:
            raise ValueError("reference='prior' needs a model (the prior is read from it)")
        if reference == "prior" and adapt_reference:
            raise ValueError("adapt_reference=True fits a Gaussian reference; it needs "
                             "reference='gaussian', got reference='prior'")
        in_range(reference_loc, "reference_loc")
        in_range(reference_scale, "reference_scale", 0.0)
        for name, value in (("reference_loc", reference_loc),
                            ("reference_scale", reference_scale)):
            if np.ndim(value) > 1:  # the length d is checked at init, once the model is known
                raise ValueError(f"{name} must be a scalar or a vector of shape (d,) (d "
                                 f"unconstrained coordinates), got shape {np.shape(value)}")
        self._betas = None if betas is None else self._check_betas(betas)
        self._model = model
        self._potential_fn = potential_fn
        self._explorer_factory = explorer
        self._reference_loc = reference_loc
        self._reference_scale = reference_scale
        self._adapt_reference = bool(adapt_reference)
        self._adapt_schedule = bool(adapt_schedule)
        self._init_strategy = init_strategy
        self._check_model = bool(check_model)
        self._reset()

    def _check_betas(self, betas: Any) -> Array:
        b = np.asarray(betas, dtype=float)
        n = self._num_replicas
        if (b.shape != (n,) or not np.all(np.isfinite(b)) or b[0] != 0.0 or b[-1] != 1.0
                or not np.all(np.diff(b) > 0)):
            raise ValueError(
                f"betas must be strictly increasing from 0 to 1 with shape ({n},) "
                f"(num_replicas), got {betas!r}"
            )
        return b

    def _reset(self) -> None:
        self._explorer = None
        self._sample_fn = None
        self._target_gen = None
        self._prior_gen = None
        self._postprocess_fn = None
        self._unravel = None
        self._num_warmup = 0
        self._round_end = np.zeros((0,), np.int64)

    # ------------------------------------------------------------ MCMCKernel API
    @property
    def model(self) -> Callable | None:
        """The NumPyro model (``None`` for a bare ``potential_fn``)."""
        return self._model

    @property
    def sample_field(self) -> str:
        return "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    @property
    def num_replicas(self) -> int:
        """Number of replicas ``N`` per chain."""
        return self._num_replicas

    def get_diagnostics_str(self, state: NRPTState) -> str:
        """Progress-bar text: barrier ``Lambda``, mean swap acceptance, round trips."""
        lam = float(jnp.mean(state.barrier))
        acc = float(jnp.mean(state.swap_accept_prob))
        trips = int(jnp.sum(state.round_trips))
        return f"Lambda {lam:.2f}, swap acc. {acc:.2f}, round trips {trips}"

    def postprocess_fn(self, model_args, model_kwargs) -> Callable:
        """Map the target replica's unconstrained ``z`` to constrained values and
        deterministic sites."""
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*model_args, **(model_kwargs or {}))

    # ------------------------------------------------------------ potentials
    def _target_potential(self, zf: Array, model_args, model_kwargs) -> Array:
        """``U_1(z)`` (the model's potential) at a flat unconstrained position ``zf``."""
        z = self._unravel(zf)
        if self._model is None:
            return self._potential_fn(z)
        return self._target_gen(*model_args, **(model_kwargs or {}))(z)

    def _reference_potential(self, zf: Array, reference: GaussianReference, model_args,
                             model_kwargs) -> Array:
        """``U_0(z)``: the prior's potential, or the normalised Gaussian reference's."""
        if self._reference == "prior":
            return self._prior_gen(*model_args, **(model_kwargs or {}))(self._unravel(zf))
        r = (zf - reference.loc) / reference.scale
        return (0.5 * jnp.sum(r * r) + jnp.sum(jnp.log(reference.scale))
                + 0.5 * zf.shape[0] * math.log(2 * math.pi))

    def _potentials(self, zf: Array, reference: GaussianReference, model_args, model_kwargs):
        """``(U_0(z), U_1(z))`` at a flat unconstrained position ``zf``."""
        return (self._reference_potential(zf, reference, model_args, model_kwargs),
                self._target_potential(zf, model_args, model_kwargs))

    def _setup(self, rng_keys, init_params, model_args, model_kwargs):
        """Potentials, postprocessing and one start per replica (leading axis of keys)."""
        kwargs = model_kwargs or {}
        if self._model is None:
            if init_params is None:
                raise ValueError(
                    "NRPT(potential_fn=...) needs init_params: pass mcmc.run(key, "
                    "init_params=...) with one position per chain"
                )
            return init_params
        if self._check_model:
            guard_model(self._model, *model_args, **kwargs)
        info, pe_gen, post_gen, trace = initialize_model(
            rng_keys, self._model, dynamic_args=True, init_strategy=self._init_strategy,
            model_args=model_args, model_kwargs=kwargs,
        )
        self._target_gen = pe_gen
        self._postprocess_fn = post_gen
        if self._reference == "prior":
            observed = [k for k, s in trace.items() if s["type"] == "sample" and s["is_observed"]]
            if not observed:
                raise ValueError(
                    "reference='prior' needs a model with observed sites or factors (its "
                    "likelihood); this model has none, so its prior is the target itself. "
                    "Use reference='gaussian'."
                )
            prior = handlers.block(self._model, hide_fn=lambda s: s["type"] == "sample"
                                   and s["is_observed"])
            self._prior_gen = lambda *a, **k: (lambda p: potential_energy(prior, a, k, p))
        return info[0] if init_params is None else init_params

    # ------------------------------------------------------------ init
    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs) -> NRPTState:
        """Initial state; a batch of keys (``chain_method="vectorized"``) gives a batch."""
        n = self._num_replicas
        vectorized = not is_prng_key(rng_key)
        keys = rng_key[None] if not vectorized else rng_key
        split = jax.vmap(lambda k: random.split(k, n + 1))(keys)  # (C, n + 1)
        chain_keys, replica_keys = split[:, 0], split[:, 1:]
        model_kwargs = model_kwargs or {}
        flat_keys = replica_keys.reshape((-1,) + replica_keys.shape[2:])
        starts = self._setup(flat_keys, init_params, model_args, model_kwargs)
        c = keys.shape[0]
        if self._model is None or init_params is not None:  # one start per chain, all replicas
            per_chain = starts if vectorized else jax.tree.map(lambda v: v[None], starts)
            starts = jax.tree.map(lambda v: jnp.repeat(v[:, None], n, 1), per_chain)
        else:
            starts = jax.tree.map(lambda v: v.reshape((c, n) + v.shape[1:]), starts)
        example = jax.tree.map(lambda v: v[0, 0], starts)
        flat0, self._unravel = ravel_pytree(example)
        d = flat0.shape[0]
        flat_starts = jax.vmap(jax.vmap(lambda p: ravel_pytree(p)[0]))(starts)  # (C, n, d)
        self._num_warmup = int(num_warmup)
        self._round_end = _round_ends(self._num_warmup)
        self._explorer = self._explorer_factory(_AnnealedModel(self, d))
        if not isinstance(self._explorer, MCMCKernel):
            raise TypeError(
                f"explorer(model) must return a numpyro MCMCKernel, got "
                f"{type(self._explorer).__name__}"
            )
        reference = self._initial_reference(d, flat0.dtype)
        betas = jnp.asarray(np.linspace(0.0, 1.0, n) if self._betas is None else self._betas,
                            flat0.dtype)
        init_chain = lambda k, s: self._init_chain(k, s, betas, reference, model_args,
                                                   model_kwargs)
        state = jax.vmap(init_chain)(chain_keys, flat_starts)
        self._check_finite_start(state)
        if vectorized:
            self._sample_fn = self._sample_vectorized
            return state
        self._sample_fn = self._sample_chain
        return jax.tree.map(lambda v: v[0], state)

    def _initial_reference(self, d: int, dtype) -> GaussianReference:
        for name, value in (("reference_loc", self._reference_loc),
                            ("reference_scale", self._reference_scale)):
            if np.ndim(value) != 0 and np.shape(value) != (d,):
                raise ValueError(f"{name} must be a scalar or of shape ({d},) (the model's "
                                 f"{d} unconstrained coordinates), got shape {np.shape(value)}")
        loc = jnp.broadcast_to(jnp.asarray(self._reference_loc, dtype), (d,))
        scale = jnp.broadcast_to(jnp.asarray(self._reference_scale, dtype), (d,))
        return GaussianReference(loc, scale)

    def _check_finite_start(self, state: NRPTState) -> None:
        u = state.explorer.potential_energy
        if is_concrete(u) and not np.all(np.isfinite(np.asarray(u))):
            raise ValueError(
                "init_params: the annealed potential is non-finite at the initial position of "
                f"some replica (values {np.asarray(u)}); expected a point where U_0 and U_1 "
                "are finite"
            )

    def _init_chain(self, key, flat_starts, betas, reference, model_args, model_kwargs):
        """One chain: the explorer's state for every replica and the tempering statistics."""
        n, nw = self._num_replicas, self._num_warmup * self._explore_steps
        key, key_explorer = random.split(key)

        def init_replica(k, zf, beta):
            return self._explorer.init(k, nw, {"z": zf}, (beta, reference, model_args,
                                                          model_kwargs), {})

        explorer = jax.vmap(init_replica)(random.split(key_explorer, n), flat_starts, betas)
        missing = [f for f in _EXPLORER_FIELDS if f not in getattr(explorer, "_fields", ())]
        if missing:
            raise TypeError(
                f"explorer state {type(explorer).__name__} lacks the field(s) {missing}; NRPT "
                "needs a NamedTuple state with z, potential_energy and z_grad (as MALA, ULA, "
                "HMC and NUTS have)"
            )
        dtype = betas.dtype
        zf = explorer.z["z"]
        u1 = self._target_potential(zf[-1], model_args, model_kwargs)
        zeros = jnp.zeros((n - 1,), dtype)
        last_end = jnp.full((n,), -1, jnp.int32).at[0].set(0)
        return NRPTState(
            i=jnp.array(0),
            z=self._unravel(zf[-1]),
            potential_energy=u1,
            accept_prob=jnp.zeros((), dtype),
            diverging=jnp.array(False),
            explorer=explorer,
            betas=betas,
            reference=reference,
            machine=jnp.arange(n, dtype=jnp.int32),
            last_end=last_end,
            round_trips=jnp.array(0, jnp.int32),
            swap_accept_prob=zeros,
            rejection_sum=zeros,
            explorer_accept_sum=jnp.zeros((n,), dtype),
            num_stats=jnp.zeros((), dtype),
            barrier=jnp.zeros((), dtype),
            replica_accept_prob=jnp.zeros((n,), dtype),
            replica_step_size=self._step_sizes(explorer, n, dtype),
            moments=(jnp.zeros((), dtype), jnp.zeros_like(zf[0]), jnp.zeros_like(zf[0])),
            rng_key=key,
        )

    @staticmethod
    def _step_sizes(explorer, n, dtype) -> Array:
        ad = getattr(explorer, "adapt_state", None)
        h = getattr(ad, "step_size", None)
        return jnp.full((n,), jnp.nan, dtype) if h is None else jnp.asarray(h, dtype)

    # ------------------------------------------------------------ one scan
    def sample(self, state: NRPTState, model_args, model_kwargs) -> NRPTState:
        """One scan: explore every replica, then one deterministic even/odd swap."""
        if self._sample_fn is None:
            raise RuntimeError("NRPT.init must be called before sample")
        return self._sample_fn(state, model_args, model_kwargs)

    def _explore(self, state: NRPTState, model_args, model_kwargs):
        """``explore_steps`` explorer moves of every replica on its own ``pi_beta``."""

        def move(st, beta):
            return self._explorer.sample(st, (beta, state.reference, model_args,
                                              model_kwargs), {})

        def body(_, st):
            return jax.vmap(move)(st, state.betas)

        return jax.lax.fori_loop(0, self._explore_steps, body, state.explorer)

    def _sample_vectorized(self, state: NRPTState, model_args, model_kwargs) -> NRPTState:
        # All chains share the scan counter; passing it unbatched keeps the warmup-end
        # `lax.cond` (the stuck-explorer check) a real branch under vmap.
        return jax.vmap(self._sample_chain, in_axes=(0, None, None, None))(
            state, model_args, model_kwargs, state.i[0])

    def _sample_chain(self, state: NRPTState, model_args, model_kwargs, i=None) -> NRPTState:
        # one scan of one chain; long because it is the algorithm's one loop body, in order:
        # explore, exact reference draw, swap statistics, DEO swap, round trips, adaptation.
        model_kwargs = model_kwargs or {}
        n, i = self._num_replicas, state.i if i is None else i
        warm = i < self._num_warmup
        key, key_ref, key_swap = random.split(state.rng_key, 3)
        explorer = self._explore(state, model_args, model_kwargs)
        acc_replicas = jnp.asarray(getattr(explorer, "accept_prob", jnp.full((n,), jnp.nan)),
                                   state.betas.dtype)
        betas = state.betas
        zf, u0, g0, u1, g1 = self._split_potentials(explorer, betas, state.reference, key_ref,
                                                    model_args, model_kwargs)
        v = u0 - u1  # V = U_0 - U_1, the log likelihood ratio of target to reference
        log_r = jnp.diff(betas) * (v[:-1] - v[1:])
        # every pair draws the library's one accept rule; DEO keeps the pairs of this parity
        accepted, acc = metropolis_hastings(key_swap, log_r)
        parity = (jnp.arange(n - 1) % 2) == (i % 2)
        swap = parity & accepted
        perm = _deo_permutation(swap)
        zf, u0, g0, u1, g1 = zf[perm], u0[perm], g0[perm], u1[perm], g1[perm]
        machine = state.machine[perm]
        # round trips: a machine at the reference that last touched the target completes one
        last_end = state.last_end
        at_ref, at_tgt = machine[0], machine[-1]
        completed = last_end[at_ref] == 1
        last_end = last_end.at[at_tgt].set(jnp.where(last_end[at_tgt] == 0, 1,
                                                     last_end[at_tgt]))
        last_end = last_end.at[at_ref].set(0)
        round_trips = jnp.where(i == self._num_warmup, 0, state.round_trips) + jnp.where(
            completed & ~warm, 1, 0)
        # rejection statistics: reset at the start of sampling
        fresh = i == self._num_warmup
        rej_sum = jnp.where(fresh, 0.0, state.rejection_sum) + (1.0 - acc)
        acc_sum = jnp.where(fresh, 0.0, state.explorer_accept_sum) + acc_replicas
        num_stats = jnp.where(fresh, 0.0, state.num_stats) + 1.0
        barrier = jnp.sum(rej_sum) / num_stats
        self._check_explorers_move(i, acc_sum / num_stats, betas)
        moments = self._update_moments(state.moments, zf[-1])
        betas, reference, (rej_sum, acc_sum), num_stats, moments = self._adapt(
            i, betas, state.reference, (rej_sum, acc_sum), num_stats, moments)
        # replicas that kept their state (and inverse temperature) keep the explorer's own
        # U_beta and gradient; a refitted Gaussian reference changes U_0 everywhere (closed
        # form, recomputed)
        keep = (perm == jnp.arange(n)) & (betas > 0) & (betas == state.betas)
        if self._adapt_reference:
            u0, g0 = self._reference_value_and_grad(zf, reference, model_args, model_kwargs)
            keep = jnp.zeros_like(keep)
        explorer = self._rebuild(explorer, zf, u0, g0, u1, g1, betas, keep)
        tgt = jax.tree.map(lambda x: x[-1], explorer)
        return NRPTState(
            i=i + 1,
            z=self._unravel(zf[-1]),
            potential_energy=u1[-1],
            accept_prob=jnp.asarray(acc_replicas[-1], zf.dtype),
            diverging=jnp.asarray(getattr(tgt, "diverging", False)),
            explorer=explorer,
            betas=betas,
            reference=reference,
            machine=machine,
            last_end=last_end,
            round_trips=round_trips,
            swap_accept_prob=acc,
            rejection_sum=rej_sum,
            explorer_accept_sum=acc_sum,
            num_stats=num_stats,
            barrier=barrier,
            replica_accept_prob=acc_replicas,
            replica_step_size=self._step_sizes(explorer, n, zf.dtype),
            moments=moments,
            rng_key=key,
        )

    @staticmethod
    def _update_moments(moments, x):
        """Welford update of (count, mean, M2) with one draw ``x``."""
        count, mean, m2 = moments
        count = count + 1.0
        delta = x - mean
        mean = mean + delta / count
        return count, mean, m2 + delta * (x - mean)

    def _adapt(self, i, betas, reference, sums, num_stats, moments):
        """At the end of a warmup round: new schedule (and reference); reset the sums.

        ``sums`` is ``(rejection_sum, explorer_accept_sum)``."""
        rej_sum = sums[0]
        ends = jnp.asarray(self._round_end)
        end = jnp.any(i + 1 == ends) if ends.size else jnp.array(False)
        if self._adapt_schedule:
            betas = jnp.where(end, _updated_schedule(betas, rej_sum / num_stats), betas)
        if self._adapt_reference:
            count, mean, m2 = moments
            scale = jnp.sqrt(m2 / jnp.maximum(count - 1.0, 1.0))
            ok = end & (count >= 2) & jnp.all(scale > 0)
            reference = GaussianReference(jnp.where(ok, mean, reference.loc),
                                          jnp.where(ok, scale, reference.scale))
        keep = ~end
        zero = jnp.zeros_like(num_stats)
        moments = jax.tree.map(lambda m: jnp.where(keep, m, jnp.zeros_like(m)), moments)
        sums = jax.tree.map(lambda a: jnp.where(keep, a, jnp.zeros_like(a)), sums)
        return betas, reference, sums, jnp.where(keep, num_stats, zero), moments

    def _check_explorers_move(self, i: Array, mean_accept: Array, betas: Array) -> None:
        """Warn once, at the last warmup scan, about replicas whose explorer stopped moving.

        ``mean_accept`` is each replica's mean explorer acceptance over the last warmup round
        (the longest, with the final schedule's predecessor). The reference replica is left
        out with the Gaussian reference (it is redrawn exactly, whatever its explorer did).
        """
        if self._num_warmup == 0:
            return
        first = 1 if self._reference == "gaussian" else 0

        def report(acc, b):
            _warn_stuck_explorers(np.asarray(acc), np.asarray(b), first)

        jax.lax.cond(i == self._num_warmup - 1,
                     lambda: jax.debug.callback(report, mean_accept, betas),
                     lambda: None)

    def _reference_value_and_grad(self, zf, reference, model_args, model_kwargs):
        """``U_0`` and its gradient at every replica's flat position ``zf`` ``(N, d)``."""
        ref = jax.value_and_grad(lambda x: self._reference_potential(x, reference, model_args,
                                                                     model_kwargs))
        return jax.vmap(ref)(zf)

    def _split_potentials(self, explorer, betas, reference, key_ref, model_args, model_kwargs):
        """``(zf, U_0, grad U_0, U_1, grad U_1)`` of every replica after exploring.

        The explorer's state holds ``U_beta = (1 - beta) U_0 + beta U_1`` and its gradient,
        so for ``beta > 0`` the target's follow without evaluating it:
        ``U_1 = (U_beta - (1 - beta) U_0) / beta`` (exactly ``U_beta`` at ``beta = 1``),
        likewise the gradient. Only the reference replica (``beta = 0``, whose state says
        nothing about ``U_1``; with the Gaussian reference it is an exact fresh draw) costs
        one target evaluation with gradient per chain per scan. The rounding of ``U_1`` so
        derived is about ``ulp(U_0) / beta``; carried to a neighbour ``beta'`` it becomes
        about ``(beta' / beta) ulp(U_0)``.
        """
        zf = explorer.z["z"]
        dtype = zf.dtype
        u_b = jnp.asarray(explorer.potential_energy, dtype)
        g_b = jnp.asarray(explorer.z_grad["z"], dtype)
        if self._reference == "gaussian":  # exact draw in the reference replica
            draw = reference.loc + reference.scale * random.normal(key_ref, reference.loc.shape,
                                                                   dtype)
            zf = zf.at[0].set(draw)
        u0, g0 = self._reference_value_and_grad(zf, reference, model_args, model_kwargs)
        target = jax.value_and_grad(lambda x: self._target_potential(x, model_args, model_kwargs))
        u1_ref, g1_ref = target(zf[0])  # the one target gradient of the scan
        b = betas.astype(dtype)
        safe = jnp.where(b > 0, b, 1.0)
        u1 = jnp.where(b == 1, u_b, (u_b - (1.0 - b) * u0) / safe).at[0].set(u1_ref)
        bg = b[:, None]
        g1 = jnp.where(bg == 1, g_b, (g_b - (1.0 - bg) * g0) / safe[:, None]).at[0].set(g1_ref)
        return zf, u0, g0, u1, g1

    def _rebuild(self, explorer, zf, u0, g0, u1, g1, betas, keep):
        """Explorer states at the swapped positions: ``U_beta`` and its gradient.

        ``U_0``, ``U_1`` and their gradients travel with the positions; nothing is
        evaluated. Where ``keep`` (a replica whose state was not swapped), the explorer's
        own ``U_beta`` and gradient stay, bit for bit."""
        dtype = explorer.potential_energy.dtype
        u = jnp.where(keep, explorer.potential_energy, _mix(betas, u0, u1).astype(dtype))
        g_old = explorer.z_grad["z"]
        g = jnp.where(keep[:, None], g_old, _mix(betas[:, None], g0, g1).astype(g_old.dtype))
        return explorer._replace(z={"z": zf}, potential_energy=u, z_grad={"z": g})

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_explorer", "_sample_fn", "_target_gen", "_prior_gen",
                     "_postprocess_fn", "_unravel"):
            state[name] = None
        return state
