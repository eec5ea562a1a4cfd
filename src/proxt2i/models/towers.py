"""Small networks of the SynthFaces evaluator and of the contrastive text encoder: a conv encoder shared
by the attribute recogniser and the contrastive image tower, and a small transformer text tower (the
evaluator's, reused frozen as a text encoder by models/text.py).

Images enter as float [B, 3, H, W] in [0, 1] at the evaluator resolution (see `evaluation/preprocess.py`);
the encoder maps them to [-1, 1] itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    """3x3 conv -> GroupNorm(8) -> SiLU. GroupNorm keeps outputs independent of the batch."""
    return [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.SiLU()]


class ConvEncoder(nn.Module):
    """[B, 3, R, R] in [0, 1] -> [B, feature_dim].

    A full-resolution stem, then one stage per extra width (stride-2 conv + conv), a last stride-2
    conv, and a linear map of the flattened map (kept spatial). With R = 64 and widths
    (32, 64, 96, 128) the stages end at 32, 16 and 8 px and the flattened map is 4 x 4.
    """

    def __init__(self, widths: tuple[int, ...], feature_dim: int, resolution: int):
        super().__init__()
        layers = conv_block(3, widths[0], 1)
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += conv_block(c_in, c_out, 2) + conv_block(c_out, c_out, 1)
        layers += conv_block(widths[-1], widths[-1], 2)
        self.convs = nn.Sequential(*layers)
        # Index in `convs` of the last layer (SiLU) of each stride-2 stage: blocks are 3 layers.
        self.stage_ends = tuple(3 + 6 * k - 1 for k in range(1, len(widths)))
        self.stage_dim = sum(widths[1:])
        side = resolution // 2 ** len(widths)
        if side < 1:
            raise ValueError(f"resolution {resolution} too small for {len(widths)} stages")
        self.fc = nn.Linear(widths[-1] * side * side, feature_dim)

    def forward_with_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (embedding [B, feature_dim], stage means [B, sum(widths[1:])]: the spatial mean of
        each stride-2 stage's output, concatenated fine to coarse)."""
        h, means = x * 2.0 - 1.0, []
        for i, layer in enumerate(self.convs):
            h = layer(h)
            if i in self.stage_ends:
                means.append(h.mean(dim=(2, 3)))
        return F.silu(self.fc(h.flatten(1))), torch.cat(means, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2.0 - 1.0)
        return F.silu(self.fc(h.flatten(1)))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: masked self-attention + MLP. [B, L, D] -> [B, L, D]."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = mask[:, None, None, :]  # [B, 1, 1, L]: True = attend
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(h.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class TextTower(nn.Module):
    """Token ids [B, L] (0 = pad) and mask [B, L] -> token states [B, L, D] (zero at padding) and
    pooled [B, D] (masked mean). Learned positional embeddings; a final LayerNorm."""

    def __init__(self, vocab_size: int, dim: int, depth: int, heads: int, max_len: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) / math.sqrt(dim))
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        x = self.norm(x) * m
        pooled = x.sum(1) / m.sum(1).clamp_min(1.0)
        return x, pooled
