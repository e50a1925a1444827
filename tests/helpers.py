"""Shared test helpers: MCSE-based moment checks."""

from __future__ import annotations

import arviz as az
import numpy as np


def assert_moments_within_mcse(draws, mean, cov=None, n_mcse: float = 4.5) -> None:
    """Check E[x] and E[(x - m)(x - m)^T] of MCMC ``draws`` (chain, draw, d) within MCSE.

    Each moment is a mean of a function of the draws; its MCSE comes from ArviZ, so the
    tolerance accounts for autocorrelation. ``n_mcse`` bounds |estimate - truth| / MCSE.
    """
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
    f = np.concatenate(feats, -1)
    t = np.concatenate(truth)
    est = f.mean(axis=(0, 1))
    se = np.asarray(az.mcse(f, method="mean"))
    z = (est - t) / se
    bad = np.abs(z) > n_mcse
    assert not bad.any(), "moments off by more than {} MCSE: {}".format(
        n_mcse, {n: (float(e), float(tt), float(zz))
                 for n, e, tt, zz, b in zip(names, est, t, z, bad) if b}
    )
