"""Training the evaluator on SynthFaces renders drawn on the fly: `proxt2i evaluator train`.

One loop (`train_loop`) serves both models; they differ by the loss passed in and by the data mix.
Batch `step` holds renders [step * m, (step + 1) * m) of (seed, "train") and, for the recogniser,
[step * h, (step + 1) * h) of (seed, "heldout") with h = round(heldout_fraction * B), m = B - h;
a run is a pure function of its config.

The held-out compositions: a recogniser trained on "train" alone learns the absence of the held-out
pairs as a shortcut (measured: face_shape read right on only 75% of held-out faces, since no
training face is square with earrings). The recogniser is only a judge, so it sees them. The
contrastive model never does: its text tower is the generator's text encoder, and must not have
seen a caption that names a held-out pair. Both models see the same recipe: AdamW, linear warm-up then cosine decay, and a resize
augmentation (down to 32-63 px and back with antialias) so that inputs from 32 px generators stay
in distribution.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import check_output_folder, replace_folder
from ..config import check_seed, option, to_command
from ..data.attributes import ATTRIBUTES
from ..errors import UsageError
from ..data.synthfaces import render_batch
from ..models.tokenizer import build_vocab
from ..text_split import caption_words
from .contrastive import ContrastiveConfig, ContrastiveModel, info_nce_loss
from .evaluator import FORMAT, build_evaluator, save_config, save_reference, save_weights
from .features import REFERENCE_NUM, REFERENCE_SEED, recognise, render, renderer_fingerprint
from .preprocess import as_float_images, resize
from .recogniser import Recogniser, RecogniserConfig, classification_loss


@dataclass(frozen=True)
class EvaluatorTrainConfig:
    """`proxt2i evaluator train`: the recipe of both evaluator models (a run is a pure function of it)."""

    seed: int = option(0, "data and init seed")
    recogniser_steps: int = option(2500, "recogniser steps")
    contrastive_steps: int = option(2500, "contrastive model steps")
    batch_size: int = option(64, "images per step")
    lr: float = option(2e-3, "peak learning rate")
    weight_decay: float = option(0.05, "AdamW weight decay")
    warmup_steps: int = option(100, "linear warm-up steps")
    grad_clip: float = option(1.0, "gradient norm clip")
    resolution: int = option(64, "render size in pixels")
    resize_prob: float = option(0.35, "fraction of each batch downscaled to 32-63 px and back")
    recogniser_heldout_fraction: float = option(0.25, 'of each recogniser batch from split "heldout"')
    vocab_renders: int = option(16384, "captions read to build the word vocabulary")
    reference_num: int = option(REFERENCE_NUM, "fresh renders for the reference statistics")
    check_num: int = option(1024, "fresh renders per split for the final check")
    threads: int = option(1, "torch CPU threads")

    def __post_init__(self):
        for key in ("recogniser_steps", "contrastive_steps", "batch_size", "warmup_steps", "threads"):
            if getattr(self, key) < 1:
                raise UsageError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        for key in ("reference_num", "check_num"):
            if getattr(self, key) < 2:
                raise UsageError(f"--{key.replace('_', '-')} must be >= 2, got {getattr(self, key)}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        if not (0 <= self.resize_prob <= 1 and 0 <= self.recogniser_heldout_fraction < 1):
            raise UsageError(f"--resize-prob must be in [0, 1] and --recogniser-heldout-fraction in [0, 1), got "
                             f"resize_prob={self.resize_prob}, recogniser_heldout_fraction={self.recogniser_heldout_fraction}")
        if not 33 <= self.resolution <= 512:  # augment() downscales to a random side in [32, resolution)
            raise UsageError(f"--resolution must be in 33..512, got {self.resolution}")
        if self.weight_decay < 0 or self.grad_clip <= 0 or self.vocab_renders < 1:
            raise UsageError(f"--weight-decay must be >= 0, --grad-clip > 0 and --vocab-renders >= 1, got {self.weight_decay}, "
                             f"{self.grad_clip}, {self.vocab_renders}")
        check_seed(self.seed, "--seed")


def learning_rate(step: int, total: int, cfg: EvaluatorTrainConfig) -> float:
    """Linear warm-up over warmup_steps, then cosine decay to 0 at `total`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def augment(x: torch.Tensor, gen: torch.Generator, prob: float) -> torch.Tensor:
    """Downscale a random `prob` fraction of x [B, 3, R, R] to a random side in [32, R) and back."""
    r = x.shape[-1]
    out = x.clone()
    picked = torch.rand(x.shape[0], generator=gen) < prob
    for i in picked.nonzero()[:, 0].tolist():
        side = int(torch.randint(32, r, (1,), generator=gen))
        out[i : i + 1] = resize(resize(x[i : i + 1], side), r)
    return out


