"""Cross-check of bench_sbi's JAX C2ST against scikit-learn's (issue 11).

    python benchmarks/_sbi_c2st_check.py [task_budget ...]   # e.g. slcp_10000

For each benchmark row whose observation-0 draws were saved by ``bench_sbi`` (under
``benchmarks/_scratch/sbi_rows``), scores the same 10,000 draws against the same 10,000
reference draws with the JAX port (``benchmarks/_sbi_c2st.py``, all five folds) and with
:func:`numpyro_ebm.diagnostics.c2st` (scikit-learn's ``MLPClassifier``, the sbibm
protocol). Results go to ``benchmarks/results/sbi_c2st_check.json`` and the SBI page.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS  # noqa: E402
from _sbi_c2st import c2st_fast  # noqa: E402
from _sbi_reference import CACHE, reference  # noqa: E402

from numpyro_ebm.diagnostics import c2st  # noqa: E402

ROWS = CACHE.parent / "sbi_rows"
OUT = RESULTS / "sbi_c2st_check.json"


def check(stem: str) -> dict:
    """Both C2STs on the saved observation-0 draws of row ``stem`` (``task_budget``)."""
    task, budget = stem.rsplit("_", 1)
    draws = np.load(ROWS / f"{stem}_draws0.npy")
    ref = reference(task, 0)[: draws.shape[0]]
    t0 = time.perf_counter()
    jax_acc = c2st_fast(ref, draws, seed=0)
    t1 = time.perf_counter()
    sk_acc = c2st(ref, draws, seed=0).accuracy
    t2 = time.perf_counter()
    return {"task": task, "budget": int(budget), "jax": float(jax_acc),
            "sklearn": float(sk_acc), "jax_s": t1 - t0, "sklearn_s": t2 - t1}


if __name__ == "__main__":
    stems = sys.argv[1:] or sorted(p.name[: -len("_draws0.npy")]
                                   for p in ROWS.glob("*_draws0.npy"))
    for stem in stems:
        row = check(stem)
        rows = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
        rows = [r for r in rows if (r["task"], r["budget"]) != (row["task"], row["budget"])]
        OUT.write_text(json.dumps({"name": "sbi_c2st_check", "rows": rows + [row]}, indent=1))
        print(f"{stem}: JAX {row['jax']:.3f} ({row['jax_s']:.0f}s), scikit-learn "
              f"{row['sklearn']:.3f} ({row['sklearn_s']:.0f}s)", flush=True)
