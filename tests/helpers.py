"""Shared test helpers: MCSE-based moment checks, a compilation counter."""

from __future__ import annotations

import contextlib

import arviz as az
import jax
import numpy as np


def assert_means_within_mcse(features, truth, names, n_mcse: float = 4.5,
                             min_ess: float | None = None) -> None:
    """Check the means of ``features`` (chain, draw, k) against ``truth`` (k) within MCSE.

    The MCSE of each mean comes from ArviZ, so the tolerance accounts for autocorrelation;
    ``n_mcse`` bounds |estimate - truth| / MCSE. With ``min_ess`` each feature must also have
    that many effective draws (below it the MCSE itself is not trustworthy).
    """
    f = np.asarray(features, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if min_ess is not None:
        ess = np.asarray(az.ess(f, method="bulk"))
        assert np.all(ess > min_ess), f"too few effective draws to trust the MCSE: {ess}"
    est = f.mean(axis=(0, 1))
    se = np.asarray(az.mcse(f, method="mean"))
    z = (est - t) / se
    bad = np.abs(z) > n_mcse
    assert not bad.any(), "moments off by more than {} MCSE: {}".format(
        n_mcse, {n: (float(e), float(tt), float(zz))
                 for n, e, tt, zz, b in zip(names, est, t, z, bad) if b}
    )


def assert_moments_within_mcse(draws, mean, cov=None, n_mcse: float = 4.5) -> None:
    """Check E[x] and E[(x - m)(x - m)^T] of MCMC ``draws`` (chain, draw, d) within MCSE."""
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    mean = np.atleast_1d(np.asarray(mean, np.float64))
    feats, truth, names = [x], [mean], [f"mean[{i}]" for i in range(mean.size)]
    if cov is not None:
        cov = np.atleast_2d(np.asarray(cov, np.float64))
        r = x - mean
        iu = np.triu_indices(mean.size)
        feats.append(r[..., iu[0]] * r[..., iu[1]])
        truth.append(cov[iu])
        names += [f"cov[{i},{j}]" for i, j in zip(*iu)]
    assert_means_within_mcse(np.concatenate(feats, -1), np.concatenate(truth), names, n_mcse)


def assert_raw_moments_within_mcse(draws, mean, second, n_mcse: float = 4.5) -> None:
    """Check E[x_j] and E[x_j^2] of ``draws`` (chain, draw, d) within MCSE (ESS > 100 each)."""
    x = np.asarray(draws, dtype=np.float64)
    d = x.shape[-1]
    names = [f"mean[{j}]" for j in range(d)] + [f"E[x{j}^2]" for j in range(d)]
    assert_means_within_mcse(np.concatenate([x, x**2], -1),
                             np.concatenate([np.asarray(mean, float), np.asarray(second, float)]),
                             names, n_mcse, min_ess=100)


COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Yield a list that collects one entry per XLA compilation inside the block."""
    seen: list[float] = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
