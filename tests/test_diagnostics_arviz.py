"""ArviZ path: MCMC(MALA/ULA/NUTS) -> DataTree -> detailed-balance group -> netCDF round trip.

Every error message that gives advice is tested by following the advice.
"""

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
from numpyro.infer import MCMC, NUTS, SA

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
    # a correct kernel passes the three tests with p-values at a family-wise level of 1%
    # (Bonferroni, alpha = 0.01 / 3 each; at 0.01 each, ~3% of seeds fail one by chance:
    # over seeds 0-9 the innovations p-values were 0.006, 0.75, 0.03, 0.43, 0.67, 0.80,
    # 0.43, 0.10, 0.93, 0.12)
    dt, rep = diagnose(mala_run, alpha=0.01 / 3)
    for name in ("ratio_consistency", "innovations", "fluctuation_identity", "reversibility"):
        assert rep[name].passed, rep.report()
    # float32 kernel: the logged ratio agrees with the float64 recomputation
    assert rep["ratio_consistency"].statistic < 1e-4
    assert dt["detailed_balance"].attrs["source"] == "kernel"
    path = tmp_path / "run.nc"
    dt.to_netcdf(path)
    back = xr.open_datatree(path)
    xr.testing.assert_allclose(back["detailed_balance"].to_dataset(),
                               dt["detailed_balance"].to_dataset())
    # ArviZ's own diagnostics work on the result, including our group
    summ = azs.summary(back)
    assert summ.loc["a", "r_hat"] < 1.05
    ess_d = azs.ess(back, group="detailed_balance", var_names=["fluctuation_identity_d"])
    assert float(ess_d["fluctuation_identity_d"]) > 100


def test_ula_large_step_flagged_through_mcmc():
    mcmc = MCMC(ULA(model, step_size=0.2, adapt_step_size=False, adapt_mass_matrix=False),
                num_warmup=100, num_samples=1500, num_chains=2, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(1), extra_fields=DIAGNOSTIC_FIELDS)
    _, rep = diagnose(mcmc, ksd=False)
    assert rep["ratio_consistency"].passed  # ULA logs MALA's ratio honestly
    assert not rep["fluctuation_identity"].passed, rep.report()
    assert np.max(np.abs(rep["fluctuation_identity"].details["z"].values)) > 4


def _gauss_potential(z):
    return 0.5 * jnp.sum(z**2)


def test_to_datatree_needs_the_fields_and_the_advice_works():
    mcmc = MCMC(MALA(potential_fn=_gauss_potential), num_warmup=10, num_samples=10,
                progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2))
    with pytest.raises(ValueError, match="extra_fields=numpyro_ebm.diagnostics"):
        to_datatree(mcmc)
    f = flat_potential(mcmc)
    assert float(f(jnp.ones(2))) == pytest.approx(1.0)
    # following the advice
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2), extra_fields=DIAGNOSTIC_FIELDS)
    assert to_datatree(mcmc)["sample_stats"]["proposal"].shape == (1, 10, 2)


def test_to_datatree_refuses_thinned_runs_and_the_advice_works():
    # with thinning=2, (draw t-1, proposal t) is not a transition: a correct MALA failed
    # ratio consistency
    mcmc = MCMC(MALA(potential_fn=_gauss_potential), num_warmup=10, num_samples=20,
                thinning=2, progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2), extra_fields=DIAGNOSTIC_FIELDS)
    with pytest.raises(ValueError, match="need thinning=1 \\(thin afterwards\\)"):
        to_datatree(mcmc)
    mcmc.thinning = 1  # the advice: run with thinning=1 ...
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2), extra_fields=DIAGNOSTIC_FIELDS)
    dt = to_datatree(mcmc)
    thinned = dt["posterior"].isel(draw=slice(None, None, 2))  # ... and thin afterwards
    assert thinned["draw"].size == 10 and from_datatree(dt).num_draws == 19


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


