import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_ebm import EnergyDistribution, check_energy, from_equinox, from_flax_nnx, mlp_energy
from numpyro_ebm.nn import ACTIVATIONS, MLPEnergy


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_mlp_energy_dtype_and_scalar(dtype):
    f, p = mlp_energy(jax.random.key(0), 3, (8, 8), dtype=dtype)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(p))
    out = f(p, jnp.ones(3, dtype))
    assert out.shape == () and out.dtype == dtype
    g = jax.grad(f, argnums=1)(p, jnp.ones(3, dtype))
    assert g.dtype == dtype and jnp.all(jnp.isfinite(g))


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_activations(act):
    f, p = mlp_energy(jax.random.key(1), 2, (4,), activation=act)
    assert check_energy(f, p, (2,)).shape == ()


def test_mlp_is_hashable_by_value_for_jit_caching():
    assert MLPEnergy("tanh") == MLPEnergy("tanh") and hash(MLPEnergy("tanh")) == hash(
        MLPEnergy("tanh"))
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPEnergy("sigmoidish")


def test_mlp_context_inputs_and_shape_error():
    f, p = mlp_energy(jax.random.key(2), 2, (8,), context_dim=1)
    e1 = f(p, jnp.ones(2), 0.5)
    e2 = f(p, jnp.ones(2), 1.5)
    assert e1.shape == () and not np.isclose(e1, e2)
    with pytest.raises(ValueError, match="has 2 features but the first layer expects 3"):
        f(p, jnp.ones(2))  # context missing: 2 features but layer expects 3
    with pytest.raises(ValueError, match="layer_sizes"):
        mlp_energy(jax.random.key(0), 0)


def test_equinox_adapter_matches_module():
    eqx = pytest.importorskip("equinox")
    mlp = eqx.nn.MLP(2, "scalar", 8, 2, key=jax.random.key(3))
    f, p = from_equinox(mlp)
    x = jnp.array([0.3, -0.2])
    np.testing.assert_allclose(f(p, x), mlp(x), rtol=1e-6)
    d = EnergyDistribution(f, p, event_shape=(2,))
    g = jax.grad(lambda q: d.__class__(f, q, event_shape=(2,)).log_prob(x))(p)
    assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(g))


def test_flax_nnx_adapter_matches_module():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(2, 8, rngs=rngs)
            self.l2 = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))[0]

    net = Net(nnx.Rngs(0))
    f, p = from_flax_nnx(net)
    x = jnp.array([0.3, -0.2])
    np.testing.assert_allclose(f(p, x), net(x), rtol=1e-6)
    assert check_energy(f, p, (2,)).shape == ()
    g = jax.jit(jax.grad(f))(p, x)
    assert len(jax.tree.leaves(g)) == 4
