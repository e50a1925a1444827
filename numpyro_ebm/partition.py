"""Estimates of the log normaliser ``log Z = log int exp(-E(x)) dx``.

Grid normalisation is exact up to quadrature error in one or two dimensions. In higher
dimension, annealed importance sampling (AIS, Neal 2001) along the geometric path
``gamma_b(x) = exp(-b E(x) - (1 - b) E_0(x))`` from a Gaussian base ``N(m, s^2)`` gives a
stochastic lower bound (forward, from base draws) and, from draws of the target, an upper
bound (reverse AIS); MALA transitions from :mod:`numpyro_ebm.infer.langevin`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jax.sharding import Mesh
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to

from . import checks
from .energy import batched_energy, check_energy
from .infer import langevin
from .sharding import axis_size, shard_leading
from .typing import Array, ArrayLike, EnergyFn, Params, PRNGKey

__all__ = ["grid_log_normalizer", "AISResult", "ais_log_normalizer", "HeldOutLogLikelihood",
           "held_out_log_likelihood"]


def grid_log_normalizer(energy_fn: EnergyFn, params: Params, lo: ArrayLike, hi: ArrayLike,
                        num_points: int = 256) -> Array:
    """``log Z`` by the midpoint rule on a box grid, for scalar events or events of shape ``(d,)``.

    ``log Z ~= logsumexp_k(-E(x_k)) + log(cell volume)`` over ``num_points`` cell midpoints
    per dimension in ``[lo, hi]``; exact as the grid refines if the box holds the mass.

    Parameters
    ----------
    energy_fn
        ``energy_fn(params, x) -> scalar`` for one event ``x``.
    params
        The energy's parameters (any pytree).
    lo
        Lower corner of the box. Its shape is the event shape: a scalar for scalar events
        (e.g. :func:`~numpyro_ebm.gamma_energy`, ``event_shape=()``), a sequence of
        ``d = 1`` or ``2`` bounds for events of shape ``(d,)``. Midpoints never touch it, so
        it may sit on the edge of the energy's support.
    hi
        Upper corner of the box, same shape as ``lo``; keep the box inside the support.
    num_points
        Midpoints per dimension, ``>= 2``.

    Raises
    ------
    ValueError
        For bad bounds or ``num_points``, an energy that is not a scalar for one event of that
        shape, or an energy that is NaN somewhere on the grid.
    """
    lo_arr = checks.real_array(lo, "lo")
    hi_arr = checks.real_array(hi, "hi")
    event_shape = tuple(lo_arr.shape)
    if lo_arr.shape != hi_arr.shape or lo_arr.ndim > 1 or lo_arr.size not in (1, 2):
        raise ValueError(f"lo and hi must both be scalars (scalar events) or sequences of 1 or 2 "
                         f"bounds of equal length, got lo={np.asarray(lo).tolist()}, "
                         f"hi={np.asarray(hi).tolist()}")
    lo_np, hi_np = np.atleast_1d(np.asarray(lo, float)), np.atleast_1d(np.asarray(hi, float))
    if not np.all(hi_np > lo_np):
        raise ValueError(f"need lo < hi per dimension, got lo={lo_np.tolist()}, "
                         f"hi={hi_np.tolist()}")
    n = checks.positive_int(num_points, "num_points")
    if n < 2:
        raise ValueError(f"num_points must be an int >= 2, got {num_points!r}")
    _check_event_energy(energy_fn, params, event_shape, "lo and hi")
    dtype = jnp.result_type(float)
    width = (hi_np - lo_np) / n
    axes = [jnp.asarray(lo_np[i] + width[i] * (np.arange(n) + 0.5), dtype)
            for i in range(lo_np.size)]
    grid = jnp.stack([a.reshape(-1) for a in jnp.meshgrid(*axes, indexing="ij")], -1)
    grid = grid.reshape((-1,) + event_shape)
    log_z = _log_sum_exp_neg_energy(energy_fn, params, grid) + float(np.sum(np.log(width)))
    if checks.is_concrete(log_z) and not np.isfinite(float(log_z)):
        raise ValueError(f"the grid gives log Z = {float(log_z)}: the energy is NaN or -inf "
                         "somewhere in the box (is the box inside the energy's support?) or "
                         "+inf everywhere")
    return log_z


def _check_event_energy(energy_fn: EnergyFn, params: Params, event_shape: tuple[int, ...],
                        source: str = "") -> None:
    """``check_energy`` with a hint when a scalar-event energy is given events of shape (1,).

    ``source`` names the argument the event shape came from, for the message.
    """
    try:
        check_energy(energy_fn, params, event_shape, name="energy_fn")
    except ValueError as err:
        came = f" (the event shape of {source})" if source else ""
        if event_shape == (1,) and _takes_scalar_events(energy_fn, params):
            raise ValueError(
                f"energy_fn takes scalar events (event_shape=()), but {source or 'the call'} "
                "gave events of shape (1,), for which it returns shape (1,) instead of a "
                "scalar energy. Pass scalar bounds / event_shape=() (e.g. lo=0.0, not "
                "lo=[0.0]).") from err
        raise ValueError(f"{err}{came}") from err


def _takes_scalar_events(energy_fn: EnergyFn, params: Params) -> bool:
    try:
        check_energy(energy_fn, params, (), name="energy_fn")
    except (TypeError, ValueError):
        return False
    return True


@partial(jax.jit, static_argnums=0)
def _log_sum_exp_neg_energy(energy_fn: EnergyFn, params: Params, grid: Array) -> Array:
    return logsumexp(-jax.lax.map(lambda x: energy_fn(params, x), grid, batch_size=4096))


class AISResult(NamedTuple):
    """AIS estimate of ``log Z``: forward ``log_z`` (lower bound in expectation) with its
    delta-method ``stderr``; ``upper`` from reverse AIS (nan without target draws).

    ``bracket`` is ``(log_z - 2 stderr, upper + 2 upper_stderr)``.
    """

    log_z: float
    stderr: float
    upper: float
    upper_stderr: float
    log_weights: np.ndarray
    reverse_log_weights: np.ndarray | None
    effective_sample_size: float
    acceptance_rate: float

    @property
    def bracket(self) -> tuple[float, float]:
        return (self.log_z - 2 * self.stderr, self.upper + 2 * self.upper_stderr)


def _log_mean_exp(lw: np.ndarray) -> tuple[float, float, float]:
    """``log mean e^lw``, its delta-method standard error and the weights' ESS."""
    lw = np.asarray(lw, np.float64)
    m = lw.max()
    w = np.exp(lw - m)
    est = m + math.log(w.mean())
    se = float(w.std(ddof=1) / (math.sqrt(w.size) * w.mean()))
    return float(est), se, float(w.sum() ** 2 / np.sum(w**2))


