"""What JAX's persistent compilation cache saves on the first ``fit`` of a new process.

    python benchmarks/studies/compile_cache.py [--repeats 3]   # ~1 min on 2 cores

Each measurement is a fresh Python process that trains the two-moons MLP (2 -> 128 -> 128
-> 1, float32) by NCE for 200 steps (batch 256, Adam) with ``numpyro_ebm.fit`` and reports
the wall time of that first ``fit`` call (compilation, start-up and the 200 steps), and of a
second, equal call (compiled: the steps alone). Three kinds of process, interleaved:
no cache; the cache enabled on an empty directory (it compiles and writes); the cache
enabled on the directory the previous kind filled (it reads). Minimum over ``--repeats``
rounds. The cache is JAX's own (``jax_compilation_cache_dir``); the library never enables
it.

Writes benchmarks/results/compile_cache.json; the numbers are quoted in docs/fitting.md
(Speed: chunks).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import json, sys, time
import jax, jax.numpy as jnp, numpy as np, optax
import numpyro.distributions as dist
import numpyro_ebm as ebm
if sys.argv[1]:
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
x = np.asarray(ebm.datasets.two_moons(0.1).sample(jax.random.key(0), 8192), np.float32)
energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, (128, 128), dtype=jnp.float32)
noise = dist.Normal(jnp.asarray(x.mean(0)), jnp.asarray(1.5 * x.std(0))).to_event(1)
objective = ebm.noise_contrastive_estimation(noise)
optimizer = optax.adam(1e-2)
times = []
for _ in range(2):
    t0 = time.perf_counter()
    res = ebm.fit(energy_fn, params, x, objective, optimizer=optimizer, num_steps=200,
                  batch_size=256, progress_bar=False, key=jax.random.key(1))
    jax.block_until_ready(res.params)
    times.append(time.perf_counter() - t0)
print(json.dumps({"first_fit_s": times[0], "second_fit_s": times[1]}))
'''


def _child(cache_dir: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, cache_dir], check=True,
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(repeats: int) -> dict:
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            for kind, where in (("no cache", ""), ("cache, empty (writes)", cache),
                                ("cache, filled (reads)", cache)):
                r = _child(where)
                b = best.setdefault(kind, {k: float("inf") for k in r})
                for k, v in r.items():
                    b[k] = min(b[k], v)
                print(kind, {k: round(v, 3) for k, v in r.items()}, flush=True)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeats": repeats,
           "load_average_end": os.getloadavg()[0], "min_seconds": best}
    path = ROOT / "benchmarks" / "results" / "compile_cache.json"
    path.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    print(json.dumps(main(ap.parse_args().repeats), indent=2))
