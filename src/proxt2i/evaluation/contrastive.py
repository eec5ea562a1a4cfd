"""A small CLIP-style image-text model for SynthFaces.

Image tower: the evaluator's conv encoder + a linear projection. Text tower: a 2-layer transformer
over word tokens (see `models/tokenizer.py`) + a linear projection of the masked-mean pooled state.
Trained with the symmetric InfoNCE loss (CLIP, Radford et al. 2021, Sec. 2.3) on rendered
image / caption pairs. The text tower alone is the text encoder the generator conditions on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.tokenizer import Tokenizer
from ..models.towers import ConvEncoder, TextTower


@dataclass(frozen=True)
class ContrastiveConfig:
    vocab: tuple[str, ...]
    max_len: int = 48
    resolution: int = 64
    widths: tuple[int, ...] = (32, 64, 96, 128)
    image_dim: int = 256
    text_dim: int = 128
    text_depth: int = 2
    text_heads: int = 4
    embed_dim: int = 128

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @staticmethod
    def from_json(d: dict) -> "ContrastiveConfig":
        return ContrastiveConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.vocab, self.max_len)


class ContrastiveModel(nn.Module):
    def __init__(self, cfg: ContrastiveConfig):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = ConvEncoder(cfg.widths, cfg.image_dim, cfg.resolution)
        self.image_proj = nn.Linear(cfg.image_dim, cfg.embed_dim)
        self.text = TextTower(len(cfg.vocab), cfg.text_dim, cfg.text_depth, cfg.text_heads, cfg.max_len)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] in [0, 1] -> unit vectors [B, embed_dim]."""
        return F.normalize(self.image_proj(self.image_encoder(x)), dim=-1)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids, mask [B, L] -> token states [B, L, text_dim] (zero at padding), pooled [B, text_dim]."""
        return self.text(ids, mask)

    def embed_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask [B, L] -> unit vectors [B, embed_dim]."""
        return F.normalize(self.text_proj(self.text(ids, mask)[1]), dim=-1)


def info_nce_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matched unit vectors img, txt [B, E]: per-sample mean of the
    image->text and text->image cross-entropies, [B]. The scale is clamped at 100 as in CLIP."""
    logits = logit_scale.clamp(max=math.log(100.0)).exp() * img @ txt.T
    target = torch.arange(img.shape[0], device=img.device)
    i2t = F.cross_entropy(logits, target, reduction="none")
    t2i = F.cross_entropy(logits.T, target, reduction="none")
    return 0.5 * (i2t + t2i)
