"""Samplers: plain functions over callables (prox(y, t, lam) or score(x, t)) and a time grid."""

from .guidance import batched_guided_prox, combine_guidance, guided_prox
from .pda import PDATrajectory, gaussian_pda_moments, gaussian_prox, pda_sample
from .score import euler_maruyama_sample, pf_ode_euler_sample

__all__ = [
    "combine_guidance",
    "pda_sample",
    "PDATrajectory",
    "euler_maruyama_sample",
    "pf_ode_euler_sample",
    "guided_prox",
    "batched_guided_prox",
    "gaussian_prox",
    "gaussian_pda_moments",
]
