"""The curation settings (CurateConfig, the paper's thresholds as defaults) and the per-image checks."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ..config import option
from ..errors import UsageError

FORMATS = ("webdataset", "imagefolder")
DEFAULT_CAPTION_PROMPT = ("Describe this person's face in one detailed sentence: apparent age, skin tone, face shape, "
                          "hair colour and style, eye colour, expression, facial hair, eyewear, headwear, earrings, background.")
REPORT = "curation.json"


@dataclass(frozen=True)
class CurateConfig:
    """`proxt2i data curate`: the stages' thresholds and models, the output layout (the paper's thresholds by default)."""

    min_side: int = option(256, "minimum short edge in px")
    min_aspect: float = option(9 / 16, "minimum width / height (--aspect MIN MAX sets both ends)")
    max_aspect: float = option(16 / 9, "maximum width / height")
    aesthetic: str | None = option(None, "folder of the LAION aesthetic predictor (CLIPVisionModelWithProjection + aesthetic_mlp.safetensors); "
                                         "none = no aesthetic filter", legacy="", metavar="DIR")
    min_aesthetic: float = option(4.5, "minimum aesthetic score with --aesthetic")
    captioner: str | None = option(None, "folder of a transformers image-text-to-text model and its processor; none = keep the "
                                         "source captions", legacy="", metavar="DIR")
    caption_prompt: str = option(DEFAULT_CAPTION_PROMPT, "instruction given to the captioner")
    max_caption_tokens: int = option(77, "new tokens per caption")
    format: str = option("webdataset", "output layout: webdataset or imagefolder")
    shard_size: int = option(1000, "samples per output shard")
    batch_size: int = option(16, "images per model batch")
    limit: int | None = option(None, "read at most N source records; none = all", legacy=0)
    device: str = option("cpu", "where the models run: cpu, cuda, cuda:N, mps or auto (docs/scale.md)")

    def __post_init__(self):
        self.check()

    def check(self) -> "CurateConfig":
        if self.min_side < 1:
            raise UsageError(f"--min-side must be >= 1, got {self.min_side}")
        if not 0 < self.min_aspect <= self.max_aspect:
            raise UsageError(f"--aspect needs 0 < MIN <= MAX, got {self.min_aspect:g} {self.max_aspect:g}")
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose from {', '.join(FORMATS)}")
        for name in ("shard_size", "batch_size", "max_caption_tokens"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1 (or none: all), got {self.limit}")
        for name in ("aesthetic", "captioner"):
            if getattr(self, name) == "":
                raise UsageError(f"--{name} must name a folder (or be none)")
        from ..devices import resolve_device

        resolve_device(self.device)  # a device that is not there: one line, before any model loads
        return self


def shape_reason(width: int, height: int, cfg: CurateConfig) -> str | None:
    """Why an image of this size is dropped ("short_side" or "aspect"), or None when it is kept."""
    if min(width, height) < cfg.min_side:
        return "short_side"
    if not cfg.min_aspect <= width / height <= cfg.max_aspect:
        return "aspect"
    return None


def decode(data: bytes) -> Image.Image | None:
    """RGB PIL image, or None when the bytes are not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
