"""Text-to-image generation: a diffusers-style pipeline over a model folder (models/io.py).

    pipe = ProxT2IPipeline.from_pretrained("synthfaces-prox")      # a shipped name or a folder
    images = pipe(["a smiling person with red hair"], num_steps=4, guidance_scale=4.0, seed=0)

Sampling is sample_latents: x_T and every step's noise from one generator per image, the network
wrapped by the one proximal CFG (samplers/guidance.py), any sampler of the registry (samplers/registry.py)
on the time grid the model names for it.
"""

from __future__ import annotations

import os
import warnings

import torch

from .errors import UnseenWordsWarning, UsageError
from .models.io import ModelFolder, default_guidance, default_sampler, default_time_grid, load_model_folder
from .models.text import unseen_words
from .samplers.guidance import check_reward_guidance_schedule, guided_model, reward_guided_prox
from .samplers.registry import DEFAULT_SAMPLER, SamplerSpec, get_sampler
from .schedule import Schedule, VPSchedule, time_grid

MAX_STEPS = 1000
MAX_PROMPT_CHARS = 2000


def sampler_grid(spec: SamplerSpec, name: str, kind: str | None, num_steps: int) -> torch.Tensor:
    """The grid [N + 1] the sampler `name` walks: `kind` (uniform, quadratic, power:R; None = uniform). Samplers
    with their own timesteps get the uniform grid (only its step count is used); a grid asked for is an error."""
    if not spec.walks_grid and kind is not None:
        raise UsageError(f"--time-grid applies to the samplers that walk the project's time grid; {name} uses diffusers' own timesteps")
    return time_grid(num_steps, kind or "uniform")


def resolve_sampling(objective: str, sampler: str | None, num_steps: int, time_grid: str | None) -> tuple[SamplerSpec, torch.Tensor]:
    """The sampler (None: the objective's default) and its grid [N + 1]; a bad name, step count or grid is a UsageError."""
    name = sampler or DEFAULT_SAMPLER[objective]
    spec = get_sampler(name, objective)
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1 or num_steps > MAX_STEPS:
        raise UsageError(f"steps must be an integer in 1..{MAX_STEPS}, got {num_steps!r}")
    return spec, sampler_grid(spec, name, time_grid, num_steps)


class RewardGuidance:
    """Differentiable rewards to climb while sampling (`--reward-guidance NAME=W[,...]`): W is the step each
    reward's per-image gradient (normalised to unit RMS) makes, in latent units, scaled over t by `schedule`
    (samplers.guidance.REWARD_GUIDANCE_SCHEDULES). Loaded and checked at construction: a weight that is negative,
    a reward without a gradient or a missing reward folder is a UsageError before any sampling."""

    def __init__(self, spec: str | dict, schedule: str = "late", device="cpu"):
        from .rewards import combine_rewards, parse_reward_spec

        check_reward_guidance_schedule(schedule)
        weights = parse_reward_spec(spec if isinstance(spec, str) else ",".join(f"{k}={w}" for k, w in spec.items()))
        self.weights, self.schedule = weights, schedule
        self.reward = combine_rewards(weights, device=device)
        self.spec = ",".join(f"{k}={w:g}" for k, w in weights.items())

    def direction(self, decode, prompts: list[str]):
        """d(x0_hat [B, C, h, w]) -> [B, C, h, w]: sum_k W_k g_k / rms(g_k), g_k the gradient of reward k of
        decode(x0_hat) with respect to x0_hat, row by row (one image's step never depends on another's)."""
        from .rewards.registry import reward_gradient

        def direction(x0_hat: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                leaf = x0_hat.detach().requires_grad_(True)
                terms = self.reward.terms(decode(leaf).float().clamp(0, 1), prompts)
                total = reward_gradient(terms, self.weights, leaf, "row", "it cannot guide sampling; use a differentiable one")
            return total.detach()

        return direction


def check_reward_guidance(objective: str, sampler: str | None) -> None:
    """Reward guidance follows prox steps: a score model or sampler cannot take it (a UsageError)."""
    name = sampler or DEFAULT_SAMPLER[objective]
    if get_sampler(name).objective != "prox":
        raise UsageError(f"reward guidance acts after each prox step; sampler {name!r} drives a score model "
                         "(use a prox model with pda-hybrid or pda-backward)")


@torch.no_grad()
def sample_latents(net, objective: str, prompts: list[str], latent_shape: tuple, num_steps: int = 4,
                   guidance_scale: float = 4.0, sampler: str | None = None, seeds: list[int] | None = None,
                   guidance_interval=None, device="cpu", time_grid: str | None = None,
                   schedule: Schedule | None = None, callback=None, reward_guidance: RewardGuidance | None = None,
                   decode=None) -> torch.Tensor:
    """Latents [B, C, h, w] for B prompts; image i uses torch.Generator seeded with seeds[i] for x_T and
    every step's noise, so it does not depend on the rest of the batch. time_grid: uniform (default),
    quadratic or power:R for the samplers that walk a grid. schedule: the model's (default VP). callback(info)
    after every step: the sampler's record (samplers/common.py), info["i"] = steps done - 1. reward_guidance
    (prox samplers only) climbs its rewards after each prox step, through `decode` (latents -> images in [0, 1])."""
    spec, grid = resolve_sampling(objective, sampler, num_steps, time_grid)
    if reward_guidance is not None:
        check_reward_guidance(objective, sampler)
    schedule = schedule or VPSchedule()
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]  # CPU generators: the same draws on any device
    x_T = torch.stack([torch.randn(latent_shape, generator=g) for g in gens]).to(device)  # the chain stays float32
    from .models.conditional import TextConditionedUViT, TextMemo

    if isinstance(net, TextConditionedUViT):  # weights are fixed here: encode the prompts once, not every step
        net = TextMemo(net)
    fn = guided_model(net, objective, prompts, guidance_scale, guidance_interval, schedule)
    if reward_guidance is not None:
        fn = reward_guided_prox(fn, reward_guidance.direction(decode, prompts), reward_guidance.schedule, schedule)
    return spec(fn, x_T, grid, generator=gens, schedule=schedule, callback=callback)


