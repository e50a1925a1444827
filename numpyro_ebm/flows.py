"""A RealNVP-style affine-coupling normalizing flow in pure JAX, and its NumPyro wrapper.

``x = loc + scale * (c_L o ... o c_1)(z)``, ``z ~ N(0, I_d)``. Coupling layer ``k`` keeps the
coordinates in mask ``m_k`` (alternating parity) and moves the others,
``u' = m u + (1 - m) (u exp(s(m u)) + t(m u))``, with a tiny MLP conditioner ``(s, t)``; its
log-determinant ``sum (1 - m) s`` is exact, so ``log q(x) = log N(z) - log|det dx/dz|`` is too.
The conditioners' last layers start at zero: a new flow is ``N(loc, diag(scale^2))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution, constraints

from . import checks
from .energy import Params, check_params_finite
from .nn import ACTIVATIONS, mlp_init

__all__ = ["CouplingFlow", "FlowDistribution", "coupling_flow"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _mlp(layers: list[dict[str, Any]], h: jax.Array, act) -> jax.Array:
    for layer in layers[:-1]:
        h = act(h @ layer["w"] + layer["b"])
    return h @ layers[-1]["w"] + layers[-1]["b"]


@jax.tree_util.register_static  # hashable, no array data: returnable from jit
@dataclass(frozen=True)
class CouplingFlow:
    """Pure functions of an affine-coupling flow over events of shape ``(dim,)``.

    Hashable (static under ``jit``); all state is in ``params``
    (``{"loc", "log_scale", "couplings"}``) built by :func:`coupling_flow`.
    """

    dim: int
    num_layers: int
    activation: str = "tanh"
    max_log_scale: float = 3.0

    def _mask(self, k: int) -> jax.Array:
        return jnp.asarray((np.arange(self.dim) + k) % 2 == 0)

    def _shift_log_scale(self, layer, u_kept: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = _mlp(layer, u_kept, ACTIVATIONS[self.activation])
        raw_s, t = out[: self.dim], out[self.dim :]
        s = self.max_log_scale * jnp.tanh(raw_s / self.max_log_scale)  # bounded log-scale
        return s, t

    def forward(self, params: Params, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x = f(z)`` and ``log|det df/dz|`` for one event ``z`` of shape ``(dim,)``."""
        log_det = jnp.zeros((), z.dtype)
        u = z
        for k, layer in enumerate(params["couplings"]):
            m = self._mask(k)
            s, t = self._shift_log_scale(layer, jnp.where(m, u, 0.0))
            u = jnp.where(m, u, u * jnp.exp(s) + t)
            log_det = log_det + jnp.sum(jnp.where(m, 0.0, s))
        x = params["loc"] + jnp.exp(params["log_scale"]) * u
        return x, log_det + jnp.sum(params["log_scale"])

    def inverse(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``z = f^{-1}(x)`` and ``log|det df/dz|`` at that ``z`` (same sign as forward)."""
        u = (x - params["loc"]) * jnp.exp(-params["log_scale"])
        log_det = jnp.sum(params["log_scale"])
        for k in reversed(range(len(params["couplings"]))):
            m = self._mask(k)
            s, t = self._shift_log_scale(params["couplings"][k], jnp.where(m, u, 0.0))
            u = jnp.where(m, u, (u - t) * jnp.exp(-s))
            log_det = log_det + jnp.sum(jnp.where(m, 0.0, s))
        return u, log_det

    def log_prob(self, params: Params, x: jax.Array) -> jax.Array:
        """Exact ``log q(x)`` for one event: ``log N(f^{-1}(x); 0, I) - log|det df/dz|``."""
        z, log_det = self.inverse(params, x)
        return -0.5 * jnp.sum(z**2) - self.dim * _HALF_LOG_2PI - log_det

    def sample_and_log_prob(self, params: Params, key: Any, n: int
                            ) -> tuple[jax.Array, jax.Array]:
        """``n`` reparameterised draws (shape ``(n, dim)``) and their exact ``log q``."""
        dtype = jnp.asarray(params["loc"]).dtype
        z = jax.random.normal(key, (n, self.dim), dtype)
        x, log_det = jax.vmap(lambda zi: self.forward(params, zi))(z)
        log_q = -0.5 * jnp.sum(z**2, -1) - self.dim * _HALF_LOG_2PI - log_det
        return x, log_q


def coupling_flow(
    key: Any,
    dim: int,
    num_layers: int = 4,
    hidden: Sequence[int] = (32, 32),
    *,
    activation: str = "tanh",
    loc: Any = None,
    scale: Any = None,
    dtype: Any = None,
) -> tuple[CouplingFlow, Params]:
    """Build an affine-coupling flow on ``R^dim``; returns ``(flow_fn, params)``.

    ``loc`` and ``scale`` (scalars or length-``dim``) set the initial Gaussian
    ``N(loc, diag(scale^2))`` (e.g. the data mean and std); defaults 0 and 1.
    ``num_layers`` affine couplings (alternating halves) follow that base; with
    ``num_layers=0`` the flow is the Gaussian alone, with trainable ``loc`` and ``scale``.

    Raises
    ------
    ValueError
        ``dim < 2``, a negative ``num_layers``, an unknown ``activation``, ``loc`` or
        ``scale`` of a shape other than ``()`` or ``(dim,)``, a non-positive ``scale`` or
        non-finite values.
    """
    dim = checks.positive_int(dim, "dim")
    num_layers = checks.nonnegative_int(num_layers, "num_layers")
    if dim < 2:
        raise ValueError(f"coupling_flow needs dim >= 2 (coupling splits coordinates), got {dim}")
    checks.one_of(activation, "activation", sorted(ACTIVATIONS))
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    for name, value in (("loc", loc), ("scale", scale)):  # shapes are known even when traced
        if value is not None and jnp.ndim(value) != 0 and jnp.shape(value) != (dim,):
            raise ValueError(f"{name} must be a scalar or of shape ({dim},) (dim), got shape "
                             f"{tuple(jnp.shape(value))}")
    if scale is not None:  # concrete values only: loc and scale may be traced
        checks.positive_array(scale, "scale")
    loc = jnp.broadcast_to(checks.real_array(0.0 if loc is None else loc, "loc", dtype=dtype),
                           (dim,))
    scale = jnp.broadcast_to(checks.real_array(1.0 if scale is None else scale, "scale",
                                               dtype=dtype), (dim,))
    sizes = (dim, *(int(h) for h in hidden), 2 * dim)
    couplings = _init_couplings(key, sizes, num_layers, dtype)
    params = {"loc": loc, "log_scale": jnp.log(scale), "couplings": couplings}
    return CouplingFlow(dim, num_layers, activation), params


@partial(jax.jit, static_argnums=(1, 2, 3))
def _init_couplings(key: Any, sizes: tuple[int, ...], num_layers: int, dtype: Any) -> list:
    """Conditioner MLPs ``sizes[0] -> ... -> sizes[-1]``, last layer zero (identity start)."""
    couplings = []
    for k in jax.random.split(key, max(num_layers, 1))[:num_layers]:
        layers = mlp_init(k, list(sizes), dtype)
        layers[-1] = jax.tree.map(jnp.zeros_like, layers[-1])
        couplings.append(layers)
    return couplings


class FlowDistribution(Distribution):
    """A fitted :class:`CouplingFlow` as a NumPyro distribution (``sample``, exact ``log_prob``).

    Usable anywhere NumPyro takes a distribution, e.g.
    ``numpyro.sample("x", FlowDistribution(flow_fn, flow_params))``; reparameterised.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    pytree_data_fields = ("params",)
    pytree_aux_fields = ("flow_fn",)

    def __init__(self, flow_fn: CouplingFlow, params: Params, *, validate_args: bool | None = None):
        if not isinstance(flow_fn, CouplingFlow):
            raise TypeError(f"flow_fn must be a CouplingFlow (from coupling_flow), got "
                            f"{type(flow_fn).__name__}")
        check_params_finite(params, "params")
        loc_shape = tuple(jnp.shape(params["loc"]))
        if loc_shape != (flow_fn.dim,) or len(params["couplings"]) != flow_fn.num_layers:
            raise ValueError(
                f"params do not fit flow_fn (dim {flow_fn.dim}, {flow_fn.num_layers} layers): "
                f"loc has shape {loc_shape} and there are {len(params['couplings'])} couplings"
            )
        self.flow_fn = flow_fn
        self.params = params
        super().__init__(batch_shape=(), event_shape=(flow_fn.dim,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        n = math.prod(sample_shape)
        x, _ = _sample_and_log_prob(self.flow_fn, self.params, key, n)
        return x.reshape(tuple(sample_shape) + (self.flow_fn.dim,))

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)

    @property
    def has_rsample(self) -> bool:
        return True

    def log_prob(self, value):
        value = jnp.asarray(value)
        if value.shape[-1:] != (self.flow_fn.dim,):
            raise ValueError(f"value of shape {value.shape} does not end in event_shape "
                             f"({self.flow_fn.dim},)")
        lp = _log_prob(self.flow_fn, self.params, value.reshape((-1, self.flow_fn.dim)))
        return lp.reshape(value.shape[:-1])


@partial(jax.jit, static_argnums=(0, 3))
def _sample_and_log_prob(flow_fn: CouplingFlow, params: Params, key: Any, n: int):
    return flow_fn.sample_and_log_prob(params, key, n)


@partial(jax.jit, static_argnums=0)
def _log_prob(flow_fn: CouplingFlow, params: Params, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda xi: flow_fn.log_prob(params, xi))(x)
