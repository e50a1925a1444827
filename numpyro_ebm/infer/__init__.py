"""Sampling: the functional Langevin core, annealed Langevin and NumPyro MCMC kernels."""

from . import annealed, kernels, langevin
from .annealed import annealed_langevin
from .kernels import MALA, ULA, MALAState, ULAState
from .langevin import LangevinInfo, LangevinState, mala_step, ula_step

__all__ = [
    "MALA",
    "MALAState",
    "ULA",
    "ULAState",
    "LangevinInfo",
    "LangevinState",
    "annealed",
    "annealed_langevin",
    "kernels",
    "langevin",
    "mala_step",
    "ula_step",
]
