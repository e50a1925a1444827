"""Scaling out on forced host devices: the sharded path's overhead and its throughput.

For N = 1, 2, 4 forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``,
one subprocess each, since the count is fixed when JAX starts) it times, per step (the
difference of two run lengths, minimum of repeats):

- 64 MALA chains on the 10 -> 256 -> 256 -> 1 MLP energy through ``numpyro.infer.MCMC``:
  ``chain_method="vectorized"`` on one device (plain) against ``ShardedChains(mesh)``;
- a compute-bound fit (denoising score matching, 32-D, MLP 2 x 256, batch 512): ``fit``
  without a mesh (plain) against ``fit(mesh=make_mesh("data", N))``.

Reported: the overhead of the sharded path at N = 1 (target <= 1.05x) and the speed-up of
the sharded path at N against N = 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from _common import ROOT, markdown_table, write_results

WORKER = ROOT / "benchmarks" / "_scaling_worker.py"


def _run_worker(n: int, quick: bool) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, str(WORKER), str(n)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scaling worker N={n} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(quick: bool = False) -> None:
    counts = (1, 2) if quick else (1, 2, 4)
    res = {n: _run_worker(n, quick) for n in counts}
    base = res[1]
    rows = []
    for n in counts:
        r = res[n]
        rows.append([n, 1e3 * r["chains_sharded"], r["chains_sharded"] / r["chains_plain"],
                     base["chains_sharded"] / r["chains_sharded"],
                     1e3 * r["fit_sharded"], r["fit_sharded"] / r["fit_plain"],
                     base["fit_sharded"] / r["fit_sharded"]])
    table = markdown_table(
        ["devices N", "chains ms/step", "chains sharded/plain", "chains speed-up vs N=1",
         "fit ms/step", "fit sharded/plain", "fit speed-up vs N=1"], rows)
    body = f"""{__doc__.split(chr(10), 1)[1].strip()}

{table}

"sharded/plain" compares the sharded path with the plain single-device path in the same
process (at N = 1 it is the overhead of going through the mesh). "speed-up vs N=1" compares
the sharded path at N devices with itself at one device. Forced host devices share this
machine's CPU cores (and XLA's CPU thread pool), so the speed-up is bounded by the cores
that a single device leaves idle; on a 2-core machine expect far less than Nx. On GPUs or
many hosts each device brings its own compute; that row needs such a machine.
"""
    write_results("scaling", "Scaling out: sharded chains and data-parallel fit",
                  {str(k): v for k, v in res.items()}, body)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
