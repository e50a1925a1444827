"""Affine-coupling flows, FlowDistribution and flow contrastive estimation (FCE)."""

import math

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from jax.scipy.special import logsumexp
from numpyro.infer.util import log_density

from numpyro_ebm import datasets, fit
from numpyro_ebm.energy import batched_energy
from numpyro_ebm.flows import FlowDistribution, coupling_flow
from numpyro_ebm.nn import mlp_energy
from numpyro_ebm.objectives import (
    FCEExtras,
    FCEState,
    flow_contrastive_estimation,
    flow_distribution,
    logistic_nce_loss,
    noise_contrastive_estimation,
)
from numpyro_ebm.partition import grid_log_normalizer


def _random_flow(dim=2, seed=0, num_layers=4):
    """A flow with perturbed (non-identity) conditioners."""
    flow_fn, params = coupling_flow(jax.random.key(seed), dim, num_layers, (16,))

    @jax.jit
    def perturb(params, key):
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(key, len(leaves))
        leaves = [v + 0.3 * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)]
        return jax.tree.unflatten(tree, leaves)

    return flow_fn, perturb(params, jax.random.key(seed + 1))


def _grid(lo, hi, n):
    g = jnp.linspace(lo, hi, n)
    return jnp.stack([a.ravel() for a in jnp.meshgrid(g, g)], -1), (g[1] - g[0]) ** 2


# ----------------------------------------------------------------------------- the flow
def test_flow_inverts_and_log_det_is_exact():
    flow_fn, params = _random_flow(3)
    z = jax.random.normal(jax.random.key(5), (3,))
    x, log_det = jax.jit(flow_fn.forward)(params, z)
    z_back, log_det_inv = jax.jit(flow_fn.inverse)(params, x)
    assert jnp.allclose(z_back, z, atol=1e-12)
    jac = jax.jit(jax.jacfwd(lambda p, u: flow_fn.forward(p, u)[0], 1))(params, z)
    assert jnp.allclose(log_det, jnp.linalg.slogdet(jac)[1], atol=1e-12)
    assert jnp.allclose(log_det_inv, log_det, atol=1e-12)
    assert not jnp.allclose(x, z)  # the perturbed flow is not the identity


def test_new_flow_is_the_initial_gaussian():
    loc, scale = jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])
    flow_fn, params = coupling_flow(jax.random.key(0), 2, loc=loc, scale=scale)
    x = jax.random.normal(jax.random.key(1), (10, 2))
    expected = dist.Normal(loc, scale).to_event(1).log_prob(x)
    assert jnp.allclose(FlowDistribution(flow_fn, params).log_prob(x), expected)


def test_flow_without_couplings_is_a_trainable_gaussian():
    flow_fn, params = coupling_flow(jax.random.key(0), 2, num_layers=0)
    assert params["couplings"] == []
    params = {**params, "loc": jnp.array([1.0, -2.0]), "log_scale": jnp.log(jnp.array([0.5, 3.0]))}
    x = jax.random.normal(jax.random.key(1), (10, 2))
    expected = dist.Normal(jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0])).to_event(1).log_prob(x)
    assert jnp.allclose(FlowDistribution(flow_fn, params).log_prob(x), expected, atol=1e-5)
    g = jax.grad(lambda p: FlowDistribution(flow_fn, p).log_prob(x).sum())(params)
    assert jnp.all(g["loc"] != 0) and jnp.all(g["log_scale"] != 0)


def test_flow_density_normalizes_and_matches_its_samples():
    flow_fn, params = _random_flow(2)
    d = FlowDistribution(flow_fn, params)
    pts, cell = _grid(-10.0, 10.0, 301)
    log_p = d.log_prob(pts)
    assert float(jnp.exp(logsumexp(log_p)) * cell) == pytest.approx(1.0, abs=2e-3)
    mean_grid = jnp.sum(jnp.exp(log_p)[:, None] * pts, 0) * cell
    draws = d.sample(jax.random.key(2), (20000,))
    se = draws.std(0) / math.sqrt(draws.shape[0])
    assert jnp.all(jnp.abs(draws.mean(0) - mean_grid) < 4 * se)
    x, log_q = flow_fn.sample_and_log_prob(params, jax.random.key(3), 50)
    assert jnp.allclose(log_q, d.log_prob(x), atol=1e-10)


