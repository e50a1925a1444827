"""ArviZ path: MCMC(MALA/ULA) -> DataTree -> detailed-balance group -> netCDF round trip."""

from __future__ import annotations

import arviz_stats as azs
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import xarray as xr
from arviz_base import from_numpyro
from numpyro.infer import MCMC

from numpyro_ebm.diagnostics import (
    DIAGNOSTIC_FIELDS,
    diagnose,
    flat_potential,
    from_datatree,
    to_datatree,
)
from numpyro_ebm.infer import MALA, ULA


def model():
    numpyro.sample("a", dist.Normal(1.0, 1.0))
    numpyro.sample("s", dist.LogNormal(0.0, 0.5).expand([2]))  # constrained: unconstrain


def _run(kernel, seed=0, draws=1000):
    mcmc = MCMC(kernel, num_warmup=300, num_samples=draws, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), extra_fields=DIAGNOSTIC_FIELDS)
    return mcmc


@pytest.fixture(scope="module")
def mala_run():
    return _run(MALA(model))


def test_from_numpyro_names_and_to_datatree(mala_run):
    plain = from_numpyro(mala_run)
    ss = plain["sample_stats"]
    for name in ("acceptance_rate", "step_size", "lp", "diverging", "log_accept_ratio",
                 "forward_log_prob", "backward_log_prob", "noise"):
        assert name in ss.data_vars, name
    dt = to_datatree(mala_run)
    assert dt["sample_stats"]["proposal"].dims == ("chain", "draw", "unconstrained_dim")
    assert dt["sample_stats"]["position"].shape == (2, 1000, 3)
    assert dt["langevin"]["inverse_mass_matrix"].dims == ("chain", "unconstrained_dim")
    # unconstrained positions: log of the LogNormal site; accepted steps equal the proposal
    s = dt["posterior"]["s"].values
    np.testing.assert_allclose(dt["sample_stats"]["position"].values[..., 1:], np.log(s),
                               rtol=1e-5, atol=1e-5)
    tr = from_datatree(dt)
    assert tr.position.shape == (2, 999, 3)


def test_diagnose_mala_passes_and_round_trips(mala_run, tmp_path):
    dt, rep = diagnose(mala_run)
    for name in ("D1 ratio", "D1 innovations", "D2", "D3"):
        assert rep[name].passed, rep.report()
    # float32 kernel: the logged ratio agrees with the float64 recomputation
    assert rep["D1 ratio"].statistic < 1e-4
    path = tmp_path / "run.nc"
    dt.to_netcdf(path)
    back = xr.open_datatree(path)
    xr.testing.assert_allclose(back["detailed_balance"].to_dataset(),
                               dt["detailed_balance"].to_dataset())
    # ArviZ's own diagnostics work on the result, including our group
    summ = azs.summary(back)
    assert summ.loc["a", "r_hat"] < 1.05
    ess_d = azs.ess(back, group="detailed_balance", var_names=["d2_fluctuation"])
    assert float(ess_d["d2_fluctuation"]) > 100


def test_ula_large_step_flagged_through_mcmc():
    mcmc = MCMC(ULA(model, step_size=0.2, adapt_step_size=False, adapt_mass_matrix=False),
                num_warmup=100, num_samples=1500, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(1), extra_fields=DIAGNOSTIC_FIELDS)
    _, rep = diagnose(mcmc, ksd=False)
    assert rep["D1 ratio"].passed  # ULA logs MALA's ratio honestly
    assert not rep["D2"].passed, rep.report()
    assert np.max(np.abs(rep["D2"].details["z"].values)) > 4


def test_to_datatree_needs_the_fields():
    mcmc = MCMC(MALA(potential_fn=lambda z: 0.5 * jnp.sum(z**2)), num_warmup=10,
                num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2))
    with pytest.raises(ValueError, match="extra_fields=numpyro_ebm.diagnostics"):
        to_datatree(mcmc)
    f = flat_potential(mcmc)
    assert float(f(jnp.ones(2))) == pytest.approx(1.0)


def test_to_datatree_refuses_thinned_runs():
    # with thinning=2, (draw t-1, proposal t) is not a transition: a correct MALA failed D1
    mcmc = MCMC(MALA(potential_fn=lambda z: 0.5 * jnp.sum(z**2)), num_warmup=10,
                num_samples=20, thinning=2, progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2), extra_fields=DIAGNOSTIC_FIELDS)
    with pytest.raises(ValueError, match="thinning=2"):
        to_datatree(mcmc)


def test_arviz_plots_work_on_our_datatree_unchanged(mala_run):
    """ArviZ's own plots take the DataTree of a MALA run as they take any NumPyro run."""
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt

    dt = to_datatree(mala_run)
    for plot in (az.plot_trace_dist, az.plot_rank):
        pc = plot(dt, var_names=["a", "s"], backend="matplotlib")
        assert pc is not None and len(plt.get_fignums()) >= 1
        plt.close("all")
