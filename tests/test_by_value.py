"""Optimizers keyed by value (numpyro_ebm/training/by_value.py): equal settings built apart
are equal; anything that differs, or cannot be read, is not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from numpyro_ebm.training.by_value import canonical_optimizer, value_key

SCALE = 2.0  # a global a closure reads by name


def _scaled(value):
    def f(x):
        return value * x * SCALE

    return f


def test_equal_transformations_built_apart_have_equal_keys():
    pairs = [
        (optax.adam(1e-3), optax.adam(1e-3)),
        (optax.chain(optax.clip(1.0), optax.sgd(optax.linear_schedule(1.0, 0.1, 10))),
         optax.chain(optax.clip(1.0), optax.sgd(optax.linear_schedule(1.0, 0.1, 10)))),
        (optax.masked(optax.adam(1e-3), {"a": True, "b": False}),
         optax.masked(optax.adam(1e-3), {"a": True, "b": False})),
        (_scaled(jnp.arange(3.0)), _scaled(jnp.arange(3.0))),
    ]
    for a, b in pairs:
        assert a is not b
        ka, kb = value_key(a), value_key(b)
        assert ka is not None and ka == kb and hash(ka) == hash(kb)
    assert canonical_optimizer(pairs[0][1]) is canonical_optimizer(pairs[0][0])


def test_different_settings_have_different_keys():
    different = [
        (optax.adam(1e-3), optax.adam(2e-3)),
        (optax.adam(1e-3), optax.adamw(1e-3)),
        (optax.sgd(optax.linear_schedule(1.0, 0.1, 10)),
         optax.sgd(optax.linear_schedule(1.0, 0.1, 11))),
        (optax.masked(optax.adam(1e-3), {"a": True, "b": False}),
         optax.masked(optax.adam(1e-3), {"a": False, "b": True})),
        (_scaled(jnp.arange(3.0)), _scaled(jnp.arange(3.0) + 1)),
        (_scaled(jnp.arange(3.0)), _scaled(np.arange(3, dtype=np.int32))),
    ]
    for a, b in different:
        assert value_key(a) != value_key(b)
    assert canonical_optimizer(optax.adam(5e-3)) is not canonical_optimizer(optax.adam(6e-3))


def test_a_changed_global_changes_the_key(monkeypatch):
    f = _scaled(1.0)
    before = value_key(f)
    monkeypatch.setattr(__import__(__name__), "SCALE", 3.0)
    assert value_key(f) != before


def test_unreadable_values_fall_back_to_identity():
    class Opaque:  # an object the keyer does not know: equal only to itself
        pass

    o = Opaque()
    assert value_key(_scaled(o)) == value_key(_scaled(o))
    assert value_key(_scaled(o)) != value_key(_scaled(Opaque()))

    seen = []

    @jax.jit
    def inside(x):  # a transformation closing over a tracer: no key, used as given
        seen.append(value_key(optax.scale(x)))
        return x

    inside(1.0)
    assert seen == [None]
    tx = optax.scale_by_learning_rate(jnp.zeros(1 << 19))  # a 2 MiB array: not read
    assert value_key(tx) is None and canonical_optimizer(tx) is tx


def test_recursive_closures_are_keyed():
    def make(n):
        def f(k):
            return n if k == 0 else f(k - 1)

        return f

    assert value_key(make(1)) == value_key(make(1)) != value_key(make(2))


def test_array_value_keys_arrays_and_prng_keys_by_dtype_shape_and_bytes():
    from numpyro_ebm._values import array_value
    from numpyro_ebm.objectives import ByValue

    a = array_value(np.arange(3.0, dtype=np.float32))
    assert a == array_value(jnp.arange(3.0, dtype=jnp.float32))  # NumPy and JAX alike
    assert a != array_value(np.arange(3.0))  # dtype
    assert a != array_value(np.arange(3.0, dtype=np.float32).reshape(3, 1))  # shape
    k1 = array_value(jax.random.key(1))
    assert k1 == array_value(jax.random.key(1)) and k1 != array_value(jax.random.key(2))
    assert k1 != array_value(jax.random.key_data(jax.random.key(1)))  # a key is not its data
    # a typed key inside a compared-by-value setting is a value too (it fell back to identity)
    assert ByValue({"k": jax.random.key(1)}) == ByValue({"k": jax.random.key(1)})
    assert ByValue({"k": jax.random.key(1)}) != ByValue({"k": jax.random.key(2)})
