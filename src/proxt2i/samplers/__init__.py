"""Samplers: plain functions over callables (prox(y, t, lam) or score(x, t)) and a time grid, one
signature (common.py) and one registry (registry.py)."""

from .common import batch_randn
from .guidance import combine_guidance, guided_eps, guided_model
from .pda import PDATrajectory, gaussian_pda_moments, gaussian_prox, pda_sample
from .registry import DEFAULT_SAMPLER, SAMPLERS, SamplerSpec, get_sampler, samplers_for
from .score import euler_maruyama_sample, pf_ode_euler_sample

__all__ = [
    "SAMPLERS", "DEFAULT_SAMPLER", "SamplerSpec", "get_sampler", "samplers_for",
    "pda_sample", "PDATrajectory", "euler_maruyama_sample", "pf_ode_euler_sample",
    "combine_guidance", "guided_eps", "guided_model", "batch_randn",
    "gaussian_prox", "gaussian_pda_moments",
]
