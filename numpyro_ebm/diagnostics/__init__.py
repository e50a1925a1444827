"""Diagnostics: ArviZ conversion, detailed balance, Stein discrepancy, sample quality, plots."""

from . import arviz as arviz  # submodule; kept out of __all__ (would shadow `arviz`)
from . import balance, classifier, metrics, plots, ratio, stein, transitions
from .arviz import (
    DIAGNOSTIC_FIELDS,
    add_group,
    diagnose,
    flat_potential,
    from_datatree,
    to_datatree,
)
from .balance import (
    DetailedBalanceReport,
    Verdict,
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
from .ratio import Recomputed, log_proposal_density, recompute
from .stein import KSDResult, kernel_stein_discrepancy
from .transitions import Transitions, from_langevin, make_transitions, probe_transitions

__all__ = [
    "C2STResult",
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
    "probe_transitions",
    "ratio",
    "ratio_consistency",
    "recompute",
    "reversibility",
    "stein",
    "to_datatree",
    "transitions",
]
