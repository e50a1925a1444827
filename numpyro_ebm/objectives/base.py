"""The one objective protocol shared by every fitting objective (optax-style).

An :class:`Objective` is a pair of pure functions plus a name, typed by the protocols below
(as optax types a ``GradientTransformation``'s ``init``/``update``):

* :class:`ObjectiveInit` ``init(key, energy_fn, params, batch) -> (extras, state)``:
  ``extras`` are *trainable* quantities the objective adds to the energy's params
  (NCE's log normaliser, FCE's flow parameters); ``state`` is *non-trainable* objective
  state carried between steps (a replay buffer, a step counter). Both are pytrees
  (``()`` when empty). :func:`numpyro_ebm.fit` first traces ``init`` abstractly
  (``jax.eval_shape``): when its output holds no arrays, ``init`` is never run on data,
  and a resumed run reads the checkpoint into that abstract output; an ``init`` that
  cannot be traced (Python ``float()`` of a value) is run on one batch of rows drawn at
  random instead. So value checks belong in the factory or the loss, not in ``init``.
* :class:`ObjectiveLoss` ``loss(energy_fn, params, extras, state, batch, key)
  -> (loss, (new_state, metrics))``: a scalar to *minimise* over ``(params, extras)``;
  ``metrics`` is a flat dict of scalars recorded in the history. It must be pure and
  jittable; ``batch`` has shape ``(batch_size,) + event_shape`` (or is a tuple of arrays
  for paired data).
* :class:`HealthCheck` ``is_healthy(metrics) -> bool scalar`` (optional): a step whose
  metrics are unhealthy is treated like a non-finite loss by :func:`numpyro_ebm.fit`
  (rolled back, never applied).

**Equal settings, equal objective.** ``fit`` compiles its training step once per
``(energy_fn, objective, optimizer)``, using them as static (hashed) arguments of ``jit``.
So every factory returns a *value*: its ``init``, ``loss`` and ``is_healthy`` are methods
of one frozen dataclass holding the settings (see :func:`from_spec`), and two objectives
built with equal settings compare and hash equal and share compiled code.

**Arrays in settings** (a noise distribution's parameters, a flow's initial parameters)
are held by value with :class:`ByValue`: equal means same pytree structure, dtypes, shapes
and bitwise-equal entries, so equality still means "behaves the same". They enter the
compiled step as constants. We chose this over carrying them as pytree data in the
objective's state because the objective would then compare equal to one with different
noise, and a state passed in by hand could silently disagree with the settings. A new
noise *value* therefore compiles once more; these arrays are small (``d`` or ``d x d``).

Adversarial pieces (a flow that *maximises* what the energy minimises) are written with
:func:`reverse_gradient` inside ``loss``, so one optimizer step serves both players.

Writing a new objective: a frozen dataclass with the settings as fields and methods
``init``, ``loss`` (and ``is_healthy`` if needed), a factory that validates the arguments
(naming each bad one) and returns ``from_spec(spec, name)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from .._values import array_value
from ..checks import batch_array, is_concrete
from ..typing import Array, EnergyFn, Params, PRNGKey, PyTree

__all__ = [
    "ByValue",
    "HealthCheck",
    "Metrics",
    "Objective",
    "ObjectiveInit",
    "ObjectiveLoss",
    "all_metrics_finite",
    "from_spec",
    "reverse_gradient",
    "unpaired_batch",
]

Metrics = dict[str, Array]
"""Flat dict of scalar metrics recorded in :func:`numpyro_ebm.fit`'s history."""


class ObjectiveInit(Protocol):
    """``init(key, energy_fn, params, batch) -> (extras, state)``; validates and starts."""

    def __call__(self, key: PRNGKey, energy_fn: EnergyFn, params: Params,
                 batch: Any) -> tuple[PyTree, PyTree]: ...


class ObjectiveLoss(Protocol):
    """``loss(energy_fn, params, extras, state, batch, key) -> (loss, (state, metrics))``."""

    def __call__(self, energy_fn: EnergyFn, params: Params, extras: PyTree, state: PyTree,
                 batch: Any, key: PRNGKey) -> tuple[Array, tuple[PyTree, Metrics]]: ...


