"""``fit``'s start-up in a new process, this tree against an earlier revision, in pairs.

    python benchmarks/studies/fit_start_pairs.py --before REV [--rounds 8] [--case CASE]

Checks ``REV`` out into a temporary git worktree and times, in fresh Python processes that
alternate between the two trees (one pair per round, the order flipped every round), one
``fit`` on the time-to-quality benchmark's two-moons data and settings
(``benchmarks/bench_time_to_quality.py``):

* ``first``: the first ``fit`` of 100 steps of multi-sigma DSM (NCSN) in the process;
* ``resume NCE`` / ``resume PCD``: a ``fit`` that resumes a 200-step checkpoint (written
  once, by this tree, before the rounds) and runs to step 400.

The clock covers the ``fit`` call alone (imports, data and the backend's start-up are
outside it). Prints each pair and the medians, and writes
``benchmarks/results/fit_start_pairs.json``; docs/fitting.md quotes the numbers. Both
trees' final losses are printed: equal losses say the two ran the same steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import os, sys, time
import jax, jax.numpy as jnp
tree, case, ckpt = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(tree, "benchmarks"))
import numpyro_ebm as ebm
assert ebm.__file__.startswith(tree), ebm.__file__
import bench_time_to_quality as b
train, _ = b.make_data()
name = "NCSN" if case == "first" else case.split()[1]
spec = b.ours(train)[name]
cond = spec.get("conditional", False)
energy_fn, params = ebm.mlp_energy(jax.random.key(3), 2, b.HIDDEN,
                                   context_dim=1 if cond else 0, dtype=jnp.float32)
kw = dict(optimizer=spec["optimizer"], batch_size=b.BATCH, progress_bar=False)
if case == "first":
    kw.update(num_steps=100, key=jax.random.key(1))
elif not os.path.exists(ckpt):  # write the checkpoint, untimed
    ebm.fit(energy_fn, params, train, spec["objective"], num_steps=200, key=jax.random.key(1),
            checkpoint_path=ckpt, **kw)
    sys.exit()
else:
    kw.update(num_steps=400, resume_from=ckpt)
t0 = time.perf_counter()
res = ebm.fit(energy_fn, params, train, spec["objective"], **kw)
jax.block_until_ready(res.params)
print(time.perf_counter() - t0, float(res.history["loss"][-1]))
'''

CASES = ("first", "resume NCE", "resume PCD")


def _child(tree: Path, case: str, ckpt: str, script: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, script, str(tree), case, ckpt], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return (float(out[0]), float(out[1])) if out else (float("nan"), float("nan"))


def main(before: str, rounds: int, cases: list[str]) -> None:
    load0 = os.getloadavg()[0]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old),
                        before], check=True)
        try:
            script = str(Path(tmp) / "child.py")
            Path(script).write_text(CHILD)
            for case in cases:
                ckpt = str(Path(tmp) / f"{case.replace(' ', '_')}.npz")
                if case != "first":
                    _child(ROOT, case, ckpt, script)
                times: dict[str, list[float]] = {"before": [], "after": []}
                for r in range(rounds):
                    order = [("before", old), ("after", ROOT)][:: 1 if r % 2 == 0 else -1]
                    for label, tree in order:
                        t, loss = _child(tree, case, ckpt, script)
                        times[label].append(t)
                        print(f"{case}: round {r} {label} {t:.3f} s (loss {loss:.6g})",
                              flush=True)
                out[case] = {k: {"seconds": v, "median": statistics.median(v)}
                             for k, v in times.items()}
                print(f"{case}: median before {out[case]['before']['median']:.2f} s, after "
                      f"{out[case]['after']['median']:.2f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False)
    result = {"before": before, "rounds": rounds, "cases": out,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load": [load0, os.getloadavg()[0]]}
    path = ROOT / "benchmarks" / "results" / "fit_start_pairs.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the earlier revision (a git commit)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--case", action="append", choices=CASES,
                    help="the cases to run (default: all)")
    args = ap.parse_args()
    main(args.before, args.rounds, args.case or list(CASES))
