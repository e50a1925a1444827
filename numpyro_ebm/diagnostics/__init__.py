"""Diagnostics: ArviZ conversion, detailed balance, Stein discrepancy, sample quality, plots."""

from . import arviz as arviz  # submodule; kept out of __all__ (would shadow `arviz`)
from . import balance, classifier, metrics, plots, potential, ratio, report, stein, transitions
from .arviz import (
    DIAGNOSTIC_FIELDS,
    add_group,
    diagnose,
    flat_potential,
    from_datatree,
    to_datatree,
    unconstrained_draws,
)
from .balance import (
    detailed_balance,
    fluctuation_identity,
    ratio_consistency,
    reversibility,
)
from .classifier import C2STResult, c2st
from .metrics import (
    FisherResult,
    FrechetResult,
    MMDResult,
    fisher_divergence,
    frechet_distance,
    median_bandwidth,
    mmd,
)
from .plots import plot_detailed_balance, plot_energy_2d
from .potential import potential_and_grad
from .ratio import Recomputed, log_proposal_density, recompute
from .report import Check, DetailedBalanceReport, Verdict
from .stein import KSDResult, kernel_stein_discrepancy
from .transitions import Transitions, from_langevin, make_transitions, probe_transitions

__all__ = [
    "C2STResult",
    "Check",
    "DIAGNOSTIC_FIELDS",
    "DetailedBalanceReport",
    "FisherResult",
    "FrechetResult",
    "KSDResult",
    "MMDResult",
    "Recomputed",
    "Verdict",
    "Transitions",
    "add_group",
    "balance",
    "c2st",
    "classifier",
    "detailed_balance",
    "diagnose",
    "fisher_divergence",
    "flat_potential",
    "fluctuation_identity",
    "from_datatree",
    "frechet_distance",
    "from_langevin",
    "kernel_stein_discrepancy",
    "log_proposal_density",
    "make_transitions",
    "median_bandwidth",
    "metrics",
    "mmd",
    "plot_detailed_balance",
    "plot_energy_2d",
    "plots",
    "potential",
    "potential_and_grad",
    "probe_transitions",
    "ratio",
    "ratio_consistency",
    "recompute",
    "report",
    "reversibility",
    "stein",
    "to_datatree",
    "transitions",
    "unconstrained_draws",
]
