"""The one sampler registry: name -> SamplerSpec. Pipeline, bench, toy, GRPO and R0 all read it.

Adding a sampler is one file with a function of the shared signature (samplers/common.py) and one
line below (docs/architecture.md shows the diff).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import UsageError
from ..schedule import Schedule, VPSchedule, backward_undefined_reason, step_sizes
from .chains import Chain, EulerMaruyamaChain, PDAHybridChain
from .consistency import consistency_sample
from .diffusers_schedulers import diffusers_score_sample
from .pda import pda_sample
from .score import euler_maruyama_sample, pf_ode_euler_sample


@dataclass(frozen=True)
class SamplerSpec:
    """sample(model, x_T, grid, **kw) with `options` fixed. objective: the callable it needs ("prox":
    prox(y, t, lam); "score": score(x, t)). walks_grid: False for samplers with their own timesteps (only
    the grid's step count is used). undefined_on(gammas [N]) -> a reason, or None where it is defined.
    chain: its Gaussian-chain view for RL (samplers/chains.py), None if it has none."""

    sample: Callable
    objective: str
    options: tuple = ()
    walks_grid: bool = True
    undefined_on: Optional[Callable] = None
    chain: Optional[type[Chain]] = None

    def __call__(self, model, x_T, grid, **kw):
        return self.sample(model, x_T, grid, **dict(self.options), **kw)

    def undefined_reason(self, grid, schedule: Schedule | None = None) -> str | None:
        """None if the sampler runs on this grid [N + 1], else why not (e.g. PDA-backward needs gamma < 2)."""
        if self.undefined_on is None or not self.walks_grid:
            return None
        return self.undefined_on(step_sizes(schedule or VPSchedule(), grid))


SAMPLERS: dict[str, SamplerSpec] = {
    "pda-hybrid": SamplerSpec(pda_sample, "prox", (("mode", "hybrid"),), chain=PDAHybridChain),
    "pda-backward": SamplerSpec(pda_sample, "prox", (("mode", "backward"),), undefined_on=backward_undefined_reason),
    "euler-maruyama": SamplerSpec(euler_maruyama_sample, "score"),
    "euler-maruyama-denoise": SamplerSpec(euler_maruyama_sample, "score", (("denoise_final", True),), chain=EulerMaruyamaChain),
    "pf-ode-euler": SamplerSpec(pf_ode_euler_sample, "score"),
    "ddim": SamplerSpec(diffusers_score_sample, "score", (("scheduler", "ddim"),), walks_grid=False),
    "dpm-solver++-2m": SamplerSpec(diffusers_score_sample, "score", (("scheduler", "dpm-solver++-2m"),), walks_grid=False),
    "dpm-solver++-2m-sde": SamplerSpec(diffusers_score_sample, "score", (("scheduler", "dpm-solver++-2m-sde"),), walks_grid=False),
    "unipc": SamplerSpec(diffusers_score_sample, "score", (("scheduler", "unipc"),), walks_grid=False),
    "euler-diffusers": SamplerSpec(diffusers_score_sample, "score", (("scheduler", "euler"),), walks_grid=False),
    "consistency": SamplerSpec(consistency_sample, "score"),  # for models trained with consistency=training / distillation
}
DEFAULT_SAMPLER = {"prox": "pda-hybrid", "score": "euler-maruyama-denoise"}


def get_sampler(name: str, objective: str | None = None) -> SamplerSpec:
    """The spec of `name`; with `objective`, also checks that the sampler drives that kind of model."""
    if name not in SAMPLERS:
        raise UsageError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    spec = SAMPLERS[name]
    if objective is not None and spec.objective != objective:
        raise UsageError(f"sampler {name!r} needs a {spec.objective} model, but this is a {objective} model; "
                         f"use one of: {', '.join(samplers_for(objective))}")
    return spec


def samplers_for(objective: str) -> list[str]:
    """Names of the samplers that drive a model of this objective, in registry order."""
    return [name for name, spec in SAMPLERS.items() if spec.objective == objective]


def chain_samplers() -> list[str]:
    """Names of the samplers with a Gaussian-chain view (what GRPO can fine-tune)."""
    return [name for name, spec in SAMPLERS.items() if spec.chain is not None]
