"""The simulation-based-inference example runs end to end (--small) and recovers the posterior."""

import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simulation_based_inference.py"


@pytest.mark.slow
def test_simulation_based_inference_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert (tmp_path / "sbi_posterior.png").stat().st_size > 10_000
    assert (tmp_path / "summary.csv").exists()
    assert "check_model rejects the naive model: Site 'x'" in out
    summary = res["summary"]
    assert np.all(summary["r_hat"].astype(float) < 1.02)
    assert np.all(summary["ess_bulk"].astype(float) > 400)  # 4 chains x 300 draws
    draws, sd = res["draws"], res["exact_sd"]
    # learned-likelihood posterior vs the exact conjugate posterior: means within 0.2 sd
    # (MCSE about 0.025 sd at ESS > 400, plus the ratio's approximation error), sds within 15%
    assert np.all(np.abs(draws.mean(0) - res["exact_mean"]) < 0.2 * sd)
    assert np.allclose(draws.std(0), sd, rtol=0.15)
    # the amortized ratio is not overconfident on fresh simulations (expected coverage)
    assert not res["calibration"].overconfident
