"""The half-cost normal / Rademacher draws (numpyro_ebm/_random.py).

Known answers: a standard normal's moments and CDF; independence of the two words of a
threefry block (the pair layout uses both), of rows and of keys; fallback to
``jax.random`` for other key implementations and widths.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from numpyro_ebm import _random

F32 = jnp.float32  # the suite runs with x64 on; float32 draws take the pair layout


def test_normal_moments_and_distribution():
    n, d = 400, 251  # odd D: the second half of each row is one word shorter
    z = np.asarray(_random.normal(jax.random.key(0), (n, d), F32), np.float64)
    assert z.shape == (n, d)
    m = z.size
    # mean and variance within 5 standard errors of 0 and 1 (Var of s^2 is 2/m for N(0, 1))
    assert abs(z.mean()) < 5 / np.sqrt(m)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2.0 / m)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    # both words of a block (columns j and j + ceil(D/2)) and neighbouring rows: uncorrelated
    half = (d + 1) // 2
    for a, b in [(z[:, : d - half], z[:, half:]), (z[:-1], z[1:]), (z[:, :-1], z[:, 1:])]:
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < 5 / np.sqrt(a.size)


def test_keys_give_independent_draws_and_same_key_same_draw():
    k1, k2 = jax.random.split(jax.random.key(1))
    a = np.asarray(_random.normal(k1, (200, 50), F32))
    b = np.asarray(_random.normal(k2, (200, 50), F32))
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)
    np.testing.assert_array_equal(a, np.asarray(jax.jit(_random.normal, static_argnums=(1, 2))(
        k1, (200, 50), F32)))
    # the legacy uint32 PRNGKey with the same key data gives the same draw
    legacy = jax.random.key_data(k1)
    np.testing.assert_array_equal(a, np.asarray(_random.normal(legacy, (200, 50), F32)))


def test_rademacher_values_and_balance():
    v = np.asarray(_random.rademacher(jax.random.key(2), (300, 77), F32))
    assert set(np.unique(v)) == {-1.0, 1.0}
    assert abs(v.mean()) < 5 / np.sqrt(v.size)


def test_vmapped_keys_match_one_by_one():
    keys = jax.random.split(jax.random.key(3), 4)
    batched = jax.vmap(lambda k: _random.normal(k, (3, 9), F32))(keys)
    for i in range(4):
        np.testing.assert_array_equal(batched[i], _random.normal(keys[i], (3, 9), F32))


@pytest.mark.parametrize("shape", [(), (1,), (7,), (8,), (9,), (2, 0), (2, 3, 8)])
def test_shapes(shape):
    z = _random.normal(jax.random.key(4), shape, F32)
    assert z.shape == shape and bool(jnp.all(jnp.isfinite(z)))


def test_other_implementations_and_widths_fall_back_to_jax_random():
    rbg = jax.random.key(5, impl="rbg")
    np.testing.assert_array_equal(_random.normal(rbg, (4, 3), F32),
                                  jax.random.normal(rbg, (4, 3), F32))
    # 64- and 16-bit words: threefry's own words (a block per 64-bit word either way)
    k = jax.random.key(5)
    for dtype in (jnp.float64, jnp.float16):
        np.testing.assert_array_equal(_random.normal(k, (4, 3), dtype),
                                      jax.random.normal(k, (4, 3), dtype))
    # rows shorter than MIN_ROW too; longer float32 rows are the pair layout (other values)
    short, long = (4, _random.MIN_ROW - 1), (4, _random.MIN_ROW)
    np.testing.assert_array_equal(_random.normal(k, short, F32), jax.random.normal(k, short, F32))
    assert not np.array_equal(_random.normal(k, long, F32), jax.random.normal(k, long, F32))


def _threefry_operands(f) -> set[str]:
    """Shapes of the counters passed to the threefry hash in ``f``'s lowered program."""
    text = jax.jit(f).lower(jax.random.key(0)).as_text()
    return set(re.findall(r"func\.func private @threefry2x32\([^)]*?tensor<ui32>, "
                          r"%arg2: tensor<([0-9x]+)xui32>", text))


def test_word_cost_halved_in_the_compiled_program():
    """The pair layout hashes ceil(D/2) blocks per row; jax.random.normal one per word."""
    assert _threefry_operands(lambda k: _random.normal(k, (100, 201), F32)) == {"100x101"}
    assert _threefry_operands(lambda k: jax.random.normal(k, (100, 201), F32)) == {"100x201"}
