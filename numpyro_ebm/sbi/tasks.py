"""The five tasks of the SBI benchmark (Lueckmann et al. 2021, "Benchmarking
Simulation-Based Inference", AISTATS), written from their published definitions.

Each :class:`Task` has a prior (a NumPyro distribution over ``theta``, shape
``(theta_dim,)``), a batched JAX simulator ``simulate(key, theta) -> x`` (``theta`` of shape
``(n, theta_dim)``, ``x`` of shape ``(n, x_dim)``), the true log likelihood
``log_likelihood(theta, x)`` for one pair (up to a constant in ``theta`` where noted), fixed
observations ``observation(i) -> (theta_true, x_obs)`` from fixed seeds, and reference
posterior draws ``reference_posterior(key, x_obs, num_samples)``:

==================  ==========  =======  ================================================
task                theta_dim   x_dim    reference posterior
==================  ==========  =======  ================================================
gaussian_linear     10          10       closed form ``N(x / 2, 0.05 I)``
two_moons           2           2        exact: invert the simulator for each noise draw
gaussian_mixture    2           2        exact: truncated two-component Gaussian mixture
slcp                5           8        NUTS on the true likelihood (4 sign modes)
bernoulli_glm       10          10       NUTS on the true likelihood (log-concave)
==================  ==========  =======  ================================================

NUTS references run many chains started by importance resampling from the prior under the
true likelihood and are checked with ArviZ (R-hat below ``1.01``, bulk ESS above 400 per
coordinate); a failed check raises :class:`ReferenceConvergenceError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

from ..checks import batch_array, positive_int
from ..typing import Array, ArrayLike, PRNGKey

__all__ = [
    "TASK_NAMES",
    "Task",
    "ReferenceConvergenceError",
    "get_task",
    "gaussian_linear",
    "two_moons",
    "gaussian_mixture",
    "slcp",
    "bernoulli_glm",
    "nuts_reference",
]

TASK_NAMES = ("gaussian_linear", "two_moons", "gaussian_mixture", "slcp", "bernoulli_glm")
NUM_OBSERVATIONS = 10


class ReferenceConvergenceError(RuntimeError):
    """The NUTS reference posterior failed its R-hat or ESS check."""


def _key(key: PRNGKey) -> Array:
    """A typed key from a typed or legacy ``uint32[2]`` key."""
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


@dataclass(frozen=True, eq=False)
class Task:
    """One benchmark task (see the module docstring for the fields' meaning).

    Attributes
    ----------
    name
        Task name (one of :data:`TASK_NAMES`).
    theta_dim
        Number of parameters.
    x_dim
        Number of simulator outputs.
    prior
        NumPyro distribution over one ``theta`` (``event_shape == (theta_dim,)``).
    simulator
        ``simulator(key, theta) -> x`` for a batch ``theta`` of shape ``(n, theta_dim)``.
    log_likelihood
        ``log_likelihood(theta, x) -> scalar`` for one pair, or ``None`` if intractable.
    reference
        ``reference(key, x_obs, num_samples) -> (num_samples, theta_dim)`` draws.
    seed
        Seed of the fixed observations.
    """

    name: str
    theta_dim: int
    x_dim: int
    prior: dist.Distribution
    simulator: Callable[[Array, Array], Array]
    log_likelihood: Callable[[Array, Array], Array] | None
    reference: Callable[[Array, Array, int], Array]
    seed: int

    def simulate(self, key: PRNGKey, theta: ArrayLike) -> Array:
        """Simulate one ``x`` per row of ``theta`` (shape ``(n, theta_dim)`` -> ``(n, x_dim)``)."""
        theta = batch_array(theta, "theta", event_ndim=1)
        if theta.shape[1] != self.theta_dim:
            raise ValueError(f"{self.name}: theta must have shape (n, {self.theta_dim}), got "
                             f"{theta.shape}")
        return self.simulator(_key(key), theta)

    def sample_joint(self, key: PRNGKey, num: int) -> tuple[Array, Array]:
        """``num`` pairs ``(theta, x)`` from ``p(theta) p(x | theta)``."""
        num = positive_int(num, "num")
        k1, k2 = jax.random.split(_key(key))
        theta = self.prior.sample(k1, (num,))
        return theta, self.simulator(k2, theta)

    def observation(self, index: int) -> tuple[Array, Array]:
        """Fixed observation ``index`` (0..9): ``(theta_true, x_obs)`` from a fixed seed."""
        if not isinstance(index, int | np.integer) or not 0 <= index < NUM_OBSERVATIONS:
            raise ValueError(f"index must be an int in [0, {NUM_OBSERVATIONS}), got {index!r}")
        key = jax.random.fold_in(jax.random.key(self.seed), int(index))
        theta, x = self.sample_joint(key, 1)
        return theta[0], x[0]

    def reference_posterior(self, key: PRNGKey, x_obs: ArrayLike,
                            num_samples: int = 10_000) -> Array:
        """Reference posterior draws given one observation ``x_obs`` of shape ``(x_dim,)``."""
        x_obs = jnp.asarray(x_obs)
        if x_obs.shape != (self.x_dim,):
            raise ValueError(f"{self.name}: x_obs must have shape ({self.x_dim},), got "
                             f"{x_obs.shape}")
        num_samples = positive_int(num_samples, "num_samples")
        return self.reference(_key(key), x_obs, num_samples)

    def model(self, x_obs: ArrayLike | None = None) -> None:
        """NumPyro model: ``theta`` from the prior, the true likelihood of ``x_obs``."""
        theta = numpyro.sample("theta", self.prior)
        if x_obs is not None:
            numpyro.factor("log_likelihood", self.log_likelihood(theta, jnp.asarray(x_obs)))


# --------------------------------------------------------------------------- gaussian_linear
def _gl_simulator(key, theta):
    return theta + math.sqrt(0.1) * jax.random.normal(key, theta.shape, theta.dtype)


def _gl_log_likelihood(theta, x):
    return jnp.sum(dist.Normal(theta, math.sqrt(0.1)).log_prob(x))


def _gl_reference(key, x_obs, num):
    """Conjugate: precision 1/0.1 + 1/0.1 = 20, so the posterior is N(x / 2, 0.05 I)."""
    eps = jax.random.normal(key, (num, x_obs.shape[0]), x_obs.dtype)
    return x_obs / 2 + math.sqrt(0.05) * eps


def gaussian_linear() -> Task:
    """``theta ~ N(0, 0.1 I_10)``, ``x ~ N(theta, 0.1 I_10)``; posterior ``N(x/2, 0.05 I)``."""
    prior = dist.Normal(jnp.zeros(10), math.sqrt(0.1)).to_event(1)
    return Task("gaussian_linear", 10, 10, prior, _gl_simulator, _gl_log_likelihood,
                _gl_reference, seed=1001)


# --------------------------------------------------------------------------- two_moons
_TM_R_LOC, _TM_R_SCALE, _TM_SHIFT = 0.1, 0.01, 0.25


def _tm_mean(theta):
    """The deterministic part ``(-|t1 + t2| / sqrt2, (-t1 + t2) / sqrt2)``."""
    s = 1 / math.sqrt(2)
    return jnp.stack([-jnp.abs(theta[..., 0] + theta[..., 1]) * s,
                      (theta[..., 1] - theta[..., 0]) * s], -1)


def _tm_noise(key, n, dtype):
    """``p = (r cos a + 0.25, r sin a)``, ``a ~ U(-pi/2, pi/2)``, ``r ~ N(0.1, 0.01^2)``."""
    ka, kr = jax.random.split(key)
    a = jax.random.uniform(ka, (n,), dtype, -math.pi / 2, math.pi / 2)
    r = _TM_R_LOC + _TM_R_SCALE * jax.random.normal(kr, (n,), dtype)
    return jnp.stack([r * jnp.cos(a) + _TM_SHIFT, r * jnp.sin(a)], -1)


def _tm_simulator(key, theta):
    return _tm_mean(theta) + _tm_noise(key, theta.shape[0], theta.dtype)


def _tm_log_likelihood(theta, x):
    """Density of ``p = x - mean(theta)`` in polar coordinates around ``(0.25, 0)``:
    ``N(rho; 0.1, 0.01^2) / (pi rho)`` for angles in ``(-pi/2, pi/2)`` (the Jacobian of
    polar coordinates is ``rho``; negative ``r``, 10 sd away, is ignored)."""
    u = x - _tm_mean(theta) - jnp.array([_TM_SHIFT, 0.0], x.dtype)
    rho = jnp.sqrt(jnp.sum(u**2))
    lp = dist.Normal(_TM_R_LOC, _TM_R_SCALE).log_prob(rho) - math.log(math.pi) - jnp.log(rho)
    return jnp.where(u[0] > 0, lp, -jnp.inf)


def _tm_reference(key, x_obs, num):
    """Exact draws: for each noise draw ``p``, ``q = x - p`` must equal ``mean(theta)``:
    ``t2 - t1 = sqrt2 q1`` and ``|t1 + t2| = -sqrt2 q0`` (needs ``q0 <= 0``; the sign of
    ``t1 + t2`` is +/- with probability 1/2, both preimages having the same likelihood and
    the map having unit Jacobian). Draws outside the prior box are rejected."""
    out, have, i = [], 0, 0
    while have < num:
        k = jax.random.fold_in(key, i)
        kp, ks = jax.random.split(k)
        m = 4 * num
        q = x_obs - _tm_noise(kp, m, x_obs.dtype)
        sign = jnp.where(jax.random.bernoulli(ks, 0.5, (m,)), 1.0, -1.0)
        s = sign * (-math.sqrt(2) * q[:, 0])
        d = math.sqrt(2) * q[:, 1]
        theta = jnp.stack([(s - d) / 2, (s + d) / 2], -1)
        ok = np.asarray((q[:, 0] <= 0) & jnp.all(jnp.abs(theta) <= 1, -1))
        out.append(np.asarray(theta)[ok])
        have += int(ok.sum())
        i += 1
        if i > 50 and have == 0:
            raise ValueError("two_moons: x_obs is outside the support of the simulator")
    return jnp.asarray(np.concatenate(out)[:num])


def two_moons() -> Task:
    """``theta ~ U[-1, 1]^2``; crescent noise around ``(-|t1+t2|/sqrt2, (t2-t1)/sqrt2)``."""
    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
    return Task("two_moons", 2, 2, prior, _tm_simulator, _tm_log_likelihood, _tm_reference,
                seed=1002)


# --------------------------------------------------------------------------- gaussian_mixture
def _gm_simulator(key, theta):
    kc, kn = jax.random.split(key)
    scale = jnp.where(jax.random.bernoulli(kc, 0.5, (theta.shape[0], 1)), 1.0, 0.1)
    return theta + scale * jax.random.normal(kn, theta.shape, theta.dtype)


def _gm_log_likelihood(theta, x):
    lp = jnp.stack([jnp.sum(dist.Normal(theta, s).log_prob(x)) for s in (1.0, 0.1)])
    return jax.scipy.special.logsumexp(lp) + math.log(0.5)


def _gm_reference(key, x_obs, num):
    """Exact: under the flat prior the posterior is the mixture ``0.5 N(x, I) +
    0.5 N(x, 0.01 I)`` in ``theta``, truncated to the box (rejection)."""
    out, have, i = [], 0, 0
    while have < num:
        kc, kn = jax.random.split(jax.random.fold_in(key, i))
        m = 2 * num
        scale = jnp.where(jax.random.bernoulli(kc, 0.5, (m, 1)), 1.0, 0.1)
        theta = x_obs + scale * jax.random.normal(kn, (m, 2), x_obs.dtype)
        ok = np.asarray(jnp.all(jnp.abs(theta) <= 10, -1))
        out.append(np.asarray(theta)[ok])
        have += int(ok.sum())
        i += 1
    return jnp.asarray(np.concatenate(out)[:num])


def gaussian_mixture() -> Task:
    """``theta ~ U[-10, 10]^2``; ``x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I)``."""
    prior = dist.Uniform(-10 * jnp.ones(2), 10 * jnp.ones(2)).to_event(1)
    return Task("gaussian_mixture", 2, 2, prior, _gm_simulator, _gm_log_likelihood,
                _gm_reference, seed=1003)


# --------------------------------------------------------------------------- slcp
def _slcp_loc_cov(theta):
    s1, s2 = theta[..., 2] ** 2, theta[..., 3] ** 2
    rho = jnp.tanh(theta[..., 4])
    cov = jnp.stack([jnp.stack([s1**2 + 1e-6, rho * s1 * s2], -1),
                     jnp.stack([rho * s1 * s2, s2**2 + 1e-6], -1)], -2)
    return theta[..., :2], cov


def _slcp_simulator(key, theta):
    loc, cov = _slcp_loc_cov(theta)
    z = dist.MultivariateNormal(loc, cov).sample(key, (4,))  # (4, n, 2)
    return jnp.transpose(z, (1, 0, 2)).reshape(theta.shape[0], 8)


def _slcp_log_likelihood(theta, x):
    loc, cov = _slcp_loc_cov(theta)
    return jnp.sum(dist.MultivariateNormal(loc, cov).log_prob(x.reshape(4, 2)))


def _slcp_reference(key, x_obs, num):
    """NUTS on the true likelihood, then the exact sign symmetry: the likelihood and the
    prior are invariant under ``theta3 -> -theta3`` and ``theta4 -> -theta4`` (the sds are
    their squares), so chains are checked on ``|theta3|, |theta4|`` and each draw gets
    independent uniform signs: the four modes carry exactly equal mass."""
    task = slcp()
    k1, k2 = jax.random.split(key)
    # 20 chains of 2 x num / 20 draws after 1500 warmup steps, thinned by 2; 10 chains of
    # 1000 (the default) failed the R-hat check on |theta3| (1.013) for observation 3
    draws = nuts_reference(task, k1, x_obs, num, fold=(2, 3), num_chains=20,
                           num_warmup=1500, num_proposals=100_000, thin=2)
    signs = jnp.where(jax.random.bernoulli(k2, 0.5, (num, 2)), 1.0, -1.0)
    return draws.at[:, 2:4].set(jnp.abs(draws[:, 2:4]) * signs)


def slcp() -> Task:
    """Simple likelihood, complex posterior: ``theta ~ U[-3, 3]^5``; four iid 2-D Gaussian
    draws with mean ``(t1, t2)``, sds ``t3^2, t4^2``, correlation ``tanh(t5)``."""
    prior = dist.Uniform(-3 * jnp.ones(5), 3 * jnp.ones(5)).to_event(1)
    return Task("slcp", 5, 8, prior, _slcp_simulator, _slcp_log_likelihood, _slcp_reference,
                seed=1004)


# --------------------------------------------------------------------------- bernoulli_glm
def _glm_design() -> np.ndarray:
    """``X`` (100, 10): a column of ones and the lags 0..8 of the fixed white-noise stimulus
    ``RandomState(42).randn(100)`` (float32), zero before the first bin."""
    stim = np.random.RandomState(42).randn(100).astype(np.float32)
    lags = np.zeros((100, 9), np.float32)
    for j in range(9):
        lags[j:, j] = stim[: 100 - j]
    return np.concatenate([np.ones((100, 1), np.float32), lags], 1)


def _glm_prior_precision() -> np.ndarray:
    """``blockdiag(0.5, F^T F)``, ``F = D^2 + diag(sqrt(i / 9))``, ``D`` the 9x9 first
    difference matrix (``i = 0..8``)."""
    d = np.eye(9) - np.eye(9, k=-1)
    f = d @ d + np.diag(np.sqrt(np.arange(9) / 9))
    prec = np.zeros((10, 10))
    prec[0, 0] = 0.5
    prec[1:, 1:] = f.T @ f
    return prec


def _glm_simulator(key, theta):
    design = jnp.asarray(_glm_design(), theta.dtype)
    psi = theta @ design.T  # (n, 100)
    y = jax.random.bernoulli(key, jax.nn.sigmoid(psi)).astype(theta.dtype)
    return y @ design  # sufficient statistics X^T y


def _glm_log_likelihood(theta, x):
    """``theta . x - sum_t softplus(psi_t)``: the exponential-family likelihood of the
    sufficient statistics ``x = X^T y`` up to a count that does not depend on ``theta``."""
    design = jnp.asarray(_glm_design(), theta.dtype)
    return jnp.dot(theta, x) - jnp.sum(jax.nn.softplus(design @ theta))


def _glm_reference(key, x_obs, num):
    return nuts_reference(bernoulli_glm(), key, x_obs, num)


def bernoulli_glm() -> Task:
    """Bernoulli GLM with a 9-lag stimulus filter; ``x`` = 10 sufficient statistics."""
    prec = jnp.asarray(_glm_prior_precision(), jnp.result_type(float))
    prior = dist.MultivariateNormal(jnp.zeros(10), precision_matrix=prec)
    return Task("bernoulli_glm", 10, 10, prior, _glm_simulator, _glm_log_likelihood,
                _glm_reference, seed=1005)


# --------------------------------------------------------------------------- NUTS reference
def nuts_reference(task: Task, key: PRNGKey, x_obs: ArrayLike, num_samples: int, *,
                   num_chains: int = 10, num_warmup: int = 1000,
                   num_proposals: int = 20_000, fold: tuple[int, ...] = (),
                   max_rhat: float = 1.01, min_ess: float = 400.0, thin: int = 1) -> Array:
    """Posterior draws by NUTS on ``task``'s true likelihood, convergence checked.

    ``num_chains`` chains (vectorized) start at points resampled from ``num_proposals``
    prior draws with weights ``p(x_obs | theta)`` (sampling-importance-resampling), run
    ``num_warmup`` adaptation steps and ``thin * ceil(num_samples / num_chains)`` draws
    each, of which every ``thin``-th is kept.
    ArviZ's rank-normalised R-hat must be below ``max_rhat`` and bulk ESS above ``min_ess``
    for every coordinate (coordinates in ``fold`` are checked as absolute values, for
    posteriors with an exact sign symmetry), else :class:`ReferenceConvergenceError`.
    Returns ``(num_samples, theta_dim)`` draws.
    """
    if task.log_likelihood is None:
        raise ValueError(f"{task.name} has no tractable likelihood for a NUTS reference")
    key = _key(key)
    x_obs = jnp.asarray(x_obs)
    k_prop, k_pick, k_mcmc = jax.random.split(key, 3)
    proposals = task.prior.sample(k_prop, (num_proposals,))
    logw = jax.vmap(task.log_likelihood, (0, None))(proposals, x_obs)
    pick = jax.random.categorical(k_pick, jnp.where(jnp.isfinite(logw), logw, -jnp.inf),
                                  shape=(num_chains,))
    thin = positive_int(thin, "thin")
    per_chain = thin * -(-num_samples // num_chains)
    mcmc = MCMC(NUTS(task.model),
                num_warmup=num_warmup, num_samples=per_chain, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False, thinning=thin)
    mcmc.run(k_mcmc, x_obs, init_params={"theta": _unconstrained(task, proposals[pick])})
    draws = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])  # (chain, draw, d)
    checked = draws.copy()
    checked[..., list(fold)] = np.abs(checked[..., list(fold)])
    rhat = np.asarray(az.rhat(checked))
    ess = np.asarray(az.ess(checked, method="bulk"))
    if not (np.all(rhat < max_rhat) and np.all(ess > min_ess)):
        raise ReferenceConvergenceError(
            f"{task.name}: NUTS reference did not converge (R-hat {np.round(rhat, 4)}, "
            f"bulk ESS {np.round(ess, 0)}; need R-hat < {max_rhat} and ESS > {min_ess})")
    return jnp.asarray(draws.reshape(-1, task.theta_dim)[:num_samples])


def _unconstrained(task: Task, theta: Array) -> Array:
    return dist.biject_to(task.prior.support).inv(theta)


_FACTORIES: dict[str, Callable[[], Task]] = {
    "gaussian_linear": gaussian_linear,
    "two_moons": two_moons,
    "gaussian_mixture": gaussian_mixture,
    "slcp": slcp,
    "bernoulli_glm": bernoulli_glm,
}


def get_task(name: str) -> Task:
    """The task called ``name`` (one of :data:`TASK_NAMES`)."""
    if name not in _FACTORIES:
        raise ValueError(f"name must be one of {list(TASK_NAMES)}, got {name!r}")
    return _FACTORIES[name]()
