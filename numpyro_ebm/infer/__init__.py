"""Sampling: the functional Langevin core and NumPyro MCMC kernels."""

from . import langevin
from .langevin import LangevinInfo, LangevinState, mala_step, ula_step

__all__ = ["langevin", "LangevinInfo", "LangevinState", "mala_step", "ula_step"]
