"""The stages of curation, each a function of one part (or a class whose instances hold a model), with one
row type in and out so that both engines (engines.py) chain them the same way.

A row is a dict: {"part": the part (sources.py), "items": [...]} plus what a stage adds. Two passes:
- scan (CPU): read the part, decode and check every record (bad input, shape), hash what passed;
  returns {"part", "records": [{"row", "source", "reason"?, "detail"?, "sha256"?, "phash"?}], "problems"};
- finish: `load_kept` reads the part again and keeps the rows that survived deduplication, then the model
  stages `AestheticStage`, `faces.FaceStage` and `CaptionStage` (actor pools on Ray) and `write_part` (the part's output shard or
  images; returns the part's manifest).
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path

from .checks import HASH_BITS, content_hash, decode, perceptual_hash, shape_reason
from .config import CurateConfig
from .sources import read_part
from .writer import write_part_output


class ScanStage:
    """scan_part in a long-lived worker (imagehash and its imports loaded once)."""

    def __init__(self, cfg: CurateConfig):
        importlib.import_module("imagehash")  # the first hash would otherwise pay for the import

        self.cfg = cfg

    def __call__(self, row: dict) -> dict:
        start = time.time()
        result = scan_part(row, self.cfg)
        result["timing"] = {"process": os.getpid(), "start": start, "end": time.time()}  # wall clock: parts of one run compare
        return result


def scan_part(row: dict, cfg: CurateConfig) -> dict:
    part = row["part"]
    records, problems = read_part(part)
    scanned = []
    for i, rec in enumerate(records):
        entry = {"row": i, "source": rec.source}
        reason, detail = rec.reason, rec.detail
        if reason is None:
            image, reason, detail = decode(rec.image)
        if reason is None:
            reason = shape_reason(image.width, image.height, cfg)
            detail = f"{image.width}x{image.height}" if reason else ""
        if reason is None:
            entry.update(width=image.width, height=image.height, sha256=content_hash(rec.image))
            if cfg.near_duplicate_distance is not None:
                entry["phash"] = f"{perceptual_hash(image):0{HASH_BITS // 4}x}"
        else:
            entry.update(reason=reason, detail=detail)
        scanned.append(entry)
    return {"part": part, "records": scanned, "problems": problems}


def load_kept(row: dict) -> dict:
    """row["keep"]: {row: (width, height)} of the records of the part that survived scanning and deduplication."""
    records, _ = read_part(row["part"])
    keep = row["keep"]
    items = []
    for i, rec in enumerate(records):
        if i in keep:
            width, height = keep[i]
            items.append({"row": i, "source": rec.source, "text": rec.text, "original_text": rec.text, "image": rec.image,
                          "ext": rec.ext, "meta": rec.meta, "width": width, "height": height})
    return {"part": row["part"], "items": items}


def _decoded(items: list[dict]):
    return [decode(item["image"])[0] for item in items]


def _batches(items: list[dict], size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class AestheticStage:
    """Scores the part's items with the LAION aesthetic predictor; those under the threshold get reason "aesthetic"."""

    def __init__(self, cfg: CurateConfig):
        from .scorers import load_aesthetic_scorer

        self.cfg = cfg
        self.score = load_aesthetic_scorer(cfg.aesthetic, cfg.device)

    def __call__(self, row: dict) -> dict:
        for batch in _batches(row["items"], self.cfg.batch_size):
            for item, s in zip(batch, self.score(_decoded(batch))):
                item["aesthetic"] = round(float(s), 4)
                if s < self.cfg.min_aesthetic:
                    item["reason"] = "aesthetic"
        return row


class CaptionStage:
    """Recaptions the part's remaining items with a local image-text-to-text model."""

    def __init__(self, cfg: CurateConfig):
        from .scorers import load_captioner

        self.cfg = cfg
        self.caption = load_captioner(cfg.captioner, cfg.caption_prompt, cfg.max_caption_tokens, cfg.device)

    def __call__(self, row: dict) -> dict:
        todo = [item for item in row["items"] if not item.get("reason")]
        for batch in _batches(todo, self.cfg.batch_size):
            for item, text in zip(batch, self.caption(_decoded(batch))):
                item["text"] = text
        return row


def write_part(row: dict, out: str, cfg: CurateConfig) -> dict:
    """Writes the part's kept items into `out`; returns the part's manifest (no image bytes): kept, what the
    model stages dropped ({reason: n}, with examples), the kept aesthetic scores and face attributes."""
    items = row["items"]
    kept = [item for item in items if not item.get("reason")]
    lines = write_part_output(Path(out), cfg.format, row["part"]["index"], kept)
    dropped: dict[str, int] = {}
    for item in items:
        if item.get("reason"):
            dropped[item["reason"]] = dropped.get(item["reason"], 0) + 1
    examples = [{"reason": item["reason"], "source": item["source"], **({"aesthetic": item["aesthetic"]} if "aesthetic" in item else {})}
                for item in items if item.get("reason")]
    return {"part": row["part"], "kept": len(kept), "model_dropped": dropped,
            "aesthetic_kept": [item["aesthetic"] for item in kept if "aesthetic" in item],
            "face_attributes": [item["face_attributes"] for item in kept if "face_attributes" in item],
            "examples": examples[:5 * max(1, len(dropped))], "metadata": lines}
