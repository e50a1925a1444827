"""numpyro-ebm: energy-based models for NumPyro."""

from . import datasets, energy, infer, nn, objectives
from ._warnings import NumpyroEBMWarning
from .distribution import EnergyDistribution, energy_factor
from .energy import check_energy, gamma_energy, quadratic_energy
from .nn import from_equinox, from_flax_nnx, mlp_energy
from .objectives import Objective

__version__ = "0.1.0"

__all__ = [
    "EnergyDistribution",
    "NumpyroEBMWarning",
    "Objective",
    "check_energy",
    "datasets",
    "energy",
    "energy_factor",
    "from_equinox",
    "from_flax_nnx",
    "gamma_energy",
    "infer",
    "mlp_energy",
    "nn",
    "objectives",
    "quadratic_energy",
]
# Each area below appends its public names here (import + __all__ entry).
# --- sampling (issue 3)
# --- fitting / score matching (issue 4)
# --- NCE, flows, learned likelihoods (issue 5)
# --- contrastive divergence (issue 6)
# --- diagnostics, partition function, testing (issue 7)