def _unconstrained_energy(energy_fn: EnergyFn, params: Params, transform: Transform,
                          shapes: tuple[tuple[int, ...], tuple[int, ...]]):
    """Energy of a flat unconstrained vector ``v``: ``E(T(u)) - log|det dT/du|``, ``u = v``
    reshaped to the unconstrained event shape (so ``int e^-E dx = int e^-E_u dv``)."""
    _, ushape = shapes

    def e_u(v):
        u = v.reshape(ushape)
        x = transform(u)
        return energy_fn(params, x) - jnp.sum(transform.log_abs_det_jacobian(u, x))

    return e_u


@partial(jax.jit, static_argnums=(0, 7, 9))
def _anneal(energy_fn, params, transform, x0, betas, base, step_size, num_mcmc_steps, key,
            shapes):
    """Run AIS along ``betas`` from flat unconstrained particles ``x0`` (``(n, k)``).

    Returns the log weights and the mean acceptance rate over levels.
    """
    mean, scale = base
    energy = _unconstrained_energy(energy_fn, params, transform, shapes)

    def e0(x):
        return 0.5 * jnp.sum(((x - mean) / scale) ** 2)

    def level(carry, inp):
        x, lw, h, acc_sum = carry
        b_prev, b, k = inp
        lw = lw + (b - b_prev) * (jax.vmap(e0)(x) - jax.vmap(energy)(x))
        target = lambda z: b * energy(z) + (1 - b) * e0(z)  # noqa: E731

        def move(x, kk):
            st = langevin.init(x, target)
            for kj in jax.random.split(kk, num_mcmc_steps):
                st, info = langevin.mala_step(kj, st, target, h)
            return st.position, info.acceptance_rate

        x, acc = jax.vmap(move)(x, jax.random.split(k, x.shape[0]))
        a = jnp.mean(acc)
        h = h * jnp.exp(jnp.clip(2.0 * (a - 0.6), -1.0, 1.0))  # steer toward 0.6 acceptance
        return (x, lw, h, acc_sum + a), None

    keys = jax.random.split(key, betas.shape[0] - 1)
    init = (x0, jnp.zeros(x0.shape[0], x0.dtype), jnp.asarray(step_size, x0.dtype),
            jnp.zeros((), x0.dtype))
    (x, lw, _, acc_sum), _ = jax.lax.scan(level, init, (betas[:-1], betas[1:], keys))
    return lw, acc_sum / (betas.shape[0] - 1)


