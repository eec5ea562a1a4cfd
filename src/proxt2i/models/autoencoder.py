"""Autoencoders behind one interface.

Images are float tensors [B, 3, H, W] in [0, 1]. encode() returns latents already normalised,
z = (raw - shift) * scale, so that they have about unit variance; decode() inverts that and returns
images in [0, 1] (not clamped). Attributes: latent_channels, downsample.

- IdentityAutoencoder: pixel space, z = 2 x - 1.
- SmallVAE: the embedded convolutional VAE (downsample 4, 4 latent channels), trained on SynthFaces by
  the project's own command; scale and shift measured on data and kept in its config.
- DiffusersKL: diffusers' AutoencoderKL from a local folder (the SD3.5 VAE: 16 channels, scaling_factor
  1.5305, shift_factor 0.0609 from its config.json).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ..config import check_ranges, config_from_section
from ..errors import UsageError
from ..extras import require


class IdentityAutoencoder(nn.Module):
    latent_channels, downsample = 3, 1

    def config(self) -> dict:
        return {"type": "identity"}

    def encode(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        return images * 2.0 - 1.0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents + 1.0) / 2.0


def _res_block(c: int) -> nn.Module:
    return nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))


class _Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = _res_block(c)

    def forward(self, x):
        return x + self.body(x)


class SmallVAE(nn.Module):
    """Conv VAE: [B, 3, H, W] in [0, 1] <-> [B, latent_channels, H/4, W/4]. KL-regularised (weight kl_weight)."""

    downsample = 4

    def __init__(self, latent_channels: int = 4, width: int = 64, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.latent_channels, self.width = latent_channels, width
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))
        w, h = width, max(width // 2, 8)  # full resolution runs at half width: most of the cost lives there
        self.encoder = nn.Sequential(
            nn.Conv2d(3, h, 3, padding=1), nn.SiLU(),
            nn.Conv2d(h, w, 4, stride=2, padding=1), _Residual(w),
            nn.Conv2d(w, w, 4, stride=2, padding=1), _Residual(w),
            nn.GroupNorm(8, w), nn.SiLU(), nn.Conv2d(w, 2 * latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, w, 3, padding=1), _Residual(w), _Residual(w),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1), _Residual(w),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, h, 3, padding=1),
            nn.GroupNorm(8, h), nn.SiLU(), nn.Conv2d(h, 3, 3, padding=1),
        )

    def config(self) -> dict:
        return {"type": "small_vae", "latent_channels": self.latent_channels, "width": self.width,
                "scale": float(self.scale), "shift": float(self.shift)}

    def moments(self, images: torch.Tensor):
        mean, logvar = self.encoder(images * 2.0 - 1.0).chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 10.0)

    def decode_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return (self.decoder(raw) + 1.0) / 2.0

    def encode(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        """Posterior mean (deterministic) unless a generator is given (then a posterior sample)."""
        mean, logvar = self.moments(images)
        raw = mean if generator is None else mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)
        return (raw - self.shift) * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(latents / self.scale + self.shift)


def vae_loss(vae: SmallVAE, images: torch.Tensor, kl_weight: float = 1e-4, generator=None) -> torch.Tensor:
    """L1 reconstruction + kl_weight * KL(q(z|x) || N(0, I)) per sample, [B]."""
    mean, logvar = vae.moments(images)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)
    rec = (vae.decode_raw(z) - images).abs().flatten(1).mean(1)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).mean(1)
    return rec + kl_weight * kl


@torch.no_grad()
def calibrate_latent_scale(vae: SmallVAE, images: torch.Tensor) -> None:
    """Set shift = mean and scale = 1/std of the raw posterior means over a batch [N, 3, H, W]."""
    mean, _ = vae.moments(images)
    vae.shift.fill_(float(mean.mean()))
    vae.scale.fill_(1.0 / float(mean.std().clamp_min(1e-6)))


class DiffusersKL(nn.Module):
    """diffusers AutoencoderKL from a local folder; scaling_factor and shift_factor from its config."""

    def __init__(self, path: str | Path, dtype: torch.dtype | None = None):
        """dtype: the weights', loaded as such (None: float32)."""
        super().__init__()
        AutoencoderKL = require("diffusers", "hf", "a diffusers VAE (autoencoder=diffusers:DIR)").AutoencoderKL

        p = Path(path)
        expected = "config.json and diffusion_pytorch_model.safetensors"
        if not p.is_dir() or not (p / "config.json").exists():
            raise UsageError(f"VAE folder {str(p)!r} not found or without config.json; expected {expected}")
        if not list(p.glob("*.safetensors")):
            raise UsageError(f"VAE folder {str(p)!r} has no .safetensors weights; expected {expected}")
        self.path = str(p)
        self.vae = AutoencoderKL.from_pretrained(p, local_files_only=True, use_safetensors=True,
                                                 torch_dtype=dtype or torch.float32).requires_grad_(False).eval()
        cfg = self.vae.config
        self.scale = float(getattr(cfg, "scaling_factor", 1.0) or 1.0)
        self.shift = float(getattr(cfg, "shift_factor", None) or 0.0)
        self.latent_channels = int(cfg.latent_channels)
        self.downsample = 2 ** (len(cfg.block_out_channels) - 1)

    def config(self) -> dict:
        return {"type": "diffusers_kl", "path": self.path}

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator=None) -> torch.Tensor:
        dist = self.vae.encode(images.to(self.vae.dtype) * 2.0 - 1.0).latent_dist
        raw = dist.mean if generator is None else dist.sample(generator)
        return ((raw - self.shift) * self.scale).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.vae.decode((latents / self.scale + self.shift).to(self.vae.dtype)).sample.float() + 1.0) / 2.0


