"""Warmup helpers of the Langevin kernels: the reasonable-step search, run op by op in
batches of trials or traced as a ``while_loop``, gives the one-at-a-time search's answer."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from helpers import count_compiles
from numpyro.infer.hmc_util import dual_averaging

from numpyro_ebm.infer import MALA
from numpyro_ebm.infer.adaptation import (
    SEARCH_RUNGS,
    find_reasonable_step_size,
    langevin_warmup_adapter,
    restart_step_size,
)
from numpyro_ebm.infer.langevin import LangevinState, propose_with_noise

SCALES = jnp.array([0.1, 1.0, 10.0])


def potential(z):
    return 0.5 * jnp.sum((z / SCALES) ** 2)


def _z_info(seed):
    z = jax.random.normal(jax.random.key(seed), (3,)) * SCALES
    e, g = jax.value_and_grad(potential)(z)
    return z, e, g


def _one_at_a_time(h0, z_info, key, inverse_mass_matrix=None):
    """The search written out in Python, one trial per step (the definition)."""
    z, e, g = z_info
    xi = jax.random.normal(key, z.shape, z.dtype)
    real = np.dtype(z.dtype).type

    def up(h):
        r = propose_with_noise(xi, LangevinState(z, e, g), potential, h, inverse_mass_matrix)
        return bool(r.log_accept_ratio > np.log(real(0.8)))

    h = real(h0)
    direction = 1 if up(h) else -1
    while True:
        h = real(h * real(4.0 if direction > 0 else 0.25))
        if up(h) != (direction > 0):
            return float(h)
        if (direction > 0 and not h < np.finfo(real).max) or (
                direction < 0 and not h > np.finfo(real).tiny):
            return float(h)


# 1e-12 and 1e12 start more than SEARCH_RUNGS // 2 rungs from the answer: later batches
@pytest.mark.parametrize("h0", [1e-12, 1e-3, 0.1, 4.0, 1e12])
def test_search_in_batches_gives_the_one_at_a_time_answer(h0):
    for seed in range(3):
        z_info, key = _z_info(seed), jax.random.key(seed + 10)
        expected = _one_at_a_time(h0, z_info, key)
        eager = find_reasonable_step_size(potential, 1.0, h0, None, z_info, key)
        traced = jax.jit(lambda h, zi, k: find_reasonable_step_size(
            potential, 1.0, h, None, zi, k))(h0, z_info, key)
        assert float(eager) == expected
        assert float(traced) == expected
    if h0 in (1e-12, 1e12):  # the answer lies beyond the first batch of trials
        assert abs(np.log(expected / h0) / np.log(4.0)) > SEARCH_RUNGS // 2


def test_search_for_a_batch_of_chains_equals_each_chain_alone():
    infos = [_z_info(s) for s in range(4)]
    keys = jax.random.split(jax.random.key(3), 4)
    h0 = jnp.array([1e-9, 0.1, 1.0, 1e9], jnp.float32)
    inv_mm = jnp.stack([jnp.diag(jnp.array([0.5, 1.0, 2.0]) * (c + 1)) for c in range(4)])
    batched = jax.tree.map(lambda *v: jnp.stack(v), *infos)
    got = find_reasonable_step_size(potential, 1.0, h0, inv_mm, batched, keys,
                                    chain_axis=True)
    assert got.shape == (4,)
    for c in range(4):
        alone = find_reasonable_step_size(potential, 1.0, h0[c], inv_mm[c], infos[c], keys[c])
        assert float(got[c]) == float(alone) == _one_at_a_time(h0[c], infos[c], keys[c],
                                                               inv_mm[c])
    assert len(set(np.asarray(got).tolist())) > 1  # the chains' answers differ


def _model():
    numpyro.sample("x", dist.Normal(0.0, SCALES).to_event(1))


def test_kernel_init_compiles_once_per_model_and_process():
    keys = jax.random.split(jax.random.key(0), 4)
    # the search traced in a caller's program (as under pmap) is the reference
    traced = jax.jit(lambda k: MALA(_model).init(k, 10, None, (), {}).adapt_state.step_size)
    expected = traced(keys)
    first = MALA(_model).init(keys, 10, None, (), {})  # compiles init's program (if not yet)
    other = jax.random.split(jax.random.key(1), 4)
    with count_compiles() as seen:  # a fresh kernel on the same model: the cached program
        state = MALA(_model).init(other, 10, None, (), {})
    assert len(seen) == 0
    assert not np.allclose(state.z["x"], first.z["x"])  # other keys, other positions
    state = MALA(_model).init(keys, 10, None, (), {})
    np.testing.assert_array_equal(state.adapt_state.step_size, expected)
    assert not np.all(expected == 0.1)  # the search moved h from the given 0.1
    # dual averaging is centred on 10 eps, eps = sqrt(2 h) (NumPyro's centre)
    centre = state.adapt_state.ss_state[-1]
    np.testing.assert_allclose(centre, np.log(10 * np.sqrt(2 * expected)), rtol=1e-6)


def test_adapter_without_search_keeps_the_given_step():
    z_info = _z_info(0)
    init, _ = langevin_warmup_adapter(10, potential, find_step_size=False)
    st = init(z_info, jax.random.key(0), 0.3, mass_matrix_size=3)
    assert float(st.step_size) == pytest.approx(0.3)
    assert st.rng_key is None  # the update splits no key (nothing after init draws one)
    fixed, _ = langevin_warmup_adapter(10, potential, adapt_step_size=False)
    assert fixed(z_info, jax.random.key(0), 0.3, mass_matrix_size=3).rng_key is None
    init_search, _ = langevin_warmup_adapter(10, potential)
    assert float(init_search(z_info, jax.random.key(0), 0.3, mass_matrix_size=3).step_size) \
        != pytest.approx(0.3)


def test_restart_step_size_recentres_dual_averaging():
    init, _ = langevin_warmup_adapter(10, potential, find_step_size=False)
    st = init(_z_info(0), jax.random.key(0), 0.3, mass_matrix_size=3)
    new = restart_step_size(st, jnp.float32(0.02))
    assert float(new.step_size) == pytest.approx(0.02)
    expected = dual_averaging()[0](np.log(10.0) + np.log(np.sqrt(2 * 0.02)))
    for a, b in zip(new.ss_state, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6)