class _AISSetup(NamedTuple):
    """Checked AIS settings: shapes, the bijection to the support, the Gaussian base."""

    event_shape: tuple[int, ...]
    unconstrained_shape: tuple[int, ...]
    transform: Transform
    mean: Array  # (k,), k = size of one unconstrained event (at least 1)
    scale: Array
    step_size: float


def _ais_setup(energy_fn, params, event_shape, support, base_mean, base_scale, step_size,
               counts) -> _AISSetup:
    """Validate every AIS argument before anything compiles (see ``ais_log_normalizer``)."""
    es = checks.shape_tuple(event_shape, "event_shape")
    _check_event_energy(energy_fn, params, es, "event_shape")
    checks.all_finite(params, "params")
    if not isinstance(support, constraints.Constraint):
        raise TypeError(f"support must be a numpyro.distributions.constraints.Constraint, got "
                        f"{type(support).__name__}")
    if support.event_dim > len(es):
        raise ValueError(f"support {support} has event_dim {support.event_dim} but event_shape "
                         f"{es} has only {len(es)} dimension(s)")
    transform = biject_to(support)
    ushape = tuple(transform.inverse_shape(es))
    k = max(1, math.prod(ushape))
    for name, v in counts.items():
        checks.positive_int(v, name)
    if counts["num_temperatures"] < 2:
        raise ValueError(f"num_temperatures must be an int >= 2; got "
                         f"{counts['num_temperatures']!r}")
    checks.positive_array(base_scale, "base_scale")
    dtype = jnp.result_type(float)
    mean = jnp.broadcast_to(checks.real_array(base_mean, "base_mean", dtype=dtype), (k,))
    scale = jnp.broadcast_to(checks.real_array(base_scale, "base_scale", dtype=dtype), (k,))
    h = 0.5 * float(jnp.min(scale)) ** 2 if step_size is None else checks.positive_float(
        step_size, "step_size")
    return _AISSetup(es, ushape, transform, mean, scale, h)


