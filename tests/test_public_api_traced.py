"""Issue 15.1, the kind: every public constructor and factory works with traced arguments.

The test walks ``numpyro_ebm.__all__`` and every public subpackage's ``__all__``. Each public
callable has an entry in one registry:

- ``TRACED``: example arguments (the ones that carry values, traced) and a call that builds
  the object inside ``jax.jit`` and uses it; a constructor that branches on a traced value
  in Python raises ``TracerBoolConversionError`` here;
- ``NOT_TRACED``: why the callable is not a constructor that can run under ``jit`` (a host
  side driver returning Python floats / NumPy / xarray, a plain container type, a protocol,
  an exception type, or an argument that is a size or a structure, static by nature).

A new public callable without an entry fails ``test_registry_covers_the_public_api``.
Sizes (ints that fix shapes) are static by nature and stay Python ints in the examples.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.distributions import constraints

import numpyro_ebm as ebm
from numpyro_ebm import datasets, infer, nn

F2, P2 = ebm.quadratic_energy(jnp.zeros(2), jnp.eye(2))
X2 = jnp.array([0.3, -0.2])


def _model():
    numpyro.sample("x", ebm.EnergyDistribution(F2, P2, event_shape=(2,)))


def _energy_at(fp, x=X2):
    fn, params = fp
    return fn(params, x)


# name -> (example values to trace, call(*traced) -> anything whose array leaves come back)
TRACED = {
    "numpyro_ebm.EnergyDistribution": (
        (jnp.array([0.5, 0.0]), 1.5),
        lambda m, lz: ebm.EnergyDistribution(F2, {**P2, "mean": m}, event_shape=(2,),
                                             log_normalizer=lz).log_prob(X2)),
    "numpyro_ebm.energy_factor": (
        (jnp.array([0.5, 0.0]),),
        lambda m: numpyro.handlers.trace(lambda: ebm.energy_factor(
            "f", F2, {**P2, "mean": m}, X2[None])).get_trace()["f"]["fn"].log_factor),
    "numpyro_ebm.quadratic_energy": (
        (jnp.array([0.5, 0.0]), jnp.eye(2)),
        lambda m, c: _energy_at(ebm.quadratic_energy(m, covariance=c))),
    "numpyro_ebm.gamma_energy": ((3.0, 2.0), lambda a, b: _energy_at(ebm.gamma_energy(a, b),
                                                                     1.3)),
    "numpyro_ebm.energy.QuadraticEnergy": ((X2,), lambda x: ebm.energy.QuadraticEnergy()(P2, x)),
    "numpyro_ebm.energy.GammaEnergy": ((2.0,), lambda b: ebm.energy.GammaEnergy()(
        {"a": 3.0, "b": b}, 1.3)),
    "numpyro_ebm.check_energy": ((jnp.array([0.5, 0.0]),), lambda m: ebm.check_energy(
        F2, {**P2, "mean": m}, (2,)).shape == ()),
    "numpyro_ebm.energy.check_params_finite": ((jnp.ones(2),),
                                              lambda m: ebm.energy.check_params_finite(m)),
    "numpyro_ebm.energy.batched_energy": ((jnp.ones((3, 2)),), lambda x: ebm.energy.batched_energy(
        F2, P2, x, 1)),
    "numpyro_ebm.energy.batched_score": ((jnp.ones((3, 2)),), lambda x: ebm.energy.batched_score(
        F2, P2, x, 1)),
    "numpyro_ebm.mlp_energy": ((jax.random.key(0),), lambda k: _energy_at(ebm.mlp_energy(
        k, 2, (4,)))),
    "numpyro_ebm.nn.mlp_init": ((jax.random.key(0),), lambda k: nn.mlp_init(k, [2, 3, 1])),
    "numpyro_ebm.nn.MLPEnergy": ((X2,), lambda x: nn.MLPEnergy()(
        nn.mlp_init(jax.random.key(0), [2, 3, 1]), x)),
    "numpyro_ebm.datasets.gaussian": (
        (jnp.array([0.5, 0.0]), 2.0),
        lambda m, s: datasets.gaussian(m, s * jnp.eye(2)).log_prob(X2)),
    "numpyro_ebm.datasets.gaussian_mixture": (
        (jnp.zeros((2, 2)), 0.5, jnp.array([0.3, 0.7])),
        lambda m, s, w: datasets.gaussian_mixture(m, s, w).log_prob(X2)),
    "numpyro_ebm.datasets.eight_gaussians": (
        (2.0, 0.3), lambda r, s: datasets.eight_gaussians(r, s).log_prob(X2)),
    "numpyro_ebm.datasets.two_moons": ((0.1,), lambda s: datasets.two_moons(s).log_prob(X2)),
    "numpyro_ebm.datasets.rings": (
        (jnp.array([1.0, 2.0]), 0.1), lambda r, s: datasets.rings(r, s).log_prob(X2)),
    "numpyro_ebm.datasets.banana": ((2.0, 0.25), lambda s, c: datasets.banana(s, c).log_prob(X2)),
    "numpyro_ebm.datasets.funnel": ((3.0,), lambda s: datasets.funnel(2, s).log_prob(X2)),
    "numpyro_ebm.datasets.get": ((0.1,), lambda s: datasets.get("rings", noise=s).log_prob(X2)),
    "numpyro_ebm.datasets.ToyDensity": (
        (2.0,), lambda s: datasets.ToyDensity("b", (2,), {"scale": s, "curvature": 0.1},
                                              datasets.banana().log_prob_one,
                                              datasets.banana().sample_fn).log_prob(X2)),
    "numpyro_ebm.MALA": ((0.1, 1.0), lambda h, t: ebm.MALA(_model, step_size=h,
                                                          temperature=t).temperature),
    "numpyro_ebm.ULA": ((0.1, 1.0), lambda h, t: ebm.ULA(_model, step_size=h,
                                                        temperature=t).temperature),
    "numpyro_ebm.tempered": ((2.0,), lambda t: _energy_at(ebm.tempered(F2, P2, t))),
    "numpyro_ebm.restricted": ((jnp.array([0.5, 0.0]),), lambda m: _energy_at(
        ebm.restricted(F2, {**P2, "mean": m}, constraints.real))),
    "numpyro_ebm.product_of_experts": ((jnp.array([0.5, 0.0]),), lambda m: _energy_at(
        ebm.product_of_experts((F2, {**P2, "mean": m}), (F2, P2)))),
    "numpyro_ebm.conditioned": ((jnp.array([0.5]),), lambda v: _energy_at(
        ebm.conditioned(F2, P2, index=[0], value=v, event_size=2), jnp.array([0.1]))),
    "numpyro_ebm.coupling_flow": ((jax.random.key(0), jnp.zeros(2), jnp.ones(2)),
                                  lambda k, m, s: ebm.coupling_flow(k, 2, 2, (4,), loc=m,
                                                                    scale=s)[1]),
    "numpyro_ebm.FlowDistribution": ((jax.random.key(0),), lambda k: ebm.FlowDistribution(
        *ebm.coupling_flow(k, 2, 2, (4,))).log_prob(X2)),
    "numpyro_ebm.flows.CouplingFlow": ((jax.random.key(0),), lambda k: ebm.flows.CouplingFlow(
        2, 2).log_prob(ebm.coupling_flow(k, 2, 2, (4,))[1], X2)),
    "numpyro_ebm.noise_contrastive_estimation": (
        (jnp.zeros(2),), lambda m: ebm.noise_contrastive_estimation(
            dist.Normal(m, 1.0).to_event(1), 2).name),
    "numpyro_ebm.infer.make_metric": ((jnp.ones(2),), lambda m: infer.make_metric(m, 2)),
    "numpyro_ebm.infer.Metric": ((jnp.ones(2),), lambda m: infer.make_metric(m, 2)),
    "numpyro_ebm.annealed_langevin": (
        (jax.random.key(0), jnp.zeros((4, 2)), 0.1),
        lambda k, x0, eps: ebm.annealed_langevin(k, lambda x, s: -x, x0, jnp.array([1.0, 0.5]),
                                                  eps, 2)),
}

HOST = "host-side driver or estimator: returns Python floats, NumPy, xarray or plots"
CONTAINER = "a plain container type (NamedTuple / dataclass of fields), no validation"
PROTOCOL = "a typing Protocol, enum or exception type, not called to build values"
STATIC = ("its arguments are settings hashed into the compiled program (sizes, step counts, "
          "names) or a structure, static by nature")

NOT_TRACED = {
    **dict.fromkeys([
        "numpyro_ebm.fit", "numpyro_ebm.ais_log_normalizer", "numpyro_ebm.grid_log_normalizer",
        "numpyro_ebm.held_out_log_likelihood", "numpyro_ebm.diagnose", "numpyro_ebm.to_datatree",
        "numpyro_ebm.detailed_balance", "numpyro_ebm.kernel_stein_discrepancy",
        "numpyro_ebm.check_model", "numpyro_ebm.gather", "numpyro_ebm.make_mesh",
        "numpyro_ebm.shard_leading", "numpyro_ebm.sharded_chains", "numpyro_ebm.ShardedChains",
        "numpyro_ebm.sharding.axis_size", "numpyro_ebm.sharding.place",
        "numpyro_ebm.sharding.replicate", "numpyro_ebm.normalized_distribution",
        "numpyro_ebm.objectives.flow_distribution", "numpyro_ebm.init_train_state",
        "numpyro_ebm.training.load_checkpoint", "numpyro_ebm.training.load_train_state",
        "numpyro_ebm.training.restore_tree", "numpyro_ebm.training.save_checkpoint",
        "numpyro_ebm.training.save_train_state", "numpyro_ebm.geometric_sigmas",
        "numpyro_ebm.from_equinox", "numpyro_ebm.from_flax_nnx",
        *(f"numpyro_ebm.diagnostics.{n}" for n in [
            "add_group", "c2st", "potential_and_grad", "unconstrained_draws",
            "fisher_divergence", "flat_potential", "fluctuation_identity",
            "frechet_distance", "from_datatree", "from_langevin", "log_proposal_density",
            "make_transitions", "median_bandwidth", "mmd", "plot_detailed_balance",
            "plot_energy_2d", "probe_transitions", "ratio_consistency", "recompute",
            "reversibility"]),
        *(f"numpyro_ebm.sbi.{n}" for n in [
            "check_observation", "check_simulations", "expected_coverage", "fit_ratio",
            "get_task", "posterior_model", "sample_posterior", "sir_initial_points",
            "standardize"]),
        *(f"numpyro_ebm.testing.{n}" for n in [
            "besag_clifford_ranks", "one_step_invariance", "rank_uniformity", "sbc_ranks"]),
    ], HOST),
    **dict.fromkeys([
        "numpyro_ebm.FitResult", "numpyro_ebm.TrainState", "numpyro_ebm.Objective",
        "numpyro_ebm.training.TrainStep", "numpyro_ebm.objectives.ByValue",
        "numpyro_ebm.objectives.FCEExtras", "numpyro_ebm.objectives.FCEState",
        "numpyro_ebm.objectives.LangevinSettings", "numpyro_ebm.objectives.NCEExtras",
        "numpyro_ebm.objectives.PCDState", "numpyro_ebm.objectives.ReplayBuffer",
        "numpyro_ebm.partition.AISResult", "numpyro_ebm.partition.HeldOutLogLikelihood",
        "numpyro_ebm.infer.GaussianReference", "numpyro_ebm.infer.LangevinInfo",
        "numpyro_ebm.infer.LangevinProposal", "numpyro_ebm.infer.LangevinState",
        "numpyro_ebm.infer.MALAState", "numpyro_ebm.infer.NRPTState",
        "numpyro_ebm.testing.InvarianceResult", "numpyro_ebm.testing.RankTestResult",
        "numpyro_ebm.sbi.CalibrationResult", "numpyro_ebm.sbi.LearnedRatio",
        "numpyro_ebm.sbi.Simulations", "numpyro_ebm.sbi.StandardizedEnergy",
        "numpyro_ebm.sbi.EnsembleEnergy",
        "numpyro_ebm.sbi.Task",
        *(f"numpyro_ebm.diagnostics.{n}" for n in [
            "C2STResult", "DetailedBalanceReport", "FisherResult", "FrechetResult", "KSDResult",
            "MMDResult", "Recomputed", "Transitions", "Verdict"]),
    ], CONTAINER),
    **dict.fromkeys([
        "numpyro_ebm.DoublyIntractableError", "numpyro_ebm.NumpyroEBMWarning",
        "numpyro_ebm.diagnostics.Check", "numpyro_ebm.sbi.ReferenceConvergenceError",
        "numpyro_ebm.energy.EnergyFn", "numpyro_ebm.objectives.HealthCheck",
        "numpyro_ebm.objectives.ObjectiveInit", "numpyro_ebm.objectives.ObjectiveLoss",
    ], PROTOCOL),
    **dict.fromkeys([
        "numpyro_ebm.exact_score_matching", "numpyro_ebm.sliced_score_matching",
        "numpyro_ebm.denoising_score_matching", "numpyro_ebm.ratio_estimation",
        "numpyro_ebm.conditional_noise_contrastive_estimation",
        "numpyro_ebm.flow_contrastive_estimation", "numpyro_ebm.contrastive_divergence",
        "numpyro_ebm.persistent_contrastive_divergence", "numpyro_ebm.cold_langevin",
        "numpyro_ebm.energy_discrepancy", "numpyro_ebm.contrastive_ratio_estimation",
        "numpyro_ebm.objectives.from_spec", "numpyro_ebm.make_train_step", "numpyro_ebm.NRPT",
    ], STATIC + " (objectives are hashable values: equal settings share one compiled step)"),
    **dict.fromkeys([
        "numpyro_ebm.ratio_factor", "numpyro_ebm.objectives.all_metrics_finite",
        "numpyro_ebm.objectives.logistic_nce_loss", "numpyro_ebm.objectives.noise_log_prob",
        "numpyro_ebm.objectives.reverse_gradient", "numpyro_ebm.infer.accept",
        "numpyro_ebm.infer.mala_step", "numpyro_ebm.infer.ula_step",
        "numpyro_ebm.infer.propose", "numpyro_ebm.infer.metropolis_hastings",
        "numpyro_ebm.infer.round_trip_bound",
    ], "a pure function of arrays, traced by its own tests (not a constructor)"),
}


def _public_callables() -> dict[str, object]:
    """Qualified name -> object for every callable in the public ``__all__`` lists."""
    modules = [ebm] + [getattr(ebm, n) for n in ebm.__all__
                       if isinstance(getattr(ebm, n), types.ModuleType)]
    found: dict[int, tuple[str, object]] = {}
    for mod in modules:
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if callable(obj) and not isinstance(obj, types.ModuleType):
                found.setdefault(id(obj), (f"{mod.__name__}.{name}", obj))
    return dict(found.values())


def test_registry_covers_the_public_api():
    public = _public_callables()
    missing = sorted(set(public) - set(TRACED) - set(NOT_TRACED))
    assert not missing, ("public callables without an entry in TRACED or NOT_TRACED "
                         f"(tests/test_public_api_traced.py): {missing}")
    stale = sorted((set(TRACED) | set(NOT_TRACED)) - set(public))
    assert not stale, f"registry entries for names that are no longer public: {stale}"
    assert not set(TRACED) & set(NOT_TRACED)


@pytest.mark.parametrize("name", sorted(TRACED))
def test_public_constructor_works_with_traced_arguments(name):
    values, call = TRACED[name]

    def run(*traced):
        out = call(*traced)
        return [jnp.asarray(leaf) for leaf in jax.tree.leaves(out)
                if isinstance(leaf, jax.Array | np.ndarray | float | int)
                and not isinstance(leaf, bool) and not jnp.issubdtype(
                    jnp.asarray(leaf).dtype, jax.dtypes.prng_key)]

    jitted = jax.jit(run)(*values)
    eager = run(*values)
    assert len(jitted) == len(eager)
    for a, b in zip(jitted, eager):
        if jnp.issubdtype(a.dtype, jnp.floating):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# Issue 15 (new-user check): the returned objects themselves are valid JAX types.
_RETURNED = {
    "datasets.banana": ((), lambda: datasets.banana()),
    "datasets.gaussian": ((jnp.zeros(2),), lambda m: datasets.gaussian(m, jnp.eye(2))),
    "gamma_energy": ((2.0,), lambda b: ebm.gamma_energy(3.0, b)),
    "quadratic_energy": ((jnp.zeros(2),), lambda m: ebm.quadratic_energy(m, jnp.eye(2))),
    "product_of_experts": ((jnp.zeros(2),), lambda m: ebm.product_of_experts(
        ebm.quadratic_energy(m, jnp.eye(2)), (F2, P2))),
    "tempered": ((2.0,), lambda t: ebm.tempered(F2, P2, t)),
    "restricted": ((jnp.zeros(2),), lambda m: ebm.restricted(
        F2, {**P2, "mean": m}, constraints.positive)),
    "conditioned": ((jnp.array([0.5]),), lambda v: ebm.conditioned(F2, P2, index=[0], value=v,
                                                      event_size=2)),
    "mlp_energy": ((jax.random.key(0),), lambda k: ebm.mlp_energy(k, 2, (4,))),
    "coupling_flow": ((jax.random.key(0),), lambda k: ebm.coupling_flow(k, 2, num_layers=2)),
}


@pytest.mark.parametrize("name", sorted(_RETURNED))
def test_returned_objects_are_valid_jax_types(name):
    values, build = _RETURNED[name]
    jitted = jax.jit(build)(*values)
    eager = build(*values)
    types_of = (lambda t: [type(o) for o in t]) if isinstance(eager, tuple) else type
    assert types_of(jitted) == types_of(eager)  # Restricted hashes by identity: not treedefs
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_toy_density_returned_from_jit_behaves_like_the_eager_one():
    jitted, eager = jax.jit(lambda: datasets.banana())(), datasets.banana()
    assert (jitted.name, jitted.event_shape) == (eager.name, eager.event_shape)
    x = jnp.array([[0.3, -0.2], [1.0, 0.5]])
    np.testing.assert_allclose(jitted.log_prob(x), eager.log_prob(x), rtol=1e-6)
    fn, params = jax.jit(lambda b: ebm.gamma_energy(3.0, b))(2.0)
    assert isinstance(fn, ebm.energy.GammaEnergy)
    np.testing.assert_allclose(fn(params, 1.3), ebm.gamma_energy(3.0, 2.0)[0](
        ebm.gamma_energy(3.0, 2.0)[1], 1.3), rtol=1e-6)
