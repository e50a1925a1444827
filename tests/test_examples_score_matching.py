"""The score matching example runs in its small setting and writes its figure and summary."""

import json
import runpy
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "score_matching_two_moons.py"


def test_score_matching_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "score_matching_two_moons.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary) == 4 and summary.keys() == res["report"].keys()
    for r in summary.values():
        assert r["stopped_reason"] == "completed"
        # even 100 steps beat a flat density on the plotting box (log(1/27) = -3.3)
        assert np.isfinite(r["held_out_log_likelihood"]) and r["held_out_log_likelihood"] > -3.3
    out = capsys.readouterr().out
    assert out.count("== ") == 4 and "true density" in out
