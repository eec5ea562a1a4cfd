"""Text-to-image generation: the model folder format and a diffusers-style pipeline.

Model folder (one format for shipped, trained and user models; never pickles):
    config.json               {"format": "proxt2i-model", "version": 1, "objective": "prox"|"score",
                               "uvit": {...}, "text_encoder": {...}, "autoencoder": {...},
                               "schedule": {"type": "vp", ...}, "image_size": S, "recipe": {...}}
    uvit.safetensors          U-ViT weights (EMA)
    text_encoder.safetensors  embedded text encoder weights (absent for frozen Hugging Face encoders)
    autoencoder.safetensors   small VAE weights (absent for identity / diffusers VAEs)

    pipe = ProxT2IPipeline.from_pretrained("synthfaces-prox")      # a shipped name or a folder
    images = pipe(["a smiling person with red hair"], num_steps=4, guidance_scale=4.0, seed=0)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import torch

from .errors import UsageError, read_json
from .models.text import SAVED_TEXT_ENCODERS
from .parameterization import eps_from_score_model, prox_from_eps, score_from_eps_model
from .samplers import euler_maruyama_sample, pda_sample, pf_ode_euler_sample
from .samplers.diffusers_schedulers import diffusers_sample
from .samplers.guidance import check_guidance_scale, combine_guidance
from .schedule import VPSchedule

FORMAT, VERSION = "proxt2i-model", 1
CONFIG_KEYS = {"format", "version", "objective", "uvit", "text_encoder", "autoencoder", "schedule", "image_size", "recipe", "sampling"}
MAX_STEPS = 1000


def _diffusers(scheduler: str) -> Callable:
    """A diffusers scheduler over the guided score callable, turned back into eps = -sqrt(1 - alpha) score.
    Its timesteps are diffusers' own ("trailing" spacing), so it takes no time grid."""
    return lambda f, x, n, g, grid=None: diffusers_sample(eps_from_score_model(f, VPSchedule()), x, n, scheduler, generator=g)


# sampler name -> (objective it needs, sampler over the guided callable: run(fn, x_T, num_steps, generators, grid))
SAMPLERS: dict[str, tuple[str, Callable]] = {
    "pda-hybrid": ("prox", lambda f, x, n, g, grid=None: pda_sample(f, x, n, mode="hybrid", generator=g, grid=grid)),
    "pda-backward": ("prox", lambda f, x, n, g, grid=None: pda_sample(f, x, n, mode="backward", generator=g, grid=grid)),
    "euler-maruyama": ("score", lambda f, x, n, g, grid=None: euler_maruyama_sample(f, x, n, generator=g, grid=grid)),
    "euler-maruyama-denoise": ("score", lambda f, x, n, g, grid=None: euler_maruyama_sample(f, x, n, denoise_final=True, generator=g, grid=grid)),
    "pf-ode-euler": ("score", lambda f, x, n, g, grid=None: pf_ode_euler_sample(f, x, n, grid=grid)),
    "ddim": ("score", _diffusers("ddim")),
    "dpm-solver++-2m": ("score", _diffusers("dpm-solver++-2m")),
    "dpm-solver++-2m-sde": ("score", _diffusers("dpm-solver++-2m-sde")),
    "unipc": ("score", _diffusers("unipc")),
    "euler-diffusers": ("score", _diffusers("euler")),
}
DEFAULT_SAMPLER = {"prox": "pda-hybrid", "score": "euler-maruyama-denoise"}
# samplers that walk the project's time grid. The grid is uniform unless asked for, or unless the model
# folder names its own default: config.json "sampling": {"time_grid": {"pda-hybrid": "quadratic"}} (the
# shipped prox model: a large first proximal step reads the prompt better there; docs/models.md, "Time
# grid". It is a property of the trained model: on the 5000-step model the uniform grid was better)
GRID_SAMPLERS = ("pda-hybrid", "pda-backward", "euler-maruyama", "euler-maruyama-denoise", "pf-ode-euler")


def sampler_time_grid(sampler: str, kind: str | None, num_steps: int):
    """The grid [N + 1] `sampler` walks: `kind` (uniform, quadratic, power:R; None = uniform);
    None for diffusers samplers (their own timesteps; a grid asked for is an error)."""
    from .schedule import time_grid

    if sampler not in GRID_SAMPLERS:
        if kind is not None:
            raise UsageError(f"--time-grid applies to {', '.join(GRID_SAMPLERS)}; {sampler} uses diffusers' own timesteps")
        return None
    return time_grid(num_steps, kind or "uniform")


