"""No silent recompilation: a second ``fit`` with equal settings compiles nothing.

Each objective factory is called afresh for the second run (equal settings, a new object),
so the test checks that objectives compare and hash equal by value, and that ``fit`` keys
its compiled chunk on them (issue 14.2 / 17). Compilations are counted with
``jax.monitoring``'s backend-compile events.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import optax
import pytest
from helpers import count_compiles

import numpyro_ebm as ne

ENERGY, PARAMS = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))
X = jax.random.normal(jax.random.key(0), (64, 2))
THETA = X[:, :1] + 0.5 * jax.random.normal(jax.random.key(1), (64, 1))


def _pair_energy(w, x, theta):
    return jnp.sum(w * (x[:1] - theta) ** 2)


def _flow():
    return ne.coupling_flow(jax.random.key(2), 2, num_layers=2, hidden=(8,))


# name -> (objective factory, energy_fn, params, data): the factory runs once per fit
CASES = {
    "exact_sm": (lambda: ne.exact_score_matching(), ENERGY, PARAMS, X),
    "sliced_sm": (lambda: ne.sliced_score_matching(), ENERGY, PARAMS, X),
    "denoising_sm": (lambda: ne.denoising_score_matching(0.1), ENERGY, PARAMS, X),
    "nce": (lambda: ne.noise_contrastive_estimation(dist.Normal(jnp.zeros(2), 2.0).to_event(1)),
            ENERGY, PARAMS, X),
    "cnce": (lambda: ne.conditional_noise_contrastive_estimation(0.5), ENERGY, PARAMS, X),
    "ratio": (lambda: ne.ratio_estimation(), _pair_energy, jnp.ones(()), (X, THETA)),
    "fce": (lambda: ne.flow_contrastive_estimation(*_flow()), ENERGY, PARAMS, X),
    "cd": (lambda: ne.contrastive_divergence(num_steps=2, step_size=0.01), ENERGY, PARAMS, X),
    "pcd": (lambda: ne.persistent_contrastive_divergence(num_steps=2, step_size=0.01,
                                                         buffer_size=32),
            ENERGY, PARAMS, X),
}


# one optimizer object for these cases; optimizers built afresh per call (equal by value)
# are checked in test_optimizers_built_apart_but_equal_compile_once
OPTIMIZER = optax.sgd(1e-3)


def _fit(name, **kw):
    make, energy_fn, params, data = CASES[name]
    return ne.fit(energy_fn, params, data, make(), key=jax.random.key(3),
                  optimizer=OPTIMIZER, num_steps=6, batch_size=16, steps_per_chunk=4,
                  progress_bar=False, **kw)


@pytest.mark.parametrize("name", list(CASES))
def test_a_second_equal_fit_compiles_nothing(name):
    first = _fit(name)
    with count_compiles() as compiles:
        second = _fit(name)
    assert len(compiles) == 0, f"{name}: {len(compiles)} compilation(s) in the second fit"
    for a, b in zip(jax.tree.leaves(first.params), jax.tree.leaves(second.params), strict=True):
        assert jnp.array_equal(a, b)


def test_the_counter_sees_compilations():
    """The counter is live: a fresh jitted function compiles once, then not again."""
    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.123)
    x, y = jnp.arange(3.0), jnp.arange(3.0) + 1
    with count_compiles() as compiles:
        f(x).block_until_ready()
        f(y).block_until_ready()
    assert len(compiles) == 1


def test_validation_and_resume_compile_nothing_the_second_time(tmp_path):
    """Validation, checkpoints and a resumed run reuse the first run's compilations."""
    kw = dict(validation_data=X[:8], checkpoint_path=tmp_path / "c.npz")

    def run_and_resume():
        _fit("sliced_sm", **kw)
        return ne.fit(ENERGY, PARAMS, X, ne.sliced_score_matching(), optimizer=OPTIMIZER,
                      num_steps=10, batch_size=16, steps_per_chunk=4, progress_bar=False,
                      resume_from=tmp_path / "c.npz", validation_data=X[:8])

    first = run_and_resume()
    with count_compiles() as compiles:
        second = run_and_resume()
    assert len(compiles) == 0 and first.step == second.step == 10


def _schedule_optimizer(lr):
    """Built afresh on every call: new closures each time (a clip, Adam, a cosine schedule)."""
    return optax.chain(optax.clip_by_global_norm(1.0),
                       optax.adam(optax.cosine_decay_schedule(lr, 100, alpha=0.1)))


