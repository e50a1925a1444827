import runpy
from pathlib import Path

import numpy as np
import pytest

from numpyro_ebm import NumpyroEBMWarning

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_small(tmp_path, capsys):
    ns = runpy.run_path(str(EXAMPLE), run_name="not_main")
    # the --small NUTS chain is too short for its autocorrelation: the KSD says its test has
    # little power (issue 15) rather than printing a p-value as if it meant something
    with pytest.warns(NumpyroEBMWarning, match="little power"):
        res = ns["main"](["--small", "--out", str(tmp_path)])
    for name in ("quickstart.png", "summary_nuts.csv", "summary_mala.csv",
                 "detailed_balance.txt"):
        assert (tmp_path / name).stat().st_size > 100, name
    assert "r_hat" in res["nuts_summary"].columns
    assert np.all(np.isfinite(res["samples"]))
    assert res["result"].stopped_reason == "completed"
    # even 300 NCE steps learn something: better than the N(0, I)-ish start, finite log Z
    ll_nce, ll_grid, ll_true = res["ll"]
    assert np.isfinite(ll_nce) and np.isfinite(ll_grid) and ll_grid > ll_true - 1.5
    assert 0.0 <= res["ksd"].p_value <= 1.0
    out = capsys.readouterr().out
    assert "held-out log-likelihood" in out and "MALA on the learned energy" in out