@dataclass(frozen=True)
class SmallVAEConfig:
    """The "small_vae" entry of a config.json. Every field is used: scale multiplies the latents on encode
    and divides them on decode, so it must be a finite number > 0."""

    latent_channels: int = 4
    width: int = 64
    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self):
        check_ranges(self, latent_channels=(1, None), width=(1, None), shift=(None, None), scale=(None, None))
        if self.width % 8:
            raise UsageError(f"width must be a multiple of 8 (the VAE's group norms use 8 groups), got {self.width}")
        if not self.scale > 0:
            raise UsageError(f"scale must be > 0 (latents are multiplied by it on encode and divided by it on decode), got {self.scale}")


@dataclass(frozen=True)
class DiffusersKLConfig:
    path: str = "."


@dataclass(frozen=True)
class IdentityConfig:
    pass


def _small_vae(cfg: dict, dtype=None) -> nn.Module:
    return SmallVAE(**asdict(config_from_section(SmallVAEConfig, cfg, "autoencoder")))


def _identity(cfg: dict, dtype=None) -> nn.Module:
    config_from_section(IdentityConfig, cfg, "autoencoder")  # refuses fields identity would ignore
    return IdentityAutoencoder()


def _diffusers_kl(cfg: dict, dtype=None) -> nn.Module:
    return DiffusersKL(config_from_section(DiffusersKLConfig, cfg, "autoencoder").path, dtype)


# config.json "autoencoder" type -> constructor from that config
AUTOENCODERS: dict[str, Callable[..., nn.Module]] = {
    "identity": _identity,
    "small_vae": _small_vae,
    "diffusers_kl": _diffusers_kl,
}


def autoencoder_from_config(cfg: dict, dtype: torch.dtype | None = None) -> nn.Module:
    """Build an autoencoder from its config dict (the "autoencoder" entry of a model's config.json); dtype:
    a diffusers VAE loads its weights in it (the small VAE is cast by its holder)."""
    kind = cfg.get("type") if isinstance(cfg, dict) else None
    if kind not in AUTOENCODERS:
        raise UsageError(f"unknown autoencoder type {kind!r}; choose one of: {', '.join(AUTOENCODERS)}")
    return AUTOENCODERS[kind](cfg, dtype)

