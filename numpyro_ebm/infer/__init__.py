"""Sampling: the functional Langevin core, annealed Langevin and NumPyro MCMC kernels."""

from . import adaptation, annealed, kernels, langevin, metric, tempering
from .annealed import annealed_langevin
from .kernels import MALA, ULA, MALAState, ULAState
from .langevin import (
    LangevinInfo,
    LangevinProposal,
    LangevinState,
    accept,
    mala_step,
    metropolis_hastings,
    propose,
    ula_step,
)
from .metric import Metric, make_metric
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
    "LangevinProposal",
    "LangevinState",
    "Metric",
    "accept",
    "adaptation",
    "annealed",
    "annealed_langevin",
    "kernels",
    "langevin",
    "make_metric",
    "mala_step",
    "metric",
    "metropolis_hastings",
    "propose",
    "tempering",
    "ula_step",
]
