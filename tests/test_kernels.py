"""MALA / ULA as NumPyro kernels: MCMC integration, known moments, diagnostics fields."""

import pickle

import arviz
import arviz_stats
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import assert_raw_moments_within_mcse
from numpyro.infer import MCMC, NUTS, Gibbs
from numpyro.infer.gibbs import GIBBS_SITES_KWARG, conditioned
from scipy import stats

import numpyro_ebm
from numpyro_ebm import datasets
from numpyro_ebm.infer import MALA, ULA, MALAState

FIELDS = ("z", "proposal", "accept_prob", "potential_energy", "diverging", "log_accept_ratio",
          "forward_log_prob", "backward_log_prob", "noise", "adapt_state.step_size",
          "adapt_state.inverse_mass_matrix")


def _model_of(dens):
    def model():
        numpyro.sample("x", dens.as_distribution())

    return model


ILL2 = datasets.gaussian(jnp.array([1.0, -2.0]), jnp.array([[4.0, 1.9], [1.9, 1.0]]))


def ill2_model():  # module level, so the kernel pickles
    numpyro.sample("x", ILL2.as_distribution())


@pytest.fixture(scope="module")
def dense_run():
    """MALA with a dense mass matrix on an ill-conditioned 2-D Gaussian, 4 vectorized chains."""
    mcmc = MCMC(MALA(ill2_model, dense_mass=True), num_warmup=500, num_samples=1500,
                num_chains=4, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(0), extra_fields=FIELDS)
    return mcmc


def test_dense_mala_moments_and_adapted_metric(dense_run):
    x = dense_run.get_samples(group_by_chain=True)["x"]
    cov = np.asarray(ILL2.params["scale_tril"] @ ILL2.params["scale_tril"].T)
    mean = np.asarray(ILL2.params["mean"])
    assert_raw_moments_within_mcse(x, mean, np.diag(cov) + mean**2)
    inv_mm = dense_run.last_state.adapt_state.inverse_mass_matrix
    assert inv_mm.shape == (4, 2, 2)
    corr = inv_mm[:, 0, 1] / np.sqrt(inv_mm[:, 0, 0] * inv_mm[:, 1, 1])
    assert np.all(corr > 0.5)  # the dense metric learned the strong correlation (0.95)
    # the state keeps 0.5 log det M^-1 of the adapted metric (updated with it in warmup)
    np.testing.assert_allclose(dense_run.last_state.log_det_sqrt,
                               0.5 * np.linalg.slogdet(np.asarray(inv_mm))[1], rtol=1e-10)
    assert dense_run.last_state.adapt_state.rng_key is None  # no key split per warmup step


def test_extra_fields_reproduce_the_acceptance_ratio(dense_run):
    """What the diagnostics helper does: recompute every step's MALA ratio in float64."""
    ef = dense_run.get_extra_fields(group_by_chain=True)
    # "z" is the sample field (real support: unconstrained == constrained)
    z = np.asarray(dense_run.get_samples(group_by_chain=True)["x"])
    prop = np.asarray(ef["proposal"]["x"])
    h, inv = np.asarray(ef["adapt_state.step_size"]), np.asarray(
        ef["adapt_state.inverse_mass_matrix"])
    pot = lambda v: -ILL2.log_prob(v)
    grad = jax.vmap(jax.grad(pot))
    for c in range(2):
        x_prev, y = z[c, :-1], prop[c, 1:]
        hh, m = h[c, 0], inv[c, 0]
        assert np.all(h[c] == hh)  # fixed after warmup
        g_x, g_y = np.asarray(grad(x_prev)), np.asarray(grad(y))
        fwd = np.array([stats.multivariate_normal(a - hh * m @ b, 2 * hh * m).logpdf(v)
                        for a, b, v in zip(x_prev[:200], g_x[:200], y[:200])])
        bwd = np.array([stats.multivariate_normal(v - hh * m @ b, 2 * hh * m).logpdf(a)
                        for a, b, v in zip(x_prev[:200], g_y[:200], y[:200])])
        ratio = -(np.asarray(pot(y[:200])) - np.asarray(pot(x_prev[:200]))) + bwd - fwd
        np.testing.assert_allclose(ef["forward_log_prob"][c, 1:201], fwd, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ef["backward_log_prob"][c, 1:201], bwd, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ef["log_accept_ratio"][c, 1:201], ratio, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ef["accept_prob"][c, 1:201], np.minimum(1, np.exp(ratio)),
                                   rtol=1e-8, atol=1e-12)
        # the innovation: |xi|^2 is the Mahalanobis norm of the proposal residual
        r = y - x_prev + hh * g_x @ m.T
        maha = np.einsum("ti,ij,tj->t", r, np.linalg.inv(m), r) / (2 * hh)
        np.testing.assert_allclose(maha, np.sum(ef["noise"][c, 1:] ** 2, -1), rtol=1e-8)
        pe = np.asarray(pot(z[c]))
        np.testing.assert_allclose(ef["potential_energy"][c], pe, rtol=1e-10)