class ProxT2IPipeline:
    """Diffusers-style entry point: from_pretrained(NAME_OR_DIR), then call with prompts."""

    def __init__(self, model: ModelFolder):
        self.model = model
        self.config, self.net, self.autoencoder, self.path = model.config, model.net, model.autoencoder, model.path
        self.schedule = model.schedule
        self.objective = model.objective
        self.default_sampler = default_sampler(self.config)  # a consistency model's own sampler, else the objective's
        self.image_size = int(self.config["image_size"])
        down = getattr(self.autoencoder, "downsample", 1)
        self.latent_shape = (self.autoencoder.latent_channels, self.image_size // down, self.image_size // down)
        self.device, self.dtype, self.compiled = torch.device("cpu"), torch.float32, False

    def to(self, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None) -> "ProxT2IPipeline":
        """Move the networks (in place) to `device` and cast their weights to `dtype` (None: keep each);
        returns self. The sampler's chain stays float32 on the device: only the networks run in `dtype`."""
        from .devices import resolve_device, resolve_dtype

        device = self.device if device is None else resolve_device(device)
        dtype = resolve_dtype(self.dtype if dtype is None else dtype, device)
        self.net.to(device=device, dtype=dtype)
        self.autoencoder.to(device=device, dtype=dtype)
        self.device, self.dtype = device, dtype
        return self

    def compile(self, **options) -> "ProxT2IPipeline":
        """torch.compile the U-ViT in place (the first calls at each batch size pay the compilation); returns self."""
        self.net.uvit.compile(**options)
        self.compiled = True
        return self

    def time_grid_for(self, sampler: str | None = None, asked: str | None = None) -> str:
        """The grid a call with `sampler` (None: the default sampler) walks: `asked`, else this model's
        default for that sampler (models.io.default_time_grid); "diffusers" for samplers with their own timesteps."""
        sampler = sampler or self.default_sampler
        if not get_sampler(sampler).walks_grid:
            return "diffusers"
        return asked or default_time_grid(self.config, sampler)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None, device: str | torch.device | None = None,
                        torch_dtype: str | torch.dtype | None = None, compile: bool = False) -> "ProxT2IPipeline":
        """A shipped name (`proxt2i models`) or a model folder; None: the default of `proxt2i generate`.
        device (default cpu; "auto": cuda if available) and torch_dtype (default float32) as in .to();
        compile: torch.compile the U-ViT. A bad device or dtype is refused before the weights are read."""
        from .devices import resolve
        from .shipped import DEFAULT_MODEL, resolve_model

        where, dtype = resolve(device or "cpu", torch_dtype)
        pipe = cls(load_model_folder(resolve_model(str(name_or_path or DEFAULT_MODEL)), dtype=dtype))
        if (where, dtype) != (pipe.device, pipe.dtype):
            pipe.to(where, dtype)
        return pipe.compile() if compile else pipe

    def unseen_words(self, prompt: str) -> list[str]:
        """The words of `prompt` this model's text encoder never saw in training, once each, in order."""
        return unseen_words(getattr(self.net, "text_encoder", None), prompt)

    def unseen_words_message(self, prompt: str) -> str | None:
        """One line naming the prompt's unseen words and how each is read, or None if it has none."""
        words = self.unseen_words(prompt)
        if not words:
            return None
        pieces = getattr(self.net.text_encoder, "pieces", None)
        shown = []
        for w in words:
            known = [p for p in pieces(w) if p] if pieces else []
            shown.append(f"{w} (read as {' '.join(known)})" if known else w)
        short = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        return f"prompt {short!r} has words the model never saw in training, generating anyway: {', '.join(shown)}"

    def warn_unseen_words(self, prompts: list[str]) -> None:
        """One UnseenWordsWarning per distinct prompt with unseen words."""
        for p in dict.fromkeys(prompts):
            message = self.unseen_words_message(p)
            if message:
                warnings.warn(message, UnseenWordsWarning, stacklevel=3)

    def guidance_or_default(self, guidance_scale: float | None) -> float:
        """guidance_scale, else this model's default (models.io.default_guidance: 4, or 1 when it is distilled in)."""
        return default_guidance(self.config) if guidance_scale is None else guidance_scale

    def grid_kind(self, sampler: str | None, time_grid: str | None) -> str | None:
        """The grid kind a call walks: `time_grid`, else this model's default for the sampler; samplers with their
        own timesteps get `time_grid` as given (refused downstream if it is set)."""
        used = sampler or self.default_sampler
        return self.time_grid_for(used, time_grid) if get_sampler(used).walks_grid else time_grid

    def sample_latents(self, prompts: list[str], num_steps: int = 4, guidance_scale: float | None = None, sampler: str | None = None,
                       seeds: list[int] | None = None, guidance_interval=None, time_grid: str | None = None, net=None,
                       device=None, callback=None, reward_guidance: RewardGuidance | None = None) -> torch.Tensor:
        """Latents [B, C, h, w] (float32, on `device`: default the pipeline's) with this model's shape, schedule,
        default time grid and default guidance (guidance_scale None); `net` replaces the network (e.g. an EMA copy
        being fine-tuned)."""
        return sample_latents(self.net if net is None else net, self.objective, prompts, self.latent_shape, num_steps,
                              self.guidance_or_default(guidance_scale), sampler or self.default_sampler, seeds, guidance_interval, device=self.device if device is None else device,
                              time_grid=self.grid_kind(sampler, time_grid), schedule=self.schedule,
                              callback=callback, reward_guidance=reward_guidance, decode=self._decode_differentiable)

    def _decode_differentiable(self, latents: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(latents.to(self.device, self.dtype))

    def reward_guidance(self, spec: str | dict, schedule: str = "late") -> RewardGuidance:
        """The RewardGuidance of `spec` (e.g. "clip=0.3") for this pipeline's device, checked against its objective."""
        check_reward_guidance(self.objective, self.default_sampler)
        return RewardGuidance(spec, schedule, self.device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, h, w] -> images [B, 3, S, S] in [0, 1], float32 on the CPU."""
        return self.autoencoder.decode(latents.to(self.device, self.dtype)).float().clamp(0, 1).cpu()

    def __call__(self, prompts, num_steps: int = 4, guidance_scale: float | None = None, sampler: str | None = None,
                 seed: int | None = 0, generator: torch.Generator | None = None, guidance_interval=None,
                 batch_size: int = 16, output_type: str = "pil", progress: bool = False, time_grid: str | None = None,
                 reward_guidance: str | dict | RewardGuidance | None = None, reward_guidance_schedule: str = "late"):
        """prompts: a string or a list. Image i uses seed + i (or seeds drawn from `generator`). guidance_scale: the
        CFG scale, default the model's own (4; 1 for a guidance-distilled model, see guidance_or_default).
        time_grid: "uniform", "quadratic" or "power:R" (default: the model's own, see time_grid_for; else uniform).
        reward_guidance: "NAME=W,..." (or a RewardGuidance): climb these differentiable rewards after every prox
        step, a step of W per reward (RewardGuidance), weighted over t by reward_guidance_schedule (constant, late, final).
        Returns a list of PIL images, or a tensor [N, 3, S, S] in [0, 1] with output_type="tensor"."""
        from tqdm import tqdm

        from .imaging import to_pil

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        check_prompts(prompts)
        resolve_sampling(self.objective, sampler or self.default_sampler, num_steps, self.grid_kind(sampler, time_grid))  # refuse bad settings first
        if reward_guidance is not None:
            check_reward_guidance(self.objective, sampler or self.default_sampler)
            if not isinstance(reward_guidance, RewardGuidance):
                reward_guidance = self.reward_guidance(reward_guidance, reward_guidance_schedule)
        self.warn_unseen_words(prompts)
        if generator is not None:
            seeds = torch.randint(0, 2**62, (len(prompts),), generator=generator).tolist()
        else:
            seeds = [(0 if seed is None else int(seed)) + i for i in range(len(prompts))]
        chunks = []
        for i in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress or len(prompts) <= batch_size):
            lat = self.sample_latents(prompts[i : i + batch_size], num_steps, guidance_scale, sampler, seeds[i : i + batch_size],
                                      guidance_interval, time_grid, reward_guidance=reward_guidance)
            chunks.append(self.decode(lat))
        images = torch.cat(chunks)
        return images if output_type == "tensor" else to_pil(images)


def check_prompts(prompts: list[str]) -> None:
    if not prompts:
        raise UsageError("no prompts given")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UsageError("empty prompt; describe the image, e.g. \"a smiling woman with long red hair and glasses\"")
        if len(p) > MAX_PROMPT_CHARS:
            raise UsageError(f"prompt of {len(p)} characters is too long (at most {MAX_PROMPT_CHARS})")
