"""Pure-JAX MLP energies and adapters for Equinox / Flax NNX modules.

Every builder returns ``(energy_fn, params)`` following the library convention
``energy_fn(params, x, *context) -> scalar``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import checks
from .typing import Array, Params, PRNGKey

__all__ = ["ACTIVATIONS", "MLPEnergy", "mlp_init", "mlp_energy", "from_equinox", "from_flax_nnx"]

ACTIVATIONS = {
    "swish": jax.nn.swish,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "relu": jax.nn.relu,
}


def mlp_init(key: PRNGKey, layer_sizes: Sequence[int], dtype: Any = None
             ) -> list[dict[str, Array]]:
    """LeCun-normal weights and zero biases for an MLP with the given layer sizes.

    ``layer_sizes = [d_in, h_1, ..., 1]``. Returns a list of ``{"w", "b"}`` dicts.
    Raises ``ValueError`` unless there are at least two sizes, each a positive int.
    """
    try:
        sizes = [checks.positive_int(s, "layer_sizes[i]") for s in layer_sizes]
    except (TypeError, ValueError) as err:
        raise ValueError(f"layer_sizes must be >= 2 positive ints, got {layer_sizes!r}") from err
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes must be >= 2 positive ints, got {list(layer_sizes)}")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for k, (m, n) in zip(keys, zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(k, (m, n), dtype) * jnp.sqrt(jnp.asarray(1.0 / m, dtype))
        layers.append({"w": w, "b": jnp.zeros((n,), dtype)})
    return layers


@jax.tree_util.register_static  # hashable, no array data: returnable from jit
@dataclass(frozen=True)
class MLPEnergy:
    """``E(x, *context) = MLP(concat(ravel(x), ravel(context)))`` with a scalar output.

    Hashable and compared by value, so jit caches are shared between equal instances.
    """

    activation: str = "swish"

    def __post_init__(self):
        checks.one_of(self.activation, "activation", sorted(ACTIVATIONS))

    def __call__(self, params: Params, x: Array, *context: Any) -> Array:
        act = ACTIVATIONS[self.activation]
        dtype = params[0]["w"].dtype
        parts = [jnp.ravel(x)] + [jnp.ravel(jnp.asarray(c)) for c in context]
        h = jnp.concatenate(parts).astype(dtype)
        if h.shape[0] != params[0]["w"].shape[0]:
            raise ValueError(
                f"MLPEnergy: input (x plus context) has {h.shape[0]} features but the first "
                f"layer expects {params[0]['w'].shape[0]}"
            )
        for layer in params[:-1]:
            h = act(h @ layer["w"] + layer["b"])
        out = h @ params[-1]["w"] + params[-1]["b"]
        return out[0]


def mlp_energy(
    key: Any,
    in_dim: int,
    hidden: Sequence[int] = (128, 128),
    *,
    activation: str = "swish",
    context_dim: int = 0,
    dtype: Any = None,
) -> tuple[MLPEnergy, list[dict[str, Any]]]:
    """An MLP energy ``in_dim (+ context_dim) -> hidden... -> 1``; returns ``(energy_fn, params)``.

    ``context_dim`` adds inputs for conditional energies ``E(params, x, context)``
    (e.g. a noise level sigma for denoising score matching, or theta for ratio estimation).
    """
    fn = MLPEnergy(activation)
    in_dim = checks.nonnegative_int(in_dim, "in_dim")
    context_dim = checks.nonnegative_int(context_dim, "context_dim")
    if in_dim + context_dim < 1:
        raise ValueError(f"layer_sizes must be >= 2 positive ints: in_dim + context_dim must be "
                         f">= 1, got in_dim={in_dim}, context_dim={context_dim}")
    if isinstance(hidden, int | str) or not all(
            isinstance(h, int | np.integer) and not isinstance(h, bool) and h > 0
            for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive ints, got {hidden!r}")
    params = mlp_init(key, [in_dim + context_dim, *hidden, 1], dtype)
    return fn, params


class _ModuleEnergy:
    """Energy from a split module: ``rebuild(static, params)(x, *context)`` reduced to a scalar."""

    def __init__(self, static: Any, rebuild: Any, kind: str):
        self.static = static
        self.rebuild = rebuild
        self.kind = kind

    def __call__(self, params: Params, x: Array, *context: Any) -> Array:
        out = self.rebuild(self.static, params)(x, *context)
        out = jnp.asarray(out)
        if out.size != 1:
            raise ValueError(
                f"{self.kind} module must return one value per event, got shape {out.shape}"
            )
        return out.reshape(())

    def __repr__(self) -> str:
        return f"{self.kind}Energy"


def from_equinox(module: Any) -> tuple[Any, Params]:
    """Turn an Equinox module ``m(x) -> scalar`` into ``(energy_fn, params)``.

    ``params`` are the module's array leaves (``eqx.partition(m, eqx.is_inexact_array)``).
    """
    try:
        import equinox as eqx
    except ImportError as err:  # pragma: no cover - depends on extras
        raise ImportError("from_equinox needs equinox: pip install 'numpyro-ebm[nn]'") from err
    params, static = eqx.partition(module, eqx.is_inexact_array)
    return _ModuleEnergy(static, lambda s, p: eqx.combine(p, s), "Equinox"), params


def from_flax_nnx(module: Any) -> tuple[Any, Params]:
    """Turn a Flax NNX module ``m(x) -> scalar`` into ``(energy_fn, params)``.

    ``params`` is the module's ``nnx.Param`` state; other state is kept static.
    """
    try:
        from flax import nnx
    except ImportError as err:  # pragma: no cover - depends on extras
        raise ImportError("from_flax_nnx needs flax: pip install 'numpyro-ebm[nn]'") from err
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return _ModuleEnergy((graphdef, rest), lambda s, p: nnx.merge(s[0], p, s[1]), "FlaxNNX"), params
