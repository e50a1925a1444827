"""The init programs' cache: one compilation per traced program, data passed as arguments."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import count_compiles
from numpyro.infer import MCMC

from numpyro_ebm.infer import MALA, ULA
from numpyro_ebm.infer import _program_cache as pc


def _closure(data, scale):
    return lambda x: jnp.sum((x - data) ** 2) * scale


def test_equal_programs_compile_once_and_use_their_own_data():
    x = jnp.ones(3)
    data = jnp.arange(3.0)
    pc.run_cached(_closure(jnp.zeros(3), 2.0), x)
    with count_compiles() as seen:  # a new closure, new data of the same shape
        out = pc.run_cached(_closure(data, 2.0), x)
    assert len(seen) == 0
    assert float(out) == pytest.approx(2.0 * (1 + 0 + 1))  # not 6.0, the first data's


def test_a_different_literal_is_a_different_program():
    x = jnp.ones(3)
    a = pc.run_cached(_closure(jnp.zeros(3), 2.0), x)
    b = pc.run_cached(_closure(jnp.zeros(3), 3.0), x)  # the scale is a literal
    assert float(a) == pytest.approx(6.0) and float(b) == pytest.approx(9.0)


def test_custom_jvp_rules_do_not_alias_programs():
    # two custom_jvp functions with one printed name and different primal values
    def make(k):
        @jax.custom_jvp
        def f(x):
            return jnp.sin(x) * k

        f.defjvp(lambda p, t: (f(p[0]), t[0]))
        return lambda x: jnp.sum(f(x))

    x = jnp.ones(2)
    assert float(pc.run_cached(make(1.0), x)) == pytest.approx(2 * np.sin(1.0))
    assert float(pc.run_cached(make(2.0), x)) == pytest.approx(4 * np.sin(1.0))


def _nested_jit_closure(data):
    inner = jax.jit(lambda x: jnp.sum((x - data) ** 2))  # its data is compiled into it
    return lambda x: inner(x)


def test_a_nested_jit_over_other_data_is_another_program():
    x = jnp.ones(3)
    a = pc.run_cached(_nested_jit_closure(jnp.zeros(3)), x)
    b = pc.run_cached(_nested_jit_closure(jnp.arange(3.0)), x)
    assert float(a) == pytest.approx(3.0)
    assert float(b) == pytest.approx(2.0)  # not 3.0, the first closure's data
    with count_compiles() as seen:  # equal data again: the cached program
        c = pc.run_cached(_nested_jit_closure(jnp.arange(3.0)), x)
    assert len(seen) == 0 and float(c) == pytest.approx(2.0)


def _model_with_jitted_summary(data):
    centre = jax.jit(lambda: jnp.mean(data))  # a jitted function of the model's own data

    def model():
        numpyro.sample("x", dist.Normal(centre(), 1.0))

    return model


def test_a_model_calling_a_jitted_closure_gets_its_own_init_state():
    keys = jax.random.split(jax.random.key(0), 2)
    MALA(_model_with_jitted_summary(jnp.zeros(3))).init(keys, 10, None, (), {})
    kernel = MALA(_model_with_jitted_summary(jnp.arange(3.0) + 4.0))
    state = kernel.init(keys, 10, None, (), {})
    u, g = jax.vmap(jax.value_and_grad(kernel.get_potential_fn((), {})))(state.z)
    np.testing.assert_allclose(state.potential_energy, u, rtol=1e-5)
    np.testing.assert_allclose(state.z_grad["x"], g["x"], rtol=1e-5)


def test_host_callbacks_are_compiled_without_the_cache():
    calls = []

    def f(x):
        jax.debug.callback(lambda v: calls.append(float(v)), x[0])
        return x * 2

    size = len(pc._PROGRAMS)
    np.testing.assert_allclose(pc.run_cached(f, jnp.ones(2)), 2.0)
    assert calls == [1.0] and len(pc._PROGRAMS) == size


def test_the_cache_keeps_at_most_max_programs():
    for k in range(pc.MAX_PROGRAMS + 3):
        pc.run_cached(lambda x, k=k: x + float(k) + 0.5, jnp.ones(1))
    assert len(pc._PROGRAMS) <= pc.MAX_PROGRAMS


def _model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


@pytest.mark.parametrize("kernel", [MALA, ULA])
def test_a_second_run_on_new_data_compiles_no_init_program(kernel):
    y1 = jnp.linspace(-1.0, 3.0, 20)
    y2 = y1 * 2.0 + 5.0
    keys = jax.random.split(jax.random.key(0), 3)
    kernel(_model).init(keys, 10, None, (y1,), {})
    with count_compiles() as seen:
        state = kernel(_model).init(keys, 10, None, (y2,), {})
    assert len(seen) == 0
    # the state belongs to the new data: its potential is the one of y2
    pot = kernel(_model)
    pot.init(keys, 10, None, (y2,), {})
    u = jax.vmap(pot.get_potential_fn((y2,), {}))(state.z)
    np.testing.assert_allclose(state.potential_energy, u, rtol=1e-5)


def test_initial_positions_are_numpyros():
    # the same keys give the positions NumPyro's initialize_model finds for each chain
    from numpyro.infer.util import initialize_model

    y = jnp.linspace(-1.0, 3.0, 20)
    keys = jax.random.split(jax.random.key(3), 4)
    state = MALA(_model).init(keys, 10, None, (y,), {})
    key_model = jax.vmap(jax.random.split)(keys)[:, 1]
    ref = initialize_model(key_model, _model, model_args=(y,)).param_info.z
    for name in ("mu", "sigma"):
        np.testing.assert_allclose(state.z[name], ref[name], rtol=1e-6)


def _unsorted_model():
    # latent sites out of alphabetical order: init_to_uniform draws them in model order
    numpyro.sample("zeta", dist.Normal(jnp.zeros(3), 1.0).to_event(1))
    numpyro.sample("beta", dist.HalfNormal(1.0))
    numpyro.sample("alpha", dist.Dirichlet(jnp.ones(3)))


@pytest.mark.parametrize("batch", [True, False])
def test_initial_positions_are_numpyros_in_the_models_site_order(batch):
    from numpyro.infer.util import initialize_model

    key = jax.random.key(3)
    keys = jax.random.split(key, 2) if batch else key
    state = MALA(_unsorted_model).init(keys, 10, None, (), {})
    key_model = jax.vmap(jax.random.split)(keys)[:, 1] if batch else jax.random.split(key)[1]
    ref = initialize_model(key_model, _unsorted_model).param_info.z
    for name in ("zeta", "beta", "alpha"):
        np.testing.assert_allclose(state.z[name], ref[name], rtol=1e-6)


def test_no_valid_initial_position_is_numpyros_error():
    def bad():
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.factor("f", jnp.where(x > 100.0, 0.0, -jnp.inf))

    mcmc = MCMC(MALA(bad, check_model=False), num_warmup=5, num_samples=5, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    with pytest.raises(RuntimeError, match="Cannot find valid initial parameters"):
        mcmc.run(jax.random.key(0))


def _computed_bounds(y):
    numpyro.sample("x", dist.Uniform(0.0, jnp.max(y) * 2.0))  # a support the model computes


def _with_param(y):
    s = numpyro.param("s", 1.5, constraint=dist.constraints.positive)
    numpyro.sample("x", dist.Normal(0.0, s))


def _subsampled(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", y.shape[0], subsample_size=5):
        numpyro.sample("u", dist.Normal(mu, 1.0))


@pytest.mark.parametrize("model", [_computed_bounds, _with_param, _subsampled])
@pytest.mark.parametrize("chain_method", ["vectorized", "sequential"])
def test_models_off_the_plain_path_still_sample(model, chain_method):
    from numpyro.infer.util import initialize_model

    from numpyro_ebm.infer.kernels import _traced_initialize

    y = jnp.linspace(0.5, 2.0, 10)
    init = lambda k: initialize_model(k, model, dynamic_args=True, model_args=(y,))
    mcmc = MCMC(MALA(model, check_model=False), num_warmup=20, num_samples=20, num_chains=2,
                chain_method=chain_method, progress_bar=False)
    if model is _subsampled:  # NumPyro's error, as for HMC
        with pytest.raises(ValueError, match="do not support subsampling"):
            mcmc.run(jax.random.key(1), y)
        return
    traced = _traced_initialize(init, jax.random.key(0), (y,), {})
    # NumPyro replays a model with a computed support (no values of the trace are kept)
    assert (traced is None) == (model is not _computed_bounds)
    mcmc.run(jax.random.key(1), y)
    for name, v in mcmc.get_samples().items():
        assert np.all(np.isfinite(v)), name
    if model is _computed_bounds:
        x = mcmc.get_samples()["x"]
        assert np.all((x > 0) & (x < 4.0))


def test_a_single_chain_init_is_the_cached_program_too():
    y = jnp.linspace(-1.0, 3.0, 20)
    MALA(_model).init(jax.random.key(0), 10, None, (y,), {})
    with count_compiles() as seen:
        state = MALA(_model).init(jax.random.key(1), 10, None, (y,), {})
    assert len(seen) == 0
    assert np.isfinite(state.potential_energy) and float(state.adapt_state.step_size) > 0


def _sum_times(data):
    return lambda x: jnp.sum(data) * x


def test_the_cache_does_not_keep_the_first_runs_data_alive():
    import gc
    import weakref

    fn = _sum_times(jnp.arange(1000.0) * 2.0)
    alive = weakref.ref(fn.__closure__[0].cell_contents)
    assert float(pc.run_cached(fn, jnp.ones(()))) == pytest.approx(999000.0)
    del fn
    gc.collect()
    assert alive() is None  # the cached program holds its jaxpr, not the data
    again = pc.run_cached(_sum_times(jnp.arange(1000.0)), jnp.ones(()))
    assert float(again) == pytest.approx(499500.0)


def _invalid_dirichlet():
    # a negative concentration: the log density stays finite, only validation catches it
    numpyro.sample("w", dist.Dirichlet(jnp.array([-0.5, 1.0, 2.0])))


@pytest.mark.parametrize("chain_method,num_chains", [("vectorized", 2), ("sequential", 1)])
def test_invalid_distribution_arguments_raise_numpyros_error(chain_method, num_chains):
    # NumPyro validates by default; its initialize_model (and so HMC) raises here
    mcmc = MCMC(MALA(_invalid_dirichlet), num_warmup=5, num_samples=5,
                num_chains=num_chains, chain_method=chain_method, progress_bar=False)
    with pytest.raises(ValueError, match="invalid concentration"):
        mcmc.run(jax.random.key(0))


def test_invalid_distribution_arguments_raise_with_init_params_too():
    mcmc = MCMC(MALA(_invalid_dirichlet), num_warmup=5, num_samples=5, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    with pytest.raises(ValueError, match="invalid concentration"):
        mcmc.run(jax.random.key(0), init_params={"w": jnp.zeros((2, 2))})


def test_without_validation_invalid_arguments_are_not_checked():
    mcmc = MCMC(ULA(_invalid_dirichlet), num_warmup=5, num_samples=5, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    with numpyro.validation_enabled(False):
        mcmc.run(jax.random.key(0))
    w = mcmc.get_samples()["w"]
    np.testing.assert_allclose(np.sum(w, -1), 1.0, rtol=1e-5)  # sampled, as NumPyro would