def ais_log_normalizer(
    energy_fn: EnergyFn,
    params: Params,
    key: PRNGKey,
    event_shape: int | tuple[int, ...],
    *,
    support: constraints.Constraint = constraints.real,
    num_particles: int = 256,
    num_temperatures: int = 200,
    num_mcmc_steps: int = 2,
    base_mean: ArrayLike = 0.0,
    base_scale: ArrayLike = 1.0,
    step_size: float | None = None,
    target_draws: ArrayLike | None = None,
    mesh: Mesh | None = None,
) -> AISResult:
    """AIS estimate of ``log Z = log int exp(-E(x)) dx`` (Neal 2001).

    Path ``b_k = (k / K)^4`` (dense near the base) from a Gaussian base ``N(base_mean,
    base_scale^2)``; at each level ``num_mcmc_steps`` MALA steps whose ``h`` is steered
    toward 60% acceptance from level to level (starting at ``step_size``, default
    ``0.5 * min(base_scale)^2``). ``target_draws`` (exact or trusted draws of the target,
    ``(n,) + event_shape``) enable reverse AIS, whose estimate ``upper`` is an upper bound in
    expectation: ``E[log_z] <= log Z <= E[upper]``.

    Parameters
    ----------
    event_shape
        Shape of one event: ``()`` for scalar events (e.g. :func:`~numpyro_ebm.gamma_energy`),
        an int ``d`` or ``(d,)`` for vectors.
    support
        The energy's support (any NumPyro constraint, default real). AIS runs in
        unconstrained space, as NumPyro's samplers do: with ``T = biject_to(support)`` it
        anneals ``E_u(u) = E(T(u)) - log|det dT/du|``, which has the same ``Z``. The base
        (``base_mean``, ``base_scale``) lives in that unconstrained space. An energy that is
        finite only on part of the space (``x > 0``) needs its support here.
    mesh
        A ``jax.sharding.Mesh`` with a ``"chain"`` axis: the particles (and ``target_draws``)
        are split over its devices; the estimate equals the unsharded one up to float
        rounding. ``num_particles`` (and the number of target draws) must be divisible by
        the axis size.

    Raises
    ------
    ValueError, TypeError
        For bad settings, before anything compiles.
    FloatingPointError
        If some log weights are non-finite (the message suggests ``support=``).
    """
    counts = {"num_particles": num_particles, "num_temperatures": num_temperatures,
              "num_mcmc_steps": num_mcmc_steps}
    st = _ais_setup(energy_fn, params, event_shape, support, base_mean, base_scale, step_size,
                    counts)
    dtype = st.mean.dtype
    xt = None if target_draws is None else _unconstrained_draws(target_draws, st)
    k = st.mean.shape[0]
    log_z0 = float(jnp.sum(jnp.log(st.scale))) + 0.5 * k * math.log(2 * math.pi)
    nt = int(num_temperatures)
    betas = jnp.asarray((np.arange(nt) / (nt - 1)) ** 4, dtype)
    k_fwd, k_x0, k_rev = jax.random.split(key, 3)
    x0 = st.mean + st.scale * jax.random.normal(k_x0, (int(num_particles), k), dtype)
    if mesh is not None:  # the particles' runs are independent: split them over devices
        size = axis_size(mesh, "chain", "ais_log_normalizer(mesh=...)")
        for what, n in (("num_particles", x0.shape[0]),
                        ("the number of target_draws", None if xt is None else xt.shape[0])):
            if n is not None and n % size:
                raise ValueError(f"ais_log_normalizer: {what}={n} is not divisible by the mesh "
                                 f"axis 'chain' of size {size}; use a multiple of {size}")
        x0 = shard_leading(x0, mesh, "chain")
        xt = None if xt is None else shard_leading(xt, mesh, "chain")
    run = partial(_anneal, energy_fn, params, st.transform, base=(st.mean, st.scale),
                  step_size=st.step_size, num_mcmc_steps=int(num_mcmc_steps),
                  shapes=(st.event_shape, st.unconstrained_shape))
    lw, acc = run(x0, betas, key=k_fwd)
    lw = _finite_log_weights(lw, support)
    est, se, ess = _log_mean_exp(lw)
    upper, upper_se, lw_r = math.nan, math.nan, None
    if xt is not None:
        lw_r = _finite_log_weights(run(xt, betas[::-1], key=k_rev)[0], support)
        r_est, upper_se, _ = _log_mean_exp(lw_r)
        upper = log_z0 - r_est
    return AISResult(log_z0 + est, se, upper, upper_se, lw, lw_r, ess, float(acc))


