"""Fitting objectives, all following the :class:`Objective` protocol of :mod:`.base`.

Every factory returns a value: equal settings give objectives that compare and hash equal,
so :func:`numpyro_ebm.fit` compiles once for them.

Score matching (exact, sliced, denoising), the NCE family (NCE, ratio estimation,
conditional NCE, flow contrastive estimation), energy discrepancy and MCMC maximum
likelihood (CD, PCD).
"""

from . import replay_buffer
from .base import (
    ByValue,
    HealthCheck,
    Objective,
    ObjectiveInit,
    ObjectiveLoss,
    all_metrics_finite,
    from_spec,
    reverse_gradient,
)
from .conditional_nce import conditional_noise_contrastive_estimation
from .contrastive_divergence import (
    LangevinSettings,
    PCDState,
    cold_langevin,
    contrastive_divergence,
    persistent_contrastive_divergence,
)
from .contrastive_ratio import contrastive_ratio_estimation
from .energy_discrepancy import energy_discrepancy
from .fce import FCEExtras, FCEState, flow_contrastive_estimation, flow_distribution
from .nce import (
    NCEExtras,
    logistic_nce_loss,
    noise_contrastive_estimation,
    noise_log_prob,
    normalized_distribution,
    ratio_estimation,
)
from .replay_buffer import ReplayBuffer
from .score_matching import (
    denoising_score_matching,
    exact_score_matching,
    geometric_sigmas,
    sliced_score_matching,
)

__all__ = [
    "Objective",
    "ObjectiveInit",
    "ObjectiveLoss",
    "HealthCheck",
    "ByValue",
    "all_metrics_finite",
    "from_spec",
    "reverse_gradient",
    # score matching
    "exact_score_matching",
    "sliced_score_matching",
    "denoising_score_matching",
    "geometric_sigmas",
    # NCE family
    "NCEExtras",
    "noise_contrastive_estimation",
    "noise_log_prob",
    "normalized_distribution",
    "logistic_nce_loss",
    "ratio_estimation",
    "contrastive_ratio_estimation",
    "conditional_noise_contrastive_estimation",
    "FCEExtras",
    "FCEState",
    "flow_contrastive_estimation",
    "flow_distribution",
    # energy discrepancy
    "energy_discrepancy",
    # contrastive divergence
    "LangevinSettings",
    "PCDState",
    "ReplayBuffer",
    "cold_langevin",
    "contrastive_divergence",
    "persistent_contrastive_divergence",
    "replay_buffer",
]
