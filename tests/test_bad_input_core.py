"""Property-based bad input (issue 15.11) for energies, distributions, toy densities and the
partition tools: every wrong shape, dtype, NaN/inf, empty array or non-positive size raises a
named TypeError/ValueError before anything compiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _bad_input import BAD_POSITIVE, BAD_SIZES, FAST, assert_named_error, bad_arrays
from hypothesis import given
from hypothesis import strategies as st

import numpyro_ebm as ebm
from numpyro_ebm import datasets

F2, P2 = ebm.quadratic_energy(jnp.zeros(2), jnp.eye(2))
KEY = jax.random.key(0)

# (argument name, call taking the bad value, strategy of bad values)
CASES = {
    "quadratic_energy.mean": ("mean", lambda v: ebm.quadratic_energy(v, jnp.eye(2)),
                              bad_arrays((2,)).filter(lambda v: np.shape(v) != ())),
    "quadratic_energy.precision": ("precision", lambda v: ebm.quadratic_energy(jnp.zeros(2), v),
                                   st.one_of(bad_arrays((2, 2)),
                                             st.just(-np.eye(2)), st.just(np.ones((2, 2))))),
    "gamma_energy.concentration": ("concentration", lambda v: ebm.gamma_energy(v, 1.0),
                                   BAD_POSITIVE),
    "gamma_energy.rate": ("rate", lambda v: ebm.gamma_energy(3.0, v), BAD_POSITIVE),
    "mlp_energy.in_dim": ("in_dim", lambda v: ebm.mlp_energy(KEY, v, (4,)),
                          BAD_SIZES.filter(lambda v: v is not False)),
    "mlp_energy.hidden": ("hidden", lambda v: ebm.mlp_energy(KEY, 2, (v,)),
                          BAD_SIZES.filter(lambda v: not isinstance(v, list))),
    "check_energy.event_shape": ("event_shape", lambda v: ebm.check_energy(F2, P2, v),
                                 st.sampled_from([(-1,), (1.5,), "ab", None, (3,), (2, 2)])),
    "EnergyDistribution.event_shape": (
        "event_shape", lambda v: ebm.EnergyDistribution(F2, P2, event_shape=v),
        st.sampled_from([(-1,), (1.5,), "ab", None, (3,), (2, 2)])),
    "EnergyDistribution.params": (
        "params", lambda v: ebm.EnergyDistribution(F2, {**P2, "mean": v}, event_shape=(2,)),
        bad_arrays((2,)).filter(lambda v: v is not None and np.asarray(v).dtype == float
                                and np.shape(v) == (2,))),
    "EnergyDistribution.log_normalizer": (
        "log_normalizer", lambda v: ebm.EnergyDistribution(F2, P2, event_shape=(2,),
                                                           log_normalizer=v),
        bad_arrays(()).filter(lambda v: v is not None)),
    "EnergyDistribution.log_prob": (
        "value", lambda v: ebm.EnergyDistribution(F2, P2, event_shape=(2,)).log_prob(v),
        bad_arrays((2,)).filter(lambda v: v is not None and np.shape(v)[-1:] != (2,))),
    "energy_factor.event_ndim": (
        "event_ndim", lambda v: ebm.energy_factor("f", F2, P2, jnp.zeros((3, 2)), event_ndim=v),
        st.sampled_from([-1, 1.5, "1", None, 5])),
    "datasets.gaussian.cov": ("cov", lambda v: datasets.gaussian(np.zeros(2), v),
                              st.one_of(bad_arrays((2, 2)), st.just(-np.eye(2)))),
    "datasets.gaussian_mixture.scales": (
        "scales", lambda v: datasets.gaussian_mixture(np.zeros((2, 2)), v),
        BAD_POSITIVE.filter(lambda v: not isinstance(v, list))),
    "datasets.gaussian_mixture.weights": (
        "weights", lambda v: datasets.gaussian_mixture(np.zeros((2, 2)), 1.0, v),
        st.one_of(bad_arrays((2,)).filter(lambda v: v is not None),
                  st.just(np.array([-1.0, 2.0])), st.just(np.zeros(2)))),
    "datasets.two_moons.noise": ("noise", datasets.two_moons,
                                 st.one_of(BAD_POSITIVE, st.just(0.01))),
    "datasets.rings.radii": ("radii", lambda v: datasets.rings(radii=v),
                             st.one_of(bad_arrays((3,)).filter(lambda v: v is not None
                                                               and np.ndim(v) <= 1),
                                       st.just([1.0, -1.0]))),
    "datasets.banana.scale": ("scale", lambda v: datasets.banana(scale=v), BAD_POSITIVE),
    "datasets.funnel.dim": ("dim", lambda v: datasets.funnel(dim=v),
                            st.one_of(BAD_SIZES, st.just(1))),
    "ToyDensity.sample.n": ("n", lambda v: datasets.banana().sample(KEY, v), BAD_SIZES),
    "ToyDensity.log_prob.x": ("x", lambda v: datasets.banana().log_prob(v),
                              bad_arrays((2,)).filter(lambda v: v is not None
                                                      and np.shape(v)[-1:] != (2,))),
    "grid_log_normalizer.num_points": (
        "num_points", lambda v: ebm.grid_log_normalizer(F2, P2, [-1, -1], [1, 1], v),
        st.one_of(BAD_SIZES, st.just(1))),
    "grid_log_normalizer.lo": (
        "lo", lambda v: ebm.grid_log_normalizer(F2, P2, v, [1.0, 1.0]),
        st.one_of(bad_arrays((2,)), st.just([2.0, 2.0]), st.just([0.0, 0.0, 0.0]))),
    "ais_log_normalizer.num_particles": (
        "num_particles",
        lambda v: ebm.ais_log_normalizer(F2, P2, KEY, 2, num_particles=v), BAD_SIZES),
    "ais_log_normalizer.num_temperatures": (
        "num_temperatures",
        lambda v: ebm.ais_log_normalizer(F2, P2, KEY, 2, num_temperatures=v),
        st.one_of(BAD_SIZES, st.just(1))),
    "ais_log_normalizer.event_shape": (
        "event_shape", lambda v: ebm.ais_log_normalizer(F2, P2, KEY, v),
        st.sampled_from([-1, 1.5, "a", None, (3,), (2, 2)])),
    "ais_log_normalizer.base_scale": (
        "base_scale", lambda v: ebm.ais_log_normalizer(F2, P2, KEY, 2, base_scale=v),
        BAD_POSITIVE.filter(lambda v: not isinstance(v, list))),
    "ais_log_normalizer.target_draws": (
        "target_draws",
        lambda v: ebm.ais_log_normalizer(F2, P2, KEY, 2, num_temperatures=3, target_draws=v),
        bad_arrays((4, 2)).filter(lambda v: v is not None)),
    "held_out_log_likelihood.data": (
        "data", lambda v: ebm.held_out_log_likelihood(F2, P2, v, 0.0),
        bad_arrays((4, 2)).filter(lambda v: v is not None)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@FAST
@given(data=st.data())
def test_bad_input_is_named_before_compiling(case, data):
    name, call, strategy = CASES[case]
    assert_named_error(call, data.draw(strategy, label=name), name)
