"""The multimodal example runs in its small setting and writes its figure."""

import runpy
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multimodal_tempering.py"


def test_multimodal_tempering_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    res = ns["main"](["--small", "--out", str(tmp_path)])
    assert (tmp_path / "multimodal_tempering.png").stat().st_size > 10_000
    assert set(res["results"]) == {"MALA", "NUTS", "NRPT"}
    for r in res["results"].values():
        np.testing.assert_allclose(r["weights"].sum(), 1.0)
    assert res["barrier"] > 0 and res["round_trip_rate"] > 0
    out = capsys.readouterr().out
    assert "== NRPT" in out and "round trips per scan" in out
