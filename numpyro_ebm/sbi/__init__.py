"""Simulation-based inference: benchmark tasks, learned likelihood ratios, posterior
sampling and calibration checks."""

from . import tasks
from .tasks import TASK_NAMES, ReferenceConvergenceError, Task, get_task

__all__ = ["tasks", "TASK_NAMES", "Task", "ReferenceConvergenceError", "get_task"]
