"""Detailed-balance checks: size on correct kernels, power on planted bugs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _diagnostics_chains import (
    CHOL,
    COV,
    exact_draws,
    gibbs_draws,
    langevin_transitions,
    potential,
)
from scipy import stats

from numpyro_ebm.diagnostics import (
    detailed_balance,
    fluctuation_identity,
    log_proposal_density,
    make_transitions,
    probe_transitions,
    ratio_consistency,
    recompute,
    reversibility,
)

ALPHA = 0.01


# ------------------------------------------------------------------ known answers
@pytest.mark.parametrize("metric", ["identity", "diag", "dense"])
def test_log_proposal_density_matches_scipy(metric):
    rng = np.random.default_rng(0)
    x, y, g = rng.normal(size=(3, 5, 3))
    h, T = 0.3, 1.7
    m = {"identity": None, "diag": np.array([0.5, 1.0, 2.0]),
         "dense": np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.5], [0.0, 0.5, 1.5]])}[metric]
    mm = np.eye(3) if m is None else (np.diag(m) if m.ndim == 1 else m)
    got, xi = log_proposal_density(y, x, g, h, m, T)
    want = [stats.multivariate_normal(xx - h * mm @ gg, 2 * h * T * mm).logpdf(yy)
            for xx, yy, gg in zip(x, y, g)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the innovation maps back onto the proposal
    chol = np.linalg.cholesky(mm)
    np.testing.assert_allclose(x - h * g @ mm.T + np.sqrt(2 * h * T) * xi @ chol.T, y,
                               atol=1e-12)


def test_fluctuation_identity_exact_for_exact_draws():
    # x ~ pi exactly, y ~ q(.|x): E[d] = 0; the per-chain z are N(0, 1).
    x = exact_draws(1, 4000, chains=4)
    tr = probe_transitions(x, potential, step_size=0.5, seed=1)
    res = fluctuation_identity(recompute(tr, potential), ALPHA)
    assert res.passed, res
    assert np.all(np.abs(res.details["z"].values) < 3.5)


def test_recomputed_ratio_matches_core_in_float64():
    tr = langevin_transitions("mala", 0.2, seed=0)
    d1, innov = ratio_consistency(tr, recompute(tr, potential), ALPHA)
    assert d1.statistic < 1e-12 and d1.passed
    assert d1.threshold == pytest.approx(10 * np.sqrt(np.finfo(np.float64).eps))
    assert innov.passed


def test_d1_with_dense_mass_matrix_and_temperature():
    import jax
    import jax.numpy as jnp

    from numpyro_ebm.diagnostics import from_langevin
    from numpyro_ebm.infer import langevin

    m_inv = jnp.array([[1.0, 0.6], [0.6, 0.8]])
    h, temp = 0.15, 0.5

    def chain(x, k):
        def body(st, kk):
            st, info = langevin.mala_step(kk, st, potential, h, m_inv, temp)
            return st, (st.position, info)
        return jax.lax.scan(body, langevin.init(x, potential), jax.random.split(k, 200))[1]

    x0 = jnp.asarray(exact_draws(4, 2)) * np.sqrt(temp)
    pos, info = jax.jit(jax.vmap(chain))(x0, jax.random.split(jax.random.key(4), 2))
    tr = from_langevin(x0, pos, info, h, np.asarray(m_inv), temp)
    d1, innov = ratio_consistency(tr, recompute(tr, potential), ALPHA)
    assert d1.statistic < 1e-12 and innov.passed
    # the same chain judged at the wrong temperature: D1 fails
    wrong = tr._replace(temperature=1.0)
    assert not ratio_consistency(wrong, recompute(wrong, potential), ALPHA)[0].passed


# ------------------------------------------------------------------ size: correct kernels
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correct_mala_passes_every_check(seed):
    tr = langevin_transitions("mala", 0.2, seed)
    rep = detailed_balance(tr, potential, alpha=ALPHA, ksd=False)
    for name in ("ratio_consistency", "innovations", "fluctuation_identity", "reversibility"):
        assert rep[name].passed, rep.report()
    assert rep.passed
    assert np.max(np.abs(rep["fluctuation_identity"].details["z"].values)) < 4.0


# ------------------------------------------------------------------ power: planted bugs
@pytest.mark.parametrize("kind,h", [("no_correction", 0.2), ("ula", 0.2)])
def test_planted_bugs_flagged_by_d2(kind, h):
    tr = langevin_transitions(kind, h, seed=0)
    res = fluctuation_identity(recompute(tr, potential), ALPHA)
    z = res.details["z"].values
    assert np.max(np.abs(z)) > 4.0, z
    assert not res.passed
    # the bias has a sign: chains too dispersed accept MALA moves too often -> mean d < 0?
    assert np.all(np.sign(z) == np.sign(z[0]))


def test_d1_catches_ratio_inconsistent_with_energy():
    # the no-correction kernel logs -dU, which is not the ratio of its proposal for U
    tr = langevin_transitions("no_correction", 0.2, seed=0)
    d1, _ = ratio_consistency(tr, recompute(tr, potential), ALPHA)
    assert not d1.passed and d1.statistic > 0.1
    # a correct kernel whose log is off by 1e-4 is caught at float64 tolerance
    good = langevin_transitions("mala", 0.2, seed=0)
    shifted = good._replace(log_accept_ratio=good.log_accept_ratio + 1e-4)
    d1, _ = ratio_consistency(shifted, recompute(shifted, potential), ALPHA)
    assert not d1.passed


def test_d1_innovations_catch_wrong_logged_step_size():
    tr = langevin_transitions("mala", 0.2, seed=0)
    wrong = tr._replace(step_size=tr.step_size * 2.0)  # a kernel logging h/2 as h
    _, innov = ratio_consistency(wrong, recompute(wrong, potential), ALPHA)
    assert not innov.passed and innov.p_value < 1e-3


@pytest.mark.slow
def test_gibbs_fails_only_reversibility():
    x = gibbs_draws(seed=0)
    tr = probe_transitions(x, potential, step_size=0.2, seed=0)
    rep = detailed_balance(tr, potential, alpha=ALPHA)
    assert rep["ratio_consistency"].passed is None and rep["innovations"].passed is None
    assert rep["fluctuation_identity"].passed, rep.report()
    assert rep["stein_discrepancy"].passed, rep.report()
    assert not rep["reversibility"].passed, rep.report()
    # the antisymmetry of (x0, x1) at lag 1 is rho^3 - rho < 0 (standardised coordinates)
    mean = rep["reversibility"].details["mean"].sel(lag=1, feature="x0*x1").values
    np.testing.assert_allclose(mean, 0.8**3 - 0.8, atol=0.05)


def test_reversibility_passes_on_exact_draws():
    x = exact_draws(3, 1000, chains=2)
    res = reversibility(x, lags=(1, 3), alpha=ALPHA)
    assert res.passed
    assert res.details["z"].dims == ("chain", "lag", "feature")


# ------------------------------------------------------------------ report and errors
def test_report_text_and_dataset():
    tr = langevin_transitions("ula", 0.2, seed=0)
    rep = detailed_balance(tr, potential, ksd=False)
    text = str(rep)
    assert "fluctuation_identity" in text and "FAIL" in text
    assert not re.search(r"\bD[1-5]\b", text)  # named by what they test, not spec codes
    ds = rep.to_dataset()
    assert list(ds["check"].values)[:3] == ["ratio_consistency", "innovations",
                                           "fluctuation_identity"]
    assert ds["passed"].sel(check="fluctuation_identity") == 0
    assert ds["fluctuation_identity_d"].dims == ("chain", "draw")
    assert ds["reversibility_z"].dims == ("chain", "reversibility_lag",
                                          "reversibility_feature")
    assert not rep.passed
    with pytest.raises(KeyError, match="no check named"):
        rep["D9"]


def test_report_is_a_plain_mapping():
    from collections.abc import Mapping

    from numpyro_ebm.diagnostics import Check, Verdict

    rep = detailed_balance(langevin_transitions("mala", 0.2, seed=0), potential, ksd=False)
    assert isinstance(rep, Mapping)
    assert list(rep) == ["ratio_consistency", "innovations", "fluctuation_identity",
                         "reversibility"]
    assert len(rep) == 4 and "reversibility" in rep and "stein_discrepancy" not in rep
    assert all(isinstance(v, Verdict) and v.name == k for k, v in rep.items())
    assert rep[Check.FLUCTUATION_IDENTITY] is rep["fluctuation_identity"]
    with pytest.raises(KeyError, match="no check named 0"):
        rep[0]  # no positional access: a mapping, not a tuple


def test_bad_inputs_raise_clear_errors():
    x = exact_draws(0, 10)
    with pytest.raises(ValueError, match="proposal must have the shape"):
        make_transitions(x, x[:5], 0.1)
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        make_transitions(x, x, -1.0)
    with pytest.raises(ValueError, match="position contains 1 non-finite"):
        make_transitions(np.where(np.arange(20).reshape(10, 2) == 3, np.nan, x), x, 0.1)
    with pytest.raises(ValueError, match=r"inverse_mass_matrix must be None, \(2,\)"):
        make_transitions(x, x, 0.1, inverse_mass_matrix=np.ones(3))
    with pytest.raises(ValueError, match="log_accept_ratio must have shape"):
        make_transitions(x, x, 0.1, log_accept_ratio=np.zeros(9))
    with pytest.raises(ValueError, match="lags must be integers"):
        reversibility(x, lags=(0,))
    with pytest.raises(TypeError, match="potential_fn must be callable"):
        detailed_balance(make_transitions(x, x, 0.1), potential_fn=3.0)
    with pytest.raises(ValueError, match="alpha must be in"):
        detailed_balance(make_transitions(x, x, 0.1), potential, alpha=2.0)


def test_divergent_proposals_give_minus_inf_ratio():
    x = exact_draws(0, 10)
    y = x.copy()
    y[3] = np.inf
    tr = make_transitions(x, y, 0.1, log_accept_ratio=np.zeros(10))
    rec = recompute(tr, potential)
    assert rec.log_accept_ratio[0, 3] == -np.inf
    assert np.all(np.isfinite(np.delete(rec.log_accept_ratio[0], 3)))
    assert np.all(np.isnan(rec.innovation[0, 3]))
    assert CHOL.shape == COV.shape
