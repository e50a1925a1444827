"""C2ST with the sbibm protocol, compiled with JAX (the five folds trained side by side).

The same test as :func:`numpyro_ebm.diagnostics.c2st` (which uses scikit-learn's
``MLPClassifier``), re-implemented so that 50 tests fit the benchmark's time on a shared
2-core machine: both sets z-scored with the reference's mean and sd; an MLP with two hidden
layers of ``10 * dim`` ReLU units and a logistic output, Glorot-uniform initialisation,
L2 penalty ``alpha = 1e-4``, Adam (lr ``1e-3``), minibatches of 200, reshuffled every
epoch, stopped when the training loss has not improved by ``1e-4`` for 10 epochs (at most
``max_epochs``), as scikit-learn's defaults do; shuffled 5-fold cross-validation; the score
is the mean held-out accuracy. ``bench_sbi.py --check-c2st`` compares it with the
scikit-learn version on the benchmark's own samples.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

BATCH, ALPHA, TOL, NO_CHANGE = 200, 1e-4, 1e-4, 10


def _init(key, dim):
    sizes = [dim, 10 * dim, 10 * dim, 1]
    params = []
    for k, (m, n) in zip(jax.random.split(key, 3), zip(sizes[:-1], sizes[1:])):
        factor = 2.0 if n == 1 else 6.0  # scikit-learn: 2 for the logistic output layer
        bound = np.sqrt(factor / (m + n))
        kw, kb = jax.random.split(k)
        params.append((jax.random.uniform(kw, (m, n), minval=-bound, maxval=bound),
                       jax.random.uniform(kb, (n,), minval=-bound, maxval=bound)))
    return params


def _logit(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return (x @ w + b)[..., 0]


def _loss(params, x, y):
    z = _logit(params, x)
    bce = jnp.mean(jax.nn.softplus(z) - y * z)
    l2 = sum(jnp.sum(w**2) for w, _ in params)
    return bce + 0.5 * ALPHA * l2 / x.shape[0]


@partial(jax.jit, static_argnames=("max_epochs",))
def _train_fold(key, x, y, max_epochs):
    n = x.shape[0]
    steps = -(-n // BATCH)
    pad = steps * BATCH - n
    opt = optax.adam(1e-3)
    k_init, k_loop = jax.random.split(key)
    params = _init(k_init, x.shape[1])

    def epoch(carry):
        params, state, best, count, ep = carry
        perm = jax.random.permutation(jax.random.fold_in(k_loop, ep), n)
        idx = jnp.concatenate([perm, perm[:pad]]).reshape(steps, BATCH)
        # the last (padded) batch repeats a few rows: a negligible difference

        def step(c, ids):
            p, s = c
            val, g = jax.value_and_grad(_loss)(p, x[ids], y[ids])
            upd, s = opt.update(g, s, p)
            return (optax.apply_updates(p, upd), s), val

        (params, state), losses = jax.lax.scan(step, (params, state), idx)
        loss = jnp.mean(losses)
        count = jnp.where(loss > best - TOL, count + 1, 0)
        return params, state, jnp.minimum(best, loss), count, ep + 1

    def go(carry):
        return (carry[3] <= NO_CHANGE) & (carry[4] < max_epochs)

    carry = (params, opt.init(params), jnp.inf, 0, 0)
    params, _, _, _, epochs = jax.lax.while_loop(go, epoch, carry)
    return params, epochs


@partial(jax.jit, static_argnames=("max_epochs",))
def _train_folds(keys, x, y, max_epochs):
    """:func:`_train_fold` vmapped over folds of equal size (each keeps its own stopping
    rule: a finished fold's parameters stay fixed while the others train)."""
    return jax.vmap(lambda k, a, b: _train_fold(k, a, b, max_epochs))(keys, x, y)


def c2st_fast(reference, samples, *, n_folds: int = 5, seed: int = 0,
              max_epochs: int = 1000, folds_used: int | None = None) -> float:
    """Mean held-out accuracy over ``n_folds`` shuffled folds (0.5: indistinguishable).

    The folds are trained side by side (vmapped) when they have equal sizes (the
    benchmark's 10,000 + 10,000 draws), else one after the other. ``folds_used = k``
    scores only the first ``k`` of the ``n_folds`` folds (each still trained on the other
    ``n_folds - 1``): an unbiased estimate of the full mean with more variance (one fold
    holds out 4,000 of 20,000 points: binomial sd of its accuracy about 0.008), at
    ``k / n_folds`` of the cost.
    """
    a, b = np.asarray(reference, np.float64), np.asarray(samples, np.float64)
    mean, sd = a.mean(0), a.std(0, ddof=1)
    data = np.concatenate([(a - mean) / sd, (b - mean) / sd]).astype(np.float32)
    target = np.concatenate([np.zeros(len(a)), np.ones(len(b))]).astype(np.float32)
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(data))
    folds = np.array_split(order, n_folds)
    used = n_folds if folds_used is None else folds_used
    trains = [np.concatenate([f for j, f in enumerate(folds) if j != i])
              for i in range(used)]
    keys = [jax.random.key(seed * 100 + i) for i in range(used)]
    folds = folds[:used]
    if len({len(t) for t in trains}) == 1:
        stacked, _ = _train_folds(jnp.stack(keys), jnp.asarray(data[np.stack(trains)]),
                                  jnp.asarray(target[np.stack(trains)]), max_epochs)
        params = [jax.tree.map(lambda p, i=i: p[i], stacked) for i in range(used)]
    else:
        params = [_train_fold(k, jnp.asarray(data[t]), jnp.asarray(target[t]), max_epochs)[0]
                  for k, t in zip(keys, trains)]
    accs = []
    for p, test in zip(params, folds):
        pred = np.asarray(_logit(p, jnp.asarray(data[test]))) > 0
        accs.append(float(np.mean(pred == (target[test] > 0.5))))
    return float(np.mean(accs))
