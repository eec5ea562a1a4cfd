"""Training the embedded small VAE on SynthFaces renders (on the fly, deterministic per index) or on a dataset.

L1 reconstruction + a small KL term; afterwards the latent shift and scale are measured on fresh
renders so that latents have unit variance. Saved as DIR/config.json + DIR/autoencoder.safetensors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_save_safetensors, atomic_write_json, check_output_folder, replace_folder
from ..config import SEED_MAX, option, to_command
from ..errors import UsageError, read_json
from ..imaging import to_float_images
from ..models.autoencoder import SmallVAE, calibrate_latent_scale, vae_loss


def synthfaces_images(seed: int, start: int, count: int, size: int) -> torch.Tensor:
    """Renders [count, 3, size, size] float in [0, 1] for indices start .. start + count - 1."""
    from ..data.synthfaces import render_batch

    images, _, _ = render_batch(seed, start, count, size, split="train")
    return to_float_images(images)


class VAEImages:
    """Training and held-out images of a VAE run: SynthFaces renders, or a dataset's images (resized and centre
    cropped; its last tenth, at most 256, held out; training images flipped at random, seeded by step)."""

    def __init__(self, cfg: "VAETrainConfig"):
        self.cfg = cfg
        kind, _, where = cfg.data.partition(":")
        self.records = None
        if kind != "synthfaces":
            from ..data.indexed import IndexedPairs

            self.records = IndexedPairs(where, kind)
            if len(self.records) < 2:
                raise UsageError(f"{cfg.data}: a VAE needs at least 2 images (one held out), got {len(self.records)}")
            self.held = min(256, max(1, len(self.records) // 10))
            self.train_num = len(self.records) - self.held

    def _read(self, indices) -> torch.Tensor:
        from ..imaging import resize_and_centre_crop

        return to_float_images(np.stack([resize_and_centre_crop(self.records[i][0], self.cfg.size) for i in indices]))

    def batch(self, step: int) -> torch.Tensor:
        cfg = self.cfg
        if self.records is None:
            return synthfaces_images(cfg.seed, step * cfg.batch, cfg.batch, cfg.size)
        x = self._read([(step * cfg.batch + i) % self.train_num for i in range(cfg.batch)])
        flip = torch.rand(cfg.batch, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def held_out(self) -> torch.Tensor:
        if self.records is None:
            return synthfaces_images(self.cfg.seed + 1, 0, 256, self.cfg.size)
        return self._read(range(self.train_num, len(self.records)))


def resolve_vae_dir(name_or_path: str) -> Path:
    """"synthfaces-vae" (the embedded VAE) or a VAE folder."""
    from ..shipped import VAE_NAME, shipped_vae_dir

    return shipped_vae_dir() if name_or_path == VAE_NAME else Path(name_or_path)


@dataclass(frozen=True)
class VAETrainConfig:
    """`proxt2i train-vae`: one training run of the embedded small VAE on SynthFaces renders."""

    out: str | None = option(None, "output folder", required=True, metavar="DIR")
    steps: int = option(3000, "optimiser steps")
    size: int = option(32, "image size in pixels (a multiple of 4 in 16..256)")
    batch: int = option(32, "batch size")
    seed: int = option(0, "seed")
    latent_channels: int = option(4, "latent channels (4: the shipped VAE); more keeps finer detail, measure it with "
                                     "`proxt2i evaluator check --autoencoder DIR`")
    lr: float = option(1e-3, "peak learning rate")
    width: int = option(64, "convolution width")
    kl_weight: float = option(1e-4, "weight of the KL term")
    init: str | None = option(None, "start from this VAE folder (or synthfaces-vae) instead of random weights", legacy="", metavar="VAE")
    decoder_only: bool = option(False, "with --init: train the decoder alone; the encoder and the latent scale stay as they are, so "
                                       "models trained in that latent space keep working and decode sharper (put it into a model "
                                       "with `proxt2i export MODEL --autoencoder DIR --out NEW`)")
    threads: int = option(1, "CPU threads for torch (1: small convs on a shared machine run fastest single-threaded)")
    data: str = option("synthfaces", '"synthfaces" (fresh renders), or your images: "imagefolder:DIR" or "webdataset:SHARDS" '
                                     "(the last tenth, at most 256, held out for the reported PSNR; random horizontal flips)")

    def __post_init__(self):
        checks = [
            (self.steps >= 1 and self.batch >= 1, f"steps and batch must be >= 1, got steps={self.steps}, batch={self.batch}"),
            (self.size % 4 == 0 and 16 <= self.size <= 256, f"size must be a multiple of 4 in 16..256, got {self.size}"),
            (1 <= self.latent_channels <= 64, f"--latent-channels must be in 1..64, got {self.latent_channels}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.width >= 1, f"--width must be >= 1, got {self.width}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.kl_weight >= 0, f"--kl-weight must be >= 0, got {self.kl_weight}"),
            (self.width % 8 == 0, f"--width must be a multiple of 8 (the VAE's group norms use 8 groups), got {self.width}"),
            (0 <= self.seed <= SEED_MAX, f"--seed must be an integer in 0..{SEED_MAX}, got {self.seed}"),
            (self.init != "", "--init must name a VAE folder (or be none)"),
            (self.data == "synthfaces" or self.data.partition(":")[0] in ("imagefolder", "webdataset") and self.data.partition(":")[2],
             f"data must be 'synthfaces', 'imagefolder:DIR' or 'webdataset:SHARDS', got {self.data!r}"),
            (not self.decoder_only or self.init is not None,
             "--decoder-only needs --init VAE (the VAE whose latent space the decoder is trained for)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)


# always in the recorded command, although they have defaults: what was trained, where, how long
VAE_COMMAND_KEEPS = ("out", "steps", "size", "batch", "seed")


def train_small_vae(out: str | Path, steps: int = 3000, size: int = 32, batch: int = 32, lr: float = 1e-3,
                    width: int = 64, latent_channels: int = 4, kl_weight: float = 1e-4, seed: int = 0,
                    init: str | None = None, decoder_only: bool = False, progress: bool = True) -> dict:
    """Train a SmallVAE and save it to `out`. Returns the recipe and final metrics (JSON-ready).

    init: start from a VAE folder (or "synthfaces-vae"). decoder_only (needs init): train the decoder
    alone; the encoder, and the latent shift and scale, stay exactly as they were, so every latent (and
    every generator trained in that latent space) keeps its meaning while decoded images get sharper."""
    cfg = VAETrainConfig(out=str(out), steps=steps, size=size, batch=batch, seed=seed, latent_channels=latent_channels, lr=lr,
                         width=width, kl_weight=kl_weight, init=init or None, decoder_only=decoder_only)
    return train_vae(cfg, progress=progress)


def train_vae(cfg: VAETrainConfig, progress: bool = True, overwrite: bool = False) -> dict:
    """Train a SmallVAE as `cfg` says and save it to cfg.out; returns the recipe and final metrics. The folder
    is refused before training if it exists (unless `overwrite` and it is a VAE folder), locked while training
    and swapped in whole at the end (atomic.replace_folder)."""
    out = Path(cfg.out)
    check_output_folder(out, overwrite, is_vae_folder, VAE_FOLDER)
    with replace_folder(out, overwrite=overwrite, is_ours=is_vae_folder, what=VAE_FOLDER) as tmp:
        vae, recipe = _train(cfg, progress)
        save_autoencoder(tmp, vae, recipe)
    return recipe


VAE_FOLDER = "VAE folder (config.json, autoencoder.safetensors)"


def is_vae_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "autoencoder.safetensors").is_file()


def _train(cfg: VAETrainConfig, progress: bool) -> tuple:
    """(the trained SmallVAE, its recipe)."""
    steps, size, batch, seed, lr, kl_weight = cfg.steps, cfg.size, cfg.batch, cfg.seed, cfg.lr, cfg.kl_weight
    latent_channels, width, init, decoder_only = cfg.latent_channels, cfg.width, cfg.init, cfg.decoder_only
    from tqdm import tqdm

    torch.manual_seed(seed)
    if init:
        vae = load_autoencoder_dir(resolve_vae_dir(init)).train()
        latent_channels, width = vae.latent_channels, vae.width
    else:
        vae = SmallVAE(latent_channels=latent_channels, width=width)
    if decoder_only:
        vae.encoder.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * (0.1 + 0.9 * (1 - s / steps)))
    g = torch.Generator().manual_seed(seed)
    start = time.time()
    images = VAEImages(cfg)
    bar = tqdm(range(steps), desc="vae decoder" if decoder_only else "vae", disable=not progress)
    for step in bar:
        x = images.batch(step)
        loss = vae_loss(vae, x, kl_weight=kl_weight, generator=g).mean()  # a frozen encoder makes the KL term a constant
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    vae.eval()
    held = images.held_out()
    if not decoder_only:
        calibrate_latent_scale(vae, held)
    with torch.no_grad():
        rec = vae.decode(vae.encode(held))
        l1 = float((rec - held).abs().mean())
        psnr = float(-10 * torch.log10(((rec.clamp(0, 1) - held) ** 2).mean()))
    recipe = {"command": to_command("proxt2i train-vae", cfg, keep=VAE_COMMAND_KEEPS),
              "steps": steps, "latent_channels": latent_channels, "batch": batch, "size": size, "lr": lr, "kl_weight": kl_weight,
              "images_seen": steps * batch, "wall_seconds": round(time.time() - start, 1),
              "heldout_l1": round(l1, 4), "heldout_psnr_db": round(psnr, 2), "data": cfg.data}
    if init:
        recipe.update(init=str(init), decoder_only=decoder_only, init_recipe=vae_recipe(resolve_vae_dir(init)))
    return vae, recipe


def vae_recipe(path: Path) -> dict:
    """The recipe recorded in a VAE folder's config.json ({} when there is none)."""
    f = Path(path) / "config.json"
    return read_json(f, "VAE config").get("recipe", {}) if f.exists() else {}


