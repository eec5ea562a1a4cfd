"""Curate a face dataset the way ProxT2I built LAION-Face-T2I-15M: filter by shape and aesthetic
score, then recaption with a vision-language model.

Stages, in order (the paper's thresholds are the defaults):
1. readable: the image decodes (web data has broken files: they are counted, not fatal);
2. shape: short edge >= min_side px (256) and aspect ratio width / height in [min_aspect, max_aspect] (9/16, 16/9);
3. aesthetic (with `aesthetic`, a local folder): the LAION aesthetic predictor (rl.rewards.AestheticReward) >= min_aesthetic (4.5);
4. recaption (with `captioner`, a local folder): a transformers image-text-to-text model (the paper: Qwen2.5-VL-7B;
   any AutoModelForImageTextToText with its AutoProcessor: BLIP, LLaVA, Qwen2-VL, ...), greedy decoding.

Input: webdataset shards or an imagefolder (data/readers.py). Output: the same formats; images keep their
original bytes (no re-encoding), the caption is the new one when recaptioned, and each record's JSON
carries original_text, width, height, aesthetic (when scored) and source (the input key or file name).
OUT/curation.json, written last, counts what each stage kept and dropped; a folder with it is complete.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path, atomic_write_json
from ..config import option
from ..errors import UsageError
from .export import add_tar_member
from .readers import read_records

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
    device: str = option("cpu", "torch device for the models")

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


# ---------------------------------------------------------------------------------------------- models
def load_aesthetic_scorer(folder: str, device: str = "cpu") -> Callable[[Sequence[Image.Image]], list[float]]:
    """PIL images of any sizes -> LAION aesthetic scores (about 1-10). The model's own resize and centre
    crop are applied per image first, so that one batch holds images of different shapes."""
    import numpy as np
    import torch

    from ..rl.rewards import AestheticReward

    model = AestheticReward(folder, device)
    resize, crop = model.prep["resize"], model.prep["crop"]

    def square(im: Image.Image) -> "torch.Tensor":
        r = resize / min(im.size)
        w, h = max(crop, round(im.width * r)), max(crop, round(im.height * r))
        im = im.resize((w, h), Image.BICUBIC)
        left, top = (w - crop) // 2, (h - crop) // 2
        im = im.crop((left, top, left + crop, top + crop))
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)

    @torch.no_grad()
    def score(images):
        batch = torch.stack([square(im) for im in images])
        return model(batch, [""] * len(images)).float().cpu().tolist()

    return score


def load_captioner(folder: str, prompt: str = DEFAULT_CAPTION_PROMPT, max_new_tokens: int = 77,
                   device: str = "cpu") -> Callable[[Sequence[Image.Image]], list[str]]:
    """PIL images -> one caption each, from a local transformers image-text-to-text model (greedy, so
    deterministic). Chat models (a processor with a chat template, e.g. Qwen2.5-VL) get `prompt` as a user
    turn; others (BLIP) get it as the text the caption continues, and it is stripped from the output."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..rl.rewards import HF_WEIGHTS, _hf_call, _require_dir

    path = _require_dir("captioner", folder, ["config.json", HF_WEIGHTS])
    processor = _hf_call(f"captioner processor from {path}", lambda: AutoProcessor.from_pretrained(path, local_files_only=True))
    model = _hf_call(f"captioner model from {path}",
                     lambda: AutoModelForImageTextToText.from_pretrained(path, local_files_only=True))
    model = model.to(device).eval()
    tokenizer = getattr(processor, "tokenizer", processor)
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        strip = ""
    else:
        text, strip = prompt, prompt
    if getattr(tokenizer, "padding_side", None) is not None:
        tokenizer.padding_side = "left"  # decoder-only models continue the last token

    @torch.no_grad()
    def caption(images):
        inputs = processor(images=list(images), text=[text] * len(images), return_tensors="pt", padding=True).to(device)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        ids = inputs["input_ids"]
        if out.shape[1] >= ids.shape[1] and torch.equal(out[:, : ids.shape[1]], ids):
            out = out[:, ids.shape[1]:]  # decoder-only models return the prompt too
        texts = [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
        return [t[len(strip):].strip() if strip and (t.lower() + " ").startswith(strip.lower() + " ") else t for t in texts]

    return caption


# ---------------------------------------------------------------------------------------------- output
class CuratedWriter:
    """Streams kept records to webdataset shards (each written atomically when full) or an imagefolder
    (files atomically, metadata.jsonl at close)."""

    def __init__(self, out: Path, fmt: str, shard_size: int):
        self.out, self.fmt, self.shard_size = out, fmt, shard_size
        self.count, self.pending, self.meta_lines, self.paths = 0, [], [], []

    def add(self, image_bytes: bytes, ext: str, text: str, meta: dict) -> None:
        key = f"{self.count:08d}"
        self.count += 1
        if self.fmt == "imagefolder":
            name = f"{key}.{ext}"
            with atomic_path(self.out / name) as tmp:
                Path(tmp).write_bytes(image_bytes)
            self.meta_lines.append(json.dumps({"file_name": name, "text": text, **meta}))
            return
        self.pending.append((key, ext, image_bytes, text, meta))
        if len(self.pending) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        path = self.out / f"shard-{len(self.paths):06d}.tar"
        with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, ext, data, text, meta in self.pending:
                add_tar_member(tar, f"{key}.{ext}", data)
                add_tar_member(tar, f"{key}.txt", text.encode())
                add_tar_member(tar, f"{key}.json", json.dumps(meta).encode())
        self.paths.append(path)
        self.pending = []

    def close(self) -> None:
        if self.fmt == "imagefolder":
            with atomic_path(self.out / "metadata.jsonl") as tmp:
                Path(tmp).write_text("".join(line + "\n" for line in self.meta_lines))
        else:
            self._flush()


# ---------------------------------------------------------------------------------------------- the run
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


def curate(source, out, cfg: CurateConfig, progress: bool = True) -> dict:
    """Filter and recaption `source` into `out` (a new or empty folder). Returns the report (also OUT/curation.json):
    {"input", "kept", "dropped": {reason: n}, "aesthetic_mean_kept", "recaptioned", "config"}."""
    from tqdm import tqdm

    cfg.check()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder; choose a new --out")
    records = read_records(source, decode=False)  # a missing or empty source raises here, before any output
    score = load_aesthetic_scorer(cfg.aesthetic, cfg.device) if cfg.aesthetic else None
    caption = load_captioner(cfg.captioner, cfg.caption_prompt, cfg.max_caption_tokens, cfg.device) if cfg.captioner else None
    out.mkdir(parents=True, exist_ok=True)
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
