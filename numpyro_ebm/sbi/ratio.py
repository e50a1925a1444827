"""Learned likelihood ratios from simulations, with input standardisation built in.

:func:`fit_ratio` takes simulations ``(theta, x)``, checks them (non-finite rows raise or are
dropped and counted), z-scores ``theta`` and ``x`` *inside* the energy
(:class:`StandardizedEnergy`), holds out a validation fraction for early stopping and fits
an MLP ``-E(params, x, theta) ≈ log p(x | theta) - log p(x)`` with a ratio objective
(default: the contrastive NRE-B objective with ``K = 10`` atoms, Durkan et al. 2020; the
binary one, Hermans et al. 2020, is :func:`~numpyro_ebm.objectives.ratio_estimation`).
The result, a :class:`LearnedRatio`, is used as a likelihood by
:func:`~numpyro_ebm.sbi.sample_posterior` or, in a hand-written model, by
:func:`~numpyro_ebm.likelihood.ratio_factor` with its ``energy_fn`` and ``params``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._warnings import NumpyroEBMWarning
from ..checks import in_range, one_of, positive_float, positive_int
from ..nn import mlp_energy
from ..objectives.base import Objective
from ..objectives.contrastive_ratio import contrastive_ratio_estimation
from ..training import FitResult, fit
from ..typing import Array, ArrayLike, EnergyFn, Params, PRNGKey

__all__ = [
    "StandardizedEnergy",
    "EnsembleEnergy",
    "standardize",
    "Simulations",
    "check_simulations",
    "LearnedRatio",
    "fit_ratio",
    "check_observation",
]


@jax.tree_util.register_static  # hashable, no array data: returnable from jit
@dataclass(frozen=True)
class StandardizedEnergy:
    """``E(params, x, theta) = inner(params, (x - x_loc) / x_scale, (theta - t_loc) / t_scale)``.

    The location and scale vectors are stored as tuples of floats, so the energy hashes and
    compares by value (jit caches are shared) and ``fit`` never trains them. Build it with
    :func:`standardize`.
    """

    inner: EnergyFn
    x_loc: tuple[float, ...]
    x_scale: tuple[float, ...]
    theta_loc: tuple[float, ...]
    theta_scale: tuple[float, ...]

    def __call__(self, params: Params, x: Array, theta: Array) -> Array:
        x = (x - jnp.asarray(self.x_loc, x.dtype)) / jnp.asarray(self.x_scale, x.dtype)
        theta = ((theta - jnp.asarray(self.theta_loc, theta.dtype))
                 / jnp.asarray(self.theta_scale, theta.dtype))
        return self.inner(params, x, theta)


def _loc_scale(a: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    loc = a.mean(0)
    scale = a.std(0)
    scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(loc)), scale, 1.0)  # constant cols
    return tuple(float(v) for v in loc), tuple(float(v) for v in scale)


def standardize(inner: EnergyFn, theta: ArrayLike, x: ArrayLike) -> StandardizedEnergy:
    """Wrap ``inner(params, x, theta)`` so it sees z-scored inputs (per-column mean and sd
    of the simulations ``theta`` (``(n, theta_dim)``) and ``x`` (``(n, x_dim)``); a constant
    column keeps scale 1)."""
    x_loc, x_scale = _loc_scale(np.asarray(x, np.float64))
    t_loc, t_scale = _loc_scale(np.asarray(theta, np.float64))
    return StandardizedEnergy(inner, x_loc, x_scale, t_loc, t_scale)


@jax.tree_util.register_static  # hashable, no array data: returnable from jit
@dataclass(frozen=True)
class EnsembleEnergy:
    """``E(params, x, theta) = mean_m member(params[m], x, theta)``: an ensemble of ratios.

    ``params`` is the members' parameters stacked along a new leading axis (one member per
    row, all of the same architecture ``member``); the members' log ratios are averaged (a
    geometric mean of the ratios), evaluated with one ``vmap``. Ensembles of independently
    initialised and trained ratios reduce the variance of the learned ratio (Lakshminarayanan
    et al. 2017; for NRE, Hermans et al. 2022, "A trust crisis in simulation-based
    inference?", TMLR). Built by :func:`fit_ratio` with ``num_ensemble > 1``.
    """

    member: EnergyFn

    def __call__(self, params: Params, x: Array, theta: Array) -> Array:
        return jnp.mean(jax.vmap(self.member, (0, None, None))(params, x, theta))


class Simulations(NamedTuple):
    """Checked simulations: ``theta`` ``(n, theta_dim)``, ``x`` ``(n, x_dim)``, and how many
    rows with NaN or inf were dropped (``num_dropped``)."""

    theta: Array
    x: Array
    num_dropped: int


def _as_2d(value: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}") from err
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (num_simulations, dim) (or "
                         f"(num_simulations,) for dim 1), got shape {arr.shape}")
    return arr


def check_simulations(theta: ArrayLike, x: ArrayLike, *,
                      on_nonfinite: str = "raise") -> Simulations:
    """Check simulations and handle rows with NaN or inf (common in real simulators).

    Parameters
    ----------
    theta
        ``(n, theta_dim)`` parameters (a 1-D array is one column).
    x
        ``(n, x_dim)`` simulator outputs, one row per row of ``theta`` (1-D: one column).
    on_nonfinite
        ``"raise"`` (default): a ``ValueError`` saying how many rows of ``theta`` and ``x``
        hold NaN or inf and where the first one is. ``"drop"``: remove those rows and count
        them in ``num_dropped`` (a row dropped for a failed simulation removes its
        ``theta`` too, which biases the learned ratio towards where the simulator works:
        the ratio then describes ``p(x | theta, simulation succeeded)``).

    Raises
    ------
    ValueError
        Mismatched ``n``, wrong ranks, NaN/inf under ``"raise"``, or no finite row left.
    """
    one_of(on_nonfinite, "on_nonfinite", ("raise", "drop"))
    t, xs = _as_2d(theta, "theta"), _as_2d(x, "x")
    if t.shape[0] != xs.shape[0]:
        raise ValueError(f"theta and x must have one row per simulation: theta has "
                         f"{t.shape[0]} rows (shape {t.shape}), x has {xs.shape[0]} "
                         f"(shape {xs.shape})")
    bad_t = ~np.all(np.isfinite(t), 1)
    bad_x = ~np.all(np.isfinite(xs), 1)
    bad = bad_t | bad_x
    n_bad = int(bad.sum())
    if n_bad and on_nonfinite == "raise":
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"simulations contain {n_bad} row(s) with NaN or inf ({int(bad_t.sum())} in "
            f"theta, {int(bad_x.sum())} in x; first at row {first}); expected finite "
            "simulations. Pass on_nonfinite='drop' to drop and count them.")
    if n_bad == t.shape[0]:
        raise ValueError(f"all {n_bad} simulations contain NaN or inf; nothing to fit")
    keep = ~bad
    return Simulations(jnp.asarray(t[keep]), jnp.asarray(xs[keep]), n_bad)


class LearnedRatio(NamedTuple):
    """A fitted log likelihood ratio ``log r(x, theta) = -energy_fn(params, x, theta)``.

    ``energy_fn`` is a :class:`StandardizedEnergy` (an :class:`EnsembleEnergy` of them
    for an ensemble); ``params`` are the best (lowest validation loss) parameters (for an
    ensemble: each member's, stacked along a leading axis); ``x_low``/``x_high`` the range
    of the simulated ``x`` (per column, used to warn about observations outside it);
    ``num_dropped`` the simulations dropped for NaN/inf; ``fit_result`` the full
    :class:`~numpyro_ebm.fit.FitResult` (history, stopping reason) of the first member and
    ``member_fit_results`` those of all members (one for a single ratio).
    """

    energy_fn: StandardizedEnergy | EnsembleEnergy
    params: Params
    theta_dim: int
    x_dim: int
    x_low: np.ndarray
    x_high: np.ndarray
    num_dropped: int
    fit_result: FitResult
    member_fit_results: tuple[FitResult, ...] = ()

    def log_ratio(self, x: ArrayLike, theta: ArrayLike) -> Array:
        """``log r`` for one ``x`` ``(x_dim,)`` and a batch ``theta`` ``(m, theta_dim)``
        (or one ``theta``); returns ``(m,)`` (or a scalar)."""
        x, theta = jnp.asarray(x), jnp.asarray(theta)
        if theta.ndim == 1:
            return -self.energy_fn(self.params, x, theta)
        return jax.vmap(lambda t: -self.energy_fn(self.params, x, t))(theta)


def check_observation(ratio: LearnedRatio, x_obs: ArrayLike) -> Array:
    """``x_obs`` as an ``(n_iid, x_dim)`` array, its shape checked against the ratio.

    Warns (:class:`~numpyro_ebm.NumpyroEBMWarning`) when an entry lies outside the range of
    the simulated ``x``: the learned ratio is an extrapolation there.

    Raises
    ------
    ValueError
        If ``x_obs`` is not ``(x_dim,)`` or ``(n_iid, x_dim)``, or holds NaN/inf.
    """
    x_obs = jnp.asarray(x_obs)
    given = x_obs.shape
    if x_obs.ndim == 1 and ratio.x_dim == 1 and x_obs.shape[0] != 1:
        x_obs = x_obs[:, None]
    if x_obs.ndim == 1:
        x_obs = x_obs[None]
    if x_obs.ndim != 2 or x_obs.shape[1] != ratio.x_dim:
        raise ValueError(f"x_obs must have shape ({ratio.x_dim},) or (n_iid, {ratio.x_dim}) "
                         f"(the ratio was fit on x with {ratio.x_dim} columns), got shape "
                         f"{given}")
    in_range(x_obs, "x_obs")
    xo = np.asarray(x_obs)
    outside = (xo < ratio.x_low) | (xo > ratio.x_high)
    if outside.any():
        cols = sorted({int(c) for c in np.nonzero(outside)[1]})
        warnings.warn(
            f"x_obs lies outside the range of the simulations in column(s) {cols} "
            f"(simulated range {ratio.x_low[cols]} to {ratio.x_high[cols]}, observed "
            f"{xo[:, cols].min(0)} to {xo[:, cols].max(0)}): the learned ratio extrapolates "
            "there and the posterior may be wrong (the model may be misspecified).",
            NumpyroEBMWarning, stacklevel=3)
    return x_obs


def fit_ratio(
    theta: ArrayLike,
    x: ArrayLike,
    *,
    key: PRNGKey,
    objective: Objective | None = None,
    hidden: Sequence[int] = (128, 128, 128),
    activation: str = "relu",
    num_epochs: int = 200,
    batch_size: int = 256,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.0,
    validation_fraction: float = 0.1,
    patience: int = 20,
    on_nonfinite: str = "raise",
    num_ensemble: int = 1,
    progress_bar: bool = False,
) -> LearnedRatio:
    """Fit a log likelihood ratio ``-E(params, x, theta)`` to simulations ``(theta, x)``.

    The network is an MLP on the concatenation of z-scored ``x`` and ``theta``
    (:func:`standardize`); the last ``validation_fraction`` of the (shuffled) simulations is
    held out, evaluated every epoch, and training stops after ``patience`` epochs without
    improvement (the best parameters are kept), as in the SBI benchmark's NRE.

    Parameters
    ----------
    theta
        ``(n, theta_dim)`` simulated parameters (see :func:`check_simulations`).
    x
        ``(n, x_dim)`` simulator outputs, one row per row of ``theta``.
    key
        ``jax.random.key`` or legacy ``PRNGKey``.
    objective
        A ratio objective on batches ``(x, theta)``; default
        :func:`~numpyro_ebm.objectives.contrastive_ratio_estimation` with ``K = 10``.
    hidden
        MLP hidden layer sizes (see :func:`numpyro_ebm.nn.mlp_energy`).
    activation
        MLP activation name, e.g. ``"relu"`` or ``"swish"``.
    num_epochs
        Cap on training length, in passes over the training simulations.
    batch_size
        Minibatch size (capped at the training set size; at least ``num_atoms`` for the
        contrastive objective).
    learning_rate
        Adam learning rate.
    weight_decay
        Decoupled weight decay (AdamW, Loshchilov & Hutter 2019) per step, relative to the
        learning rate; ``0`` (default) is plain Adam.
    patience
        Early stopping: epochs without a lower validation loss before training stops.
    validation_fraction
        Fraction in ``(0, 0.5]`` of simulations held out for early stopping.
    on_nonfinite
        ``"raise"`` or ``"drop"`` rows with NaN or inf (see :func:`check_simulations`).
    num_ensemble
        Number of ratios fitted independently (own initialisation and minibatch order,
        same training/validation split) and averaged in log space (:class:`EnsembleEnergy`);
        ``1`` (default) fits one. Costs ``num_ensemble`` fits.
    progress_bar
        Show ``fit``'s progress bar.

    Returns
    -------
    LearnedRatio
    """
    sims = check_simulations(theta, x, on_nonfinite=on_nonfinite)
    in_range(validation_fraction, "validation_fraction", 0.0, 0.5)
    if validation_fraction > 0.5:
        raise ValueError(f"validation_fraction must be in (0, 0.5], got {validation_fraction}")
    num_epochs = positive_int(num_epochs, "num_epochs")
    batch_size = positive_int(batch_size, "batch_size")
    patience = positive_int(patience, "patience")
    learning_rate = positive_float(learning_rate, "learning_rate")
    weight_decay = positive_float(weight_decay, "weight_decay", allow_zero=True)
    objective = contrastive_ratio_estimation(10) if objective is None else objective
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a numpyro_ebm.Objective (a ratio objective), got "
                        f"{type(objective).__name__}")
    n = sims.theta.shape[0]
    n_val = max(2, int(round(validation_fraction * n)))
    if n - n_val < 2:
        raise ValueError(f"need at least 4 finite simulations to fit a ratio, got {n}")
    num_ensemble = positive_int(num_ensemble, "num_ensemble")
    k_perm, k_init, k_fit = jax.random.split(typed_key(key), 3)
    perm = np.asarray(jax.random.permutation(k_perm, n))
    t_all, x_all = np.asarray(sims.theta)[perm], np.asarray(sims.x)[perm]
    train = (jnp.asarray(x_all[n_val:]), jnp.asarray(t_all[n_val:]))
    valid = (jnp.asarray(x_all[:n_val]), jnp.asarray(t_all[:n_val]))
    batch_size = min(batch_size, train[0].shape[0])
    fits = [
        _fit_member(k, train, valid, objective, tuple(hidden), activation, num_epochs,
                    batch_size, _optimizer(learning_rate, weight_decay), patience, progress_bar)
        for k in _member_keys(k_init, k_fit, num_ensemble)]
    energy_fn: StandardizedEnergy | EnsembleEnergy = fits[0][0]
    params = fits[0][1].best_params
    if num_ensemble > 1:
        energy_fn = EnsembleEnergy(energy_fn)
        params = jax.tree.map(lambda *p: jnp.stack(p), *(r.best_params for _, r in fits))
    xs = np.asarray(sims.x)
    return LearnedRatio(energy_fn, params, sims.theta.shape[1], xs.shape[1], xs.min(0),
                        xs.max(0), sims.num_dropped, fits[0][1], tuple(r for _, r in fits))


def _member_keys(k_init: Array, k_fit: Array, num: int) -> list[tuple[Array, Array]]:
    """(init, fit) keys per member; the first member's are the single fit's own keys."""
    return [(k_init, k_fit)] + [(jax.random.fold_in(k_init, m), jax.random.fold_in(k_fit, m))
                                for m in range(1, num)]


def _fit_member(keys: tuple[Array, Array], train: tuple[Array, Array], valid: tuple[Array, Array],
                objective: Objective, hidden: tuple[int, ...], activation: str,
                num_epochs: int, batch_size: int, optimizer: optax.GradientTransformation,
                patience: int, progress_bar: bool) -> tuple[StandardizedEnergy, FitResult]:
    """One MLP ratio on z-scored ``train = (x, theta)``, early-stopped on ``valid``."""
    k_init, k_fit = keys
    x_tr, t_tr = train
    inner, params = mlp_energy(k_init, x_tr.shape[1], hidden, activation=activation,
                               context_dim=t_tr.shape[1], dtype=x_tr.dtype)
    energy_fn = standardize(inner, t_tr, x_tr)
    steps_per_epoch = x_tr.shape[0] // batch_size
    result = fit(energy_fn, params, train, objective, key=k_fit, optimizer=optimizer,
                 num_epochs=num_epochs, batch_size=batch_size, validation_data=valid,
                 eval_every=steps_per_epoch, patience=patience,
                 steps_per_chunk=min(steps_per_epoch, 500), progress_bar=progress_bar)
    return energy_fn, result


def _optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """Adam, or AdamW when ``weight_decay > 0``."""
    if weight_decay > 0:
        return optax.adamw(learning_rate, weight_decay=weight_decay)
    return optax.adam(learning_rate)


def typed_key(key: PRNGKey) -> Array:
    """``key`` as a typed key (a legacy ``uint32[2]`` ``PRNGKey`` is wrapped)."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)
