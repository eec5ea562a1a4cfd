"""The curation settings (CurateConfig, the paper's thresholds as defaults) and the per-image checks."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ..errors import UsageError

FORMATS = ("webdataset", "imagefolder")
DEFAULT_CAPTION_PROMPT = ("Describe this person's face in one detailed sentence: apparent age, skin tone, face shape, "
                          "hair colour and style, eye colour, expression, facial hair, eyewear, headwear, earrings, background.")
REPORT = "curation.json"


@dataclass
class CurateConfig:
    min_side: int = 256            # px, the image's shorter edge
    min_aspect: float = 9 / 16     # width / height
    max_aspect: float = 16 / 9
    aesthetic: str = ""            # folder of the LAION aesthetic predictor ("" = no aesthetic stage)
    min_aesthetic: float = 4.5
    captioner: str = ""            # folder of an image-text-to-text model ("" = keep the captions)
    caption_prompt: str = DEFAULT_CAPTION_PROMPT
    max_caption_tokens: int = 77
    format: str = "webdataset"
    shard_size: int = 1000
    batch_size: int = 16
    limit: int = 0                 # stop after this many input records (0 = all)
    device: str = "cpu"

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
        if self.limit < 0:
            raise UsageError(f"--limit must be >= 0, got {self.limit}")
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
