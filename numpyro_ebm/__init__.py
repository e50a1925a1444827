"""numpyro-ebm: energy-based models for NumPyro.

The public API; every name is documented in the API reference.
"""

from . import (
    _import_order,  # first: imports numpyro before any of its submodules
    compose,
    datasets,
    diagnostics,
    energy,
    flows,
    infer,
    likelihood,
    nn,
    objectives,
    partition,
    sbi,
    sharding,
    testing,
    training,
)
from ._warnings import NumpyroEBMWarning
from .compose import conditioned, product_of_experts, restricted, tempered
from .diagnostics import (
    DIAGNOSTIC_FIELDS,
    detailed_balance,
    diagnose,
    kernel_stein_discrepancy,
    to_datatree,
)
from .distribution import EnergyDistribution, energy_factor
from .energy import check_energy, gamma_energy, quadratic_energy
from .flows import FlowDistribution, coupling_flow
from .infer import MALA, NRPT, NRPT_FIELDS, ULA, annealed_langevin
from .likelihood import DoublyIntractableError, check_model, ratio_factor
from .nn import from_equinox, from_flax_nnx, mlp_energy
from .objectives import (
    Objective,
    cold_langevin,
    conditional_noise_contrastive_estimation,
    contrastive_divergence,
    contrastive_ratio_estimation,
    denoising_score_matching,
    energy_discrepancy,
    exact_score_matching,
    flow_contrastive_estimation,
    geometric_sigmas,
    noise_contrastive_estimation,
    normalized_distribution,
    persistent_contrastive_divergence,
    ratio_estimation,
    sliced_score_matching,
)
from .partition import ais_log_normalizer, grid_log_normalizer, held_out_log_likelihood
from .sharding import ShardedChains, gather, make_mesh, shard_leading, sharded_chains
from .training import FitResult, TrainState, fit, init_train_state, make_train_step

__version__ = "0.1.0"

__all__ = [
    # distributions and energies
    "EnergyDistribution",
    "energy_factor",
    "check_energy",
    "quadratic_energy",
    "gamma_energy",
    "mlp_energy",
    "from_equinox",
    "from_flax_nnx",
    # composing energies
    "product_of_experts",
    "tempered",
    "restricted",
    "conditioned",
    # sampling
    "MALA",
    "ULA",
    "annealed_langevin",
    "NRPT",
    "NRPT_FIELDS",
    # fitting
    "fit",
    "FitResult",
    "TrainState",
    "make_train_step",
    "init_train_state",
    "Objective",
    "exact_score_matching",
    "sliced_score_matching",
    "denoising_score_matching",
    "geometric_sigmas",
    "noise_contrastive_estimation",
    "normalized_distribution",
    "ratio_estimation",
    "contrastive_ratio_estimation",
    "conditional_noise_contrastive_estimation",
    "flow_contrastive_estimation",
    "energy_discrepancy",
    "coupling_flow",
    "FlowDistribution",
    "contrastive_divergence",
    "persistent_contrastive_divergence",
    "cold_langevin",
    # learned likelihoods and the doubly-intractable guard
    "ratio_factor",
    "check_model",
    "DoublyIntractableError",
    # diagnostics and partition function
    "DIAGNOSTIC_FIELDS",
    "to_datatree",
    "diagnose",
    "detailed_balance",
    "kernel_stein_discrepancy",
    "ais_log_normalizer",
    "grid_log_normalizer",
    "held_out_log_likelihood",
    # scaling out (jax.sharding)
    "make_mesh",
    "ShardedChains",
    "sharded_chains",
    "shard_leading",
    "gather",
    # modules
    "compose",
    "datasets",
    "diagnostics",
    "energy",
    "flows",
    "infer",
    "likelihood",
    "nn",
    "objectives",
    "partition",
    "sbi",
    "sharding",
    "testing",
    "training",
    "NumpyroEBMWarning",
]

# A session that imported ArviZ and then `numpyro.distributions` before us has unbound
# NumPyro submodules (see _import_order); bind them so numpyro.factor etc. work.
_import_order.relink()