def test_flow_distribution_in_a_numpyro_model():
    flow_fn, params = _random_flow(2)
    d = FlowDistribution(flow_fn, params)
    assert d.sample(jax.random.key(0), (4, 3)).shape == (4, 3, 2)
    assert d.has_rsample and d.event_shape == (2,)
    obs = jnp.array([[0.1, 0.2], [-1.0, 0.5]])

    def model():
        numpyro.sample("x", d.expand([2]).to_event(1), obs=obs)
        numpyro.sample("z", d)

    lp, trace = log_density(model, (), {}, {"z": jnp.zeros(2)})
    assert jnp.allclose(lp, jnp.sum(d.log_prob(obs)) + d.log_prob(jnp.zeros(2)))
    flat, tree = jax.tree.flatten(d)  # a pytree: params are data, flow_fn is static
    assert jax.tree.unflatten(tree, flat).flow_fn == flow_fn


def test_flow_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim >= 2.*got 1"):
        coupling_flow(jax.random.key(0), 1)
    with pytest.raises(ValueError, match="scale must be (finite and )?> 0"):
        coupling_flow(jax.random.key(0), 2, scale=0.0)
    flow_fn, params = coupling_flow(jax.random.key(0), 2, num_layers=2)
    other_fn, _ = coupling_flow(jax.random.key(0), 3, num_layers=2)
    with pytest.raises(ValueError, match=r"dim 3.*loc has shape \(2,\)"):
        FlowDistribution(other_fn, params)
    with pytest.raises(TypeError, match="CouplingFlow"):
        FlowDistribution(lambda p, x: x, params)
    with pytest.raises(ValueError, match="does not end in event_shape"):
        FlowDistribution(flow_fn, params).log_prob(jnp.zeros(3))


# ----------------------------------------------------------------------------- FCE
def _setup():
    energy_fn, params = mlp_energy(jax.random.key(0), 2, (8,))
    flow_fn, flow_params = _random_flow(2, num_layers=2)
    batch = jax.random.normal(jax.random.key(1), (16, 2))
    return energy_fn, params, flow_fn, flow_params, batch


def test_fce_flow_ascends_what_the_energy_descends():
    energy_fn, params, flow_fn, flow_params, batch = _setup()
    obj = flow_contrastive_estimation(flow_fn, flow_params, 2)
    extras, state = obj.init(jax.random.key(2), energy_fn, params, batch)
    key = jax.random.key(3)

    def plain(p, ex):  # the same NCE loss with no gradient reversal
        y, log_q_y = flow_fn.sample_and_log_prob(ex.flow, key, 32)
        log_q_x = jax.vmap(lambda x: flow_fn.log_prob(ex.flow, x))(batch)
        gd = -batched_energy(energy_fn, p, batch, 1) - ex.log_normalizer - log_q_x
        gn = -batched_energy(energy_fn, p, y, 1) - ex.log_normalizer - log_q_y
        return logistic_nce_loss(gd, gn, 2)[0]

    fce = lambda p, ex: obj.loss(energy_fn, p, ex, state, batch, key)[0]
    v_fce, g_fce = jax.jit(jax.value_and_grad(fce, (0, 1)))(params, extras)
    v_ref, g_ref = jax.jit(jax.value_and_grad(plain, (0, 1)))(params, extras)
    assert jnp.allclose(v_fce, v_ref)
    same = jax.tree.map(jnp.allclose, (g_fce[0], g_fce[1].log_normalizer),
                        (g_ref[0], g_ref[1].log_normalizer))
    assert all(jax.tree.leaves(same))
    flipped = jax.tree.map(lambda a, b: jnp.allclose(a, -b), g_fce[1].flow, g_ref[1].flow)
    assert all(jax.tree.leaves(flipped))
    assert any(float(jnp.abs(v).max()) > 0 for v in jax.tree.leaves(g_ref[1].flow))


