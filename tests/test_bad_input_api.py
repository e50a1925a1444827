"""Property-based bad input (issue 15.11) for kernels, objectives, ``fit``, diagnostics and
flows: every wrong shape, dtype, NaN/inf, empty array or non-positive size raises a named
TypeError/ValueError before anything compiles (never an XLA crash, a hang, or a NaN)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from _bad_input import BAD_POSITIVE, BAD_SIZES, FAST, assert_named_error, bad_arrays
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numpyro_ebm as ebm

F2, P2 = ebm.quadratic_energy(jnp.zeros(2), jnp.eye(2))
KEY = jax.random.key(0)
DATA = np.random.default_rng(0).normal(size=(32, 2))
SCALAR_POSITIVE = BAD_POSITIVE.filter(lambda v: not isinstance(v, list))


def _model():
    numpyro.sample("x", ebm.EnergyDistribution(F2, P2, event_shape=(2,)))


def _fit(**kw):
    args = {"key": KEY, "num_steps": 2, "batch_size": 4, "progress_bar": False} | kw
    data = args.pop("data", DATA)
    return ebm.fit(F2, P2, data, ebm.exact_score_matching(), **args)


#: Shapes that neither are scalar nor (2,): wrong for a per-coordinate setting in 2-D.
WRONG_SHAPES_FOR_2 = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4).filter(
    lambda s: s != (2,))
COND_FN, COND_PARAMS = ebm.conditioned(F2, P2, index=[0], value=jnp.array([0.5]), event_size=2)


def _nrpt_init(**kw):
    """NRPT's init on the 2-D model (checks shapes against d = 2; no sampling compiled)."""
    kernel = ebm.NRPT(_model, num_replicas=2, **kw)
    return kernel.init(KEY, 2, None, (), {})


def _annealed(**kw):
    args = {"sigmas": jnp.array([1.0, 0.5]), "eps": 0.1, "n_steps_each": 2} | kw
    return ebm.annealed_langevin(KEY, lambda x, s: -x, jnp.zeros((4, 2)), args["sigmas"],
                                 args["eps"], args["n_steps_each"])


CASES = {
    "MALA.step_size": ("step_size", lambda v: ebm.MALA(_model, step_size=v), SCALAR_POSITIVE),
    "ULA.temperature": ("temperature", lambda v: ebm.ULA(_model, temperature=v),
                        SCALAR_POSITIVE),
    "MALA.target_accept_prob": ("target_accept_prob",
                                lambda v: ebm.MALA(_model, target_accept_prob=v),
                                st.sampled_from([0.0, 1.0, 1.5, -0.1, float("nan"), "a"])),
    "annealed_langevin.sigmas": ("sigmas", lambda v: _annealed(sigmas=v),
                                 st.one_of(bad_arrays((2,)).filter(lambda v: v is not None),
                                           st.just(np.array([-1.0, 0.5])))),
    "annealed_langevin.eps": ("eps", lambda v: _annealed(eps=v), SCALAR_POSITIVE),
    "annealed_langevin.n_steps_each": ("n_steps_each", lambda v: _annealed(n_steps_each=v),
                                       BAD_SIZES),
    "noise_contrastive_estimation.noise_ratio": (
        "noise_ratio", lambda v: ebm.noise_contrastive_estimation(
            dist.Normal(jnp.zeros(2), 1.0).to_event(1), v), BAD_SIZES),
    "denoising_score_matching.sigma": ("sigma", ebm.denoising_score_matching, SCALAR_POSITIVE),
    "sliced_score_matching.num_projections": ("num_projections", ebm.sliced_score_matching,
                                              BAD_SIZES),
    "contrastive_divergence.num_steps": (
        "num_steps", lambda v: ebm.contrastive_divergence(num_steps=v, step_size=0.1),
        BAD_SIZES),
    "contrastive_divergence.step_size": (
        "step_size", lambda v: ebm.contrastive_divergence(num_steps=2, step_size=v),
        SCALAR_POSITIVE),
    "persistent_contrastive_divergence.buffer_size": (
        "buffer_size", lambda v: ebm.persistent_contrastive_divergence(
            num_steps=2, step_size=0.1, buffer_size=v), BAD_SIZES),
    "geometric_sigmas.num_levels": ("num_levels", lambda v: ebm.geometric_sigmas(1.0, 0.1, v),
                                    BAD_SIZES),
    # (2-D data with another number of columns is a data/energy mismatch: named as data,
    # with its shape and the event shape a row gives)
    "fit.data": ("data", lambda v: _fit(data=v), bad_arrays((32, 2))),
    "fit.data columns": ("data", lambda v: _fit(data=v),
                         st.integers(1, 5).filter(lambda k: k != 2).map(
                             lambda k: np.zeros((32, k)))),
    "fit.num_steps": ("num_steps", lambda v: _fit(num_steps=v),
                      BAD_SIZES.filter(lambda v: v is not None)),
    "fit.batch_size": ("batch_size", lambda v: _fit(batch_size=v), BAD_SIZES),
    "kernel_stein_discrepancy.samples": (
        "samples", lambda v: ebm.kernel_stein_discrepancy(v, lambda x: -x),
        bad_arrays((32, 2)).filter(lambda v: v is None or np.ndim(v) != 2
                                   or np.asarray(v).dtype != float or np.size(v) == 0
                                   or not np.all(np.isfinite(v)))),
    "kernel_stein_discrepancy.num_bootstrap": (
        "num_bootstrap", lambda v: ebm.kernel_stein_discrepancy(DATA, lambda x: -x,
                                                                num_bootstrap=v), BAD_SIZES),
    "coupling_flow.dim": ("dim", lambda v: ebm.coupling_flow(KEY, v),
                          st.one_of(BAD_SIZES, st.just(1))),
    "coupling_flow.scale": ("scale", lambda v: ebm.coupling_flow(KEY, 2, scale=v),
                            SCALAR_POSITIVE.filter(lambda v: v is not None)),
    "coupling_flow.loc": ("loc", lambda v: ebm.coupling_flow(KEY, 2, loc=v),
                          WRONG_SHAPES_FOR_2.map(np.zeros)),
    "coupling_flow.scale shape": ("scale", lambda v: ebm.coupling_flow(KEY, 2, scale=v),
                                  WRONG_SHAPES_FOR_2.map(np.ones)),
    "NRPT.reference_loc": ("reference_loc", lambda v: _nrpt_init(reference_loc=v),
                           WRONG_SHAPES_FOR_2.map(np.zeros)),
    "NRPT.reference_scale": ("reference_scale", lambda v: _nrpt_init(reference_scale=v),
                             WRONG_SHAPES_FOR_2.map(np.ones)),
    "conditioned energy.y": ("y", lambda v: COND_FN(COND_PARAMS, v),
                             hnp.array_shapes(min_dims=0, max_dims=2, min_side=0,
                                              max_side=3).filter(lambda s: s != (1,))
                             .map(np.zeros)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@FAST
@given(data=st.data())
def test_bad_input_is_named_before_compiling(case, data):
    name, call, strategy = CASES[case]
    assert_named_error(call, data.draw(strategy, label=name), name)
