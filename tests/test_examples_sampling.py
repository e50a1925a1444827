"""The sampling example runs in its small setting and writes its figure."""

import runpy
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "langevin_samplers.py"


def test_langevin_samplers_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "langevin_samplers.png").stat().st_size > 10_000
    assert set(res["results"]) == {"ULA", "MALA", "NUTS"}
    for r in res["results"].values():
        assert r["samples"].shape == (400, 2) and np.all(np.isfinite(r["samples"]))
        assert "ess_bulk" in r["summary"].columns
    assert 0.3 < res["results"]["MALA"]["acceptance"] < 0.9
    out = capsys.readouterr().out
    assert "== ULA" in out and "== MALA" in out and "== NUTS" in out