# ---------------------------------------------------------------------------------------------- format
def save_pipeline(path, uvit, text_encoder, autoencoder, objective: str, image_size: int, recipe: dict | None = None,
                  sampling: dict | None = None) -> Path:
    """Write a model folder atomically (a temporary folder renamed into place). sampling: the model's
    sampling defaults, e.g. {"time_grid": {"pda-hybrid": "quadratic"}} (omitted: uniform grids)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        config = {"format": FORMAT, "version": VERSION, "objective": objective, "uvit": uvit.config.to_dict(),
                  "text_encoder": text_encoder.config(), "autoencoder": autoencoder.config(),
                  "schedule": {"type": "vp", "beta_min": 0.1, "beta_max": 20.0}, "image_size": image_size, "recipe": recipe or {}}
        if sampling:
            config["sampling"] = sampling
        save_file(_half(uvit), tmp / "uvit.safetensors")
        if config["text_encoder"]["type"] in SAVED_TEXT_ENCODERS:
            save_file(_half(text_encoder), tmp / "text_encoder.safetensors")
        if config["autoencoder"]["type"] == "small_vae":
            save_file(_half(autoencoder), tmp / "autoencoder.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        os.chmod(tmp, 0o755)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _half(module: torch.nn.Module) -> dict:
    """State dict with floating tensors stored as float16 (half the size; loading casts back to float32).
    Training checkpoints stay float32: only exported model folders are halved."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous() for k, v in module.state_dict().items()}


def read_model_config(path: Path) -> dict:
    if not path.is_dir():
        raise UsageError(f"model folder {str(path)!r} not found; give a folder with config.json and uvit.safetensors, "
                         f"or a shipped name (see `proxt2i models`)")
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise UsageError(f"{str(path)!r} has no config.json; is it a proxt2i model folder?")
    cfg = read_json(cfg_path, "model config")
    if cfg.get("format") != FORMAT or cfg.get("version") != VERSION:
        raise UsageError(f"{cfg_path} is not a proxt2i model config (format {FORMAT!r} version {VERSION} expected)")
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise UsageError(f"{cfg_path} has unknown keys {sorted(unknown)}; valid keys: {sorted(CONFIG_KEYS)}")
    return cfg


def _load_weights(module: torch.nn.Module, file: Path) -> None:
    from safetensors.torch import load_file

    if not file.exists():
        raise UsageError(f"missing weights file {file}; the model folder is incomplete")
    try:
        state = load_file(file)
    except Exception as err:  # safetensors raises its own error type for truncated / corrupt files
        raise UsageError(f"weights file {file} is corrupt or truncated ({str(err).splitlines()[0]})") from None
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise UsageError(f"weights in {file} do not match config.json ({str(err).splitlines()[0]})") from None


def load_pipeline(path) -> tuple[dict, torch.nn.Module, torch.nn.Module]:
    """(config, network, autoencoder) from a model folder; network is a TextConditionedUViT in eval mode."""
    from .models.autoencoder import autoencoder_from_config
    from .models.conditional import TextConditionedUViT
    from .models.text import text_encoder_from_config
    from .models.uvit import UViT, UViTConfig

    path = Path(path)
    cfg = read_model_config(path)
    uvit = UViT(UViTConfig.from_dict(cfg["uvit"]))
    _load_weights(uvit, path / "uvit.safetensors")
    text = text_encoder_from_config(cfg["text_encoder"])
    if cfg["text_encoder"]["type"] in SAVED_TEXT_ENCODERS:
        _load_weights(text, path / "text_encoder.safetensors")
    ae = autoencoder_from_config(cfg["autoencoder"])
    if cfg["autoencoder"]["type"] == "small_vae":
        _load_weights(ae, path / "autoencoder.safetensors")
    return cfg, TextConditionedUViT(uvit, text).eval(), ae.eval()


# ---------------------------------------------------------------------------------------------- sampling
def guided_callable(net, objective: str, prompts: list[str], guidance_scale: float, guidance_interval=None):
    """The network wrapped as a guided prox(y, t, lam) (prox models) or score(x, t) (score models).

    Proximal CFG (ProxT2I): prox_w = prox_u + w (prox_c - prox_u), which in the eps parameterisation is
    CFG on eps; cond and uncond run as one batch of 2B. w = 1 skips the unconditional pass.
    """
    check_guidance_scale(guidance_scale)
    b = len(prompts)
    both = list(prompts) + [""] * b

    def eps_guided(x, t, lam):
        if guidance_scale == 1.0:
            return net(x, t, lam, prompts)
        e = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([lam, lam]), both)
        e_c, e_u = e[:b], e[b:]
        return combine_guidance(e_c, e_u, t, guidance_scale, guidance_interval)

    if objective == "prox":
        return lambda y, t, lam: prox_from_eps(y, eps_guided(y, t, lam), lam)
    return score_from_eps_model(lambda x, t: eps_guided(x, t, torch.zeros_like(t)), VPSchedule())