def test_fce_schedule_masks_gradients_and_counts_steps():
    energy_fn, params, flow_fn, flow_params, batch = _setup()
    obj = flow_contrastive_estimation(flow_fn, flow_params, flow_every=2, energy_every=3)
    extras, state = obj.init(jax.random.key(2), energy_fn, params, batch)
    assert isinstance(extras, FCEExtras) and int(state.step) == 0

    f = lambda p, ex, st: obj.loss(energy_fn, p, ex, st, batch, jax.random.key(4))
    value_and_grad = jax.jit(jax.value_and_grad(f, (0, 1), has_aux=True))

    def grads(step):
        (_, (new_state, _)), g = value_and_grad(params, extras, FCEState(jnp.int32(step)))
        assert int(new_state.step) == step + 1
        norm = lambda t: sum(float(jnp.abs(v).sum()) for v in jax.tree.leaves(t))
        return norm((g[0], g[1].log_normalizer)), norm(g[1].flow)

    energy0, flow0 = grads(0)
    assert energy0 > 0 and flow0 > 0
    energy1, flow1 = grads(1)  # neither player: 1 % 3 != 0 and 1 % 2 != 0
    assert energy1 == 0 and flow1 == 0
    energy2, flow2 = grads(2)  # flow only
    assert energy2 == 0 and flow2 > 0
    energy3, flow3 = grads(3)  # energy only
    assert energy3 > 0 and flow3 == 0


def test_fce_rejects_bad_arguments():
    energy_fn, params, flow_fn, flow_params, _ = _setup()
    with pytest.raises(TypeError, match="CouplingFlow"):
        flow_contrastive_estimation(lambda x: x, flow_params)
    with pytest.raises(ValueError, match="flow_every must be a positive int.*got 0"):
        flow_contrastive_estimation(flow_fn, flow_params, flow_every=0)
    obj = flow_contrastive_estimation(flow_fn, flow_params)
    with pytest.raises(ValueError, match=r"events have shape \(3,\).*flow is over \(2,\)"):
        obj.init(jax.random.key(0), energy_fn, params, jnp.zeros((8, 3)))
    with pytest.raises(ValueError, match="FCEExtras"):
        flow_distribution(flow_fn, fit)


@pytest.mark.slow
def test_fce_beats_nce_with_poor_noise_on_two_moons():
    # Both start from the same energy and the same poor noise N(0, 3^2 I) (for FCE: the
    # flow's initial state); same optimizer and number of steps (600). Judged by the held-out
    # log-likelihood with the energy normalised on a grid (true value about -1.01 nats).
    toy = datasets.two_moons()
    x = toy.sample(jax.random.key(0), 4000)
    x_test = toy.sample(jax.random.key(1), 4000)
    energy_fn, params = mlp_energy(jax.random.key(2), 2, (32, 32))
    flow_fn, flow_params = coupling_flow(jax.random.key(3), 2, 4, (16, 16), scale=3.0)
    objectives = {
        "nce": noise_contrastive_estimation(dist.Normal(jnp.zeros(2), 3.0).to_event(1)),
        "fce": flow_contrastive_estimation(flow_fn, flow_params),
    }
    held_out, results = {}, {}
    for name, obj in objectives.items():
        results[name] = r = fit(energy_fn, params, x, obj, key=jax.random.key(4),
                                num_steps=600, batch_size=256, optimizer=optax.adam(3e-3),
                                progress_bar=False)
        log_z = grid_log_normalizer(energy_fn, r.params, [-6.0, -6.0], [6.0, 6.0])
        held_out[name] = float(jnp.mean(-batched_energy(energy_fn, r.params, x_test, 1)) - log_z)
    assert held_out["fce"] > held_out["nce"] + 0.1, held_out
    assert int(results["fce"].objective_state.step) == 600  # the schedule's step counter
    # the adversarial flow itself moved towards the data: far above its N(0, 9 I) start
    flow = flow_distribution(flow_fn, results["fce"])
    start = FlowDistribution(flow_fn, flow_params)
    assert float(jnp.mean(flow.log_prob(x_test))) > float(jnp.mean(start.log_prob(x_test))) + 1.0
