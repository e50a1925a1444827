import runpy
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_small(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--small", "--out", str(tmp_path)])
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
    assert (tmp_path / "summary.csv").exists()
    assert "r_hat" in res["summary"].columns or "rhat" in "".join(res["summary"].columns)
    assert np.all(np.isfinite(res["samples"]))
    assert "NUTS on the banana energy" in capsys.readouterr().out
