"""The diagnostics example runs (--small): ULA flagged by the fluctuation identity and the
KSD, MALA and NUTS pass."""

import json
import runpy
from pathlib import Path

import pytest
import xarray as xr

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diagnostics_ula_mala_nuts.py"


@pytest.mark.slow
def test_diagnostics_example_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    summary = ns["main"](["--small", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "summary.json").read_text())["rows"][0]["sampler"] == "MALA"
    rows = {r["sampler"]: r for r in summary["rows"]}
    # R-hat cannot tell ULA from MALA; the fluctuation identity and the KSD can
    assert rows["ULA"]["max_rhat"] < 1.05
    assert rows["ULA"]["fluctuation_identity"]["passed"] is False
    assert rows["ULA"]["fluctuation_identity_max_abs_z"] > 4
    assert rows["ULA"]["stein_discrepancy"]["passed"] is False
    for name in ("MALA", "NUTS"):
        assert rows[name]["fluctuation_identity"]["passed"], rows[name]
    assert rows["MALA"]["ratio_consistency"]["passed"]
    assert summary["ksd_exact_p_value"] > 0.01
    back = xr.open_datatree(tmp_path / "ula.nc")
    assert int(back["detailed_balance"]["passed"].sel(check="fluctuation_identity")) == 0
    assert (tmp_path / "diagnostics.png").stat().st_size > 10_000
    assert "fluctuation_identity" in capsys.readouterr().out