def test_a_kernel_step_is_the_functional_mala_step_of_its_split_key(dense_run):
    """The kernel splits its key once per step and hands the second key to the functional
    core: ``langevin.mala_step`` with that key and the state's step size and metric makes
    the same proposal and the same accept decision."""
    from numpyro_ebm.infer import langevin
    from numpyro_ebm.infer.metric import from_adapt_state

    kernel, state = dense_run.sampler, dense_run.last_state
    nxt = kernel.sample(state, (), {})
    potential = kernel.get_potential_fn((), {})
    for c in range(4):
        one = jax.tree.map(lambda v, c=c: v[c], state)
        _, key_step = jax.random.split(one.rng_key)
        current = langevin.LangevinState(one.z, one.potential_energy, one.z_grad)
        metric = from_adapt_state(one.adapt_state, one.log_det_sqrt)  # the kernel's factor
        new, info = langevin.mala_step(key_step, current, potential,
                                       one.adapt_state.step_size, metric)
        np.testing.assert_allclose(info.proposal.position["x"], nxt.proposal["x"][c],
                                   rtol=1e-12)
        np.testing.assert_allclose(info.noise, nxt.noise[c], rtol=1e-12)
        np.testing.assert_allclose(new.position["x"], nxt.z["x"][c], rtol=1e-12)
        assert bool(info.is_accepted) == bool(np.any(nxt.z["x"][c] != one.z["x"]))


def test_arviz_conversion_names(dense_run):
    tree = arviz.from_numpyro(dense_run)
    ss = tree["sample_stats"]
    for name in ("acceptance_rate", "lp", "diverging", "step_size", "log_accept_ratio"):
        assert name in ss.data_vars, name
    assert ss["acceptance_rate"].shape == (4, 1500)
    assert tree["posterior"]["x"].shape == (4, 1500, 2)
    assert 0.3 < float(ss["acceptance_rate"].mean()) < 0.85


def test_second_run_continues_and_pickles(dense_run):
    kernel = dense_run.sampler
    h = np.asarray(dense_run.last_state.adapt_state.step_size)
    last_z = np.asarray(dense_run.last_state.z["x"])
    sample_fn = kernel._sample_fn
    dense_run.post_warmup_state = dense_run.last_state
    dense_run.run(dense_run.post_warmup_state.rng_key, extra_fields=FIELDS)
    assert kernel._sample_fn is sample_fn  # not re-initialised
    st = dense_run.last_state
    np.testing.assert_array_equal(st.i, 500 + 3000)
    np.testing.assert_array_equal(st.adapt_state.step_size, h)  # no adaptation after warmup
    first = dense_run.get_extra_fields(group_by_chain=True)["proposal"]["x"][:, 0]
    assert not np.allclose(first, last_z)
    clone = pickle.loads(pickle.dumps(dense_run))
    assert clone.sampler._sample_fn is None and clone.sampler.model is not None
    np.testing.assert_array_equal(clone.get_samples()["x"], dense_run.get_samples()["x"])
    assert "step size" in kernel.get_diagnostics_str(st)
    assert "acc. prob" in kernel.get_diagnostics_str(st)


def _nan_potential(z):
    return jnp.where(z[0] > 1.5, jnp.nan, 0.5 * jnp.sum(z**2 / jnp.array([1.0, 4.0])))


@pytest.fixture(scope="module")
def chain_method_runs():
    out = {}
    for method in ("parallel", "sequential", "vectorized"):
        mcmc = MCMC(MALA(potential_fn=_nan_potential), num_warmup=200, num_samples=300,
                    num_chains=2, chain_method=method, progress_bar=method == "sequential")
        mcmc.run(jax.random.key(1), init_params=jnp.array([[0.0, 0.0], [-1.0, 1.0]]))
        out[method] = mcmc
    return out


