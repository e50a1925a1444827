"""Simulation-based inference: benchmark tasks, learned likelihood ratios with built-in
standardisation, multi-mode posterior sampling and calibration checks."""

from . import tasks
from .calibration import CalibrationResult, expected_coverage
from .posterior import posterior_model, sample_posterior, sir_initial_points
from .ratio import (
    EnsembleEnergy,
    LearnedRatio,
    Simulations,
    StandardizedEnergy,
    check_observation,
    check_simulations,
    fit_ratio,
    standardize,
)
from .tasks import TASK_NAMES, ReferenceConvergenceError, Task, get_task

__all__ = [
    "tasks",
    "TASK_NAMES",
    "Task",
    "ReferenceConvergenceError",
    "get_task",
    "StandardizedEnergy",
    "EnsembleEnergy",
    "standardize",
    "Simulations",
    "check_simulations",
    "LearnedRatio",
    "fit_ratio",
    "check_observation",
    "posterior_model",
    "sir_initial_points",
    "sample_posterior",
    "CalibrationResult",
    "expected_coverage",
]
