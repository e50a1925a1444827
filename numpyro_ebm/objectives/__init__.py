"""Fitting objectives: score matching, NCE family, contrastive divergence."""

from .base import Objective, reverse_gradient

__all__ = ["Objective", "reverse_gradient"]
# --- score matching (issue 4): add imports below
from .score_matching import (  # noqa: E402
    denoising_score_matching,
    exact_score_matching,
    geometric_sigmas,
    sliced_score_matching,
)

__all__ += [
    "denoising_score_matching",
    "exact_score_matching",
    "geometric_sigmas",
    "sliced_score_matching",
]
# --- NCE family (issue 5): add imports below
from .conditional_nce import conditional_noise_contrastive_estimation  # noqa: E402
from .fce import FCEExtras, FCEState, flow_contrastive_estimation, flow_distribution  # noqa: E402
from .nce import (  # noqa: E402
    NCEExtras,
    logistic_nce_loss,
    noise_contrastive_estimation,
    normalized_distribution,
    ratio_estimation,
)

__all__ += [
    "FCEExtras",
    "FCEState",
    "NCEExtras",
    "conditional_noise_contrastive_estimation",
    "flow_contrastive_estimation",
    "flow_distribution",
    "logistic_nce_loss",
    "noise_contrastive_estimation",
    "normalized_distribution",
    "ratio_estimation",
]
# --- contrastive divergence (issue 6): add imports below
from . import replay_buffer  # noqa: E402
from .contrastive_divergence import (  # noqa: E402
    LangevinSettings,
    PCDState,
    cold_langevin,
    contrastive_divergence,
    persistent_contrastive_divergence,
)
from .replay_buffer import ReplayBuffer  # noqa: E402

__all__ += [
    "LangevinSettings",
    "PCDState",
    "ReplayBuffer",
    "cold_langevin",
    "contrastive_divergence",
    "persistent_contrastive_divergence",
    "replay_buffer",
]
