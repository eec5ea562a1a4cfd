"""Curate a face dataset the way ProxT2I built LAION-Face-T2I-15M: filter by shape and aesthetic
score, then recaption with a vision-language model.

Stages, in order (the paper's thresholds are the defaults):
1. readable: the image decodes (web data has broken files: they are counted, not fatal);
2. shape: short edge >= min_side px (256) and aspect ratio width / height in [min_aspect, max_aspect] (9/16, 16/9);
3. aesthetic (with `aesthetic`, a local folder): the LAION aesthetic predictor (rewards.AestheticReward) >= min_aesthetic (4.5);
4. recaption (with `captioner`, a local folder): a transformers image-text-to-text model (the paper: Qwen2.5-VL-7B;
   any AutoModelForImageTextToText with its AutoProcessor: BLIP, LLaVA, Qwen2-VL, ...), greedy decoding.

Input: webdataset shards or an imagefolder (data/readers.py). Output: the same formats; images keep their
original bytes (no re-encoding), the caption is the new one when recaptioned, and each record's JSON
carries original_text, width, height, aesthetic (when scored) and source (the input key or file name).
OUT/curation.json, written last, counts what each stage kept and dropped; a folder with it is complete.

config.py (the settings and the shape rule), scorers.py (the aesthetic scorer and the captioner), writer.py
(the output formats), run.py (the stages over a source).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from ..atomic import atomic_write_json, check_output_folder, marked_by, replace_folder
from ..data.readers import read_records
from .config import REPORT, CurateConfig, decode, shape_reason
from .scorers import load_aesthetic_scorer, load_captioner
from .writer import CuratedWriter


def _batches(records: Iterator[dict], size: int, limit: int) -> Iterator[list[dict]]:
    batch, n = [], 0
    for rec in records:
        if limit and n >= limit:
            break
        n += 1
        batch.append(rec)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def curate(source, out, cfg: CurateConfig, progress: bool = True, overwrite: bool = False) -> dict:
    """Filter and recaption `source` into `out` (a new or empty folder; with `overwrite`, an earlier curation,
    i.e. a folder with curation.json, is replaced). The folder is built beside `out` and swapped in when
    complete (atomic.replace_folder): a kill leaves no partial output. Returns the report (also OUT/curation.json):
    {"input", "kept", "dropped": {reason: n}, "aesthetic_mean_kept", "recaptioned", "config"}."""
    cfg.check()
    out = Path(out)
    check_output_folder(out, overwrite, marked_by(REPORT), "curated dataset (curation.json)")
    records = read_records(source, decode=False)  # a missing or empty source raises here, before any output
    score = load_aesthetic_scorer(cfg.aesthetic, cfg.device) if cfg.aesthetic else None
    caption = load_captioner(cfg.captioner, cfg.caption_prompt, cfg.max_caption_tokens, cfg.device) if cfg.captioner else None
    with replace_folder(out, overwrite=overwrite, is_ours=marked_by(REPORT), what="curated dataset (curation.json)") as tmp:
        report = _curate_into(tmp, source, records, score, caption, cfg, progress)
    return report


def _curate_into(out: Path, source, records, score, caption, cfg: CurateConfig, progress: bool) -> dict:
    from tqdm import tqdm

    writer = CuratedWriter(out, cfg.format, cfg.shard_size)
    dropped = {"unreadable": 0, "short_side": 0, "aspect": 0, "aesthetic": 0}
    seen, kept_scores = 0, []
    bar = tqdm(total=cfg.limit or None, desc="curate", unit="img", disable=not progress)
    for batch in _batches(records, cfg.batch_size, cfg.limit):
        seen += len(batch)
        keep = []
        for rec in batch:
            image = decode(rec["image_bytes"])
            reason = "unreadable" if image is None else shape_reason(image.width, image.height, cfg)
            if reason:
                dropped[reason] += 1
            else:
                keep.append((rec, image))
        if keep and score:
            scores = score([im for _, im in keep])
            dropped["aesthetic"] += sum(s < cfg.min_aesthetic for s in scores)
            keep = [(rec, im, s) for (rec, im), s in zip(keep, scores) if s >= cfg.min_aesthetic]
        else:
            keep = [(rec, im, None) for rec, im in keep]
        captions = caption([im for _, im, _ in keep]) if keep and caption else [rec["text"] for rec, _, _ in keep]
        for (rec, im, s), text in zip(keep, captions):
            meta = {"original_text": rec["text"], "width": im.width, "height": im.height,
                    "source": rec.get("key") or rec.get("file_name")}
            if s is not None:
                meta["aesthetic"] = round(float(s), 4)
                kept_scores.append(float(s))
            writer.add(rec["image_bytes"], rec["image_ext"], text, meta)
        bar.update(len(batch))
        bar.set_postfix(kept=writer.count)
    bar.close()
    writer.close()
    report = {"source": str(source), "input": seen, "kept": writer.count, "dropped": dropped,
              "aesthetic_mean_kept": sum(kept_scores) / len(kept_scores) if kept_scores else None,
              "recaptioned": bool(caption), "config": asdict(cfg)}
    atomic_write_json(out / REPORT, report)
    return report
