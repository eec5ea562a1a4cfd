"""Training configuration: one frozen dataclass, named presets in one table, `key=value` overrides."""

from __future__ import annotations

import math

from dataclasses import dataclass, fields, replace

from .. import config
from ..config import option, check_ranges, check_seed
from ..errors import UsageError

LR_DECAYS = ("constant", "linear", "cosine")
CONSISTENCY_KINDS = ("none", "training", "distillation")


@dataclass(frozen=True)
class TrainConfig:
    # what is learned
    objective: str = option("prox", '"prox" (proximal matching) or "score" (denoising score matching baseline)')
    model: str = option("tiny", "U-ViT preset (models.uvit.UVIT_PRESETS); in_channels / image_size follow the data")
    width: int | None = option(None, "U-ViT width; none = the model preset's", legacy=0)
    depth: int | None = option(None, "U-ViT depth (odd); none = the model preset's", legacy=0)
    patch_size: int | None = option(None, "U-ViT patch size; none = the model preset's", legacy=0)
    heads: int | None = option(None, "attention heads (must divide width); none = the model preset's")
    precondition: bool = option(False, "prox only: the backbone predicts y's total noise from y / sqrt(1 + lam) (models/uvit.py)")
    text_encoder: str = option("embedded", '"embedded" (trained with the model), or frozen local HF weights: "clip:DIR", "t5:DIR", "clip:DIR+t5:DIR"')
    text_max_length: int | None = option(None, "token limit of each Hugging Face text encoder (none: its own; T5's is 512)")
    text_dim: int = option(128, "embedded text encoder width")
    text_depth: int = option(2, "embedded text encoder blocks")
    # data
    data: str = option("synthfaces", '"synthfaces", "imagefolder:DIR" or "webdataset:SHARDS" (a .tar, a folder of them, a glob or {000..099} braces)')
    image_size: int = option(32, "image size in pixels")
    autoencoder: str = option("shipped", '"shipped" (the embedded small VAE), "identity" (pixels), a VAE folder, or "diffusers:DIR"')
    text_dropout: float = option(0.1, "probability of the empty prompt, for classifier-free guidance")
    cache_latents: bool = option(False, "imagefolder / webdataset only: encode every image once, reuse OUT/latents.safetensors")
    data_workers: int = option(0, "threads reading and decoding the next batches ahead of the training step (0 = in the loop); same batches either way")
    init: str | None = option(None, legacy="", help="start from a trained model's weights (shipped name or model folder; same architecture and objective)")
    text_reanchor: bool = option(False, "with init: re-make the embedded text encoder's word rows that never grew (under a third of the "
                                        "median norm) from same-meaning words (data.captions.same_meaning_words)")
    distill_guidance: float | None = option(None, "guidance distillation: regress the init model's CFG-guided output at this scale "
                                                  "(one pass per step at sampling, guidance 1) instead of the data target; needs init")
    consistency: str = option("none", '"none"; "training": consistency training (the target is the model itself one interval lower '
                                      'on the same noise trajectory; from scratch, or from init=MODEL as in ECT); "distillation": consistency '
                                      'distillation (LCM) from init=MODEL, whose CFG-guided DDIM step at distill_guidance=W gives the target; '
                                      'objective=score only; the model then samples with the consistency sampler')
    consistency_intervals: tuple[int, ...] = option((10, 160), "START,END: intervals of the unit time range between the two times of a pair, "
                                                               "doubled from START to END over training (one value: fixed)")
    consistency_snr_cap: float = option(5.0, "the consistency loss weights a pair by min(SNR, cap) in clean-image space")
    # optimisation
    steps: int = option(20000, "optimiser steps")
    batch: int = option(64, "per process")
    lr: float = option(3e-4, "peak learning rate")
    lr_warmup: int = option(500, "linear warm-up steps")
    lr_decay: str = option("constant", 'after warm-up: "constant", or "linear" / "cosine" down to 0 at the last step (a cool-down)')
    weight_decay: float = option(0.0, "AdamW weight decay")
    grad_clip: float = option(1.0, "gradient norm clip")
    ema: float = option(0.999, "EMA decay of the exported weights")
    ema_warmup: bool = option(True, "decay min(ema, (1 + step) / (10 + step)): early EMA weights are not dominated by the random init")
    mixed_precision: str = option("no", '"no", "bf16", "fp16" (accelerate)')
    fsdp: bool = option(False, "shard the trained network, its gradients, AdamW state and EMA over the processes (FSDP2; "
                               "needs several processes: accelerate launch or torch.distributed.run; docs/scale.md)")
    frozen_dtype: str = option("float32", "weights of the frozen parts (autoencoder, Hugging Face or contrastive text encoders): "
                                          "float32, bfloat16 or float16 (halves their memory; T5-XXL needs it in 24 GB)")
    # proximal matching (ProxDM): L1 warm-up fraction, then PM with zeta halved in stages
    pm_warmup_fraction: float = option(0.2, "fraction of the steps trained with the L1 loss first")
    zeta_start: float = option(2.0, "proximal-matching zeta of the first stage")
    zeta_decay: float = option(0.5, "zeta factor from one stage to the next")
    zeta_stages: int = option(2, "proximal-matching stages")
    step_candidates: tuple[int, ...] = option((5, 10, 20, 50, 100, 1000), "comma-separated step counts N the training draws lie on")
    prox_target: str = option("sample", '"sample": the drawn n (ProxDM); "conditional-mean": E[n | y, x0] (losses.conditional_mean_noise); '
                                        '"total-noise" (precondition only): the backbone output against y\'s unit noise (losses.total_noise)')
    candidate_power: float = option(1.0 / 3.0, "step count N drawn with weight N^power (ProxDM: 1/3; 0 = uniform over candidates)")
    candidate_grids: str = option("uniform", "comma-separated time grids the draws lie on (uniform, quadratic, power:R), one per draw at random")
    chain_inputs: float = option(0.0, "prox only: share of draws whose y is the PDA sampler's own prox input (y from the "
                                      "forward-diffused next state, losses.chain_input) instead of x_t + sqrt(lam) n: trains the "
                                      "network where 2-5 step grids query it")
    default_time_grid: str | None = option(None, "written to the exported model: the grid its default sampler walks (none = uniform)",
                                           legacy="")
    mode: str = option("hybrid", "the discretization lam follows: hybrid or backward")
    # bookkeeping
    seed: int = option(0, "seed")
    out: str = option("runs/synthfaces-prox", "output folder (rerunning the command resumes there)")
    checkpoint_every: int = option(500, "checkpoint every N steps")
    keep_checkpoints: int = option(2, "newest checkpoints kept (>= 1)")
    sample_every: int = option(1000, "write a sample grid every N steps; 0 = never")
    log_every: int = option(25, "log every N steps")
    threads: int = option(1, "CPU threads per process: small ops run fastest single-threaded on shared CPUs")

    def __post_init__(self):
        checks = [
            (self.objective in ("prox", "score"), f"objective must be 'prox' or 'score', got {self.objective!r}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.lr_decay in LR_DECAYS, f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {self.lr_decay!r}"),
            (0 <= self.text_dropout < 1, f"text_dropout must be in [0, 1), got {self.text_dropout}"),
            (0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}"),
            (self.prox_target in ("sample", "conditional-mean", "total-noise"),
             f"prox_target must be 'sample', 'conditional-mean' or 'total-noise', got {self.prox_target!r}"),
            (self.prox_target != "total-noise" or self.precondition, "prox_target=total-noise needs precondition=true"),
            (0 <= self.chain_inputs <= 1, f"chain_inputs must be in [0, 1], got {self.chain_inputs}"),
            (self.chain_inputs == 0 or self.objective == "prox", "chain_inputs applies to objective=prox only"),
            (self.mode in ("hybrid", "backward"), f"mode must be 'hybrid' or 'backward', got {self.mode!r}"),
            (self.mixed_precision in ("no", "bf16", "fp16"), f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}"),
            (self.frozen_dtype in ("float32", "bfloat16", "float16"), f"frozen_dtype must be float32, bfloat16 or float16, got {self.frozen_dtype!r}"),
            (not self.precondition or self.objective == "prox", "precondition applies to objective=prox only"),
            (16 <= self.image_size <= 1024, f"image_size must be in 16..1024, got {self.image_size}"),
            (self.init != "", "init must name a model (or be none)"),
            (self.distill_guidance is None or self.init is not None, "distill_guidance needs init=MODEL (the teacher whose guided output is learned)"),
            (self.distill_guidance is None or (math.isfinite(self.distill_guidance) and self.distill_guidance >= 0),
             f"distill_guidance must be a finite scale >= 0, got {self.distill_guidance}"),
            (self.consistency in CONSISTENCY_KINDS, f"consistency must be one of {', '.join(CONSISTENCY_KINDS)}, got {self.consistency!r}"),
            (self.consistency == "none" or self.objective == "score",
             f"consistency={self.consistency} trains the score network (objective=score), got objective={self.objective}"),
            (self.consistency != "distillation" or self.distill_guidance is not None,
             "consistency=distillation needs init=MODEL and distill_guidance=W (the teacher and its CFG scale; 1 = unguided)"),
            (self.consistency != "training" or self.distill_guidance is None,
             "consistency=training has no teacher; drop distill_guidance (or use consistency=distillation)"),
            (1 <= len(self.consistency_intervals) <= 2 and min(self.consistency_intervals) >= 1
             and self.consistency_intervals[0] <= self.consistency_intervals[-1],
             f"consistency_intervals must be START,END with 1 <= START <= END (or one count), got {self.consistency_intervals}"),
            (self.consistency_snr_cap > 0, f"consistency_snr_cap must be > 0, got {self.consistency_snr_cap}"),
            (not self.text_reanchor or self.init, "text_reanchor=true re-makes rows of an init model's text encoder; set init=MODEL"),
            (self.data_workers >= 0, f"data_workers must be >= 0, got {self.data_workers}"),
            (self.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}"),
            (not self.cache_latents or self.data != "synthfaces",
             "cache_latents needs data=imagefolder:DIR or webdataset:SHARDS (SynthFaces renders fresh images every step)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        # every count a step divides by or loops over; 0 would divide by zero or silently do nothing
        check_ranges(self, text_max_length=(1, None), text_dim=(1, None), text_depth=(1, None), lr_warmup=(0, None), weight_decay=(0, None),
                     grad_clip=(0, None), pm_warmup_fraction=(0, 1), zeta_start=(None, None), zeta_decay=(None, None),
                     zeta_stages=(1, None), step_candidates=(1, 1000), candidate_power=(None, None), checkpoint_every=(1, None),
                     keep_checkpoints=(1, None), sample_every=(0, None), log_every=(1, None), threads=(1, None))
        check_seed(self.seed)
        if not (self.zeta_start > 0 and self.zeta_decay > 0):
            raise UsageError(f"zeta_start and zeta_decay must be > 0, got {self.zeta_start} and {self.zeta_decay}")
        for key in ("width", "depth", "patch_size", "heads"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise UsageError(f"{key} must be >= 1 (or none: the model preset's), got {getattr(self, key)}")
        if self.default_time_grid is not None and not _is_grid(self.default_time_grid):
            raise UsageError(f"default_time_grid: unknown time grid {self.default_time_grid!r}; use uniform, quadratic or power:R (R > 0)")
        for kind in self.candidate_grids.split(","):
            if not _is_grid(kind):
                raise UsageError(f"candidate_grids: unknown time grid {kind!r}; use uniform, quadratic or power:R (R > 0), comma-separated")


def _is_grid(kind: str) -> bool:
    """A time-grid name schedule.grid_power accepts (the same rule, here without importing torch)."""
    if kind in ("uniform", "quadratic"):
        return True
    try:
        return kind.startswith("power:") and float(kind[6:]) > 0
    except ValueError:
        return False


PRESETS: dict[str, TrainConfig] = {
    # the shipped default: tiny U-ViT on 8x8x4 latents of 32 px SynthFaces renders
    # (sized for a 2-core CPU: ~45 minutes per model; see docs/training.md for the measured recipe)
    # few-step grids (2, 3, 4 steps) join ProxDM's candidates: the shipped model is sampled at 2-8 steps
    # (ema_warmup=False: how the shipped weights were trained; keep it to rebuild them exactly)
    # the loss on the backbone's output against y's unit noise (prox_target=total-noise), and PM with zeta 10
    # throughout (no L1 warm-up): nearly quadratic, the posterior-mean end of the PM family (docs/models.md);
    # the exported model samples PDA-hybrid on the quadratic time grid (docs/models.md, "Time grid")
    "synthfaces-prox": TrainConfig(width=128, depth=5, batch=32, steps=5000, lr=5e-4, lr_warmup=200, checkpoint_every=250, ema_warmup=False,
                                   precondition=True, prox_target="total-noise", pm_warmup_fraction=0.0, zeta_start=10.0, zeta_stages=1,
                                   step_candidates=(2, 3, 4, 5, 10, 20, 50, 100, 1000), default_time_grid="quadratic"),
    "synthfaces-score": TrainConfig(objective="score", width=128, depth=5, batch=32, steps=5000, lr=5e-4, lr_warmup=200, checkpoint_every=250, ema_warmup=False,
                                    out="runs/synthfaces-score"),
    # the few-step competitors on the same U-ViT and data (docs/benchmark.md): consistency training from scratch, and
    # LCM-style consistency distillation of the shipped score model with its CFG 4 baked in (one pass per step)
    "synthfaces-ct": TrainConfig(objective="score", consistency="training", width=128, depth=5, batch=32, steps=5000, lr=5e-4,
                                 lr_warmup=200, checkpoint_every=250, out="runs/synthfaces-ct"),
    "synthfaces-lcm": TrainConfig(objective="score", consistency="distillation", init="synthfaces-score", distill_guidance=4.0,
                                  consistency_intervals=(50,), width=128, depth=5, batch=32, steps=600, lr=1e-4, lr_warmup=50,
                                  lr_decay="linear", ema=0.995, checkpoint_every=100, sample_every=0, out="runs/synthfaces-lcm"),
    # PhotoFaces (docs/photofaces.md): 64 px photoreal faces through a VAE trained on them (16x16x4 latents in patches of 2:
    # the 64 tokens of the SynthFaces models), captions from the real face readers. Data and VAE come from the
    # commands of docs/photofaces.md (point data= and autoencoder= elsewhere as key=value); the two objectives at equal budget
    "photofaces-prox": TrainConfig(width=128, depth=5, patch_size=2, image_size=64, autoencoder="runs/photofaces-vae",
                                   data="webdataset:data/photofaces-curated", cache_latents=True, batch=32, steps=3000, lr=5e-4,
                                   lr_warmup=100, checkpoint_every=250, sample_every=0, precondition=True, prox_target="total-noise",
                                   pm_warmup_fraction=0.0, zeta_start=10.0, zeta_stages=1,
                                   step_candidates=(2, 3, 4, 5, 10, 20, 50, 100, 1000), default_time_grid="quadratic",
                                   out="runs/photofaces-prox"),
    "photofaces-score": TrainConfig(objective="score", width=128, depth=5, patch_size=2, image_size=64, autoencoder="runs/photofaces-vae",
                                    data="webdataset:data/photofaces-curated", cache_latents=True, batch=32, steps=3000, lr=5e-4,
                                    lr_warmup=100, checkpoint_every=250, sample_every=0, out="runs/photofaces-score"),
    # stage 2, 2000 more steps each from stage 1's weights: the prox model on the PDA sampler's own inputs for half its draws
    # (chain_inputs, losses.chain_input; without them the 3000-step model's 2-8 step samples blow up: docs/photofaces.md)
    # on the uniform and quadratic grids; the score baseline continued alike, so both stay at equal budget
    "photofaces-prox-stage2": TrainConfig(width=128, depth=5, patch_size=2, image_size=64, autoencoder="runs/photofaces-vae",
                                          data="webdataset:data/photofaces-curated", cache_latents=True, init="runs/photofaces-prox/final",
                                          batch=32, steps=2000, lr=5e-4, lr_warmup=100, checkpoint_every=250, sample_every=0,
                                          precondition=True, prox_target="total-noise", pm_warmup_fraction=0.0, zeta_start=10.0,
                                          zeta_stages=1, step_candidates=(2, 3, 4, 5, 10, 20, 50, 100, 1000), chain_inputs=0.5,
                                          candidate_grids="uniform,quadratic", default_time_grid="quadratic", seed=1,
                                          out="runs/photofaces-prox-stage2"),
    "photofaces-score-stage2": TrainConfig(objective="score", width=128, depth=5, patch_size=2, image_size=64,
                                           autoencoder="runs/photofaces-vae", data="webdataset:data/photofaces-curated",
                                           cache_latents=True, init="runs/photofaces-score/final", batch=32, steps=2000, lr=5e-4,
                                           lr_warmup=100, checkpoint_every=250, sample_every=0, seed=1, out="runs/photofaces-score-stage2"),
    # seconds-long runs for tests and smoke checks: pixels, 32 px, a 3-block net
    "test-tiny": TrainConfig(model="tiny", width=32, depth=3, patch_size=4, text_dim=16, text_depth=1, image_size=32,
                             autoencoder="identity", steps=4, batch=4, lr_warmup=2, checkpoint_every=2, sample_every=0,
                             log_every=1, out="runs/test-tiny"),
    # paper scale (needs local SD3.5 VAE weights and a GPU cluster): 256 px, 32x32x16 latents, ~500M params
    "laion-face-prox-256": TrainConfig(model="paper", image_size=256, autoencoder="diffusers:models/sd3.5-vae",
                                      text_encoder="clip:models/metaclip-h14+t5:models/t5-xl", text_max_length=77,
                                      data="webdataset:data/laion-face/{00000..01499}.tar", data_workers=4, batch=64, lr=1e-4,
                                      steps=500_000, lr_warmup=5000, ema=0.9999, mixed_precision="bf16",
                                      out="runs/laion-face-prox-256"),
    # the same at 512 px: 64x64x16 latents, 1024 patches of 2x2
    "laion-face-prox-512": TrainConfig(model="paper-512", image_size=512, autoencoder="diffusers:models/sd3.5-vae",
                                      text_encoder="clip:models/metaclip-h14+t5:models/t5-xl", text_max_length=77,
                                      data="webdataset:data/laion-face/{00000..01499}.tar", data_workers=4, batch=32, lr=1e-4,
                                      steps=200_000, lr_warmup=5000, ema=0.9999, mixed_precision="bf16",
                                      out="runs/laion-face-prox-512"),
}
# PhotoFaces stage 3: 4000 more steps each from stage 2's weights, the learning rate decayed linearly to 0 (a cool-down);
# 9000 steps in all for both objectives, still at equal budget (docs/photofaces.md)
for _kind in ("prox", "score"):
    PRESETS[f"photofaces-{_kind}-stage3"] = replace(PRESETS[f"photofaces-{_kind}-stage2"], init=f"runs/photofaces-{_kind}-stage2/final",
                                                    steps=4000, lr_decay="linear", seed=2, out=f"runs/photofaces-{_kind}-stage3")


def resolve_config(name_or_path: str, overrides: list[str] = (), flags: dict[str, str] | None = None) -> TrainConfig:
    """A preset name or a JSON file, then flags (field -> raw string), then `key=value` overrides."""
    if name_or_path is None or "=" in name_or_path:
        raise UsageError(f"train needs a preset ({', '.join(PRESETS)}) or a .json config first, got {name_or_path!r}")
    return config.resolve_config(TrainConfig, [name_or_path, *overrides], PRESETS, flags)


def config_from_dict(values: dict) -> TrainConfig:
    """A TrainConfig from a saved config dict (a run's config.json or a checkpoint's state.json["config"]);
    the legacy sentinels of older runs (width=0, init="", default_time_grid="") read as None."""
    return config.config_from_dict(TrainConfig, values)


def config_dict(cfg: TrainConfig) -> dict:
    return config.config_dict(cfg)


def train_command(cfg: TrainConfig) -> str:
    """The `proxt2i train PRESET key=value ...` command that rebuilds `cfg`: the preset it differs least from."""
    name = min(PRESETS, key=lambda n: sum(getattr(cfg, f.name) != getattr(PRESETS[n], f.name) for f in fields(TrainConfig)))
    return config.to_command("proxt2i train", cfg, positional=[name], base=PRESETS[name], overrides=True)


def sampling_defaults(cfg: TrainConfig) -> dict | None:
    """The "sampling" entry of an exported model's config.json: the default sampler of a consistency model,
    cfg.default_time_grid for the model's default sampler (unset: uniform) and, for a guidance-distilled model,
    its default guidance 1 (None when none of these)."""
    from ..samplers.registry import DEFAULT_SAMPLER  # torch: only at export time

    sampling = {}
    sampler = "consistency" if cfg.consistency != "none" else DEFAULT_SAMPLER[cfg.objective]
    if cfg.consistency != "none":
        sampling["sampler"] = sampler
    if cfg.default_time_grid is not None:
        sampling["time_grid"] = {sampler: cfg.default_time_grid}
    if cfg.distill_guidance is not None:  # the guidance is in the weights: sample unguided, one pass per step
        sampling["guidance"] = 1.0
    return sampling or None
