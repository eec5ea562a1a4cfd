"""U-ViT backbone (Bao et al. 2023) for a conditional proximal operator (ProxT2I) or a score baseline.

All inputs are tokens of one transformer: [time, lam, text_1..L, patch_1..P]. Long skip connections
join shallow block i to deep block depth-1-i (concatenate, then a linear layer). The network predicts
epsilon; the prox is y - sqrt(lam) * eps (parameterization.py), so the backbone never sees the schedule.

Conditioning choices (documented in docs/models.md): t and lam get separate sinusoidal embeddings (lam
through log(lam), since it spans 1e-4..20) and MLPs; the pooled text vector is added to the time token;
padded text tokens are masked out of attention. The output layer is zero-initialised: eps = 0, prox(y) = y.

config.precondition marks a prox backbone trained under models/precond.py's ProxPrecond; the model
that holds the backbone (models/conditional.py) applies it with the model's schedule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import check_ranges, config_from_dict
from ..errors import UsageError


@dataclass(frozen=True)
class UViTConfig:
    in_channels: int = 4
    image_size: int = 8  # latent (or pixel) height = width
    patch_size: int = 1
    width: int = 192
    depth: int = 7  # odd: depth // 2 in-blocks, one mid block, depth // 2 out-blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = 128
    max_text_len: int = 32
    use_lam: bool = True  # False: the score baseline (no lam token)
    precondition: bool = False  # prox only: wrapped in ProxPrecond (models/precond.py) by the model that holds it

    def __post_init__(self):
        positive = ("in_channels", "image_size", "patch_size", "width", "depth", "heads", "text_dim", "max_text_len")
        check_ranges(self, **{name: (1, None) for name in positive})
        if not self.mlp_ratio > 0:
            raise UsageError(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        if self.image_size % self.patch_size:
            raise UsageError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.width % self.heads:
            raise UsageError(f"width {self.width} must be a multiple of heads {self.heads}")
        if self.precondition and not self.use_lam:
            raise UsageError("precondition applies to prox models (use_lam=True) only")
        if self.depth < 1 or self.depth % 2 == 0:
            raise UsageError(f"depth must be odd and >= 1 (in-blocks, a mid block, out-blocks), got {self.depth}")

    @classmethod
    def from_dict(cls, d: dict) -> "UViTConfig":
        """From a model config.json's "uvit" entry: unknown keys, wrong types and bad ranges are one UsageError."""
        return config_from_dict(cls, d, prefix="uvit.")

    def to_dict(self) -> dict:
        return asdict(self)


