"""The training loop: one explicit loop for both objectives (they differ by the loss block only).

Runs on one CPU, one GPU or many processes through accelerate (`accelerate launch -m proxt2i train ...`).
Exact resume by construction: every random draw of step s on rank r comes from a generator seeded
with (seed, rank, s), and the data of step s is a pure function of s, so a checkpoint only needs
model, EMA, optimizer and the step.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..models.uvit import prox_output_scale
from ..schedule import VPSchedule
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .draws import draw_t_lam
from .losses import (PMSchedule, conditional_mean_noise, denoising_score_matching_loss, loss_phase, noisy_pair, prox_pair,
                     proximal_matching_objective, total_noise)
from .presets import TrainConfig, config_dict, sampling_defaults, train_command
from .recipe import checkpoint_init_recipe


# ---------------------------------------------------------------------------------------------- data
class BatchSource:
    """Deterministic batches: batch(step, rank, world) -> (images [B, 3, S, S] in [0, 1], captions)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        kind, _, where = cfg.data.partition(":")
        self.kind = kind
        if kind == "synthfaces":
            self.records = None
        elif kind in ("imagefolder", "webdataset"):
            from ..data.indexed import IndexedPairs

            self.records = IndexedPairs(where, kind)  # an index: images are read when a batch needs them
        else:
            raise UsageError(f"data must be 'synthfaces', 'imagefolder:DIR' or 'webdataset:SHARDS', got {cfg.data!r}")

    def captions_for_vocabulary(self, limit: int = 50000) -> list[str]:
        return [] if self.records is None else self.records.texts[:limit]

    def indices(self, step: int, rank: int, world: int) -> list[int]:
        """Record indices of batch `step` on process `rank` (records cycle in order)."""
        start = (step * world + rank) * self.cfg.batch
        return [(start + i) % len(self.records) for i in range(self.cfg.batch)]

    def batch(self, step: int, rank: int, world: int):
        b, size = self.cfg.batch, self.cfg.image_size
        if self.records is None:
            from ..data.synthfaces import render_batch

            images, _, captions = render_batch(self.cfg.seed, (step * world + rank) * b, b, size, split="train")
        else:
            rows = [self.records[i] for i in self.indices(step, rank, world)]
            images = np.stack([_resize(img, size) for img, _ in rows])
            captions = [t for _, t in rows]
        return to_float_images(images), list(captions)

    def batches(self, steps: range, rank: int, world: int, workers: int = 0):
        """batch(step, rank, world) for each step in order; workers > 0 threads read up to 2 x workers
        batches ahead (image decoding releases the GIL), with the same result as workers = 0."""
        if workers == 0:
            yield from (self.batch(s, rank, world) for s in steps)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pending, todo = deque(), iter(steps)
        with ThreadPoolExecutor(workers, thread_name_prefix="data") as pool:
            for s in todo:
                pending.append(pool.submit(self.batch, s, rank, world))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def captions(self, step: int, rank: int, world: int) -> list[str]:
        return [self.records.texts[i] for i in self.indices(step, rank, world)]


def to_float_images(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, S, S, 3] -> float [B, 3, S, S] in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


def latent_cache(path: Path, source: BatchSource, autoencoder, cfg: TrainConfig, device, batch_size: int = 128) -> torch.Tensor:
    """Latents [N, C, h, w] of every record (posterior means, so exact), read from `path` when it was
    built from the same data, size and autoencoder, else encoded once and written atomically."""
    from safetensors import safe_open

    from ..atomic import atomic_save_safetensors

    key = {"data": cfg.data, "image_size": str(cfg.image_size), "autoencoder": cfg.autoencoder, "num": str(len(source.records))}
    if path.exists():
        try:
            with safe_open(str(path), "pt") as f:
                if f.metadata() == key:
                    return f.get_tensor("latents")
        except Exception:  # a stale or broken cache is rebuilt, never trusted
            pass
    chunks = []
    with torch.no_grad():
        for i in range(0, len(source.records), batch_size):
            rows = source.records[i : i + batch_size]
            images = to_float_images(np.stack([_resize(img, cfg.image_size) for img, _ in rows])).to(device)
            chunks.append(autoencoder.encode(images).float().cpu())
    latents = torch.cat(chunks)
    atomic_save_safetensors({"latents": latents}, path, metadata=key)
    return latents


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> [size, size, 3]: the short side resized to `size` (bicubic), then a centre crop,
    so that non-square images keep their proportions (a square image is simply resized)."""
    h, w = img.shape[:2]
    if h == size and w == size:
        return img
    from PIL import Image

    r = size / min(h, w)
    nw, nh = max(size, round(w * r)), max(size, round(h * r))
    im = Image.fromarray(img).resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


# ---------------------------------------------------------------------------------------------- model
def build_autoencoder(spec: str):
    from ..models.autoencoder import DiffusersKL, IdentityAutoencoder
    from .vae import load_autoencoder_dir

    if spec == "identity":
        return IdentityAutoencoder()
    if spec == "shipped":
        from ..shipped import shipped_vae_dir

        return load_autoencoder_dir(shipped_vae_dir())
    if spec.startswith("diffusers:"):
        return DiffusersKL(spec.split(":", 1)[1])
    return load_autoencoder_dir(spec)


def training_vocabulary(source: BatchSource) -> list[str]:
    """The embedded text encoder's words: SynthFaces' vocabulary, or every word of the dataset's captions."""
    from ..models.text import synthfaces_vocabulary, words

    return synthfaces_vocabulary() if source.records is None else sorted({w for t in source.captions_for_vocabulary() for w in words(t)})


