"""The PCD example runs in its small setting and writes its figure, summary and checkpoint."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pcd_two_moons.py"


@pytest.mark.slow
def test_pcd_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "pcd_two_moons.png").stat().st_size > 10_000
    assert (tmp_path / "pcd_checkpoint.npz").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == res["report"]
    assert summary["stopped_reason"] == "completed" and summary["steps"] == 120
    # 120 steps already beat a flat density on the plotting box (log(1/27) = -3.3)
    assert -3.3 < summary["held_out_log_likelihood"] < summary["true_log_likelihood"] + 0.05
    assert 0.5 < summary["health"]["acceptance_rate"] <= 1.0
    # four snapshots of a buffer that fills up (128 chains per step, capacity 4096)
    counts = [len(s) for _, s in res["snapshots"]]
    assert counts == [min(128 * k, 4096) for k in (30, 60, 90, 120)]
    assert all(np.all(np.isfinite(s)) for _, s in res["snapshots"])
    out = capsys.readouterr().out
    assert out.count("== step") == 4 and "true density" in out
