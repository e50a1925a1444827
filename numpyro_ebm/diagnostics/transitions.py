"""The diagnostics' input: Langevin transitions as plain float64 arrays with a chain dim.

A transition is the pair ``(x_t, y_t)``: the chain's state and the proposal drawn from it,
``y_t ~ q(. | x_t) = N(x_t - h M^-1 grad U(x_t), 2 h T M^-1)``, logged whether or not it was
accepted, plus the kernel's own log acceptance ratio (if any). Converters build it from the
functional core's scan outputs, from exact/NUTS/Gibbs draws (``probe_transitions``) and from
an ArviZ DataTree made by :func:`numpyro_ebm.diagnostics.to_datatree`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from .potential import potential_and_grad

__all__ = ["Transitions", "make_transitions", "from_langevin", "probe_transitions"]


class Transitions(NamedTuple):
    """Logged Langevin transitions; arrays are float64 numpy with leading ``(chain, draw)``.

    Attributes
    ----------
    position : (chain, draw, dim) states ``x_t`` the proposals were drawn from.
    proposal : (chain, draw, dim) proposals ``y_t`` (may be non-finite on divergent steps).
    step_size : (chain,) Langevin time step ``h``.
    inverse_mass_matrix : None (identity), (chain, dim) diagonal or (chain, dim, dim) dense.
        ``make_transitions`` also takes ``(dim,)`` and ``(dim, dim)`` (shared by all chains;
        a square 2-D array is always read as a dense matrix).
    temperature : scalar ``T``; the target is ``exp(-U / T)``.
    log_accept_ratio : (chain, draw) ratio the kernel logged, or None.
    source : ``"kernel"`` (proposals made by the sampler) or ``"probe"`` (added afterwards).
    log_ratio_eps : machine epsilon of the logged ratio's original dtype (sets the ratio
        consistency tolerance).
    """

    position: np.ndarray
    proposal: np.ndarray
    step_size: np.ndarray
    inverse_mass_matrix: np.ndarray | None
    temperature: float
    log_accept_ratio: np.ndarray | None
    source: str = "kernel"
    log_ratio_eps: float = float(np.finfo(np.float32).eps)

    @property
    def num_chains(self) -> int:
        return self.position.shape[0]

    @property
    def num_draws(self) -> int:
        return self.position.shape[1]

    @property
    def dim(self) -> int:
        return self.position.shape[2]


def _as_chains(name: str, value: Any, trailing: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == trailing + 1:
        arr = arr[None]
    if arr.ndim != trailing + 2:
        want = "(chain, draw" + ", dim" * trailing + ")"
        raise ValueError(
            f"{name} must have shape {want} or without the chain dim; got shape {arr.shape}"
        )
    return arr


def make_transitions(
    position: Any,
    proposal: Any,
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: float = 1.0,
    log_accept_ratio: Any = None,
    source: str = "kernel",
) -> Transitions:
    """Validate and normalise transitions (adds a chain dim to single-chain input).

    Raises ``ValueError`` naming the argument for wrong shapes, non-finite positions,
    non-positive step sizes or temperature.
    """
    x = _as_chains("position", position, 1)
    y = _as_chains("proposal", proposal, 1)
    if y.shape != x.shape:
        raise ValueError(f"proposal must have the shape of position {x.shape}; got {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"position contains {int(np.sum(~np.isfinite(x)))} non-finite value(s); "
            "expected the finite states of the chain"
        )
    c, n, d = x.shape
    if n < 4:
        raise ValueError(f"need at least 4 draws per chain, got {n} (position shape {x.shape})")
    h = np.asarray(step_size, dtype=np.float64)
    if h.ndim > 1 or h.size not in (1, c):
        raise ValueError(f"step_size must be a scalar or one per chain ({c}); got shape "
                         f"{h.shape}")
    h = np.broadcast_to(h.reshape(-1), (c,)).copy()
    if not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError(f"step_size must be finite and > 0; got {h}")
    t = float(temperature)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be finite and > 0; got {temperature}")
    m = None if inverse_mass_matrix is None else _inverse_mass(inverse_mass_matrix, c, d)
    r, eps = None, float(np.finfo(np.float32).eps)
    if log_accept_ratio is not None:
        dt = np.asarray(log_accept_ratio).dtype
        eps = float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else eps
        r = _as_chains("log_accept_ratio", log_accept_ratio, 0)
        if r.shape != (c, n):
            raise ValueError(f"log_accept_ratio must have shape {(c, n)}; got {r.shape}")
    if source not in ("kernel", "probe"):
        raise ValueError(f"source must be 'kernel' or 'probe'; got {source!r}")
    return Transitions(x, y, h, m, t, r, source, eps)


def _inverse_mass(value: Any, c: int, d: int) -> np.ndarray:
    m = np.asarray(value, dtype=np.float64)
    if m.shape in ((d,), (d, d)):
        m = np.broadcast_to(m, (c,) + m.shape).copy()
    if m.shape not in ((c, d), (c, d, d)):
        raise ValueError(
            f"inverse_mass_matrix must be None, ({d},), ({d}, {d}) or per chain ({c}, {d}) / "
            f"({c}, {d}, {d}); got shape {m.shape}"
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("inverse_mass_matrix contains non-finite values")
    if m.ndim == 2 and np.any(m <= 0):
        raise ValueError("inverse_mass_matrix (diagonal) must be > 0")
    if m.ndim == 3:
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError as err:
            raise ValueError("inverse_mass_matrix (dense) must be positive definite") from err
    return m


def from_langevin(
    initial_position: Any,
    positions: Any,
    info: Any,
    step_size: Any,
    inverse_mass_matrix: Any = None,
    temperature: float = 1.0,
) -> Transitions:
    """Transitions from the functional core's scan (``mala_step``/``ula_step``).

    ``positions`` are the states *after* each step, shape ``(chain, draw, dim)`` (or
    without the chain dim); ``initial_position`` ``(chain, dim)`` is the state before the
    first step; ``info`` is the stacked :class:`~numpyro_ebm.infer.LangevinInfo`.
    """
    after = _as_chains("positions", positions, 1)
    x0 = np.asarray(initial_position, dtype=np.float64).reshape(after.shape[0], 1, -1)
    if x0.shape[2] != after.shape[2]:
        raise ValueError(f"initial_position must have shape {(after.shape[0], after.shape[2])}; "
                         f"got {np.shape(initial_position)}")
    before = np.concatenate([x0, after[:, :-1]], axis=1)
    proposal = info.proposal.position if hasattr(info.proposal, "position") else info.proposal
    return make_transitions(before, proposal, step_size, inverse_mass_matrix, temperature,
                            info.log_accept_ratio)


def probe_transitions(
    positions: Any,
    potential_fn: Callable[[jax.Array], jax.Array],
    step_size: float,
    seed: int = 0,
    temperature: float = 1.0,
) -> Transitions:
    """Add Langevin probe proposals ``y_t ~ q(. | x_t)`` to draws from any sampler.

    With probes, the fluctuation identity tests whether the draws ``x_t`` follow
    ``exp(-U / T)`` (it holds for ``x ~ pi`` and any ``y ~ q(.|x)``); ratio consistency does
    not apply (no kernel ratio).
    """
    x = _as_chains("positions", positions, 1)
    h = float(step_size)
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"step_size must be finite and > 0; got {step_size}")
    _, g = potential_and_grad(potential_fn, x)
    # a stream of its own, so that draws made with numpy seed `seed` are not reused
    xi = np.random.default_rng((int(seed), 0x9E0BE)).standard_normal(x.shape)
    y = x - h * g + np.sqrt(2.0 * h * temperature) * xi
    return make_transitions(x, y, h, None, temperature, None, source="probe")
