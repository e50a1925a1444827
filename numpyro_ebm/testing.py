"""Exact-start tests for kernel authors: invariance, Besag-Clifford ranks, SBC ranks.

All start from exact draws of the target. A kernel here is ``kernel(key, x) -> x'`` for
ONE flat position ``x`` (``(d,)``); the tests vmap it. References: Geweke 2004; Besag &
Clifford 1989 (serial test); Talts et al. 2018 (SBC); Sailynoja et al. 2022 (ArviZ's
simultaneous ECDF bands, used for rank uniformity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from arviz_stats.ecdf_utils import ecdf_pit
from scipy import stats

from .diagnostics.stats import holm

__all__ = [
    "InvarianceResult",
    "one_step_invariance",
    "RankTestResult",
    "besag_clifford_ranks",
    "sbc_ranks",
    "rank_uniformity",
]

Kernel = Callable[[jax.Array, jax.Array], jax.Array]


class InvarianceResult(NamedTuple):
    """Two-sample KS per statistic (coordinates, then the energy), Holm-adjusted.

    ``passed``: the kernel keeps the target AND the wrong-target control (if given) was
    rejected, i.e. the test had power.
    """

    names: tuple[str, ...]
    statistics: np.ndarray
    p_values: np.ndarray  # Holm-adjusted
    kernel_passed: bool
    control_passed: bool | None
    passed: bool


def _check_draws(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim != 2 or arr.shape[0] < 10 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite with shape (n >= 10, d); got {np.shape(x)}")
    return arr


def _run_kernel(kernel: Kernel, key: Any, x: np.ndarray, num_steps: int) -> np.ndarray:
    def chain(k, x0):
        return jax.lax.fori_loop(0, num_steps, lambda i, z: kernel(jax.random.fold_in(k, i), z),
                                 x0)

    keys = jax.random.split(key, x.shape[0])
    return np.asarray(jax.jit(jax.vmap(chain))(keys, jnp.asarray(x)), np.float64)


def _ks_family(a: np.ndarray, b: np.ndarray, energy: Callable | None):
    names = [f"x{i}" for i in range(a.shape[1])]
    cols_a, cols_b = [a[:, i] for i in range(a.shape[1])], [b[:, i] for i in range(b.shape[1])]
    if energy is not None:
        e = jax.jit(jax.vmap(energy))
        names.append("energy")
        cols_a.append(np.asarray(e(jnp.asarray(a))))
        cols_b.append(np.asarray(e(jnp.asarray(b))))
    res = [stats.ks_2samp(u, v) for u, v in zip(cols_a, cols_b)]
    return names, np.array([r.statistic for r in res]), holm(np.array([r.pvalue for r in res]))


def one_step_invariance(
    kernel: Kernel,
    draws: Any,
    reference_draws: Any,
    key: Any,
    *,
    energy_fn: Callable[[jax.Array], jax.Array] | None = None,
    num_steps: int = 1,
    control_kernel: Kernel | None = None,
    alpha: float = 0.01,
) -> InvarianceResult:
    """Apply ``num_steps`` kernel steps to exact ``draws``; compare with independent exact
    ``reference_draws`` (two-sample KS per coordinate and on ``energy_fn``; Holm).

    If x ~ pi and the kernel leaves pi invariant, K^n(x) ~ pi for any n. ``control_kernel``
    (the same kernel aimed at a wrong target) must be rejected for ``passed`` to hold.
    """
    x = _check_draws("draws", draws)
    ref = _check_draws("reference_draws", reference_draws)
    if ref.shape[1] != x.shape[1]:
        raise ValueError(f"reference_draws must have {x.shape[1]} columns; got {ref.shape}")
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int; got {num_steps!r}")
    k_main, k_ctrl = jax.random.split(key)
    names, st, p = _ks_family(_run_kernel(kernel, k_main, x, int(num_steps)), ref, energy_fn)
    ok = bool(p.min() > alpha)
    ctrl = None
    if control_kernel is not None:
        _, _, pc = _ks_family(_run_kernel(control_kernel, k_ctrl, x, int(num_steps)), ref,
                              energy_fn)
        ctrl = bool(pc.min() > alpha)
    return InvarianceResult(tuple(names), st, p, ok, ctrl, ok and ctrl is not True)


class RankTestResult(NamedTuple):
    """Ranks in ``{0, ..., num_ranks - 1}`` and their uniformity tests.

    ``p_value`` is Pearson's chi-square (scipy); ``within_bands`` is ArviZ's simultaneous
    ECDF-band test at level ``alpha``; ``passed`` requires both.
    """

    ranks: np.ndarray
    num_ranks: int
    p_value: float
    within_bands: bool
    passed: bool


def rank_uniformity(ranks: Any, num_ranks: int, alpha: float = 0.01, seed: int = 0
                    ) -> RankTestResult:
    """Test that integer ``ranks`` (any shape; columns tested jointly, Bonferroni on the
    band level) are uniform on ``{0, ..., num_ranks - 1}``."""
    r = np.asarray(ranks)
    if r.size < 2 or not np.issubdtype(r.dtype, np.integer) or r.min() < 0 or \
            r.max() >= num_ranks:
        raise ValueError(f"ranks must be integers in [0, {num_ranks - 1}]; got range "
                         f"[{r.min() if r.size else None}, {r.max() if r.size else None}]")
    cols = r.reshape(r.shape[0], -1)
    m = cols.shape[1]
    counts = np.stack([np.bincount(c, minlength=num_ranks) for c in cols.T])
    p = float(holm(np.array([stats.chisquare(c).pvalue for c in counts])).min())
    rng = np.random.default_rng(seed)
    inside = True
    for c in cols.T:
        pit = (c + rng.random(c.size)) / num_ranks  # randomised PIT, U(0, 1) under H0
        _, ecdf, lower, upper = ecdf_pit(pit, 1 - alpha / m, 1000, rng=rng)
        inside &= bool(np.all((ecdf >= lower) & (ecdf <= upper)))
    return RankTestResult(r, int(num_ranks), p, inside, bool(p > alpha and inside))


def besag_clifford_ranks(
    kernel: Kernel,
    draws: Any,
    key: Any,
    statistic: Callable[[jax.Array], jax.Array],
    *,
    num_steps: int = 9,
    reverse_kernel: Kernel | None = None,
    alpha: float = 0.01,
) -> RankTestResult:
    """Serial Besag-Clifford test from exact ``draws`` (one replicate per draw).

    For each observed ``x``: ``nu ~ U{0..m}``, run ``nu`` steps of the reverse kernel
    (the kernel itself if reversible) and ``m - nu`` forward steps from ``x``; under
    ``x ~ pi`` the rank of ``statistic(x)`` among the ``m + 1`` states is uniform.
    """
    x = _check_draws("draws", draws)
    m = int(num_steps)
    if m < 1:
        raise ValueError(f"num_steps must be >= 1; got {num_steps!r}")
    back = kernel if reverse_kernel is None else reverse_kernel
    stat = jax.vmap(statistic)

    def one(k, x0):
        k_nu, k_f, k_b, k_tie = jax.random.split(k, 4)
        nu = jax.random.randint(k_nu, (), 0, m + 1)

        def path(kern, kk):
            def body(z, ki):
                z = kern(ki, z)
                return z, z
            return jax.lax.scan(body, x0, jax.random.split(kk, m))[1]

        s0 = statistic(x0)
        if reverse_kernel is None:  # reversible: both directions from one traced path
            paths = jax.vmap(lambda kk: path(kernel, kk))(jnp.stack([k_b, k_f]))
            sb, sf = stat(paths[0]), stat(paths[1])
        else:
            sb, sf = stat(path(back, k_b)), stat(path(kernel, k_f))
        j = jnp.arange(1, m + 1)
        use = jnp.concatenate([j <= nu, j <= m - nu])
        s = jnp.concatenate([sb, sf])
        # ties (rejected moves repeat a state) broken by iid uniform labels: a uniformly
        # random order among tied states (a coin per comparison gives binomial ranks)
        lab = jax.random.uniform(k_tie, (2 * m + 1,))
        below = (s < s0) | ((s == s0) & (lab[1:] < lab[0]))
        return jnp.sum(use & below)

    ranks = jax.jit(jax.vmap(one))(jax.random.split(key, x.shape[0]), jnp.asarray(x))
    return rank_uniformity(np.asarray(ranks, np.int64), m + 1, alpha)


def sbc_ranks(prior_draws: Any, posterior_draws: Any) -> np.ndarray:
    """SBC ranks: for each simulation ``i`` and coordinate, ``#{l : theta_il < theta_i}``.

    ``prior_draws`` ``(n, d)``, ``posterior_draws`` ``(n, L, d)`` (thin them to near
    independence first); the ranks lie in ``{0, ..., L}``.
    """
    th = np.asarray(prior_draws, np.float64)
    post = np.asarray(posterior_draws, np.float64)
    if th.ndim == 1:
        th = th[:, None]
    if post.ndim == 2:
        post = post[..., None]
    if post.ndim != 3 or post.shape[0] != th.shape[0] or post.shape[2] != th.shape[1]:
        raise ValueError(f"posterior_draws must have shape (n, L, d) = ({th.shape[0]}, L, "
                         f"{th.shape[1]}); got {np.shape(posterior_draws)}")
    return np.sum(post < th[:, None, :], axis=1)
