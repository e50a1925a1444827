"""Paced chunks (``fit(steps_per_chunk=None)``, the default): the chunk sizes follow the
measured step time, and nothing else does."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import count_compiles

import numpyro_ebm as ne
from numpyro_ebm.training import pacing

ENERGY, PARAMS0 = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))
DATA = jax.random.normal(jax.random.key(1), (64, 2)) * 0.5 + jnp.array([1.0, -1.0])
VAL = jax.random.normal(jax.random.key(2), (32, 2)) * 0.5 + jnp.array([1.0, -1.0])
OBJECTIVE = ne.denoising_score_matching(0.3)  # uses its key every step
SGD = optax.sgd(0.05)


def _fit(**kw):
    return ne.fit(ENERGY, PARAMS0, DATA, OBJECTIVE, key=jax.random.key(0), optimizer=SGD,
                  batch_size=16, progress_bar=False, **kw)


def test_next_size_aims_at_the_target_time_with_bounded_growth(monkeypatch):
    monkeypatch.setattr(pacing, "SECONDS", 0.25)
    # 100 steps in 0.05 s: 0.25 s is 500 steps, but at most 4x the last chunk's 100
    assert pacing.next_size(None, 100, 100, 0.05) == 400
    assert pacing.next_size(None, 400, 400, 0.2) == 500
    assert pacing.next_size(None, 500, 500, 1e-6) == pacing.MAX_STEPS
    assert pacing.next_size(None, 500, 500, 10.0) == 12  # slow steps: a short chunk
    assert pacing.next_size(None, 5, 5, 1e3) == 1  # never below one step
    assert pacing.next_size(None, 37, 37, None) == 37  # a guarded rerun: nothing learned
    assert pacing.next_size(50, 7, 7, 0.001) == 50  # a fixed size stays fixed
    assert pacing.first_size(None) == pacing.FIRST_STEPS
    assert pacing.compiled_length(None) == pacing.MAX_STEPS
    assert pacing.compiled_length(8) == 8


def test_the_result_does_not_depend_on_the_pacing(monkeypatch):
    """Chunks of one step, and chunks as long as the compiled loop allows, give the same
    params and history bit for bit (one compiled loop; each step's key depends on its
    index only)."""
    monkeypatch.setattr(pacing, "SECONDS", 1e-9)  # every paced chunk: one step
    short = _fit(num_steps=37)
    sizes_short = len(short.history["step"])
    monkeypatch.setattr(pacing, "SECONDS", 1e9)  # as long as allowed
    monkeypatch.setattr(pacing, "FIRST_STEPS", 30)
    long = _fit(num_steps=37)
    assert sizes_short == len(long.history["step"]) == 37
    for a, b in zip(jax.tree.leaves(short.params), jax.tree.leaves(long.params), strict=True):
        assert jnp.array_equal(a, b)
    for k in short.history:
        np.testing.assert_array_equal(short.history[k], long.history[k])
    # and equal to fixed chunks of the same compiled length
    fixed = _fit(num_steps=37, steps_per_chunk=pacing.MAX_STEPS)
    for a, b in zip(jax.tree.leaves(short.params), jax.tree.leaves(fixed.params), strict=True):
        assert jnp.array_equal(a, b)


def test_paced_chunk_sizes_follow_the_clock(monkeypatch):
    """The chunk sizes asked for are those ``next_size`` gives for the measured times."""
    from numpyro_ebm.training import driver
    sizes = []
    real = driver._run_one_chunk

    def spy(step_fn, state, rollback, cfg, legacy, num, guard, mesh):
        sizes.append(num)
        return real(step_fn, state, rollback, cfg, legacy, num, guard, mesh)

    monkeypatch.setattr(driver, "_run_one_chunk", spy)
    monkeypatch.setattr(pacing, "SECONDS", 1e9)  # the clock says: grow as fast as allowed
    _fit(num_steps=300)
    assert sizes == [10, 40, 160, 90]  # 4x growth per chunk, then the run's end


def test_a_second_paced_fit_compiles_nothing():
    _fit(num_steps=25)
    with count_compiles() as compiles:
        _fit(num_steps=25)
    assert len(compiles) == 0


def test_paced_validation_keeps_a_fixed_cadence():
    """With paced chunks and no eval_every, validation runs every 50 steps (and at the
    end), whatever the chunk sizes: early stopping counts evaluations."""
    res = _fit(num_steps=120, validation_data=VAL)
    np.testing.assert_array_equal(res.history["val_step"], [50, 100, 120])
    res = _fit(num_steps=120, validation_data=VAL, eval_every=40)
    np.testing.assert_array_equal(res.history["val_step"], [40, 80, 120])


@pytest.mark.parametrize("bad", [0, -3, 2.5, "50", True])
def test_bad_steps_per_chunk_is_refused(bad):
    with pytest.raises(ValueError, match="steps_per_chunk"):
        _fit(num_steps=5, steps_per_chunk=bad)