def _unconstrained_draws(target_draws: ArrayLike, st: _AISSetup) -> Array:
    """Target draws ``(n,) + event_shape`` mapped to flat unconstrained vectors ``(n, k)``."""
    want = "(n" + "".join(f", {d}" for d in st.event_shape) + (",)" if not st.event_shape
                                                              else ")")
    xt = checks.real_array(target_draws, "target_draws", finite=False, dtype=st.mean.dtype)
    if xt.ndim != 1 + len(st.event_shape) or tuple(xt.shape[1:]) != st.event_shape \
            or xt.shape[0] < 1 or not bool(jnp.all(jnp.isfinite(xt))):
        raise ValueError(f"target_draws must be finite with shape {want}; got "
                         f"{np.shape(target_draws)}")
    u = jax.vmap(st.transform.inv)(xt)
    if not bool(jnp.all(jnp.isfinite(u))):
        raise ValueError("target_draws must lie inside the support (some map to non-finite "
                         "unconstrained values)")
    return u.reshape(xt.shape[0], -1)


def _finite_log_weights(lw: Array, support: constraints.Constraint) -> np.ndarray:
    lw = np.asarray(lw, np.float64)
    if not np.all(np.isfinite(lw)):
        hint = ("the energy must be finite on all of R^d; if it is finite only on part of it "
                "(e.g. x > 0), pass support= (e.g. numpyro.distributions.constraints.positive)"
                if support is constraints.real else "check the energy and base_scale")
        raise FloatingPointError(f"AIS produced {int(np.sum(~np.isfinite(lw)))} non-finite "
                                 f"log weights: {hint}")
    return lw


class HeldOutLogLikelihood(NamedTuple):
    """Mean held-out ``log p(x) = -E(x) - log Z`` and its standard error."""

    mean: float
    stderr: float


def held_out_log_likelihood(energy_fn: EnergyFn, params: Params, data: ArrayLike,
                            log_z: float | AISResult, *,
                            event_shape: tuple[int, ...] | None = None) -> HeldOutLogLikelihood:
    """Average ``-E(x_i) - log Z`` over ``data``; with an :class:`AISResult` the standard error
    adds its ``stderr`` in quadrature to that of the mean.

    ``data`` has shape ``(n, d)`` (default) or ``(n,) + event_shape`` when ``event_shape`` is
    given (``()`` for scalar events), ``n >= 2``.
    """
    x = checks.real_array(data, "data")
    es = tuple(x.shape[1:2]) if event_shape is None else checks.shape_tuple(event_shape,
                                                                             "event_shape")
    if x.ndim != 1 + len(es) or tuple(x.shape[1:]) != es or x.shape[0] < 2 or (
            event_shape is None and x.ndim != 2):
        want = "(n, d)" if event_shape is None else f"(n,) + {es}"
        raise ValueError(f"data must have shape {want} with n >= 2; got {np.shape(data)}")
    lz, lz_se = (log_z.log_z, log_z.stderr) if isinstance(log_z, AISResult) else (
        float(log_z), 0.0)
    if not math.isfinite(lz):
        raise ValueError(f"log_z must be finite; got {log_z!r}")
    _check_event_energy(energy_fn, params, es, "data")
    ll = -np.asarray(batched_energy(energy_fn, params, x, len(es)), np.float64) - lz
    if not np.all(np.isfinite(ll)):
        raise FloatingPointError(f"energy_fn is non-finite at {int(np.sum(~np.isfinite(ll)))} "
                                 "of the data points")
    se = math.sqrt(ll.var(ddof=1) / ll.size + lz_se**2)
    return HeldOutLogLikelihood(float(ll.mean()), se)
