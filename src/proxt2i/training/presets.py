"""Training configuration: one frozen dataclass, named presets in one table, `key=value` overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import UsageError, read_json

LR_DECAYS = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    # what is learned
    objective: str = "prox"  # "prox" (proximal matching) or "score" (denoising score matching baseline)
    model: str = "tiny"  # U-ViT preset (models.uvit.UVIT_PRESETS); in_channels / image_size follow the data
    width: int = 0  # > 0 overrides the preset's width
    depth: int = 0  # > 0 overrides the preset's depth (odd)
    patch_size: int = 0  # > 0 overrides the preset's patch size
    precondition: bool = False  # prox only: the backbone predicts y's total noise from y / sqrt(1 + lam) (models/uvit.py)
    text_encoder: str = "embedded"  # "embedded" (trained with the model), or frozen local HF weights: "clip:DIR", "t5:DIR", "clip:DIR+t5:DIR"
    text_dim: int = 128  # embedded text encoder width
    text_depth: int = 2
    # data
    data: str = "synthfaces"  # "synthfaces", "imagefolder:DIR" or "webdataset:SHARDS" (a .tar, a folder of them, a glob or {000..099} braces)
    image_size: int = 32
    autoencoder: str = "shipped"  # "shipped" (the embedded small VAE), "identity" (pixels), a VAE folder, or "diffusers:DIR"
    text_dropout: float = 0.1  # probability of the empty prompt, for classifier-free guidance
    cache_latents: bool = False  # imagefolder / webdataset only: encode every image once, reuse OUT/latents.safetensors
    data_workers: int = 0  # threads reading and decoding the next batches ahead of the training step (0 = in the loop); same batches either way
    init: str = ""  # start from a trained model's weights (shipped name or model folder; same architecture and objective)
    # optimisation
    steps: int = 20000
    batch: int = 64  # per process
    lr: float = 3e-4
    lr_warmup: int = 500
    lr_decay: str = "constant"  # after warm-up: "constant", or "linear" / "cosine" down to 0 at the last step (a cool-down)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    ema_warmup: bool = True  # decay min(ema, (1 + step) / (10 + step)): early EMA weights are not dominated by the random init
    mixed_precision: str = "no"  # "no", "bf16", "fp16" (accelerate)
    # proximal matching (ProxDM): L1 warm-up fraction, then PM with zeta halved in stages
    pm_warmup_fraction: float = 0.2
    zeta_start: float = 2.0
    zeta_decay: float = 0.5
    zeta_stages: int = 2
    step_candidates: tuple = (5, 10, 20, 50, 100, 1000)
    prox_target: str = "sample"  # "sample": the drawn n (ProxDM); "conditional-mean": E[n | y, x0] (losses.conditional_mean_noise);
    # "total-noise" (precondition only): the backbone output against y's unit noise (losses.total_noise)
    candidate_power: float = 1.0 / 3.0  # step count N drawn with weight N^power (ProxDM: 1/3; 0 = uniform over candidates)
    candidate_grids: str = "uniform"  # comma-separated time grids the draws lie on (uniform, quadratic, power:R), one per draw at random
    default_time_grid: str = ""  # written to the exported model: the grid its default sampler walks (empty = uniform)
    mode: str = "hybrid"  # the discretization lam follows
    # bookkeeping
    seed: int = 0
    out: str = "runs/synthfaces-prox"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    sample_every: int = 1000
    log_every: int = 25
    threads: int = 1  # CPU threads per process: small ops run fastest single-threaded on shared CPUs

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
            (self.mode in ("hybrid", "backward"), f"mode must be 'hybrid' or 'backward', got {self.mode!r}"),
            (self.mixed_precision in ("no", "bf16", "fp16"), f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}"),
            (not self.precondition or self.objective == "prox", "precondition applies to objective=prox only"),
            (16 <= self.image_size <= 1024, f"image_size must be in 16..1024, got {self.image_size}"),
            (self.data_workers >= 0, f"data_workers must be >= 0, got {self.data_workers}"),
            (not self.cache_latents or self.data != "synthfaces",
             "cache_latents needs data=imagefolder:DIR or webdataset:SHARDS (SynthFaces renders fresh images every step)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        if self.default_time_grid and not _is_grid(self.default_time_grid):
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
    # seconds-long runs for tests and smoke checks: pixels, 32 px, a 3-block net
    "test-tiny": TrainConfig(model="tiny", width=32, depth=3, patch_size=4, text_dim=16, text_depth=1, image_size=32,
                             autoencoder="identity", steps=4, batch=4, lr_warmup=2, checkpoint_every=2, sample_every=0,
                             log_every=1, out="runs/test-tiny"),
    # paper scale (needs local SD3.5 VAE weights and a GPU cluster): 256 px, 32x32x16 latents, ~500M params
    "laion-face-prox-256": TrainConfig(model="paper", image_size=256, autoencoder="diffusers:models/sd3.5-vae",
                                      text_encoder="clip:models/metaclip-h14+t5:models/t5-xl",
                                      data="webdataset:data/laion-face/{00000..01499}.tar", data_workers=4, batch=64, lr=1e-4,
                                      steps=500_000, lr_warmup=5000, ema=0.9999, mixed_precision="bf16",
                                      out="runs/laion-face-prox-256"),
}


def _coerce(name: str, kind, raw: str):
    try:
        if kind is bool or kind == "bool":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        if kind is int or kind == "int":
            return int(raw)
        if kind is float or kind == "float":
            return float(raw)
        if kind is tuple or kind == "tuple":
            return tuple(int(v) for v in raw.split(","))
        return raw
    except ValueError:
        raise UsageError(f"bad value {raw!r} for {name} (expected {getattr(kind, '__name__', kind)})") from None


def resolve_config(name_or_path: str, overrides: list[str] = ()) -> TrainConfig:
    """A preset name or a JSON file, then `key=value` overrides. Unknown keys are one clear error."""
    if name_or_path in PRESETS:
        cfg = PRESETS[name_or_path]
    elif name_or_path.endswith(".json"):
        cfg = config_from_dict(read_json(name_or_path, "config file"))
    else:
        raise UsageError(f"unknown config {name_or_path!r}; use a preset ({', '.join(PRESETS)}) or a .json file")
    kv = {}
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override {item!r} must look like key=value")
        k, v = item.split("=", 1)
        kv[k.strip()] = v
    return _apply(cfg, kv, from_strings=True)


def config_from_dict(values: dict) -> TrainConfig:
    """A TrainConfig from a saved config dict (a run's config.json or a checkpoint's state.json["config"])."""
    return _apply(TrainConfig(), values)


def _apply(cfg: TrainConfig, values: dict, from_strings: bool = False) -> TrainConfig:
    types = {f.name: f.type for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise UsageError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(types))}")
    if from_strings:
        values = {k: _coerce(k, types[k], v) for k, v in values.items()}
    elif "step_candidates" in values:
        values = {**values, "step_candidates": tuple(values["step_candidates"])}
    return replace(cfg, **values)


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["step_candidates"] = list(cfg.step_candidates)
    return d


def sampling_defaults(cfg: TrainConfig) -> dict | None:
    """The "sampling" entry of an exported model's config.json: cfg.default_time_grid for the objective's
    default sampler (None when unset: uniform)."""
    if not cfg.default_time_grid:
        return None
    from ..samplers.registry import DEFAULT_SAMPLER  # torch: only at export time

    return {"time_grid": {DEFAULT_SAMPLER[cfg.objective]: cfg.default_time_grid}}