@torch.no_grad()
def sample_latents(net, objective: str, prompts: list[str], latent_shape: tuple, num_steps: int = 4,
                   guidance_scale: float = 4.0, sampler: str | None = None, seeds: list[int] | None = None,
                   guidance_interval=None, device="cpu", time_grid: str | None = None) -> torch.Tensor:
    """Latents [B, C, h, w] for B prompts; image i uses torch.Generator seeded with seeds[i] for x_T and
    every step's noise, so it does not depend on the rest of the batch. time_grid: uniform (default),
    quadratic or power:R for the project's samplers."""
    sampler = sampler or DEFAULT_SAMPLER[objective]
    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    needs, run = SAMPLERS[sampler]
    if needs != objective:
        valid = [k for k, (o, _) in SAMPLERS.items() if o == objective]
        raise UsageError(f"sampler {sampler!r} needs a {needs} model, but this is a {objective} model; use one of: {', '.join(valid)}")
    if not isinstance(num_steps, int) or num_steps < 1 or num_steps > MAX_STEPS:
        raise UsageError(f"steps must be an integer in 1..{MAX_STEPS}, got {num_steps!r}")
    grid = sampler_time_grid(sampler, time_grid, num_steps)
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    x_T = torch.stack([torch.randn(latent_shape, generator=g) for g in gens]).to(device)
    from .models.conditional import TextConditionedUViT, TextMemo

    if isinstance(net, TextConditionedUViT):  # weights are fixed here: encode the prompts once, not every step
        net = TextMemo(net)
    fn = guided_callable(net, objective, prompts, guidance_scale, guidance_interval)
    return run(fn, x_T, num_steps, gens, grid=grid)


def save_grid(images: torch.Tensor, path, cols: int = 4, pad: int = 2) -> None:
    """images [N, 3, H, W] in [0, 1] -> one PNG grid, written atomically."""
    from PIL import Image

    from .atomic import atomic_save_image

    n, _, h, w = images.shape
    rows = (n + cols - 1) // cols
    canvas = torch.ones(3, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = images[i]
    arr = (canvas.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    atomic_save_image(Image.fromarray(arr), path)


def to_pil(images: torch.Tensor) -> list:
    from PIL import Image

    arr = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


class ProxT2IPipeline:
    """Diffusers-style entry point: from_pretrained(NAME_OR_DIR), then call with prompts."""

    def __init__(self, config: dict, net, autoencoder, path: Path | None = None):
        self.config, self.net, self.autoencoder, self.path = config, net, autoencoder, path
        self.objective = config["objective"]
        self.image_size = int(config["image_size"])
        down = getattr(autoencoder, "downsample", 1)
        self.latent_shape = (autoencoder.latent_channels, self.image_size // down, self.image_size // down)

    def time_grid_for(self, sampler: str | None = None, asked: str | None = None) -> str:
        """The grid a call with `sampler` (None: the default sampler) walks: `asked`, else this model's
        default for that sampler (config.json "sampling": {"time_grid": {SAMPLER: GRID}}), else uniform;
        "diffusers" for the diffusers samplers."""
        sampler = sampler or DEFAULT_SAMPLER[self.objective]
        if sampler not in GRID_SAMPLERS:
            return "diffusers"  # their own timesteps
        return asked or self.config.get("sampling", {}).get("time_grid", {}).get(sampler, "uniform")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None) -> "ProxT2IPipeline":
        """A shipped name (`proxt2i models`) or a model folder; None: the default of `proxt2i generate`."""
        from .shipped import DEFAULT_MODEL, resolve_model

        path = resolve_model(str(name_or_path or DEFAULT_MODEL))
        cfg, net, ae = load_pipeline(path)
        return cls(cfg, net, ae, path)

    def __call__(self, prompts, num_steps: int = 4, guidance_scale: float = 4.0, sampler: str | None = None,
                 seed: int | None = 0, generator: torch.Generator | None = None, guidance_interval=None,
                 batch_size: int = 16, output_type: str = "pil", progress: bool = False, time_grid: str | None = None):
        """prompts: a string or a list. Image i uses seed + i (or seeds drawn from `generator`).
        time_grid: "uniform", "quadratic" or "power:R" (default: the model's own, see time_grid_for; else uniform).
        Returns a list of PIL images, or a tensor [N, 3, S, S] in [0, 1] with output_type="tensor"."""
        from tqdm import tqdm

        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        check_prompts(prompts)
        if generator is not None:
            seeds = torch.randint(0, 2**62, (len(prompts),), generator=generator).tolist()
        else:
            seeds = [(0 if seed is None else int(seed)) + i for i in range(len(prompts))]
        used = sampler or DEFAULT_SAMPLER[self.objective]
        grid = self.time_grid_for(used, time_grid) if used in GRID_SAMPLERS else time_grid  # diffusers: refused if given
        chunks = []
        for i in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress or len(prompts) <= batch_size):
            lat = sample_latents(self.net, self.objective, prompts[i : i + batch_size], self.latent_shape, num_steps,
                                 guidance_scale, sampler, seeds[i : i + batch_size], guidance_interval, time_grid=grid)
            with torch.no_grad():
                chunks.append(self.autoencoder.decode(lat).clamp(0, 1))
        images = torch.cat(chunks)
        return images if output_type == "tensor" else to_pil(images)


MAX_PROMPT_CHARS = 2000


def check_prompts(prompts: list[str]) -> None:
    if not prompts:
        raise UsageError("no prompts given")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise UsageError("empty prompt; describe the image, e.g. \"a smiling woman with long red hair and glasses\"")
        if len(p) > MAX_PROMPT_CHARS:
            raise UsageError(f"prompt of {len(p)} characters is too long (at most {MAX_PROMPT_CHARS})")