def labels_of(attrs: list[dict[str, str]], families) -> dict[str, torch.Tensor]:
    """Attribute dicts -> {family: int64 [B]} class labels."""
    return {f: torch.tensor([ATTRIBUTES[f].index(a[f]) for a in attrs]) for f in families}


def recogniser_loss(model: Recogniser, tokenizer, x, attrs, captions) -> torch.Tensor:
    return classification_loss(model(x)[1], labels_of(attrs, model.heads.keys()))


def contrastive_loss(model: ContrastiveModel, tokenizer, x, attrs, captions) -> torch.Tensor:
    ids, mask = tokenizer(captions)
    return info_nce_loss(model.embed_images(x), model.embed_text(ids, mask), model.logit_scale)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and conv kernels only (not on biases, norms, scales)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def training_batch(cfg: EvaluatorTrainConfig, step: int, heldout_fraction: float) -> tuple:
    """Batch `step`: (uint8 [B, R, R, 3], attrs, captions), train-split renders then held-out ones."""
    h = round(heldout_fraction * cfg.batch_size)
    m = cfg.batch_size - h
    images, attrs, captions = render_batch(cfg.seed, step * m, m, cfg.resolution, split="train")
    if h:
        im2, at2, cap2 = render_batch(cfg.seed, step * h, h, cfg.resolution, split="heldout")
        images, attrs, captions = np.concatenate([images, im2]), attrs + at2, captions + cap2
    return images, attrs, captions


def train_loop(model, loss_fn, steps: int, cfg: EvaluatorTrainConfig, tokenizer=None, heldout_fraction: float = 0.0, log=print, name: str = "") -> dict:
    """Train `model` for `steps` batches of fresh renders; loss_fn(model, tokenizer, x, attrs,
    captions) -> [B]. Returns {"wall_s", "cpu_s"} (cpu_s: this process's CPU time, all threads)."""
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    model.train()
    start, cpu_start, running = time.time(), time.process_time(), 0.0
    for step in range(steps):
        # Data: renders of this step, and an augmentation stream seeded by (seed, step).
        images, attrs, captions = training_batch(cfg, step, heldout_fraction)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = augment(as_float_images(images), gen, cfg.resize_prob)
        # Update.
        loss = loss_fn(model, tokenizer, x, attrs, captions).mean()
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, steps, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # Log.
        running += loss.item()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            elapsed = time.time() - start
            cpu = time.process_time() - cpu_start
            log(f"{name} step {step + 1}/{steps} loss {running / ((step % 50) + 1):.4f} lr {learning_rate(step, steps, cfg):.2e} wall {elapsed:.0f}s cpu {cpu:.0f}s ({(step + 1) * cfg.batch_size / elapsed:.0f} img/s)")
            running = 0.0
    model.eval()
    return {"wall_s": round(time.time() - start, 1), "cpu_s": round(time.process_time() - cpu_start, 1)}