def build_network(cfg: TrainConfig, latent_channels: int, latent_size: int, vocab: list[str]):
    from ..models.conditional import TextConditionedUViT
    from ..models.text import EmbeddedTextEncoder, load_text_encoder
    from ..models.uvit import UVIT_PRESETS, UViT, UViTConfig

    if cfg.model not in UVIT_PRESETS:
        raise UsageError(f"unknown model preset {cfg.model!r}; choose one of: {', '.join(UVIT_PRESETS)}")
    if cfg.text_encoder == "embedded":
        text = EmbeddedTextEncoder(vocab, dim=cfg.text_dim, depth=cfg.text_depth, heads=4 if cfg.text_dim % 4 == 0 else 1, max_length=48)
    else:  # frozen Hugging Face encoder(s) from local folders (the paper: MetaCLIP + T5, concatenated)
        text = load_text_encoder(cfg.text_encoder)
    base = UVIT_PRESETS[cfg.model].to_dict()
    base.update(in_channels=latent_channels, image_size=latent_size, text_dim=text.dim, max_text_len=text.max_length,
                use_lam=cfg.objective == "prox", precondition=cfg.precondition and cfg.objective == "prox")
    for key in ("width", "depth", "patch_size", "heads"):
        if getattr(cfg, key) is not None:
            base[key] = getattr(cfg, key)
    if base["width"] % base["heads"]:  # an error, not a silent change of heads: the user sees the net they asked for
        raise UsageError(f"width={base['width']} is not a multiple of heads={base['heads']} (the {cfg.model!r} preset's unless set); "
                         f"set heads={math.gcd(base['width'], base['heads'])} or another divisor of {base['width']}")
    return TextConditionedUViT(UViT(UViTConfig.from_dict(base)), text)


