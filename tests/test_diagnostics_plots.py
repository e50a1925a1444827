"""Plots: the detailed-balance figure marks rejected chains; the energy landscape draws."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from _diagnostics_chains import exact_draws, langevin_transitions, potential

from numpyro_ebm import quadratic_energy
from numpyro_ebm.diagnostics import detailed_balance, plot_detailed_balance, plot_energy_2d

matplotlib.use("Agg")


def test_plot_detailed_balance_marks_rejections():
    import matplotlib.pyplot as plt

    rep = detailed_balance(langevin_transitions("ula", 0.2, seed=0), potential, ksd=False)
    fig, axes = plot_detailed_balance(rep)
    fluct_ax, rev_ax = axes
    red = [ln for ln in fluct_ax.get_lines() if ln.get_label() == "rejected"][0]
    np.testing.assert_allclose(red.get_ydata(),
                               rep["fluctuation_identity"].details["z"].values)  # all 4 chains
    assert len(rev_ax.get_legend().get_texts()) == 3  # x0*x1, x0*x0^2, x1*x1^2
    # the same figure from the stored dataset
    fig2, _ = plot_detailed_balance(rep.to_dataset())
    plt.close(fig), plt.close(fig2)
    with pytest.raises(ValueError, match="must hold fluctuation_identity_z and reversibility_z"):
        plot_detailed_balance(rep.to_dataset()[["statistic"]])


def test_plot_energy_2d():
    import matplotlib.pyplot as plt

    energy, params = quadratic_energy([0.0, 0.0], covariance=np.eye(2))
    ax = plot_energy_2d(energy, params, exact_draws(0, 50), bounds=((-2, 2), (-3, 3)))
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-3, 3)
    assert len(ax.collections) >= 2  # contours + samples
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="bounds must be"):
        plot_energy_2d(energy, params, bounds=((1, -1), (0, 1)))
