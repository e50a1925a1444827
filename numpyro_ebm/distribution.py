"""``EnergyDistribution``: an unnormalized NumPyro distribution ``p(x) ∝ exp(-E(x))``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro
from numpyro.distributions import Distribution, constraints
from numpyro.distributions.distribution import Unit

from . import checks
from .energy import batched_energy, batched_score, check_energy
from .typing import Array, EnergyFn, Params

__all__ = ["EnergyDistribution", "energy_factor", "SAMPLE_HINT", "UNNORMALIZED_FACTOR"]

#: Key that a factor site sets in its ``infer`` dict to declare an unnormalized energy, so
#: that :func:`numpyro_ebm.likelihood.check_model` guards it like an unnormalized
#: ``EnergyDistribution``.
UNNORMALIZED_FACTOR = "numpyro_ebm_unnormalized"
#: Suffix of the zero-weight marker site that :func:`energy_factor` adds beside its factor.
ENERGY_PARAMS_SUFFIX = "__energy_params"

SAMPLE_HINT = (
    "EnergyDistribution cannot be sampled directly: its density is only known up to a "
    "constant. Sample it with MCMC, e.g. numpyro.infer.MCMC(numpyro.infer.NUTS(model), ...) "
    "or the Langevin kernels numpyro_ebm.MALA / numpyro_ebm.ULA, where the model contains "
    "numpyro.sample('x', EnergyDistribution(...))."
)


def _event_support(support: constraints.Constraint, event_shape: tuple[int, ...]):
    if not isinstance(support, constraints.Constraint):
        raise TypeError(
            f"support must be a numpyro.distributions.constraints.Constraint, got "
            f"{type(support).__name__}"
        )
    extra = len(event_shape) - support.event_dim
    if extra < 0:
        raise ValueError(
            f"support {support} has event_dim {support.event_dim} but event_shape "
            f"{event_shape} has only {len(event_shape)} dimension(s)"
        )
    return constraints.independent(support, extra) if extra > 0 else support


class EnergyDistribution(Distribution):
    """Unnormalized distribution with ``log_prob(x) = -energy_fn(params, x) - log_normalizer``.

    Parameters
    ----------
    energy_fn
        ``energy_fn(params, x) -> scalar`` for one event ``x`` of shape ``event_shape``.
        Static (part of the pytree's structure): use a hashable callable.
    params
        Pytree of parameters (pytree data: traced through jit/vmap/grad).
    event_shape
        Shape of one event.
    support
        Any NumPyro constraint (real, positive, interval, simplex, ...); NUTS/HMC and our
        Langevin kernels transform it to unconstrained space as usual.
    log_normalizer
        ``log Z`` if known (e.g. learned by NCE); ``None`` (unknown) means 0 is used and
        :attr:`is_normalized` is ``False``.
    validate_args
        As in NumPyro: when true, ``log_prob`` is ``-inf`` outside the support.
    """

    arg_constraints: dict = {}
    support: constraints.Constraint = constraints.dependent
    pytree_data_fields = ("params", "log_normalizer", "support")
    pytree_aux_fields = ("energy_fn", "_normalized")

    def __init__(
        self,
        energy_fn: EnergyFn,
        params: Params,
        *,
        event_shape: tuple[int, ...] | int = (),
        support: constraints.Constraint = constraints.real,
        log_normalizer: Any = None,
        validate_args: bool | None = None,
    ):
        event_shape = checks.shape_tuple(event_shape, "event_shape")
        self.support = _event_support(support, event_shape)
        checks.all_finite(params, "params")
        _checked_energy(energy_fn, params, event_shape)
        self.energy_fn = energy_fn
        self.params = params
        self._normalized = log_normalizer is not None
        if log_normalizer is not None:
            log_normalizer = checks.real_array(log_normalizer, "log_normalizer")
            if jnp.ndim(log_normalizer) != 0:
                raise ValueError(
                    f"log_normalizer must be a scalar, got shape {jnp.shape(log_normalizer)}"
                )
            checks.all_finite(log_normalizer, "log_normalizer")
        self.log_normalizer = log_normalizer
        super().__init__(batch_shape=(), event_shape=event_shape, validate_args=validate_args)

    # ------------------------------------------------------------------ properties
    @property
    def is_normalized(self) -> bool:
        """Whether ``log_prob`` includes a known ``log Z`` (a proper density)."""
        return self._normalized

    @property
    def _event_ndim(self) -> int:
        return len(self.event_shape)

    # ------------------------------------------------------------------ densities
    def energy(self, x: Any) -> Array:
        """Energy ``E(x)`` for ``x`` of shape ``batch + event_shape``; returns ``batch``."""
        x = self._check_value_shape(x)
        return batched_energy(self.energy_fn, self.params, x, self._event_ndim)

    def score(self, x: Any) -> Array:
        """Score ``-grad_x E(x)``, same shape as ``x``."""
        x = self._check_value_shape(x)
        return batched_score(self.energy_fn, self.params, x, self._event_ndim)

    def log_prob(self, value: Any) -> Array:
        value = self._check_value_shape(value)
        lp = -batched_energy(self.energy_fn, self.params, value, self._event_ndim)
        if self.log_normalizer is not None:
            lp = lp - self.log_normalizer
        if self._validate_args:  # NumPyro's warning for out-of-support (and NaN) values
            lp = jnp.where(self._validate_sample(value), lp, -jnp.inf)
        return lp

    def unnormalized_log_prob(self, value: Any) -> Array:
        """``-E(x)``, ignoring any ``log_normalizer``."""
        return -self.energy(value)

    def sample(self, key, sample_shape=()):
        raise NotImplementedError(SAMPLE_HINT)

    def _check_value_shape(self, x: Any) -> Array:
        x = checks.real_array(x, "value", finite=False)
        es = self.event_shape
        if x.ndim < len(es) or tuple(x.shape[x.ndim - len(es) :]) != tuple(es):
            raise ValueError(
                f"value of shape {tuple(x.shape)} does not end in this distribution's "
                f"event_shape {tuple(es)}; expected shape batch + {tuple(es)}"
            )
        return x

    def with_log_normalizer(self, log_normalizer: Any) -> EnergyDistribution:
        """Return a copy with ``log Z`` set (e.g. from NCE or AIS): a normalized density."""
        return EnergyDistribution(
            self.energy_fn,
            self.params,
            event_shape=self.event_shape,
            support=self.support,
            log_normalizer=log_normalizer,
            validate_args=self._validate_args,
        )

    def __repr__(self) -> str:
        name = getattr(self.energy_fn, "__name__", type(self.energy_fn).__name__)
        return (
            f"EnergyDistribution(energy_fn={name}, event_shape={self.event_shape}, "
            f"support={self.support}, normalized={self.is_normalized})"
        )


_CHECK_CACHE: set = set()


def _checked_energy(energy_fn: EnergyFn, params: Params, event_shape: tuple[int, ...]) -> None:
    """``check_energy`` once per (energy_fn, param structure, event_shape)."""
    try:
        leaves, treedef = jax.tree.flatten(params)
        key = (
            energy_fn,
            treedef,
            tuple((tuple(jnp.shape(v)), str(jnp.result_type(v))) for v in leaves),
            event_shape,
        )
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _CHECK_CACHE:
        return
    check_energy(energy_fn, params, event_shape)
    if key is not None and len(_CHECK_CACHE) < 4096:
        _CHECK_CACHE.add(key)


def energy_factor(
    name: str, energy_fn: EnergyFn, params: Params, x: Any, *context: Any, event_ndim: int = 1
) -> Array:
    """Add ``-sum E(x)`` to the model's log density as ``numpyro.factor(name, ...)``.

    ``x`` has shape ``batch + event`` with ``event_ndim`` trailing event dimensions;
    extra ``context`` arguments are passed to a conditional energy ``energy_fn(params, x, c)``.
    Returns the per-item log factor ``-E(x)`` (shape ``batch``).

    Only valid as written when ``params`` are fixed (not inferred): an unnormalized energy
    whose parameters are latent drops ``-N log Z(theta)`` (see the docs on doubly
    intractable models). A zero-weight marker site ``name + "__energy_params"`` that depends
    on ``params`` and ``context`` only lets :func:`numpyro_ebm.likelihood.check_model` (run by
    our kernels) detect that pattern; ``x`` itself may be latent.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the factor site's name), got {name!r}")
    event_ndim = checks.nonnegative_int(event_ndim, "event_ndim")
    checks.all_finite(params, "params")
    x = checks.real_array(x, "x", finite=False)
    if x.ndim < event_ndim:
        raise ValueError(f"x must have at least event_ndim={event_ndim} dimension(s), got "
                         f"shape {x.shape}")
    log_factor = -batched_energy(energy_fn, params, x, event_ndim, *context)
    numpyro.factor(name, jnp.sum(log_factor))
    # A zero-weight marker site whose value depends on params and context only (not on x,
    # which may be a latent site: sampling x under fixed params is valid). check_model asks
    # whether *this* site depends on latent sites, i.e. whether Z(params, context) does.
    leaves = [jnp.sum(leaf) for leaf in jax.tree.leaves((params, context))
              if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
    dep = sum(leaves) if leaves else jnp.zeros(())
    unit = Unit(jnp.where(jnp.isfinite(dep), 0.0 * dep, 0.0))
    numpyro.sample(f"{name}{ENERGY_PARAMS_SUFFIX}", unit, obs=unit.sample(None),
                   infer={"is_auxiliary": True, UNNORMALIZED_FACTOR: name})
    return log_factor
