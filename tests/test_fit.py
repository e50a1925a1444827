"""The fit driver: known answers, shuffling, resume bit for bit, NaN safety, bad input."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import numpyro_ebm as ne
from numpyro_ebm import NumpyroEBMWarning, Objective
from numpyro_ebm import fit as fit_fn

ENERGY, PARAMS0 = ne.quadratic_energy(jnp.zeros(2), jnp.eye(2))
DATA = jax.random.normal(jax.random.key(1), (64, 2)) * 0.5 + jnp.array([1.0, -1.0])


# ----------------------------------------------------------------------------- test objectives
def _init(key, energy_fn, params, batch):
    return {"c": jnp.zeros(())}, jnp.zeros((), jnp.int32)


def _noisy_mle(energy_fn, params, extras, state, batch, key):
    """Gaussian NLL of jittered data (uses the key), plus an extra pulled to 1; counts steps."""
    x = batch + 0.1 * jax.random.normal(key, batch.shape)
    nll = jnp.mean(jax.vmap(lambda xi: energy_fn(params, xi))(x)) + energy_fn.log_normalizer(
        params)
    loss = nll + 0.5 * (extras["c"] - 1.0) ** 2
    return loss, (state + 1, {"nll": nll, "batch_sum": jnp.sum(batch),
                              "first": batch[0, 0]})


NOISY = Objective(_init, _noisy_mle, "noisy_mle")


def _nan_after_5(energy_fn, params, extras, state, batch, key):
    loss, aux = _noisy_mle(energy_fn, params, extras, state, batch, key)
    return jnp.where(state >= 5, jnp.nan, loss), aux


NAN_AFTER_5 = Objective(_init, _nan_after_5, "nan_after_5")


def _nan_sometimes(energy_fn, params, extras, state, batch, key):
    loss, aux = _noisy_mle(energy_fn, params, extras, state, batch, key)
    bad = jax.random.uniform(jax.random.fold_in(key, 7)) < 0.3
    return jnp.where(bad, jnp.inf, loss), aux


NAN_SOMETIMES = Objective(_init, _nan_sometimes, "nan_sometimes")
UNHEALTHY = Objective(_init, _noisy_mle, "unhealthy", lambda m: m["nll"] < -1e9)

SGD = optax.sgd(0.05)
MEAN_ONLY = optax.multi_transform(
    {"sgd": optax.sgd(0.5), "zero": optax.set_to_zero()},
    ({"mean": "sgd", "precision": "zero"}, {"c": "sgd"}))


def _mean_nll(energy_fn, params, extras, state, batch, key):
    nll = jnp.mean(jax.vmap(lambda xi: energy_fn(params, xi))(batch))
    return nll + 0.5 * (extras["c"] - 1.0) ** 2, (state, {})


MEAN_NLL = Objective(_init, _mean_nll, "mean_nll")


def _run(objective=NOISY, **kw):
    if "num_epochs" not in kw:
        kw.setdefault("num_steps", 20)
    kw.setdefault("batch_size", 16)
    kw.setdefault("steps_per_chunk", 7)
    kw.setdefault("optimizer", SGD)
    kw.setdefault("progress_bar", False)
    return fit_fn(ENERGY, PARAMS0, DATA, objective, key=kw.pop("key", jax.random.key(0)), **kw)


def _assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ----------------------------------------------------------------------------- known answers
def test_full_batch_sgd_reaches_the_sample_mean():
    # loss = mean_i 0.5 |x_i - m|^2 + const: SGD(0.5) on the full batch halves the error per
    # step, so 80 steps reach the sample mean to float64 precision; precision is frozen
    res = fit_fn(ENERGY, PARAMS0, DATA, MEAN_NLL, key=jax.random.key(0), optimizer=MEAN_ONLY,
                 num_steps=80, batch_size=DATA.shape[0], progress_bar=False)
    np.testing.assert_allclose(res.params["mean"], DATA.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(res.params["precision"], PARAMS0["precision"])
    np.testing.assert_allclose(res.extras["c"], 1.0, atol=1e-12)
    assert res.stopped_reason == "completed" and res.step == 80
    assert np.all(np.diff(res.history["loss"]) <= 1e-12)


def test_each_epoch_visits_every_row_once_in_a_new_order():
    res = _run(num_epochs=3, steps_per_chunk=5)  # 4 batches per epoch, chunks straddle epochs
    h = res.history
    assert res.step == 12 and list(h["step"]) == list(range(12))
    sums = h["batch_sum"].reshape(3, 4).sum(1)
    np.testing.assert_allclose(sums, float(jnp.sum(DATA)), rtol=1e-12)
    first = np.round(h["first"], 12).reshape(3, 4)
    # within an epoch the batches are disjoint, so each starts with another row; each epoch
    # has a new order (a row may start a batch in two epochs: across epochs that happens
    # by chance with probability about 0.8 here, so it is not asserted)
    assert all(len(set(epoch)) == 4 for epoch in first)
    assert len({tuple(epoch) for epoch in first}) == 3
    assert res.objective_state == 12


def test_a_reordered_copy_and_gathered_rows_give_the_same_run(monkeypatch):
    # small data sets are reordered once per epoch and sliced; larger ones gather each
    # batch's rows from the permutation: the batches, and so the whole run, are the same
    from numpyro_ebm.training import chunk

    copied = _run(num_epochs=3, steps_per_chunk=5)
    monkeypatch.setattr(chunk, "SHUFFLED_COPY_MAX_BYTES", 0)
    jax.clear_caches()  # the limit is read when tracing
    gathered = _run(num_epochs=3, steps_per_chunk=5)
    monkeypatch.undo()
    jax.clear_caches()  # later tests trace the default path again
    for k in ("batch_sum", "first", "loss"):
        np.testing.assert_array_equal(copied.history[k], gathered.history[k])
    _assert_trees_equal((copied.params, copied.extras), (gathered.params, gathered.extras))


def test_legacy_and_typed_keys_give_the_same_run():
    a = _run(key=jax.random.key(3))
    b = _run(key=jax.random.PRNGKey(3))
    _assert_trees_equal(a.params, b.params)
    assert b.key.dtype == jnp.uint32 and jnp.issubdtype(a.key.dtype, jax.dtypes.prng_key)


def test_tuple_data_reaches_the_objective_as_a_tuple():
    energy, params = ne.mlp_energy(jax.random.key(0), 2, (4,), context_dim=1)
    theta = jnp.linspace(-1, 1, DATA.shape[0])[:, None]

    def init(key, energy_fn, p, batch):
        assert isinstance(batch, tuple) and batch[1].shape == (8, 1)
        return (), ()

    def loss(energy_fn, p, extras, state, batch, key):
        x, th = batch
        e = jax.vmap(lambda a, b: energy_fn(p, a, b))(x, th)
        return jnp.mean(e**2), (state, {})

    res = fit_fn(energy, params, (DATA, theta), Objective(init, loss, "paired"),
                 key=jax.random.key(0), num_steps=3, batch_size=8, progress_bar=False)
    assert res.step == 3 and np.all(np.isfinite(res.history["loss"]))
    with pytest.raises(ValueError, match="share the leading axis"):
        fit_fn(energy, params, (DATA, theta[:5]), Objective(init, loss), key=jax.random.key(0),
               num_steps=3, batch_size=8)


# ----------------------------------------------------------------------------- resume
@pytest.mark.parametrize("key", [jax.random.key(5), jax.random.PRNGKey(5)],
                         ids=["typed", "legacy"])
def test_resume_continues_bit_for_bit(tmp_path, key):
    straight = _run(num_steps=30, key=key)
    ckpt = tmp_path / "run.npz"
    half = _run(num_steps=15, key=key, checkpoint_path=ckpt)
    assert half.step == 15 and ckpt.is_file()
    with pytest.warns(NumpyroEBMWarning, match="key is ignored"):  # the key is the ckpt's
        resumed = _run(num_steps=30, key=jax.random.key(99), resume_from=ckpt)
    assert resumed.step == 30
    _assert_trees_equal((straight.params, straight.extras, straight.opt_state),
                        (resumed.params, resumed.extras, resumed.opt_state))
    assert resumed.objective_state == straight.objective_state == 30
    for k in ("step", "loss", "nll"):
        np.testing.assert_array_equal(straight.history[k], resumed.history[k])


def test_resume_reads_the_checkpoint_into_shapes_without_running_init(tmp_path):
    """A resumed ``fit`` builds the state it reads the checkpoint into abstractly:
    ``objective.init`` sees only tracers (no rows drawn, nothing of it run or compiled), and
    the run still continues bit for bit."""
    seen = []

    def init(key, energy_fn, params, batch):
        seen.append(isinstance(batch, jax.core.Tracer))
        return _init(key, energy_fn, params, batch)

    objective = Objective(init, _noisy_mle, "noisy_mle_traced_init")
    kw = dict(optimizer=SGD, batch_size=8, progress_bar=False)
    straight = fit_fn(ENERGY, PARAMS0, DATA, objective, key=jax.random.key(4), num_steps=20,
                      **kw)
    ckpt = tmp_path / "run.npz"
    fit_fn(ENERGY, PARAMS0, DATA, objective, key=jax.random.key(4), num_steps=10,
           checkpoint_path=ckpt, **kw)
    assert False in seen  # a fresh run computes init on drawn rows
    seen.clear()
    resumed = fit_fn(ENERGY, PARAMS0, DATA, objective, resume_from=ckpt, num_steps=20, **kw)
    assert seen and all(seen), seen
    _assert_trees_equal((straight.params, straight.extras, straight.opt_state),
                        (resumed.params, resumed.extras, resumed.opt_state))
    assert int(resumed.objective_state) == int(straight.objective_state) == 20


def test_resume_with_another_structure_names_the_leaves(tmp_path):
    _run(num_steps=3, checkpoint_path=tmp_path / "c.npz")
    with pytest.raises(ValueError, match="opt_state"):
        _run(num_steps=6, optimizer=optax.adam(1e-3), resume_from=tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError, match="resume_from"):
        _run(num_steps=6, resume_from=tmp_path / "missing.npz")


def test_keyboard_interrupt_returns_progress_and_checkpoints(tmp_path, monkeypatch):
    import sys

    from tqdm.auto import tqdm

    class Interrupting(tqdm):
        calls = 0

        def update(self, n=1):
            type(self).calls += 1
            if type(self).calls == 2:
                raise KeyboardInterrupt
            return super().update(n)

    monkeypatch.setattr(sys.modules["numpyro_ebm.training.progress"], "tqdm", Interrupting)
    ckpt = tmp_path / "i.npz"
    res = _run(num_steps=30, checkpoint_path=ckpt, progress_bar=True)
    assert res.stopped_reason == "interrupted" and res.step == 14  # two chunks of 7
    assert len(res.history["loss"]) == 14
    monkeypatch.undo()
    resumed = _run(num_steps=30, resume_from=ckpt)
    _assert_trees_equal(resumed.params, _run(num_steps=30).params)


def test_interrupt_during_validation_loses_the_chunk_and_resume_is_exact(tmp_path,
                                                                          monkeypatch):
    """Ctrl-C while a chunk is being validated: that chunk is not committed, so the resumed
    run recomputes it and validates at exactly the steps of an uninterrupted run."""
    fit_module = sys.modules["numpyro_ebm.training.driver"]
    real_evaluate = fit_module.evaluate
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    val = DATA[:16] + 0.5
    kw = dict(num_steps=30, validation_data=val, eval_every=5, steps_per_chunk=5)
    monkeypatch.setattr(fit_module, "evaluate", interrupting)
    ckpt = tmp_path / "v.npz"
    res = _run(checkpoint_path=ckpt, **kw)
    assert res.stopped_reason == "interrupted" and res.step == 5
    monkeypatch.undo()
    resumed = _run(resume_from=ckpt, **kw)
    straight = _run(**kw)
    np.testing.assert_array_equal(resumed.history["val_step"], straight.history["val_step"])
    np.testing.assert_array_equal(resumed.history["val_loss"], straight.history["val_loss"])
    _assert_trees_equal((resumed.params, resumed.best_params),
                        (straight.params, straight.best_params))


# ----------------------------------------------------------------------------- NaN safety
def test_nonfinite_loss_stops_with_the_last_good_params():
    res = _run(NAN_AFTER_5, num_steps=20)
    good = _run(NOISY, num_steps=5)
    assert res.stopped_reason.startswith("nonfinite") and "step 5" in res.stopped_reason
    assert res.step == 5 and res.num_skipped == 1
    _assert_trees_equal((res.params, res.extras, res.opt_state),
                        (good.params, good.extras, good.opt_state))
    assert res.objective_state == 5
    assert bool(res.history["skipped"][-1]) and not np.any(res.history["skipped"][:-1])


def test_skip_mode_skips_bad_steps_and_keeps_going():
    res = _run(NAN_SOMETIMES, num_steps=40, on_nonfinite="skip")
    skipped = res.history["skipped"]
    assert res.stopped_reason == "completed" and res.step == 40
    assert 0 < res.num_skipped == int(skipped.sum()) < 40
    assert np.all(np.isinf(res.history["loss"][skipped]))
    assert res.objective_state == 40 - res.num_skipped  # state of bad steps discarded
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(res.params))


def test_skip_mode_gives_up_after_consecutive_bad_steps():
    res = _run(NAN_AFTER_5, num_steps=40, on_nonfinite="skip", max_consecutive_skips=4)
    assert res.stopped_reason.startswith("nonfinite") and res.step == 9
    assert res.num_skipped == 4
    _assert_trees_equal(res.params, _run(NOISY, num_steps=5).params)


def test_unhealthy_metrics_count_as_bad_steps():
    res = _run(UNHEALTHY, num_steps=10)
    assert res.stopped_reason.startswith("nonfinite") and res.step == 0
    _assert_trees_equal(res.params, PARAMS0)


# ----------------------------------------------------------------------------- validation
def test_early_stopping_keeps_the_best_params():
    # training pulls the mean from 3 towards 0; validation data sit at 1.5, so val loss falls
    # then rises: early stopping must fire and best_params must be the val-optimal mean
    params = {"mean": jnp.full(2, 3.0), "precision": jnp.eye(2)}
    val = jnp.full((8, 2), 1.5)
    res = fit_fn(ENERGY, params, DATA - DATA.mean(0), MEAN_NLL, key=jax.random.key(0),
                 optimizer=MEAN_ONLY, num_steps=200, batch_size=64, validation_data=val,
                 eval_every=1, patience=3, steps_per_chunk=4, progress_bar=False)
    h = res.history
    assert res.stopped_reason.startswith("early_stopping")
    assert res.step < 200 and len(h["val_loss"]) == res.step
    best = int(np.argmin(h["val_loss"]))
    assert len(h["val_loss"]) - 1 - best == 3
    m = 3.0 * 0.5 ** h["val_step"][best]  # closed form of SGD(0.5) on the mean
    np.testing.assert_allclose(res.best_params["mean"], m, rtol=1e-12)
    assert abs(m - 1.5) <= 0.75 and abs(float(res.params["mean"][0]) - 1.5) > abs(m - 1.5)


def test_validation_is_recorded_at_eval_steps_and_the_end():
    res = _run(num_steps=20, validation_data=DATA[:10], eval_every=6)
    np.testing.assert_array_equal(res.history["val_step"], [6, 12, 18, 20])
    assert {"val_loss", "val_nll", "val_batch_sum"} <= set(res.history)
    assert np.all(np.isfinite(res.history["val_loss"]))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(data=DATA.at[3, 1].set(jnp.nan)), ValueError, "data contains 1 non-finite"),
        (dict(data=jnp.zeros((20, 3))), ValueError, r"shape \(3,\)"),
        (dict(data=jnp.zeros((0, 2))), ValueError, "data is empty"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=float("inf")), ValueError, r"batch_size .*got inf"),
        (dict(batch_size=65), ValueError, r"batch_size .*N=64"),
        (dict(num_steps=0), ValueError, "num_steps must be a positive int"),
        (dict(num_steps=float("inf")), ValueError, "num_steps must be a positive int, got inf"),
        (dict(eval_every=float("nan"), validation_data=DATA), ValueError, "eval_every must be"),
        (dict(num_steps=None), ValueError, "exactly one of num_steps"),
        (dict(num_epochs=2), ValueError, "exactly one of num_steps"),
        (dict(objective=lambda *a: 0.0), TypeError, "objective must be a numpyro_ebm.Objective"),
        (dict(patience=2), ValueError, "need validation_data"),
        (dict(on_nonfinite="ignore"), ValueError, "on_nonfinite"),
        (dict(key=jnp.zeros(3)), TypeError, "key must be"),
        (dict(optimizer="adam"), TypeError, "optax.GradientTransformation"),
        (dict(params={"mean": jnp.array([jnp.inf, 0.0]), "precision": jnp.eye(2)}),
         ValueError, r"params\['mean'\] contains 1 non-finite"),
        (dict(checkpoint_every=5), ValueError, "checkpoint_path"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(change, error, match):
    kw = dict(energy_fn=ENERGY, params=PARAMS0, data=DATA, objective=NOISY,
              key=jax.random.key(0), num_steps=5, batch_size=16, progress_bar=False)
    kw.update(change)
    with pytest.raises(error, match=match):
        fit_fn(**kw)


def test_checkpoint_round_trips_keys_and_dtypes_without_pickle(tmp_path):
    from numpyro_ebm.training.checkpoint import load_checkpoint, restore_tree, save_checkpoint

    tree = {"k": jax.random.key(7), "buf": jnp.arange(6.0).reshape(2, 3),
            "n": jnp.int32(4), "legacy": jax.random.PRNGKey(1)}
    save_checkpoint(tmp_path / "c.npz", {"state": tree}, {"step": 3})
    contents, desc = load_checkpoint(tmp_path / "c.npz")  # np.load(allow_pickle=False)
    back = restore_tree(jax.tree.map(jnp.zeros_like, tree), "state", contents, desc)
    assert int(contents["array/step"]) == 3
    np.testing.assert_array_equal(jax.random.key_data(back["k"]), jax.random.key_data(tree["k"]))
    for name in ("buf", "n", "legacy"):
        assert back[name].dtype == tree[name].dtype
        np.testing.assert_array_equal(back[name], tree[name])
    with pytest.raises(ValueError, match=r"\['buf'\] has shape \(2, 3\), expected \(3,\)"):
        restore_tree({**tree, "buf": jnp.zeros(3)}, "state", contents, desc)


# ----------------------------------------------------------------------------- rollback
def _push_mean(energy_fn, params, extras, state, batch, key):
    """Loss -2 sum(mean): plain SGD(lr=1) moves the mean by +2 per step; metric measured
    before the update (like CD's sample energies), so the damage is seen one step late."""
    return -2.0 * jnp.sum(params["mean"]), (state, {"m": jnp.max(jnp.abs(params["mean"]))})


PUSHED = Objective(_init, _push_mean, "pushed", lambda m: m["m"] < 5.0)


@pytest.mark.parametrize("steps_per_chunk", [1, 3, 50])
def test_unhealthy_step_rolls_back_the_update_that_caused_it(steps_per_chunk):
    # means: 0 -> 2 -> 4 -> 6; at step 3 the metric (6) is unhealthy, so the update of
    # step 2 is undone: the last good params have mean 4, not 6 — also across chunk edges
    # (with 3 steps per chunk the target is recomputed from the previous chunk's start)
    res = fit_fn(ENERGY, PARAMS0, DATA, PUSHED, key=jax.random.key(0),
                 optimizer=optax.sgd(1.0), num_steps=10, batch_size=8, progress_bar=False,
                 steps_per_chunk=steps_per_chunk)
    assert res.stopped_reason.startswith("nonfinite") and res.step == 3
    np.testing.assert_array_equal(res.params["mean"], np.full(2, 4.0))


def test_checkpoint_restores_bfloat16_and_checks_key_shapes(tmp_path):
    # .npy stores bfloat16 as raw bytes (dtype |V2); restore must reinterpret, not fail
    from numpyro_ebm.training.checkpoint import load_checkpoint, restore_tree, save_checkpoint

    tree = {"w": jnp.asarray([1.5, -2.25], jnp.bfloat16), "k": jax.random.split(jax.random.key(1))}
    save_checkpoint(tmp_path / "c.npz", {"g": tree}, {})
    contents, desc = load_checkpoint(tmp_path / "c.npz")
    back = restore_tree(tree, "g", contents, desc)
    assert back["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(back["w"], np.float32), [1.5, -2.25])
    with pytest.raises(ValueError, match=r"\['k'\] holds keys of shape \(2,\), expected \(\)"):
        restore_tree({**tree, "k": jax.random.key(0)}, "g", contents, desc)


def test_validation_data_with_another_event_shape_is_rejected_before_training():
    with pytest.raises(ValueError, match=r"validation_data must have the event shapes of data "
                                         r"\[\(2,\)\].*got \[\(3,\)\]"):
        _run(num_steps=5, validation_data=jnp.zeros((10, 3)))


def test_integer_data_is_rejected_before_compilation_naming_its_dtype():
    # issue 15: int32 events reached jax.grad ("grad requires real-valued inputs ...")
    int_data = jnp.round(DATA).astype(jnp.int32)
    with pytest.raises(TypeError, match=r"data must have a floating dtype .* got dtype int32"):
        fit_fn(ENERGY, PARAMS0, int_data, ne.objectives.exact_score_matching(), num_steps=1,
               batch_size=16, key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"data\[0\] \(the events\) must have a floating"):
        fit_fn(ENERGY, PARAMS0, (int_data, DATA), ne.objectives.exact_score_matching(),
               num_steps=1, batch_size=16, key=jax.random.key(0))


# ----------------------------------------------------------------------------- modules
def test_no_module_is_shadowed_by_a_name_of_its_package():
    """``numpyro_ebm.fit`` is the function and no module of that name exists; every
    submodule of ``numpyro_ebm`` and ``numpyro_ebm.training`` that the package also exposes
    as an attribute is that module (``import numpyro_ebm.x as m`` gives what ``ne.x`` is)."""
    import importlib
    import pkgutil
    import types
    from pathlib import Path

    import numpyro_ebm.training as training

    assert callable(ne.fit) and ne.fit is training.fit
    assert not (Path(ne.__file__).parent / "fit.py").exists()
    for pkg in (ne, training):
        for info in pkgutil.iter_modules(pkg.__path__):
            attr = getattr(pkg, info.name, None)
            if attr is not None:
                module = importlib.import_module(f"{pkg.__name__}.{info.name}")
                assert isinstance(attr, types.ModuleType) and attr is module, info.name


# ----------------------------------------------------------------------------- reseed
def test_resume_with_reseed_draws_new_randomness_from_the_resumed_state(tmp_path):
    ckpt = tmp_path / "r.npz"
    half = _run(num_steps=15, key=jax.random.key(5), checkpoint_path=ckpt)
    same = _run(num_steps=30, key=None, resume_from=ckpt)  # no key: the checkpoint's, bit for bit
    again = _run(num_steps=30, key=jax.random.key(5), resume_from=ckpt)  # same key: no warning
    straight = _run(num_steps=30, key=jax.random.key(5))
    _assert_trees_equal((same.params, again.params), (straight.params, straight.params))
    new = _run(num_steps=30, key=jax.random.key(6), reseed=True, resume_from=ckpt)
    assert new.step == 30
    # the first 15 steps are the checkpoint's; the next 15 see other batches and noise
    np.testing.assert_array_equal(new.history["loss"][:15], half.history["loss"])
    # (whole batches compared by their sums: a batch's first row alone coincides with
    # probability 1/N per step, which is no evidence of shared randomness)
    assert not np.any(new.history["batch_sum"][15:] == straight.history["batch_sum"][15:])
    assert not np.any(new.history["loss"][15:] == straight.history["loss"][15:])
    # the reseeded run's randomness is its own key's: it is reproducible
    _assert_trees_equal(new.params, _run(num_steps=30, key=jax.random.key(6), reseed=True,
                                         resume_from=ckpt).params)


def test_arguments_that_would_be_ignored_warn_or_are_refused(tmp_path):
    ckpt = tmp_path / "w.npz"
    _run(num_steps=5, checkpoint_path=ckpt)
    with pytest.warns(NumpyroEBMWarning, match="key is ignored.*reseed=True"):
        _run(num_steps=10, key=jax.random.key(1), resume_from=ckpt)
    with pytest.warns(NumpyroEBMWarning, match="extras is ignored"):
        _run(num_steps=10, key=None, resume_from=ckpt, extras={"c": jnp.ones(())})
    with pytest.warns(NumpyroEBMWarning, match="at step 5, past the 3 steps asked for"):
        res = _run(num_steps=3, key=None, resume_from=ckpt)
    assert res.step == 5
    # another batch_size is used, but the run is no longer the uninterrupted one: said
    with pytest.warns(NumpyroEBMWarning, match=r"batch_size=8 differs from the checkpointed "
                      r"run's batch_size=16.*pass batch_size=16 to continue that run exactly"):
        res = _run(num_steps=10, key=None, resume_from=ckpt, batch_size=8)
    assert res.step == 10
    _run(num_steps=10, key=None, resume_from=ckpt, batch_size=16)  # the advice: no warning
    with pytest.raises(ValueError, match="reseed=True needs resume_from"):
        _run(num_steps=10, reseed=True)
    with pytest.raises(ValueError, match="key is required"):
        fit_fn(ENERGY, PARAMS0, DATA, NOISY, num_steps=5, batch_size=16, progress_bar=False)
    with pytest.raises(ValueError, match="max_consecutive_skips=4 needs on_nonfinite='skip'"):
        _run(num_steps=10, max_consecutive_skips=4)
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        _run(num_steps=10, progress_bar="yes")