# ------------------------------------------------------------------ other kernels: probes
def test_nuts_with_diagnostic_fields_fails_in_numpyro():
    """NumPyro's own behaviour (documented in DIAGNOSTIC_FIELDS): NUTS has no such fields."""
    mcmc = MCMC(NUTS(model), num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(TypeError, match="tuple indices"):
        mcmc.run(jax.random.key(0), extra_fields=DIAGNOSTIC_FIELDS)


def test_diagnose_nuts_run_through_probes():
    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=1000, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(2))
    dt, rep = diagnose(mcmc, ksd=False)
    assert rep["ratio_consistency"].passed is None and rep["innovations"].passed is None
    assert rep["fluctuation_identity"].passed, rep.report()
    assert rep["reversibility"].passed, rep.report()
    attrs = dt["detailed_balance"].attrs
    eps = np.asarray(mcmc.last_state.adapt_state.step_size)
    assert attrs["source"] == "probe"
    assert attrs["probe_step_size"] == pytest.approx(float(np.mean(eps)) ** 2 / 2)
    # unconstrained positions: the LogNormal site is logged
    np.testing.assert_allclose(dt["sample_stats"]["position"].values[..., 1:],
                               np.log(dt["posterior"]["s"].values), rtol=1e-5, atol=1e-6)
    # a NUTS DataTree has no Langevin proposals: the advice of from_datatree is diagnose
    with pytest.raises(ValueError, match=r"use diagnose\(mcmc\) or probe_transitions"):
        from_datatree(dt)


def test_diagnose_kernel_without_step_size_needs_probe_step_size():
    mcmc = MCMC(SA(model), num_warmup=200, num_samples=300, progress_bar=False)
    mcmc.run(jax.random.key(0))
    with pytest.raises(ValueError, match="pass probe_step_size=h"):
        diagnose(mcmc, ksd=False)
    _, rep = diagnose(mcmc, probe_step_size=0.05, ksd=False)  # following the advice
    assert rep["fluctuation_identity"].statistic >= 0


def test_probe_arguments_refused_for_langevin_runs(mala_run):
    with pytest.raises(ValueError, match=r"\['probe_step_size'\] apply to runs of other "
                                         "kernels.*drop them"):
        diagnose(mala_run, probe_step_size=0.1, ksd=False)
    _, rep = diagnose(mala_run, ksd=False)  # following the advice
    assert rep["ratio_consistency"].passed


def data_model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def data_model_default(y=None):
    data_model(jnp.zeros(3) if y is None else y)


@pytest.mark.parametrize("kernel", [MALA, NUTS])
def test_model_arguments_advice(kernel):
    y = jnp.array([2.0, 2.5, 3.0])
    mcmc = MCMC(kernel(data_model), num_warmup=100, num_samples=200, progress_bar=False)
    fields = DIAGNOSTIC_FIELDS if kernel is MALA else ()
    mcmc.run(jax.random.key(0), y, extra_fields=fields)
    with pytest.raises(TypeError, match="model_args=\\(...\\)"):
        diagnose(mcmc, ksd=False)
    _, rep = diagnose(mcmc, model_args=(y,), ksd=False)  # following the advice
    assert rep["fluctuation_identity"].passed, rep.report()


def test_wrong_model_arguments_caught_by_the_logged_potential():
    # the model runs without its data (a default): the potential would silently be wrong
    y = jnp.array([2.0, 2.5, 3.0])
    mcmc = MCMC(MALA(data_model_default), num_warmup=100, num_samples=200,
                progress_bar=False)
    mcmc.run(jax.random.key(0), y, extra_fields=DIAGNOSTIC_FIELDS)
    with pytest.raises(ValueError, match="where the run logged .*model_args="):
        diagnose(mcmc, ksd=False)
    _, rep = diagnose(mcmc, model_args=(y,), ksd=False)  # following the advice
    assert rep["ratio_consistency"].passed, rep.report()


def test_diagnostics_read_no_private_numpyro_attributes():
    import inspect
    import re

    from numpyro_ebm.diagnostics import arviz as arviz_mod

    src = inspect.getsource(arviz_mod)
    assert not re.search(r"\._(args|kwargs|temperature)\b", src)
    assert not re.search(r"getattr\([^)]*[\"']_", src)