# Named sizes. "paper" is U-ViT-H/2-like at the SD3.5 VAE's 32x32x16 latents of 256 px images (~500M params).
UVIT_PRESETS: dict[str, UViTConfig] = {
    "tiny": UViTConfig(in_channels=4, image_size=8, patch_size=1, width=192, depth=7, heads=4, text_dim=128),
    "small": UViTConfig(in_channels=4, image_size=16, patch_size=2, width=384, depth=13, heads=6, text_dim=256),
    "base": UViTConfig(in_channels=16, image_size=32, patch_size=2, width=768, depth=13, heads=12, text_dim=768, max_text_len=77),
    "paper": UViTConfig(in_channels=16, image_size=32, patch_size=2, width=1152, depth=29, heads=16, text_dim=1024, max_text_len=154),
    "paper-512": UViTConfig(in_channels=16, image_size=64, patch_size=2, width=1152, depth=29, heads=16, text_dim=1024, max_text_len=154),
}


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[B] scalars -> [B, dim] sin/cos features (x is used as is: pass 1000 t or log lam)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """A scalar per sample -> a [B, width] token: sinusoidal features, then an MLP."""

    def __init__(self, width: int, freq_dim: int = 256, scale: float = 1.0):
        super().__init__()
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        features = sinusoidal_embedding(v * self.scale, self.freq_dim)  # float32: the phases of 1000 t need its precision
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class Block(nn.Module):
    """Pre-norm transformer block with an optional long-skip input."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, skip: bool):
        super().__init__()
        self.heads = heads
        self.skip = nn.Linear(2 * width, width) if skip else None
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip is not None:
            x = self.skip(torch.cat([x, skip], dim=-1))
        b, n, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(h.transpose(1, 2).reshape(b, n, w))
        return x + self.mlp(self.norm2(x))


class UViT(nn.Module):
    """eps = UViT(y [B, C, H, W], t [B], lam [B], text_tokens [B, L, D], text_mask [B, L] bool, text_pooled [B, D])."""

    def __init__(self, config: UViTConfig):
        super().__init__()
        c = self.config = config
        self.num_patches = (c.image_size // c.patch_size) ** 2
        self.patch_embed = nn.Conv2d(c.in_channels, c.width, c.patch_size, stride=c.patch_size)
        self.time_embed = ScalarEmbedder(c.width, scale=1000.0)
        self.lam_embed = ScalarEmbedder(c.width, scale=1.0) if c.use_lam else None
        self.text_proj = nn.Linear(c.text_dim, c.width)
        self.pooled_proj = nn.Linear(c.text_dim, c.width)
        self.num_extra = (2 if c.use_lam else 1) + c.max_text_len
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_extra + self.num_patches, c.width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        half = c.depth // 2
        self.in_blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio, skip=False) for _ in range(half))
        self.mid_block = Block(c.width, c.heads, c.mlp_ratio, skip=False)
        self.out_blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio, skip=True) for _ in range(half))
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.patch_size**2 * c.in_channels)
        self.final_conv = nn.Conv2d(c.in_channels, c.in_channels, 3, padding=1)
        nn.init.zeros_(self.final_conv.weight)
        nn.init.zeros_(self.final_conv.bias)

    def forward(self, y, t, lam, text_tokens, text_mask, text_pooled):
        c = self.config
        b = y.shape[0]
        if y.shape[1:] != (c.in_channels, c.image_size, c.image_size):
            raise UsageError(f"U-ViT expects inputs of shape [B, {c.in_channels}, {c.image_size}, {c.image_size}], got {tuple(y.shape)}")
        text_tokens, text_mask = text_tokens[:, : c.max_text_len], text_mask[:, : c.max_text_len]
        pad = c.max_text_len - text_tokens.shape[1]
        if pad > 0:
            text_tokens = F.pad(text_tokens, (0, 0, 0, pad))
            text_mask = F.pad(text_mask, (0, pad), value=False)
        dtype = self.patch_embed.weight.dtype
        cond = [self.time_embed(t) + self.pooled_proj(text_pooled.to(dtype))]
        if self.lam_embed is not None:
            cond.append(self.lam_embed(torch.log(lam.float().clamp_min(1e-8))))
        patches = self.patch_embed(y.to(dtype)).flatten(2).transpose(1, 2)
        x = torch.cat([torch.stack(cond, 1).to(dtype), self.text_proj(text_tokens.to(dtype)), patches], dim=1) + self.pos_embed
        keep = torch.ones(b, x.shape[1], dtype=torch.bool, device=x.device)
        keep[:, len(cond) : len(cond) + c.max_text_len] = text_mask.bool()
        attn_mask = keep[:, None, None, :]  # [B, 1, 1, N]: every query ignores padded text keys
        skips = []
        for blk in self.in_blocks:
            x = blk(x, attn_mask)
            skips.append(x)
        x = self.mid_block(x, attn_mask)
        for blk in self.out_blocks:
            x = blk(x, attn_mask, skips.pop())
        x = self.head(self.norm(x))[:, self.num_extra :]
        g, p = c.image_size // c.patch_size, c.patch_size
        x = x.reshape(b, g, g, p, p, c.in_channels).permute(0, 5, 1, 3, 2, 4).reshape(b, c.in_channels, c.image_size, c.image_size)
        return self.final_conv(x).to(y.dtype)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