def save_autoencoder(out: str | Path, vae: SmallVAE, recipe: dict | None = None) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(vae.state_dict(), out / "autoencoder.safetensors")
    atomic_write_json(out / "config.json", {"autoencoder": vae.config(), "recipe": recipe or {}})


def load_autoencoder_dir(path: str | Path) -> SmallVAE:
    """Load a SmallVAE saved by train_small_vae / save_autoencoder."""
    from ..models.autoencoder import autoencoder_from_config
    from ..models.io import load_weights

    p = Path(path)
    if not (p / "config.json").exists() or not (p / "autoencoder.safetensors").exists():
        raise UsageError(f"{str(p)!r} is not a VAE folder: expected config.json and autoencoder.safetensors (build one with `proxt2i train-vae`)")
    try:  # the same checks as a model folder's "autoencoder" section (types, ranges, every field used)
        vae = autoencoder_from_config(read_json(p / "config.json", "VAE config").get("autoencoder"))
    except UsageError as err:
        raise UsageError(f"{p / 'config.json'}: {err}") from None
    if not isinstance(vae, SmallVAE):
        raise UsageError(f"{p / 'config.json'}: a VAE folder holds a small_vae autoencoder, got {vae.config()['type']!r}")
    load_weights(vae, p / "autoencoder.safetensors")
    return vae.eval()