class HealthCheck(Protocol):
    """``is_healthy(metrics) -> bool scalar``: False rolls the step back in ``fit``."""

    def __call__(self, metrics: Metrics) -> Array: ...


class Objective(NamedTuple):
    """A fitting objective: ``init`` and ``loss`` (see the module docstring)."""

    init: ObjectiveInit
    loss: ObjectiveLoss
    name: str = "objective"
    is_healthy: HealthCheck | None = None


@dataclass(frozen=True)
class _Method:
    """``spec.<name>`` as a value: equal (and equally hashed) for equal specs.

    A bound method will not do: Python compares a bound method's ``__self__`` by identity.
    """

    spec: Any
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.spec, self.name)(*args, **kwargs)


def from_spec(spec: Any, name: str) -> Objective:
    """The :class:`Objective` whose functions are the methods of ``spec``.

    Parameters
    ----------
    spec
        A hashable value (a frozen dataclass of settings) with methods ``init`` and
        ``loss`` following :class:`ObjectiveInit` and :class:`ObjectiveLoss`, and
        optionally ``is_healthy`` (:class:`HealthCheck`).
    name
        Shown in progress bars and checkpoints.

    Raises
    ------
    TypeError
        If ``spec`` is not hashable or lacks ``init``/``loss``.
    """
    try:
        hash(spec)
    except TypeError as err:
        raise TypeError(f"spec must be hashable (a frozen dataclass of settings): {err}") from None
    for method in ("init", "loss"):
        if not callable(getattr(spec, method, None)):
            raise TypeError(f"spec must have a method {method!r}, got {type(spec).__name__}")
    healthy = _Method(spec, "is_healthy") if callable(getattr(spec, "is_healthy", None)) \
        else None
    return Objective(_Method(spec, "init"), _Method(spec, "loss"), str(name), healthy)


@dataclass(frozen=True, eq=False)
class ByValue:
    """A pytree of arrays (or a NumPyro distribution) compared and hashed by value.

    Two wrappers are equal when their values have the same pytree structure (for a
    distribution: its class and static settings) and leaves with equal dtypes, shapes and
    bitwise-equal entries. The hash is computed once. A value holding JAX tracers (built
    inside ``jit``) cannot be read, so it is compared by identity instead.
    """

    value: Any
    _key: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key: Any = ("id", id(self))
        if is_concrete(self.value):
            try:
                leaves, treedef = jax.tree.flatten(self.value)
                key = (treedef, tuple(array_value(leaf) for leaf in leaves))
                hash(key)
            except TypeError:  # an unhashable static part: fall back to identity
                key = ("id", id(self))
        object.__setattr__(self, "_key", key)

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, ByValue) and self._key == other._key)

    def __hash__(self) -> int:
        return hash(self._key)


def all_metrics_finite(metrics: Metrics) -> Array:
    """True when every metric is finite: the default health check of the NCE family."""
    flags = [jnp.all(jnp.isfinite(v)) for v in metrics.values()]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


@jax.custom_vjp
def reverse_gradient(tree: PyTree) -> PyTree:
    """Identity in the forward pass; negates the cotangent in the backward pass."""
    return tree


def _rev_fwd(tree):
    return tree, None


def _rev_bwd(_, g):
    return (jax.tree.map(lambda t: -t, g),)


reverse_gradient.defvjp(_rev_fwd, _rev_bwd)


def unpaired_batch(batch: Any, objective: str) -> Array:
    """``batch`` as one array ``(batch_size,) + event_shape``; clear errors otherwise.

    Raises ``TypeError`` for a tuple (paired data belongs to ratio estimation) and
    ``ValueError`` for an empty batch or one without a leading axis.
    """
    if isinstance(batch, tuple | list):
        raise TypeError(
            f"{objective} fits an unconditional energy: batch must be one array of shape "
            f"(batch_size,) + event_shape, got a {type(batch).__name__} of {len(batch)} "
            "arrays. For paired data (x, theta) use ratio_estimation()."
        )
    return batch_array(batch, "batch", finite=False)
