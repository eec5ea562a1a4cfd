"""Curate a face dataset the way ProxT2I built LAION-Face-T2I-15M (filter by shape and aesthetic score,
then recaption): `proxt2i data curate`. The stages are described in run.py."""

from .config import DEFAULT_CAPTION_PROMPT, FORMATS, REPORT, CurateConfig, decode, shape_reason
from .run import curate
from .scorers import load_aesthetic_scorer, load_captioner
from .writer import CuratedWriter

__all__ = [
    "CurateConfig", "DEFAULT_CAPTION_PROMPT", "FORMATS", "REPORT", "curate", "decode", "shape_reason",
    "load_aesthetic_scorer", "load_captioner", "CuratedWriter",
]