def test_chain_methods_agree_and_nan_region_is_safe(chain_method_runs):
    ref = chain_method_runs["sequential"]
    z_ref = np.asarray(ref.get_samples(group_by_chain=True))
    for mcmc in chain_method_runs.values():
        z = np.asarray(mcmc.get_samples(group_by_chain=True))
        np.testing.assert_allclose(z, z_ref, rtol=1e-6, atol=1e-8)
        assert np.all(np.isfinite(z)) and np.all(z[..., 0] <= 1.5)
        div = np.asarray(mcmc.get_extra_fields()["diverging"])
        assert div.sum() > 0  # steps into the NaN region are flagged
    assert not np.allclose(z_ref[0], z_ref[1])


def test_vectorized_chains_start_apart():
    kernel = MALA(_model_of(ILL2))

    @jax.jit
    def init_and_step(keys):
        st = kernel.init(keys, 10, None, (), {})
        return st, kernel.sample(st, (), {})

    st, st2 = init_and_step(jax.random.split(jax.random.key(2), 3))
    assert isinstance(st, MALAState)
    x0 = np.asarray(st.z["x"])
    assert x0.shape == (3, 2)
    assert len({tuple(r) for r in x0.round(8)}) == 3
    assert st2.i.shape == (3,) and np.all(np.isfinite(st2.z["x"]))


def gamma_model(rate):
    energy, params = numpyro_ebm.gamma_energy(3.0, 1.0)
    params = {"a": params["a"], "b": rate}
    s = numpyro.sample("s", numpyro_ebm.EnergyDistribution(
        energy, params, support=dist.constraints.positive))
    numpyro.deterministic("log_s", jnp.log(s))


def test_constrained_site_uses_given_model_args():
    # Gamma(3, rate): mean 3 / rate, E[s^2] = 12 / rate^2; rate comes from model_args.
    mcmc = MCMC(MALA(gamma_model), num_warmup=500, num_samples=1000, num_chains=2,
                chain_method="vectorized", progress_bar=False, jit_model_args=True)
    mcmc.run(jax.random.key(3), 2.0)
    s = mcmc.get_samples(group_by_chain=True)
    assert np.all(s["s"] > 0)
    np.testing.assert_allclose(s["log_s"], np.log(s["s"]), rtol=1e-12)
    assert_raw_moments_within_mcse(s["s"][..., None], [1.5], [3.0])
    # continuing with new model args: sample() must use them (no re-initialisation)
    mcmc.post_warmup_state = mcmc.last_state
    mcmc.run(mcmc.last_state.rng_key, 4.0)
    s = mcmc.get_samples(group_by_chain=True)
    assert_raw_moments_within_mcse(s["s"][..., None], [0.75], [0.75])


def test_ula_fixed_step_matches_closed_form_bias():
    # ULA on N(0, 4) with h = 1.6 and identity metric: variance 4 / (1 - h / 8) = 5.
    mcmc = MCMC(ULA(potential_fn=lambda z: 0.125 * jnp.sum(z**2), step_size=1.6,
                    adapt_step_size=False, adapt_mass_matrix=False, metropolis_warmup=False),
                num_warmup=200, num_samples=4000, num_chains=4, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(4), init_params=jnp.zeros((4, 1)))
    x = np.asarray(mcmc.get_samples(group_by_chain=True))[..., 0]
    np.testing.assert_array_equal(mcmc.last_state.adapt_state.step_size, 1.6)
    assert_raw_moments_within_mcse(x[..., None], [0.0], [4.0 / (1 - 1.6 / 8)])
    assert abs((x**2).mean() - 4.0) > 4.5 * arviz_stats.mcse(x**2)


def test_ula_adapts_on_would_be_acceptance():
    # From a far too large initial h (would-be acceptance ~0.1), dual averaging on the
    # would-be MALA acceptance brings it to the target; NumPyro's adapter ends on the
    # averaged log step, which lands a little above the target: over seeds the mean
    # acceptance of one chain is 0.87 +- 0.02 (sd), of four chains 0.876 +- 0.008, so the
    # 0.1 band is judged on four chains (about 3 sd inside it, where one chain was 1.5 sd).
    mcmc = MCMC(ULA(_model_of(ILL2), step_size=3.0, target_accept_prob=0.8), num_warmup=500,
                num_samples=500, num_chains=4, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(5), extra_fields=("accept_prob", "adapt_state.step_size"))
    ef = mcmc.get_extra_fields()
    assert abs(float(np.mean(ef["accept_prob"])) - 0.8) < 0.1
    assert float(ef["adapt_state.step_size"][0]) < 0.3