def test_to_datatree_and_diagnose_name_a_wrong_or_unrun_argument():
    # an array of draws is not a run: a TypeError that says what is expected (was an
    # AttributeError about `.sampler`); an MCMC that has not run: a ValueError
    draws = np.zeros((2, 100))
    for fn in (to_datatree, diagnose):
        with pytest.raises(TypeError, match=r"numpyro.infer.MCMC object .* got ndarray"):
            fn(draws)
        unrun = MCMC(NUTS(lambda: numpyro.sample("x", dist.Normal())), num_warmup=5,
                     num_samples=5, progress_bar=False)
        with pytest.raises(ValueError, match="has not run yet"):
            fn(unrun)


def test_to_datatree_adds_the_data_a_factor_scores_as_observed_data():
    # a learned-energy likelihood is a numpyro.factor: ArviZ sees no observed site
    data = np.random.default_rng(0).normal(1.0, 1.0, (20, 2))

    def factor_model(x):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0).expand([2]).to_event(1))
        numpyro.factor("energy", -0.5 * jnp.sum((x - mu) ** 2))

    mcmc = MCMC(NUTS(factor_model), num_warmup=50, num_samples=50, progress_bar=False)
    mcmc.run(jax.random.key(0), data)
    # ArviZ's observed_data holds only the factor's empty placeholder
    assert to_datatree(mcmc, model_args=(data,))["observed_data"]["energy"].size == 0
    dt = to_datatree(mcmc, model_args=(data,), observed_data={"x": data},
                     dims={"x": ["obs", "feature"]}, coords={"feature": ["f0", "f1"]})
    np.testing.assert_array_equal(dt["observed_data"]["x"].values, data)
    assert set(dt["observed_data"].data_vars) == {"x"}  # the placeholder is gone
    assert dt["observed_data"]["x"].dims == ("obs", "feature")
    assert list(dt["observed_data"]["feature"].values) == ["f0", "f1"]  # coords apply
    assert list(dt["observed_data"]["obs"].values) == list(range(20))  # index coords
    assert dt["observed_data"].attrs["inference_library"] == "numpyro"
    assert dt["posterior"]["mu"].shape == (1, 50, 2)  # the rest is ArviZ's, unchanged
    dt, _ = diagnose(mcmc, model_args=(data,), observed_data={"x": data})  # passed on
    np.testing.assert_array_equal(dt["observed_data"]["x"].values, data)
    dt = to_datatree(mcmc, model_args=(data,), observed_data={"x": data})
    assert dt["observed_data"]["x"].dims == ("x_dim_0", "x_dim_1")
    dt = to_datatree(mcmc, model_args=(data,), observed_data={"x": data}, dims={"x": ["obs"]})
    assert dt["observed_data"]["x"].dims == ("obs", "x_dim_0")  # partial dims, as ArviZ
    with pytest.raises(TypeError, match=r"observed_data=\{'x': data\}"):
        to_datatree(mcmc, model_args=(data,), observed_data=[data])
    with pytest.raises(TypeError, match=r"keys must be variable names \(str\); got \[0\]"):
        to_datatree(mcmc, model_args=(data,), observed_data={0: data})
    with pytest.raises(TypeError, match=r"dims\['x'\] must be a list .* string 'obs'"):
        to_datatree(mcmc, model_args=(data,), observed_data={"x": data}, dims={"x": "obs"})
    with pytest.raises(ValueError, match="more dims"):
        to_datatree(mcmc, model_args=(data,), observed_data={"x": data},
                    dims={"x": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="conflicting sizes for dimension 'feature'"):
        to_datatree(mcmc, model_args=(data,), observed_data={"x": data},
                    dims={"x": ["obs", "feature"]}, coords={"feature": ["a", "b", "c"]})


def test_to_datatree_observed_data_never_overwrites_an_observed_site():
    def obs_model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    y = np.linspace(-1.0, 1.0, 5)
    mcmc = MCMC(NUTS(obs_model), num_warmup=20, num_samples=20, progress_bar=False)
    mcmc.run(jax.random.key(0), y)
    with pytest.raises(ValueError, match=r"\['y'\] that ArviZ already read"):
        to_datatree(mcmc, model_args=(y,), observed_data={"y": y})
    dt = to_datatree(mcmc, model_args=(y,), observed_data={"y_raw": y})
    assert set(dt["observed_data"].data_vars) == {"y", "y_raw"}
