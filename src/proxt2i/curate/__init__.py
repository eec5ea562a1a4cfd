"""Curate a face dataset the way ProxT2I built LAION-Face-T2I-15M (check, deduplicate, filter by aesthetic
score, recaption), in one process or on Ray Data, resumable: `proxt2i data curate`. The stages are described
in run.py; docs/curation.md has the commands and the measured scaling."""

from .checks import decode, perceptual_hash, shape_reason
from .config import DEFAULT_CAPTION_PROMPT, ENGINES, FORMATS, REPORT, CurateConfig
from .run import curate
from .scorers import load_aesthetic_scorer, load_captioner
from .sources import list_parts, read_part

__all__ = [
    "CurateConfig", "DEFAULT_CAPTION_PROMPT", "ENGINES", "FORMATS", "REPORT", "curate", "decode", "perceptual_hash",
    "shape_reason", "load_aesthetic_scorer", "load_captioner", "list_parts", "read_part",
]
