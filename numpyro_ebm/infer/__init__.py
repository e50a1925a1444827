"""Sampling: the functional Langevin core, annealed Langevin and NumPyro MCMC kernels."""

from . import annealed, kernels, langevin, tempering
from .annealed import annealed_langevin
from .kernels import MALA, ULA, MALAState, ULAState
from .langevin import LangevinInfo, LangevinState, mala_step, ula_step
from .tempering import NRPT, NRPT_FIELDS, GaussianReference, NRPTState, round_trip_bound

__all__ = [
    "MALA",
    "MALAState",
    "NRPT",
    "NRPTState",
    "NRPT_FIELDS",
    "GaussianReference",
    "round_trip_bound",
    "ULA",
    "ULAState",
    "LangevinInfo",
    "LangevinState",
    "annealed",
    "annealed_langevin",
    "kernels",
    "langevin",
    "tempering",
    "mala_step",
    "ula_step",
]