def init_from_model(net, name_or_path: str) -> dict | None:
    """Copy a trained model's U-ViT and embedded text-encoder weights into `net` (fine-tuning); returns
    that model's recipe. Architecture, vocabulary and objective must match; a mismatch is one clear error."""
    from ..pipeline import load_pipeline
    from ..shipped import resolve_model

    cfg, src, _ = load_pipeline(resolve_model(name_or_path))
    if cfg.get("objective") != ("prox" if net.uvit.lam_embed is not None else "score"):
        raise UsageError(f"init={name_or_path!r} is a {cfg.get('objective')} model; initialise from a model with this config's objective")
    if getattr(net.text_encoder, "vocab", None) not in (None, getattr(src.text_encoder, "vocab", None)):
        raise UsageError(f"init={name_or_path!r} has a different text vocabulary from this config's data")
    try:
        net.uvit.load_state_dict({k: v.float() for k, v in src.uvit.state_dict().items()})
        if list(net.text_encoder.state_dict()):
            net.text_encoder.load_state_dict({k: v.float() for k, v in src.text_encoder.state_dict().items()})
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise UsageError(f"init={name_or_path!r} does not match this config's network ({first}); "
                         "use a model trained with the same width, depth, patch size, text encoder and objective") from None
    return cfg.get("recipe") or None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of training step `step` (0-based): linear warm-up to cfg.lr over cfg.lr_warmup
    steps, then constant (lr_decay='constant') or decayed to 0 at step cfg.steps ('linear', 'cosine').
    A pure function of (step, cfg), so a resumed run continues the same schedule."""
    if step < cfg.lr_warmup or cfg.lr_decay == "constant":
        return cfg.lr * min(1.0, (step + 1) / max(cfg.lr_warmup, 1))
    done = min(1.0, (step - cfg.lr_warmup) / max(cfg.steps - cfg.lr_warmup, 1))
    if cfg.lr_decay == "linear":
        return cfg.lr * (1.0 - done)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * done))


def ema_decay(step: int, cfg: TrainConfig) -> float:
    """The EMA decay after training step `step` (0-based): cfg.ema, or with warm-up min(ema, (1 + step) / (10 + step))."""
    return min(cfg.ema, (1 + step) / (10 + step)) if cfg.ema_warmup else cfg.ema


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 10_007 + step) % (2**63))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach().to(e.dtype), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


# ---------------------------------------------------------------------------------------------- loop
def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume) cfg; returns the exported model folder OUT/final."""
    from accelerate import Accelerator
    from tqdm import tqdm

    from ..pipeline import save_pipeline

    torch.set_num_threads(max(1, cfg.threads))
    acc = Accelerator(mixed_precision=cfg.mixed_precision, cpu=not torch.cuda.is_available())
    out = Path(cfg.out)
    schedule = VPSchedule()

    # --- data, autoencoder and network
    source = BatchSource(cfg)
    autoencoder = build_autoencoder(cfg.autoencoder).to(acc.device).eval()
    if cfg.image_size % autoencoder.downsample:
        raise UsageError(f"image_size {cfg.image_size} must be a multiple of the autoencoder's downsampling {autoencoder.downsample}")
    latent_size = cfg.image_size // autoencoder.downsample
    vocab = training_vocabulary(source)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, autoencoder.latent_channels, latent_size, vocab)
    ema = copy.deepcopy(net).requires_grad_(False).eval()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    # --- resume = rerun the command
    start, wall_before, init_recipe = 0, 0.0, None  # init_recipe: how the init model was made (the lineage)
    ckpt = latest_checkpoint(out)
    if ckpt is None and cfg.init:
        init_recipe = init_from_model(net, cfg.init)
        ema.load_state_dict(net.state_dict())
        acc.print(f"initialised from {cfg.init}")
    if ckpt is not None:
        state = load_checkpoint(ckpt, net, ema, opt)
        start, wall_before = int(state["step"]), float(state.get("wall_seconds", 0.0))
        init_recipe = checkpoint_init_recipe(state, cfg.init)
        acc.print(f"resuming from {ckpt} (step {start})")
    net, opt = acc.prepare(net, opt)
    ema.to(acc.device)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config_dict(cfg), indent=1))
    writer = _tensorboard(out) if acc.is_main_process else None
    cached = None
    if cfg.cache_latents:  # the main process encodes once; the others read its file
        if acc.is_main_process:
            latent_cache(out / "latents.safetensors", source, autoencoder, cfg, acc.device)
        acc.wait_for_everyone()
        cached = latent_cache(out / "latents.safetensors", source, autoencoder, cfg, acc.device)
    pm = PMSchedule(cfg.steps, cfg.pm_warmup_fraction, cfg.zeta_start, cfg.zeta_decay, cfg.zeta_stages)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"train {cfg.objective}",
               disable=not (progress and acc.is_main_process))
    t_start = t_last = time.time()
    seen = 0
    stream = None if cached is not None else source.batches(range(start, cfg.steps), acc.process_index, acc.num_processes, cfg.data_workers)
    for step in bar:
        # --- batch: images -> latents, captions with dropout for guidance
        g = step_generator(cfg.seed, acc.process_index, step)
        if cached is not None:
            x0 = cached[source.indices(step, acc.process_index, acc.num_processes)].to(acc.device)
            captions = source.captions(step, acc.process_index, acc.num_processes)
        else:
            images, captions = next(stream)
            with torch.no_grad():
                x0 = autoencoder.encode(images.to(acc.device)).float()
        drop = torch.rand(len(captions), generator=g) < cfg.text_dropout
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]

        # --- loss: proximal matching or denoising score matching
        if cfg.objective == "prox":
            d = draw_t_lam(x0.shape[0], g, tuple(cfg.step_candidates), power=cfg.candidate_power, mode=cfg.mode, schedule=schedule,
                           grids=tuple(cfg.candidate_grids.split(",")))
            t, lam = d.t.float().to(acc.device), d.lam.float().to(acc.device)
            x_t, _ = noisy_pair(x0, t, schedule, generator=g)
            y, n = prox_pair(x_t, lam, generator=g)
            phase, zeta = loss_phase(step, pm)
            with acc.autocast():
                eps = net(y, t, lam, captions)
            pred, target = eps.float(), n
            if cfg.prox_target == "conditional-mean":
                target = conditional_mean_noise(y, x0, t, lam, schedule)
            elif cfg.prox_target == "total-noise":  # compare in backbone space: undo the exact output scale
                target = total_noise(y, x0, t, lam, schedule)
                pred = pred / prox_output_scale(t, lam).view(-1, *[1] * (pred.dim() - 1))
            loss = proximal_matching_objective(pred, target, phase, zeta).mean()
        else:
            t = (torch.rand(x0.shape[0], generator=g) * (1 - 1e-3) + 1e-3).to(acc.device)
            x_t, e = noisy_pair(x0, t, schedule, generator=g)
            phase, zeta = "dsm", None
            with acc.autocast():
                eps = net(x_t, t, torch.zeros_like(t), captions)
            loss = denoising_score_matching_loss(eps.float(), e).mean()

        # --- update: LR warm-up, clipping, EMA
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        ema_update(ema, acc.unwrap_model(net), ema_decay(step, cfg))
        seen += x0.shape[0] * acc.num_processes

        # --- logs, checkpoints, samples
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            rate = seen / max(time.time() - t_last, 1e-9)
            t_last, seen = time.time(), 0
            bar.set_postfix(loss=f"{loss.item():.4f}", phase=phase if zeta is None else f"pm z={zeta:g}", img_s=f"{rate:.0f}")
            if not progress:  # no bar: one plain line per log interval, for log files
                acc.print(f"step {done}/{cfg.steps} loss {loss.item():.4f} {phase if zeta is None else f'pm zeta={zeta:g}'} "
                          f"lr {lr_at(step, cfg):.2e} {rate:.0f} img/s", flush=True)
            if writer is not None:
                writer.add_scalar("loss", loss.item(), done)
                writer.add_scalar("lr", lr_at(step, cfg), done)
                writer.add_scalar("images_per_second", rate, done)
                if zeta is not None:
                    writer.add_scalar("zeta", zeta, done)
        if acc.is_main_process and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(out, done, acc.unwrap_model(net), ema, opt, {"config": config_dict(cfg), "vocabulary": vocab, "init_recipe": init_recipe,
                            "wall_seconds": round(wall_before + time.time() - t_start, 1)}, keep=cfg.keep_checkpoints)
        if acc.is_main_process and cfg.sample_every > 0 and done % cfg.sample_every == 0:
            _sample_grid(ema, autoencoder, cfg, latent_size, out / "samples" / f"step-{done:08d}.png")
        acc.wait_for_everyone()

    # --- export the EMA model (with a per-rank weight checksum: DDP ranks must agree)
    final = out / "final"
    checksum = torch.tensor([float(sum(p.detach().double().sum() for p in acc.unwrap_model(net).parameters()))], device=acc.device)
    rank_checksums = acc.gather(checksum).cpu().tolist()
    if acc.is_main_process:
        recipe = {"command": train_command(cfg), "config": config_dict(cfg), "steps": cfg.steps,
                  "images_seen": cfg.steps * cfg.batch * acc.num_processes, "processes": acc.num_processes,
                  "wall_seconds": round(wall_before + time.time() - t_start, 1),  # over all resumed sessions
                  "rank_weight_checksums": rank_checksums, "init_recipe": init_recipe}
        save_pipeline(final, ema.uvit, ema.text_encoder, autoencoder, objective=cfg.objective,
                      image_size=cfg.image_size, recipe=recipe, sampling=sampling_defaults(cfg))
        if writer is not None:
            writer.close()
    acc.wait_for_everyone()
    return final


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a broken install must not stop training
        return None
    return SummaryWriter(str(out / "tensorboard"))


@torch.no_grad()
def _sample_grid(ema, autoencoder, cfg: TrainConfig, latent_size: int, path: Path) -> None:
    """A 2x4 grid of fixed prompts sampled with PDA-hybrid (prox) or Euler-Maruyama (score), 4 steps."""
    from ..pipeline import sample_latents, save_grid

    prompts = ["a smiling person with long red hair", "a person with glasses and a beard", "a sad person wearing a cap",
               "a surprised person with blond hair", "a person with short black hair, blue background",
               "a neutral person with a bun", "a person wearing sunglasses", "a person with an afro, pink background"]
    lat = sample_latents(ema, cfg.objective, prompts, (autoencoder.latent_channels, latent_size, latent_size),
                         num_steps=4, guidance_scale=3.0, seeds=list(range(len(prompts))))
    save_grid(autoencoder.decode(lat).clamp(0, 1), path, cols=4)
