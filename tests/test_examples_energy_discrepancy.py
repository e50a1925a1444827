"""The energy-discrepancy example runs in its small setting and writes its figure."""

import runpy
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "energy_discrepancy_two_moons.py"


def test_energy_discrepancy_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "energy_discrepancy_two_moons.png").stat().st_size > 10_000
    assert len(res["results"]) == 2
    for r in res["results"].values():
        assert r["stopped"].startswith("completed")
        # a normalised density: below the truth's held-out LL (up to noise), far above a
        # flat density on the [-6, 6]^2 box that log Z is computed on (-log 144 = -4.97)
        assert -4.0 < r["held_out_ll"] < res["true_ll"] + 0.1, r["held_out_ll"]
        assert np.all(np.isfinite(r["density"])) and r["density"].min() >= 0
    out = capsys.readouterr().out
    assert out.count("held-out log-likelihood") == 2
