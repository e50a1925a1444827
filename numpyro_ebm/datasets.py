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

from .energy import batched_energy

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


@dataclass(frozen=True, eq=False)
class _NegLogProb:
    """Energy ``E(params, x) = -log p(params, x)`` of a toy density (one event)."""

    log_prob_one: Callable[[Any, jax.Array], jax.Array]

    def __call__(self, params, x):
        return -self.log_prob_one(params, x)


@dataclass(frozen=True, eq=False)
class ToyDensity:
    """A density with an exact normalized log-density and an exact sampler."""

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

    def log_prob(self, x: Any) -> jax.Array:
        """Exact normalized log-density for ``x`` of shape ``batch + event_shape``."""
        return -batched_energy(self.energy_fn, self.params, x, len(self.event_shape))

    def sample(self, key: Any, n: int) -> jax.Array:
        """``n`` exact independent draws, shape ``(n,) + event_shape``."""
        if int(n) <= 0:
            raise ValueError(f"n must be a positive int, got {n}")
        return self.sample_fn(self.params, key, int(n))

    def as_distribution(self, **kwargs: Any):
        """This density as a normalized :class:`~numpyro_ebm.EnergyDistribution`."""
        from .distribution import EnergyDistribution

        return EnergyDistribution(
            self.energy_fn, self.params, event_shape=self.event_shape, log_normalizer=0.0,
            **kwargs,
        )


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _positive(name: str, value: Any) -> jax.Array:
    """``value`` as a float array, checked finite and > 0 (names the argument otherwise)."""
    arr = _f(value)
    if not bool(jnp.all(jnp.isfinite(arr) & (arr > 0))):
        raise ValueError(f"{name} must be finite and > 0, got {np.asarray(value).tolist()}")
    return arr


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
    """Multivariate normal ``N(mean, cov)``."""
    mean = jnp.atleast_1d(_f(mean))
    cov = _f(cov)
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape {(d, d)}, got {cov.shape}")
    L = jnp.linalg.cholesky(cov)
    if not bool(jnp.all(jnp.isfinite(L))):
        raise ValueError("cov must be symmetric positive definite")
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
    means = _f(means)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (k, d), got {means.shape}")
    k = means.shape[0]
    scales = jnp.broadcast_to(_positive("scales", scales), (k,))
    weights = jnp.full((k,), 1.0 / k, means.dtype) if weights is None else _f(weights)
    if weights.shape != (k,) or bool(jnp.any(weights < 0)):
        raise ValueError(f"weights must be {k} non-negative numbers, got {weights}")
    weights = weights / jnp.sum(weights)
    return ToyDensity(f"mixture{k}", (means.shape[1],),
                      {"means": means, "scales": scales, "weights": weights},
                      _mix_lp, _mix_sample)


def eight_gaussians(radius: float = 2.0, scale: float = 0.3) -> ToyDensity:
    """Eight Gaussians evenly spaced on a circle of the given radius."""
    ang = np.arange(8) * 2 * np.pi / 8
    d = gaussian_mixture(np.stack([radius * np.cos(ang), radius * np.sin(ang)], -1), scale)
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
    """Two interleaved half circles with Gaussian noise (exact density by quadrature)."""
    if noise < 0.05:
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
    radii = _positive("radii", radii)
    w = radii / jnp.sum(radii) if weights is None else _positive("weights", weights)
    w = w / jnp.sum(w)
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
    return ToyDensity("banana", (2,), {"scale": _positive("scale", scale),
                                       "curvature": _f(curvature)},
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
    if dim < 2:
        raise ValueError(f"funnel needs dim >= 2, got {dim}")
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
