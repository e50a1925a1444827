"""One objective idiom: every factory returns a value, equal for equal settings.

``fit`` compiles its training step once per ``(energy_fn, objective, optimizer)`` (static
``jit`` arguments), so equal settings must give objectives that compare and hash equal;
different settings must not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import numpyro_ebm as ne
from numpyro_ebm.flows import coupling_flow
from numpyro_ebm.objectives import (
    ByValue,
    NCEExtras,
    Objective,
    conditional_noise_contrastive_estimation,
    flow_contrastive_estimation,
    from_spec,
    ratio_estimation,
)

_FLOW = coupling_flow(jax.random.key(0), 2, num_layers=2, hidden=(8,))


def _reinit(key, n):
    return jax.random.normal(key, (n, 2))


# name -> (build with settings A, build with settings B != A); each call builds afresh
FACTORIES = {
    "exact_sm": (lambda: ne.exact_score_matching(), None),
    "sliced_sm": (lambda: ne.sliced_score_matching(2), lambda: ne.sliced_score_matching(3)),
    "denoising_sm": (lambda: ne.denoising_score_matching(0.1),
                     lambda: ne.denoising_score_matching(0.2)),
    "nce": (lambda: ne.noise_contrastive_estimation(
                dist.Normal(jnp.zeros(2), 1.5).to_event(1), 2),
            lambda: ne.noise_contrastive_estimation(
                dist.Normal(jnp.zeros(2), 1.6).to_event(1), 2)),
    "nce_mvn": (lambda: ne.noise_contrastive_estimation(
                    dist.MultivariateNormal(jnp.zeros(2), jnp.eye(2))),
                lambda: ne.noise_contrastive_estimation(
                    dist.MultivariateNormal(jnp.zeros(2), 2 * jnp.eye(2)))),
    "ratio": (lambda: ratio_estimation(2), lambda: ratio_estimation(3)),
    "cnce": (lambda: conditional_noise_contrastive_estimation(0.3, 2),
             lambda: conditional_noise_contrastive_estimation(0.4, 2)),
    "fce": (lambda: flow_contrastive_estimation(_FLOW[0], _FLOW[1], 2),
            lambda: flow_contrastive_estimation(
                _FLOW[0], jax.tree.map(lambda a: a + 1.0, _FLOW[1]), 2)),
    "cd": (lambda: ne.contrastive_divergence(num_steps=2, step_size=0.1),
           lambda: ne.contrastive_divergence(num_steps=2, step_size=0.1, sampler="ula")),
    "pcd": (lambda: ne.persistent_contrastive_divergence(num_steps=2, step_size=0.1,
                                                         buffer_size=64),
            lambda: ne.persistent_contrastive_divergence(num_steps=2, step_size=0.1,
                                                         buffer_size=65)),
    "pcd_reinit_dist": (
        lambda: ne.persistent_contrastive_divergence(
            num_steps=2, step_size=0.1, reinit=dist.Normal(jnp.zeros(2), 1.0).to_event(1)),
        lambda: ne.persistent_contrastive_divergence(
            num_steps=2, step_size=0.1, reinit=dist.Normal(jnp.ones(2), 1.0).to_event(1))),
    "pcd_reinit_fn": (
        lambda: ne.persistent_contrastive_divergence(num_steps=2, step_size=0.1,
                                                     reinit=_reinit),
        lambda: ne.persistent_contrastive_divergence(num_steps=2, step_size=0.1,
                                                     reinit=lambda k, n: _reinit(k, n))),
}
if hasattr(ne, "energy_discrepancy"):
    FACTORIES["energy_discrepancy"] = (lambda: ne.energy_discrepancy(0.5, 4),
                                       lambda: ne.energy_discrepancy(0.5, 8))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_equal_settings_give_equal_hashes(name):
    build, build_other = FACTORIES[name]
    a, b = build(), build()
    assert isinstance(a, Objective)
    assert a is not b
    assert a == b and hash(a) == hash(b)
    for part in ("init", "loss", "is_healthy"):
        assert getattr(a, part) == getattr(b, part)
        assert hash(getattr(a, part)) == hash(getattr(b, part))
    if build_other is not None:
        c = build_other()
        assert a != c
        assert a.loss != c.loss


def test_equal_objectives_share_one_jit_cache_entry():
    """A jitted function with the objective as a static argument traces once for both."""
    traces = []
    energy_fn, params = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))

    def loss_value(objective, params, x, key):
        traces.append(objective.name)
        return objective.loss(energy_fn, params, NCEExtras(jnp.zeros(())), (), x, key)[0]

    f = jax.jit(loss_value, static_argnums=0)
    x, key = jnp.ones((4, 2)), jax.random.key(0)

    def nce(scale):
        return ne.noise_contrastive_estimation(dist.Normal(jnp.zeros(2), scale).to_event(1))

    f(nce(1.5), params, x, key)
    f(nce(1.5), params, x, key)
    assert len(traces) == 1
    f(nce(2.5), params, x, key)
    assert len(traces) == 2


def test_by_value_compares_structure_dtype_shape_and_entries():
    a = ByValue({"w": np.arange(3.0)})
    assert a == ByValue({"w": np.arange(3.0)}) and hash(a) == hash(ByValue({"w": np.arange(3.0)}))
    assert a != ByValue({"w": np.arange(3.0, dtype=np.float32)})  # dtype
    assert a != ByValue({"w": np.arange(3.0).reshape(3, 1)})  # shape
    assert a != ByValue({"w": np.arange(3.0) + 1e-12})  # entries
    assert a != ByValue({"v": np.arange(3.0)})  # structure
    assert ByValue(dist.Normal(0.0, 1.0)) != ByValue(dist.Laplace(0.0, 1.0))  # class


def test_by_value_of_traced_arrays_falls_back_to_identity():
    seen = []

    @jax.jit
    def f(x):
        w = ByValue({"x": x})
        seen.append((w == w, w == ByValue({"x": x})))
        return x

    f(jnp.ones(2))
    assert seen == [(True, False)]


def test_from_spec_names_what_is_wrong():
    with pytest.raises(TypeError, match="spec must be hashable"):
        from_spec({"not": "hashable"}, "x")
    with pytest.raises(TypeError, match="spec must have a method 'init', got tuple"):
        from_spec(("a", "tuple"), "x")