def caption_vocab(cfg: EvaluatorTrainConfig) -> tuple[tuple[str, ...], int]:
    """(vocabulary, max_len): words of the first vocab_renders training captions plus every
    attribute value's words; max_len fits the longest caption with <bos> and a margin of 8."""
    _, _, captions = render_batch(cfg.seed, 0, cfg.vocab_renders, 32, split="train")
    values = [v.replace("_", " ") for vs in ATTRIBUTES.values() for v in vs]
    longest = max(len(caption_words(c)) for c in captions)
    return build_vocab(captions + values), longest + 1 + 8


def train_evaluator(out: str | Path, cfg: EvaluatorTrainConfig = EvaluatorTrainConfig(), log=print, overwrite: bool = False) -> dict:
    """Train both models, then write out/{recogniser,contrastive,reference}.safetensors and config.json.
    `out` is refused before training if it exists (unless `overwrite` and it is an evaluator folder), locked
    while training and swapped in whole at the end (atomic.replace_folder). Returns the config written."""
    out = Path(out)
    check_output_folder(out, overwrite, is_evaluator_folder, EVALUATOR_FOLDER)
    t0 = time.time()
    with replace_folder(out, overwrite=overwrite, is_ours=is_evaluator_folder, what=EVALUATOR_FOLDER) as tmp:
        config = _train_into(tmp, cfg, log, t0)
    log(f"wrote {out} in {time.time() - t0:.0f}s")
    return config


EVALUATOR_FOLDER = "evaluator folder (config.json, recogniser.safetensors)"


def is_evaluator_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "recogniser.safetensors").is_file()


def _train_into(out: Path, cfg: EvaluatorTrainConfig, log, t0: float) -> dict:
    from .check import check_evaluator

    torch.set_num_threads(cfg.threads)
    vocab, max_len = caption_vocab(cfg)
    rcfg = RecogniserConfig(families=tuple(ATTRIBUTES.items()), resolution=cfg.resolution)
    ccfg = ContrastiveConfig(vocab=vocab, max_len=max_len, resolution=cfg.resolution)
    log(f"vocabulary: {len(vocab)} tokens, max_len {max_len}")

    recogniser = Recogniser(rcfg)
    t_rec = train_loop(recogniser, recogniser_loss, cfg.recogniser_steps, cfg, heldout_fraction=cfg.recogniser_heldout_fraction, log=log, name="recogniser")
    save_weights(recogniser, out / "recogniser.safetensors")
    contrastive = ContrastiveModel(ccfg)
    t_con = train_loop(contrastive, contrastive_loss, cfg.contrastive_steps, cfg, ccfg.tokenizer(), log=log, name="contrastive")
    save_weights(contrastive, out / "contrastive.safetensors")

    # Reload from the float16 files, so reference and measurements are those of the shipped weights.
    config = {
        "format": FORMAT,
        "recogniser": rcfg.to_json(),
        "contrastive": ccfg.to_json(),
        "reference": {
            "num": cfg.reference_num,
            "seed": REFERENCE_SEED,
            "split": "test",
            "size": cfg.resolution,
            "features": "recogniser stage means at 32, 16, 8 px",
            "fingerprint": renderer_fingerprint(cfg.resolution),
        },
    }
    ev = build_evaluator(config, out)
    images, _, _ = render(cfg.reference_num, REFERENCE_SEED, cfg.resolution)
    save_reference(recognise(ev, ev.prepare(images))[0], out / "reference.safetensors")
    ev = build_evaluator(config, out)
    measured = check_evaluator(ev, num=cfg.check_num)
    config["training"] = {
        "command": to_command("proxt2i evaluator train --out DIR", cfg, keep=("seed", "recogniser_steps", "contrastive_steps", "batch_size")),
        "recipe": asdict(cfg),
        "params": {"recogniser": sum(p.numel() for p in recogniser.parameters()), "contrastive": sum(p.numel() for p in contrastive.parameters())},
        "time": {"recogniser": t_rec, "contrastive": t_con, "total_wall_s": round(time.time() - t0, 1)},
        "torch_threads": cfg.threads,
    }
    config["measured"] = measured
    save_config(config, out / "config.json")
    return config
