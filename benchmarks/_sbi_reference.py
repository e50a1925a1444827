"""Reference posterior draws for bench_sbi, cached under benchmarks/_scratch/ (git-ignored).

``python benchmarks/_sbi_reference.py [N] [task ...]`` fills the cache (observations 0..N-1,
default 5, of the named tasks, default all) ahead of a benchmark run, so reruns are cheap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

from numpyro_ebm.sbi import TASK_NAMES, get_task

CACHE = Path(__file__).resolve().parent / "_scratch" / "sbi_reference"
NUM_REFERENCE = 10_000


def reference(name: str, index: int) -> np.ndarray:
    """10,000 reference draws for observation ``index`` of task ``name`` (cached)."""
    path = CACHE / f"{name}_{index}.npy"
    if path.exists():
        return np.load(path)
    task = get_task(name)
    _, x_obs = task.observation(index)
    key = jax.random.fold_in(jax.random.key(20211), 100 * TASK_NAMES.index(name) + index)
    draws = np.asarray(task.reference_posterior(key, x_obs, NUM_REFERENCE))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, draws)
    return draws


if __name__ == "__main__":
    n_obs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for name in sys.argv[2:] or TASK_NAMES:
        for i in range(n_obs):
            t0 = time.perf_counter()
            reference(name, i)
            print(f"{name} {i}: {time.perf_counter() - t0:.1f}s", flush=True)