def gibbs_model():
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.sample("s", dist.Gamma(3.0, jnp.exp(0.5 * x)))


def test_gibbs_blocks_with_constrained_site():
    # x ~ N(0, 1), s | x ~ Gamma(3, e^{x/2}): E[s] = 3 e^{1/8}, E[s^2] = 12 e^{1/2}.
    kernel = Gibbs([(MALA(gibbs_model), ["x"]), (MALA(gibbs_model), ["s"])])
    mcmc = MCMC(kernel, num_warmup=300, num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.key(6))
    s = mcmc.get_samples(group_by_chain=True)
    assert np.all(s["s"] > 0)
    # Gibbs hands non-HMC blocks constrained init values; the block unconstrains them
    block = MALA(gibbs_model).wrap_model(conditioned)
    st = jax.jit(lambda k: block.init(k, 0, {"s": 2.0}, (), {GIBBS_SITES_KWARG: {"x": 0.0}}))(
        jax.random.key(0))
    np.testing.assert_allclose(st.z["s"], np.log(2.0), rtol=1e-12)
    draws = np.stack([s["x"], s["s"]], -1)
    assert_raw_moments_within_mcse(draws, [0.0, 3 * np.exp(0.125)], [1.0, 12 * np.exp(0.5)])


def test_kernel_built_from_tracers():
    @jax.jit
    def one_step(h, t):
        k = MALA(potential_fn=lambda z: 0.5 * jnp.sum(z**2), step_size=h, temperature=t)
        st = k.init(jax.random.key(0), 0, jnp.ones(2), (), {})
        return k.sample(st, (), {}).z

    assert np.all(np.isfinite(one_step(0.1, 1.0)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # messages of the shared checks (numpyro_ebm.checks): name, constraint, value
        ({"step_size": 0.0}, "step_size must be finite and > 0"),
        ({"step_size": -1.0}, "step_size must be finite and > 0"),
        ({"target_accept_prob": 1.0}, r"target_accept_prob must be finite and in \(0.0, 1.0\)"),
        ({"temperature": 0.0}, "temperature must be finite and > 0"),
        ({"max_delta_energy": -1.0}, "max_delta_energy must be finite and > 0"),
        ({"dense_mass": [("x",)]}, "dense_mass must be True or False"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    exc = TypeError if "dense_mass" in kwargs else ValueError
    with pytest.raises(exc, match=match):
        MALA(potential_fn=lambda z: z @ z, **kwargs)


def test_model_xor_potential_and_missing_init_params():
    with pytest.raises(ValueError, match="exactly one of model= or potential_fn="):
        ULA()
    with pytest.raises(ValueError, match="exactly one of model= or potential_fn="):
        MALA(_model_of(ILL2), potential_fn=lambda z: z @ z)
    with pytest.raises(ValueError, match="needs init_params"):
        MALA(potential_fn=lambda z: z @ z).init(jax.random.key(0), 10, None, (), {})
    with pytest.raises(ValueError, match=r"inverse_mass_matrix must have shape \(2,\)"):
        MALA(potential_fn=lambda z: z @ z, inverse_mass_matrix=jnp.ones(3)).init(
            jax.random.key(0), 10, jnp.zeros(2), (), {})
    # a non-finite start rejected every proposal: the chain silently stayed, h -> 0
    with pytest.raises(ValueError, match="init_params: the potential or its gradient"):
        MALA(potential_fn=lambda z: jnp.sum(jnp.sqrt(z))).init(
            jax.random.key(0), 10, -jnp.ones(2), (), {})
    # a dense M^-1 without dense_mass=True was silently reduced to its diagonal
    with pytest.raises(ValueError, match=r"needs dense_mass=True"):
        MALA(potential_fn=lambda z: z @ z, inverse_mass_matrix=jnp.eye(2)).init(
            jax.random.key(0), 10, jnp.zeros(2), (), {})


@pytest.mark.parametrize("kernel", [MALA, ULA])
@pytest.mark.parametrize("inv_mm, dense, match", [
    (jnp.array([jnp.nan, 1.0]), False, r"inverse_mass_matrix must be finite and > 0"),
    (jnp.array([0.0, 1.0]), False, r"inverse_mass_matrix must be finite and > 0"),
    (jnp.array([-1.0, 1.0]), False, r"inverse_mass_matrix must be finite and > 0"),
    (jnp.array([[1.0, 2.0], [0.0, 1.0]]), True, r"inverse_mass_matrix"),  # not symmetric
    (jnp.array([[1.0, 2.0], [2.0, 1.0]]), True, r"inverse_mass_matrix"),  # eigenvalue -1
    ({("x",): jnp.array([1.0, -2.0])}, False, r"inverse_mass_matrix\[\('x',\)\] must be"),
])
def test_an_invalid_inverse_mass_matrix_is_refused_at_construction(kernel, inv_mm, dense,
                                                                   match):
    # issue 15: a NaN / non-positive M^-1 was accepted and froze every chain silently
    with pytest.raises(ValueError, match=match):
        kernel(potential_fn=lambda z: z @ z, inverse_mass_matrix=inv_mm, dense_mass=dense)


# ---------------------------------------------------------------- known moments, MALA vs NUTS
TARGETS = {
    "gauss10": datasets.gaussian(jnp.zeros(10), jnp.diag(jnp.logspace(-1, 1, 10) ** 2)),
    "banana": datasets.banana(),
    "mixture": datasets.gaussian_mixture(jnp.array([[-1.5, 0.0], [1.5, 0.0]]), 0.8),
}
MOMENTS = {
    "gauss10": (np.zeros(10), np.logspace(-1, 1, 10) ** 2),
    # banana as (x0, x1 - b (x0^2 - s^2)): N(0, 4) x N(0, 1) exactly, light tails
    "banana": (np.zeros(2), np.array([4.0, 1.0])),
    "mixture": (np.zeros(2), np.array([1.5**2 + 0.64, 0.64])),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("kernel_cls", [MALA, NUTS])
def test_known_moments(name, kernel_cls):
    kernel = kernel_cls(_model_of(TARGETS[name]))
    n = 3000 if kernel_cls is MALA else 400
    mcmc = MCMC(kernel, num_warmup=1000 if kernel_cls is MALA else 300, num_samples=n,
                num_chains=4, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(7))
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    if name == "banana":
        b, s = float(TARGETS[name].params["curvature"]), float(TARGETS[name].params["scale"])
        x = np.stack([x[..., 0], x[..., 1] - b * (x[..., 0] ** 2 - s**2)], -1)
    assert_raw_moments_within_mcse(x, *MOMENTS[name])


def test_kernels_refuse_a_doubly_intractable_model_before_sampling():
    import numpyro.distributions as dist
    from numpyro.infer import MCMC

    from numpyro_ebm import MALA, ULA, DoublyIntractableError, EnergyDistribution
    from numpyro_ebm.energy import QuadraticEnergy

    def model(x):
        m = numpyro.sample("m", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        numpyro.sample("x", EnergyDistribution(QuadraticEnergy(), {"mean": m,
                                                                   "precision": jnp.eye(2)},
                                               event_shape=(2,)), obs=x)

    x = jnp.ones((3, 2))
    for kernel in (MALA, ULA):
        mcmc = MCMC(kernel(model), num_warmup=5, num_samples=5, progress_bar=False)
        with pytest.raises(DoublyIntractableError, match="'x'.*'m'"):
            mcmc.run(jax.random.key(0), x)
    # the opt-out, for energies whose Z does not depend on the latents (here: a location
    # shift, so Z is constant and the posterior is right)
    mcmc = MCMC(MALA(model, check_model=False), num_warmup=5, num_samples=5,
                progress_bar=False)
    mcmc.run(jax.random.key(0), x)
    assert mcmc.get_samples()["m"].shape == (5, 2)


def test_read_only_settings():
    k = ULA(potential_fn=lambda z: z @ z, temperature=2.0, max_delta_energy=50.0,
            metropolis_warmup=False)
    assert (k.temperature, k.max_delta_energy, k.target_accept_prob) == (2.0, 50.0, 0.9)
    assert k.metropolis_warmup is False and k.model is None
    with pytest.raises(AttributeError):
        k.temperature = 1.0
    assert MALA(potential_fn=lambda z: z @ z).target_accept_prob == 0.574
