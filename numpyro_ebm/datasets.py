"""Toy densities with exact log-densities and exact samplers (ground truth for tests).

Each constructor returns a :class:`ToyDensity` with ``log_prob(x)`` (normalized, batched),
``sample(key, n)``, and ``energy_fn, params`` (``E = -log p``, so ``log Z = 0``) for use with
:class:`~numpyro_ebm.EnergyDistribution`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from . import checks
from .energy import batched_energy
from .typing import Array, PRNGKey

__all__ = [
    "ToyDensity",
    "gaussian",
    "gaussian_mixture",
    "eight_gaussians",
    "two_moons",
    "rings",
    "banana",
    "funnel",
    "get",
    "NAMES",
]

_LOG2PI = math.log(2 * math.pi)


@jax.tree_util.register_static  # hashed by identity; no array data
@dataclass(frozen=True, eq=False)
class _NegLogProb:
    """Energy ``E(params, x) = -log p(params, x)`` of a toy density (one event)."""

    log_prob_one: Callable[[Any, jax.Array], jax.Array]

    def __call__(self, params, x):
        return -self.log_prob_one(params, x)


@dataclass(frozen=True, eq=False)
class ToyDensity:
    """A density with an exact normalized log-density and an exact sampler.

    A pytree: ``params`` are its leaves, the name, event shape and functions static, so a
    ``ToyDensity`` can be built inside ``jax.jit`` and returned from it.
    """

    name: str
    event_shape: tuple[int, ...]
    params: Any
    log_prob_one: Callable[[Any, jax.Array], jax.Array] = field(repr=False)
    sample_fn: Callable[[Any, Any, int], jax.Array] = field(repr=False)

    @property
    def dim(self) -> int:
        return int(np.prod(self.event_shape))

    @property
    def energy_fn(self) -> _NegLogProb:
        """``E(params, x) = -log p(x)`` (normalized: ``log Z = 0``)."""
        return self.__dict__.setdefault("_energy", _NegLogProb(self.log_prob_one))

    def log_prob(self, x: Any) -> Array:
        """Exact normalized log-density for ``x`` of shape ``batch + event_shape``.

        Returns shape ``batch``. Raises ``ValueError`` if ``x``'s shape does not end in
        ``event_shape`` and ``TypeError`` for non-numeric ``x``.
        """
        x = checks.real_array(x, "x", finite=False)
        es = self.event_shape
        if x.ndim < len(es) or tuple(x.shape[x.ndim - len(es):]) != es:
            raise ValueError(f"x must have shape batch + {es} (event_shape of {self.name}), "
                             f"got {tuple(x.shape)}")
        return -batched_energy(self.energy_fn, self.params, x, len(es))

    def sample(self, key: PRNGKey, n: int) -> Array:
        """``n`` exact independent draws, shape ``(n,) + event_shape``.

        ``key`` is a ``jax.random.key`` or a legacy ``PRNGKey``; ``n`` a positive int
        (``ValueError`` otherwise).
        """
        return self.sample_fn(self.params, key, checks.positive_int(n, "n"))

    def as_distribution(self, **kwargs: Any):
        """This density as a normalized :class:`~numpyro_ebm.EnergyDistribution`."""
        from .distribution import EnergyDistribution

        return EnergyDistribution(
            self.energy_fn, self.params, event_shape=self.event_shape, log_normalizer=0.0,
            **kwargs,
        )


jax.tree_util.register_dataclass(
    ToyDensity, data_fields=["params"],
    meta_fields=["name", "event_shape", "log_prob_one", "sample_fn"],
)


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _positive(name: str, value: Any) -> Array:
    """``value`` as a float array; a concrete value must be finite and > 0 (tracers pass)."""
    checks.positive_array(value, name)
    return checks.real_array(value, name)


# ---------------------------------------------------------------- Gaussian
def _gauss_lp(p, x):
    r = x - p["mean"]
    z = jax.scipy.linalg.solve_triangular(p["scale_tril"], r, lower=True)
    logdet = jnp.sum(jnp.log(jnp.diag(p["scale_tril"])))
    return -0.5 * z @ z - logdet - 0.5 * r.shape[0] * _LOG2PI


def _gauss_sample(p, key, n):
    eps = jax.random.normal(key, (n, p["mean"].shape[0]), p["mean"].dtype)
    return p["mean"] + eps @ p["scale_tril"].T


def gaussian(mean: Any, cov: Any) -> ToyDensity:
    """Multivariate normal ``N(mean, cov)``; ``mean`` of shape ``(d,)``, ``cov`` ``(d, d)``.

    Either may be traced (e.g. a latent mean in a NumPyro model). Raises ``ValueError`` for
    a wrong shape, non-finite values or (concrete) a ``cov`` that is not symmetric positive
    definite.
    """
    raw_cov = cov
    mean = jnp.atleast_1d(checks.real_array(mean, "mean"))
    cov = checks.real_array(cov, "cov")
    if mean.ndim != 1:
        raise ValueError(f"mean must have shape (d,), got {mean.shape}")
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape {(d, d)} (mean has shape {(d,)}), got {cov.shape}")
    checks.spd_matrix(raw_cov, "cov")
    L = jnp.linalg.cholesky(cov)
    return ToyDensity(f"gaussian{d}d", (d,), {"mean": mean, "scale_tril": L},
                      _gauss_lp, _gauss_sample)


# ---------------------------------------------------------------- mixtures
def _mix_lp(p, x):
    r = x - p["means"]  # (k, d)
    d = x.shape[0]
    comp = (-0.5 * jnp.sum(r**2, -1) / p["scales"] ** 2 - d * jnp.log(p["scales"])
            - 0.5 * d * _LOG2PI)
    return logsumexp(comp + jnp.log(p["weights"]))


def _mix_sample(p, key, n):
    k1, k2 = jax.random.split(key)
    idx = jax.random.categorical(k1, jnp.log(p["weights"]), shape=(n,))
    eps = jax.random.normal(k2, (n, p["means"].shape[1]), p["means"].dtype)
    return p["means"][idx] + p["scales"][idx, None] * eps


def gaussian_mixture(means: Any, scales: Any, weights: Any | None = None) -> ToyDensity:
    """Mixture of isotropic Gaussians: ``sum_k w_k N(m_k, s_k^2 I)``."""
    means = checks.real_array(means, "means")
    if means.ndim != 2 or 0 in means.shape:
        raise ValueError(f"means must have shape (k, d) with k, d >= 1, got {means.shape}")
    k = means.shape[0]
    scales = _positive("scales", scales)
    if scales.shape not in ((), (k,)):
        raise ValueError(f"scales must be a scalar or have shape ({k},), got {scales.shape}")
    scales = jnp.broadcast_to(scales, (k,))
    if weights is None:
        weights = jnp.full((k,), 1.0 / k, means.dtype)
    else:
        checks.positive_array(weights, "weights", allow_zero=True)
        if checks.is_concrete(weights) and not float(np.sum(weights)) > 0:
            raise ValueError(f"weights must not all be zero, got {np.asarray(weights).tolist()}")
        weights = checks.real_array(weights, "weights")
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {weights.shape}")
    weights = weights / jnp.sum(weights)
    return ToyDensity(f"mixture{k}", (means.shape[1],),
                      {"means": means, "scales": scales, "weights": weights},
                      _mix_lp, _mix_sample)


def eight_gaussians(radius: float = 2.0, scale: float = 0.3) -> ToyDensity:
    """Eight Gaussians evenly spaced on a circle of the given radius."""
    checks.positive_float(radius, "radius")
    ang = np.arange(8) * 2 * np.pi / 8
    r = checks.real_array(radius, "radius")
    d = gaussian_mixture(jnp.stack([r * np.cos(ang), r * np.sin(ang)], -1), scale)
    return ToyDensity("eight_gaussians", d.event_shape, d.params, _mix_lp, _mix_sample)


# ---------------------------------------------------------------- two moons
# Two half circles (unit radius, the second shifted by (1, -0.5) and flipped), an angle
# uniform on each arc, plus isotropic N(0, noise^2) noise. The density is the arc-uniform
# mixture convolved with the noise; the 1-D integral over the angle is done by Gauss-Legendre
# quadrature (error far below float32 resolution for noise >= 0.05).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(256)


def _moon_centers(t):
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], -1)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], -1)
    return upper, lower


def _moons_lp(p, x):
    t = (p["nodes"] + 1.0) * (math.pi / 2)  # [0, pi]
    logw = jnp.log(p["weights"] / 2.0)  # quadrature weight * (1/pi density) * pi/2
    s = p["noise"]
    out = []
    for c in _moon_centers(t):
        q = -0.5 * jnp.sum((x - c) ** 2, -1) / s**2 - 2 * jnp.log(s) - _LOG2PI
        out.append(logsumexp(q + logw))
    return logsumexp(jnp.stack(out)) + math.log(0.5)


def _moons_sample(p, key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    t = jax.random.uniform(k1, (n,), p["noise"].dtype, 0.0, math.pi)
    which = jax.random.bernoulli(k2, 0.5, (n,))
    up, lo = _moon_centers(t)
    c = jnp.where(which[:, None], up, lo)
    return c + p["noise"] * jax.random.normal(k3, (n, 2), c.dtype)


def two_moons(noise: float = 0.1) -> ToyDensity:
    """Two interleaved half circles with Gaussian noise (exact density by quadrature).

    A concrete ``noise`` must be a finite scalar ``>= 0.05`` (the quadrature is exact only
    then; ``ValueError`` otherwise); a traced one is not inspected.
    """
    v = checks.positive_float(noise, "noise")
    if checks.is_concrete(v) and v < 0.05:
        raise ValueError(f"noise must be >= 0.05 for the quadrature to be exact, got {noise}")
    return ToyDensity("two_moons", (2,), {"noise": _f(noise), "nodes": _f(_GL_NODES),
                                          "weights": _f(_GL_WEIGHTS)},
                      _moons_lp, _moons_sample)


# ---------------------------------------------------------------- rings
def _rings_lp(p, x):
    # Uniform angle on a circle of radius r, plus N(0, s^2 I) noise:
    # p(x) = exp(-(|x|^2 + r^2) / 2s^2) I0(|x| r / s^2) / (2 pi s^2)  (closed form).
    s = p["noise"]
    rho = jnp.sqrt(jnp.sum(x**2) + 1e-30)
    z = rho * p["radii"] / s**2
    comp = (-0.5 * (rho - p["radii"]) ** 2 / s**2 + jnp.log(jax.scipy.special.i0e(z))
            - _LOG2PI - 2 * jnp.log(s))
    return logsumexp(comp + jnp.log(p["weights"]))


def _rings_sample(p, key, n):
    k1, k2, k3 = jax.random.split(key, 3)
    idx = jax.random.categorical(k1, jnp.log(p["weights"]), shape=(n,))
    t = jax.random.uniform(k2, (n,), p["noise"].dtype, 0.0, 2 * math.pi)
    c = p["radii"][idx, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], -1)
    return c + p["noise"] * jax.random.normal(k3, (n, 2), c.dtype)


def rings(radii: Any = (1.0, 2.0, 3.0), noise: float = 0.1, weights: Any | None = None
          ) -> ToyDensity:
    """Concentric rings: uniform angle, Gaussian noise (closed form with Bessel I0)."""
    radii = jnp.atleast_1d(_positive("radii", radii))
    if radii.ndim != 1:
        raise ValueError(f"radii must have shape (k,), got {radii.shape}")
    w = radii if weights is None else _positive("weights", weights)
    if w.shape != radii.shape:
        raise ValueError(f"weights must have shape {radii.shape} (one per ring), got {w.shape}")
    w = w / jnp.sum(w)
    checks.positive_float(noise, "noise")
    return ToyDensity("rings", (2,), {"radii": radii, "noise": _positive("noise", noise),
                                      "weights": w},
                      _rings_lp, _rings_sample)


# ---------------------------------------------------------------- banana
def _banana_lp(p, x):
    s1, b = p["scale"], p["curvature"]
    m2 = b * (x[0] ** 2 - s1**2)
    return (-0.5 * (x[0] / s1) ** 2 - jnp.log(s1) - 0.5 * (x[1] - m2) ** 2 - _LOG2PI)


def _banana_sample(p, key, n):
    e = jax.random.normal(key, (n, 2), p["scale"].dtype)
    x0 = p["scale"] * e[:, 0]
    return jnp.stack([x0, p["curvature"] * (x0**2 - p["scale"] ** 2) + e[:, 1]], -1)


def banana(scale: float = 2.0, curvature: float = 0.25) -> ToyDensity:
    """Banana: ``x0 ~ N(0, scale^2)``, ``x1 | x0 ~ N(curvature (x0^2 - scale^2), 1)``."""
    checks.positive_float(scale, "scale")
    return ToyDensity("banana", (2,), {"scale": _positive("scale", scale),
                                       "curvature": checks.real_array(curvature, "curvature",
                                                                      ndim=0)},
                      _banana_lp, _banana_sample)


# ---------------------------------------------------------------- funnel
def _funnel_lp(p, x):
    v, z = x[0], x[1:]
    sv = p["scale"]
    lp_v = -0.5 * (v / sv) ** 2 - jnp.log(sv) - 0.5 * _LOG2PI
    lp_z = jnp.sum(-0.5 * z**2 * jnp.exp(-v) - 0.5 * v - 0.5 * _LOG2PI)
    return lp_v + lp_z


def _funnel_sample(p, key, n):
    d = p["dim_marker"].shape[0]
    e = jax.random.normal(key, (n, d), p["scale"].dtype)
    v = p["scale"] * e[:, :1]
    return jnp.concatenate([v, jnp.exp(v / 2) * e[:, 1:]], -1)


def funnel(dim: int = 2, scale: float = 3.0) -> ToyDensity:
    """Neal's funnel: ``v ~ N(0, scale^2)``, ``x_i | v ~ N(0, e^v)``, i = 1..dim-1."""
    dim = checks.positive_int(dim, "dim")
    if dim < 2:
        raise ValueError(f"funnel needs dim >= 2, got {dim}")
    checks.positive_float(scale, "scale")
    return ToyDensity(f"funnel{dim}d", (dim,),
                      {"scale": _positive("scale", scale), "dim_marker": jnp.zeros((dim,))},
                      _funnel_lp, _funnel_sample)


NAMES = ("gaussian", "eight_gaussians", "two_moons", "rings", "banana", "funnel")


def get(name: str, **kwargs: Any) -> ToyDensity:
    """A toy density by name (2-D defaults)."""
    builders = {
        "gaussian": lambda mean=(0.0, 0.0), cov=((1.0, 0.8), (0.8, 1.0)): gaussian(mean, cov),
        "eight_gaussians": eight_gaussians,
        "two_moons": two_moons,
        "rings": rings,
        "banana": banana,
        "funnel": funnel,
    }
    if name not in builders:
        raise ValueError(f"unknown toy density {name!r}; expected one of {NAMES}")
    return builders[name](**kwargs)
