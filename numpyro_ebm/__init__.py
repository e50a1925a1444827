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
from .infer import MALA, ULA, annealed_langevin  # noqa: E402

__all__ += ["MALA", "ULA", "annealed_langevin"]
# --- fitting / score matching (issue 4)
from .fit import FitResult, fit  # noqa: E402
from .objectives import (  # noqa: E402
    denoising_score_matching,
    exact_score_matching,
    geometric_sigmas,
    sliced_score_matching,
)

__all__ += [
    "FitResult",
    "denoising_score_matching",
    "exact_score_matching",
    "fit",
    "geometric_sigmas",
    "sliced_score_matching",
]
# --- NCE, flows, learned likelihoods (issue 5)
from . import flows, likelihood  # noqa: E402
from .flows import FlowDistribution, coupling_flow  # noqa: E402
from .likelihood import DoublyIntractableError, check_model, ratio_factor  # noqa: E402
from .objectives import (  # noqa: E402
    conditional_noise_contrastive_estimation,
    flow_contrastive_estimation,
    noise_contrastive_estimation,
    normalized_distribution,
    ratio_estimation,
)

__all__ += [
    "DoublyIntractableError",
    "FlowDistribution",
    "check_model",
    "conditional_noise_contrastive_estimation",
    "coupling_flow",
    "flow_contrastive_estimation",
    "flows",
    "likelihood",
    "noise_contrastive_estimation",
    "normalized_distribution",
    "ratio_estimation",
    "ratio_factor",
]
# --- contrastive divergence (issue 6)
from .objectives import (  # noqa: E402
    cold_langevin,
    contrastive_divergence,
    persistent_contrastive_divergence,
)

__all__ += ["cold_langevin", "contrastive_divergence", "persistent_contrastive_divergence"]
# --- diagnostics, partition function, testing (issue 7)
from . import diagnostics, partition, testing  # noqa: E402
from .diagnostics import (  # noqa: E402
    DIAGNOSTIC_FIELDS,
    detailed_balance,
    diagnose,
    kernel_stein_discrepancy,
    to_datatree,
)
from .partition import (  # noqa: E402
    ais_log_normalizer,
    grid_log_normalizer,
    held_out_log_likelihood,
)

__all__ += [
    "DIAGNOSTIC_FIELDS",
    "ais_log_normalizer",
    "detailed_balance",
    "diagnose",
    "diagnostics",
    "grid_log_normalizer",
    "held_out_log_likelihood",
    "kernel_stein_discrepancy",
    "partition",
    "testing",
    "to_datatree",
]