def test_optimizers_built_apart_but_equal_compile_once():
    """``optimizer=optax.adam(...)`` written inline in each call: the second fit compiles
    nothing (optimizers compare by value); another learning rate compiles and differs."""
    def run(lr):
        return ne.fit(ENERGY, PARAMS, X, ne.sliced_score_matching(), key=jax.random.key(3),
                      optimizer=_schedule_optimizer(lr), num_steps=6, batch_size=16,
                      steps_per_chunk=4, progress_bar=False)

    first = run(1e-2)
    with count_compiles() as compiles:
        second = run(1e-2)
    assert len(compiles) == 0
    for a, b in zip(jax.tree.leaves(first.params), jax.tree.leaves(second.params), strict=True):
        assert jnp.array_equal(a, b)
    with count_compiles() as compiles:
        other = run(3e-2)
    assert len(compiles) > 0
    assert not jnp.array_equal(other.params["precision"], first.params["precision"])


def test_a_first_fit_compiles_its_chunk_and_optimizer_init_only():
    """``fit``'s fixed cost in a new process for an objective without extras or state
    (score matching): the chunk and ``optimizer.init``. No rows are drawn for
    ``objective.init`` and the run's keys come out of the chunk, so no start-up program;
    nothing eager (each eager op compiles a program of its own on first use;
    docs/benchmarks/fit_overhead.md). Data of a shape and an optimizer (optimizers are equal
    by value) no other test uses, so nothing is cached."""
    data = jax.random.normal(jax.random.key(5), (77, 2))
    jax.block_until_ready(data)
    with count_compiles() as compiles:
        ne.fit(ENERGY, PARAMS, data, ne.exact_score_matching(), key=jax.random.key(3),
               optimizer=optax.sgd(7.77e-4), num_steps=6, batch_size=11, progress_bar=False)
    assert len(compiles) == 2, f"{len(compiles)} programs compiled"


@pytest.mark.parametrize("legacy", [False, True])
def test_the_run_keys_from_the_chunk_are_the_ones_derived_from_the_key(legacy, tmp_path):
    """The keys ``fit`` takes from its first chunk (score matching draws no start-up rows)
    are the run's ``step_keys``: ``FitResult.key`` is the fifth, in the kind given. A resume
    at the last step runs no chunk and derives the same key itself."""
    data = jax.random.normal(jax.random.key(5), (40, 2))
    key = jax.random.PRNGKey(3) if legacy else jax.random.key(3)
    typed = jax.random.wrap_key_data(key) if legacy else key
    expected = jax.random.key_data(jax.random.split(typed, 5)[4])
    kw = dict(optimizer=optax.sgd(1e-3), batch_size=8, num_steps=3, progress_bar=False)
    ckpt = tmp_path / "run.npz"
    res = ne.fit(ENERGY, PARAMS, data, ne.exact_score_matching(), key=key,
                 checkpoint_path=ckpt, **kw)
    again = ne.fit(ENERGY, PARAMS, data, ne.exact_score_matching(), resume_from=ckpt, **kw)
    assert again.step == res.step == 3
    for r in (res, again):
        assert jnp.array_equal(expected, r.key if legacy else jax.random.key_data(r.key))


@pytest.mark.parametrize("name, programs, rows", [("nce", 4, 78), ("fce", 5, 79), ("pcd", 4, 80)])
def test_an_objective_whose_init_computes_adds_only_its_own_programs(name, programs, rows):
    """Past the three programs every ``fit`` compiles, NCE adds its starting-``log Z``
    estimate, FCE its own estimate and two small eager operations, and PCD one program for
    its box and empty buffer (built eagerly, they compiled six). A data size no other test
    uses; at most, since a small eager operation another test ran is already compiled."""
    make, energy_fn, params, _ = CASES[name]
    data = jax.random.normal(jax.random.key(5), (rows, 2))
    jax.block_until_ready(data)
    objective = make()
    with count_compiles() as compiles:
        ne.fit(energy_fn, params, data, objective, key=jax.random.key(3),
               optimizer=optax.sgd(1e-4 * rows), num_steps=6, batch_size=11,
               progress_bar=False)
    assert len(compiles) <= programs, f"{name}: {len(compiles)} programs compiled"


def test_trace_loss_gives_the_loss_shapes_and_compiles_nothing():
    """``TrainStep.trace_loss``: the loss's output shapes (a scalar loss, the objective state
    and each metric) from an abstract trace, with no compilation; a loss that cannot trace
    on these shapes raises there."""
    step = ne.training.make_train_step(ENERGY, ne.sliced_score_matching(), optax.sgd(0.1))
    batch = jax.ShapeDtypeStruct((16, 2), jnp.float32)
    with count_compiles() as compiles:
        loss, (state, metrics) = step.trace_loss((PARAMS, ()), (), batch, jax.random.key(0))
    assert len(compiles) == 0
    assert loss.shape == () and state == () and metrics
    assert all(m.shape == () for m in metrics.values())
    with pytest.raises(ValueError, match="mean's shape"):
        step.trace_loss((PARAMS, ()), (), jax.ShapeDtypeStruct((16, 3), jnp.float32),
                        jax.random.key(0))
