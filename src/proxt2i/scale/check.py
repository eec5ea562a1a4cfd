"""`proxt2i scale-check`: the paper preset's stack at its real sizes, with random weights, run through the
user's own path: local weights folders (components.py), webdataset shards, training steps, a save and a
bit-exact resume, an export, a 4-step generation through the pipeline, and a GRPO step. Every stage
records wall seconds and peak memory (resident set size; on CUDA also the allocator's peak).

The memory it will need is estimated from parameter counts on torch's meta device before anything is
allocated; an estimate over what the machine has is refused in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .. import config
from ..config import option
from ..devices import MIXED_PRECISION
from ..errors import UsageError
from .components import T5_V1_1, Component, check_folder_matches, parameter_count, save_component, stack

GIB = 2**30
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
TRAIN_BYTES_PER_PARAM = 4 * 5  # float32 weights, gradients, AdamW's two moments and the EMA copy
MARKER = "scale_check.json"


@dataclass(frozen=True)
class ScaleCheckConfig:
    preset: str = option("laion-face-prox-256", "training preset whose stack is built (training.presets)")
    size: str = option("true", '"true": the real sizes; "shrunk": every configuration a few thousand parameters (tests)')
    t5: str = option("xl", f"T5 v1.1 encoder size: {', '.join(T5_V1_1)}")
    model: str | None = option(None, "U-ViT preset instead of the training preset's (e.g. base); none = the preset's")
    batch: int = option(1, "training batch per process")
    train_steps: int = option(2, "training steps (>= 2: the last one is also run again from the step before's checkpoint)")
    images: int = option(8, "synthetic training images, in two webdataset shards")
    grpo: bool = option(True, "also run one GRPO step on the trained model")
    device: str = option("auto", "auto (cuda if available), cpu, cuda")
    dtype: str = option("float32", "float32, or bfloat16 / float16: the frozen parts' weights, training autocast, generation weights")
    models: str | None = option(None, "folder of the local weights folders (reused when their configuration matches); none = OUT/models")
    out: str = option("runs/scale-check", "output folder (a rerun replaces the runs in it and reuses its models/)")
    threads: int = option(2, "CPU threads")
    seed: int = option(0, "seed of the random weights and the runs")

    def __post_init__(self):
        config.check_ranges(self, batch=(1, None), train_steps=(2, None), images=(2, None), threads=(1, None))
        if self.size not in ("true", "shrunk"):
            raise UsageError(f"size must be 'true' or 'shrunk', got {self.size!r}")
        if self.t5 not in T5_V1_1:
            raise UsageError(f"t5 must be one of {', '.join(T5_V1_1)}, got {self.t5!r}")
        if self.dtype not in BYTES:
            raise UsageError(f"dtype must be one of {', '.join(BYTES)}, got {self.dtype!r}")
        config.check_seed(self.seed)


PRESETS = {
    "paper-256": ScaleCheckConfig(),
    "paper-512": ScaleCheckConfig(preset="laion-face-prox-512", out="runs/scale-check-512"),
    "shrunk": ScaleCheckConfig(size="shrunk", out="runs/scale-check-shrunk"),
}


def resolve_scale_config(name: str | None, overrides: list[str] = (), flags: dict | None = None) -> ScaleCheckConfig:
    return config.resolve_config(ScaleCheckConfig, [name or "paper-256", *overrides], PRESETS, flags)


class PeakMemory:
    """Peak resident set size of this process while the block runs, sampled every 20 ms (and the CUDA
    allocator's peak on a GPU). Memory freed before the block is handed back to the OS first (malloc_trim),
    so each stage's peak is its own."""

    def __init__(self, device: torch.device):
        import psutil

        self.process, self.device = psutil.Process(), device
        self.peak, self.cuda_peak = 0, None

    def __enter__(self):
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.peak, self._stop = self.process.memory_info().rss, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        if self.device.type == "cuda":
            self.cuda_peak = torch.cuda.max_memory_allocated(self.device)
        return False

    def record(self) -> dict:
        out = {"peak_rss_gib": round(self.peak / GIB, 2)}
        if self.cuda_peak is not None:
            out["peak_cuda_gib"] = round(self.cuda_peak / GIB, 2)
        return out


def train_config(cfg: ScaleCheckConfig, models: Path, components: list[Component], out: Path):
    """The TrainConfig of the run: the preset with the local folders, the shards and a few steps."""
    from ..training.presets import resolve_config

    vae, clip, t5 = components
    overrides = [f"autoencoder=diffusers:{models / vae.name}", f"text_encoder=clip:{models / clip.name}+t5:{models / t5.name}",
                 f"data=webdataset:{out / 'data'}", f"steps={cfg.train_steps}", f"batch={cfg.batch}", "checkpoint_every=1",
                 f"keep_checkpoints={cfg.train_steps}", "sample_every=0", "log_every=1", "lr_warmup=1", "data_workers=0",
                 f"threads={cfg.threads}", f"seed={cfg.seed}", f"out={out / 'run'}", f"frozen_dtype={cfg.dtype}",
                 f"mixed_precision={MIXED_PRECISION[cfg.dtype]}"]
    if cfg.model:
        overrides.append(f"model={cfg.model}")
    if cfg.size == "shrunk":
        overrides += ["image_size=32", "width=32", "depth=3", "heads=2", "text_max_length=12"]
    return resolve_config(cfg.preset, overrides)


def estimate(cfg: ScaleCheckConfig, components: list[Component]) -> dict:
    """Parameter counts (on the meta device: nothing allocated) and the memory the run will need, in GiB."""
    from ..models.uvit import UVIT_PRESETS, UViT, UViTConfig

    counts = {c.name: parameter_count(c.build("meta")) for c in components}
    tcfg = train_config(cfg, Path("models"), components, Path("out"))
    text_dim = max(components[1].config["hidden_size"], components[2].config["d_model"])
    base = UVIT_PRESETS[tcfg.model].to_dict()
    base.update({k: getattr(tcfg, k) for k in ("width", "depth", "patch_size", "heads") if getattr(tcfg, k) is not None})
    down = 2 ** (len(components[0].config["block_out_channels"]) - 1)
    base.update(in_channels=components[0].config["latent_channels"], image_size=tcfg.image_size // down, text_dim=text_dim,
                max_text_len=2 * (tcfg.text_max_length or 77), precondition=tcfg.precondition)
    ucfg = UViTConfig.from_dict(base)
    with torch.device("meta"):
        counts["uvit"] = parameter_count(UViT(ucfg))
    tokens = 2 + ucfg.max_text_len + (ucfg.image_size // ucfg.patch_size) ** 2
    frozen = sum(v for k, v in counts.items() if k != "uvit") * BYTES[cfg.dtype]
    training = counts["uvit"] * TRAIN_BYTES_PER_PARAM
    # saved activations: ~24 floats per token and channel per block (attention, MLP at 4x, norms), a rule of thumb
    activations = cfg.batch * tokens * ucfg.width * ucfg.depth * 24 * BYTES[cfg.dtype]
    # on disk: the float32 component folders, a checkpoint (model, EMA, AdamW: 16 bytes per parameter) per training
    # step, one more for the resumed run and one for GRPO, and three float16 exports
    disk = sum(v for k, v in counts.items() if k != "uvit") * 4 + counts["uvit"] * (16 * (cfg.train_steps + 1 + cfg.grpo) + 3 * 2)
    return {"parameters": counts, "uvit_tokens": tokens, "uvit_width": ucfg.width, "uvit_depth": ucfg.depth,
            "estimate_gib": {"frozen_weights": round(frozen / GIB, 2), "uvit_training_state": round(training / GIB, 2),
                             "activations": round(activations / GIB, 2), "total": round((frozen + training + activations) / GIB, 2),
                             "disk": round(disk / GIB, 1)}}


def available_gib(device: torch.device) -> float:
    import psutil

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free / GIB
    return psutil.virtual_memory().available / GIB


def check_output(out: Path) -> None:
    """OUT must be new, empty, or an earlier scale check's folder (its runs are replaced, its models reused)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists() and not (out / "models").is_dir())):
        raise UsageError(f"{out} exists and is not a scale-check folder (no {MARKER}); give a new or empty out=")


def run_scale_check(cfg: ScaleCheckConfig, progress: bool = True, log=print) -> dict:
    """Run every stage; returns (and writes to OUT/scale_check.json) the JSON record."""
    from ..devices import dtype_name, resolve

    device, dtype = resolve(cfg.device, cfg.dtype)
    out = Path(cfg.out)
    check_output(out)
    models = Path(cfg.models) if cfg.models else out / "models"
    components = stack(cfg.t5, shrunk=cfg.size == "shrunk")
    for c in components:  # a folder that is there must be this configuration: refused before any work
        if (models / c.name / "config.json").exists():
            check_folder_matches(c, models / c.name)
    est = estimate(cfg, components)
    have = available_gib(device)
    if est["estimate_gib"]["total"] > have:
        e = est["estimate_gib"]
        raise UsageError(f"the {cfg.preset} stack needs about {e['total']:.1f} GiB (U-ViT training state {e['uvit_training_state']:.1f}, "
                         f"frozen weights {e['frozen_weights']:.1f}, activations {e['activations']:.1f}) and {device} has "
                         f"{have:.1f} GiB free; use a smaller t5=, dtype=bfloat16, batch=1 or model=base")
    free_disk = shutil.disk_usage(next(p for p in [out, *out.absolute().parents] if p.exists())).free / GIB
    if est["estimate_gib"]["disk"] > free_disk:
        raise UsageError(f"the {cfg.preset} check writes about {est['estimate_gib']['disk']:.0f} GiB (component folders, a checkpoint "
                         f"per step, exports) and {out} has {free_disk:.0f} GiB free; free space, give another out=, or lower train_steps")
    torch.set_num_threads(cfg.threads)
    record = {"config": config.config_dict(cfg), "device": str(device), "dtype": dtype_name(dtype),
              "machine": {"cpu_threads": cfg.threads, "memory_available_gib": round(have, 1),
                          "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
              **est, "components": {}, "stages": {}}
    log(json.dumps({"estimate": est}))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("data", "run", "run-resumed", "exported", "grpo", "sample.png"):
        target = out / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)

    def stage(name: str, fn) -> dict:
        t0 = time.perf_counter()
        with PeakMemory(device) as mem:
            result = fn() or {}
        record["stages"][name] = {"seconds": round(time.perf_counter() - t0, 1), **mem.record(), **result}
        log(json.dumps({name: record["stages"][name]}))
        return record["stages"][name]

    stage("build", lambda: build_components(cfg, components, models, record))
    stage("data", lambda: write_shards(cfg, out, train_config(cfg, models, components, out).image_size))
    tcfg = train_config(cfg, models, components, out)
    stage("train", lambda: run_training(tcfg, progress))
    stage("resume", lambda: check_resume(tcfg, out))
    stage("export", lambda: check_export(out))
    stage("generate", lambda: generate(out, device, dtype))
    if cfg.grpo:
        stage("grpo", lambda: grpo_step(cfg, out))
    from ..atomic import atomic_write_json

    atomic_write_json(out / MARKER, record)
    return record


def build_components(cfg: ScaleCheckConfig, components: list[Component], models: Path, record: dict) -> dict:
    """Save each component's folder (unless one with its configuration is there) and record its parameters
    and the dtype it will be loaded in."""
    from ..training.text import synthfaces_vocabulary

    built = []
    for i, c in enumerate(components):
        folder = models / c.name
        if not (folder / "config.json").exists():
            save_component(c, folder, synthfaces_vocabulary(), seed=cfg.seed + i)
            built.append(c.name)
        record["components"][c.name] = {"class": type(c.build("meta")).__name__, "parameters": record["parameters"][c.name],
                                        "dtype": cfg.dtype, "folder": str(folder),
                                        "folder_gib": round(sum(f.stat().st_size for f in folder.iterdir()) / GIB, 2)}
    return {"built": built, "reused": [c.name for c in components if c.name not in built]}


def write_shards(cfg: ScaleCheckConfig, out: Path, size: int) -> dict:
    """SynthFaces renders as webdataset shards, at the training size up to the renderer's largest (training
    resizes them to its image_size, as it does any dataset's images)."""
    from ..data.export import export
    from ..data.synthfaces import MAX_SIZE

    size = min(size, MAX_SIZE)
    export("webdataset", out / "data", num=cfg.images, size=size, seed=cfg.seed, shard_size=max(1, cfg.images // 2))
    return {"images": cfg.images, "size": size, "shards": len(list((out / "data").glob("*.tar")))}


def run_training(tcfg, progress: bool) -> dict:
    from ..training.run import train

    seconds = []
    train(tcfg, progress=progress, on_step=lambda step, s: seconds.append(round(s, 2)))
    return {"steps": len(seconds), "seconds_per_step": seconds, "batch": tcfg.batch, "mixed_precision": tcfg.mixed_precision}


def check_resume(tcfg, out: Path) -> dict:
    """Train the last step again from the checkpoint before it, in a second run folder (the files linked,
    not copied), and compare every tensor of the two last checkpoints (model, EMA, optimizer)."""
    from safetensors.torch import load_file

    from ..training.run import train

    last, before = f"step-{tcfg.steps:08d}", f"step-{tcfg.steps - 1:08d}"
    a, b = out / "run", out / "run-resumed"
    (b / "checkpoints" / before).mkdir(parents=True)
    for f in (a / "checkpoints" / before).iterdir():
        os.link(f, b / "checkpoints" / before / f.name)
    seconds = []
    train(replace(tcfg, out=str(b)), progress=False, on_step=lambda step, s: seconds.append(round(s, 2)))
    same = {}
    for name in ("model", "ema", "optimizer"):
        x, y = (load_file(run / "checkpoints" / last / f"{name}.safetensors") for run in (a, b))
        same[name] = x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    return {"resumed_from_step": tcfg.steps - 1, "seconds_per_step": seconds, "bit_exact": all(same.values()), "tensors_equal": same}


def check_export(out: Path) -> dict:
    from ..models.io import load_model_folder
    from ..training.export import export_checkpoint

    folder = export_checkpoint(out / "run", out / "exported", weights="raw")
    model = load_model_folder(folder)
    return {"folder": str(folder), "gib": round(sum(f.stat().st_size for f in folder.iterdir()) / GIB, 2),
            "uvit_parameters": parameter_count(model.net.uvit)}


def generate(out: Path, device: torch.device, dtype: torch.dtype) -> dict:
    """4 PDA-hybrid steps at guidance 4 (cond + uncond batched: 8 network passes) for one prompt, twice: the
    first call pays for allocation, the second is timed."""
    from ..imaging import save_grid
    from ..pipeline import ProxT2IPipeline

    t0 = time.perf_counter()
    pipe = ProxT2IPipeline.from_pretrained(out / "run" / "final", device=device, torch_dtype=dtype)
    load = time.perf_counter() - t0
    prompt = ["a smiling woman with long red hair and glasses"]
    pipe(prompt, num_steps=4, output_type="tensor")
    t0 = time.perf_counter()
    image = pipe(prompt, num_steps=4, output_type="tensor", seed=1)
    seconds = time.perf_counter() - t0
    save_grid(image, out / "sample.png", cols=1)
    return {"load_seconds": round(load, 1), "seconds_per_image": round(seconds, 1), "steps": 4, "network_passes": 8,
            "image": list(image.shape[1:]), "finite": bool(torch.isfinite(image).all())}


def grpo_step(cfg: ScaleCheckConfig, out: Path) -> dict:
    """One GRPO iteration (1 prompt x 2 images, 4 steps) on the trained model, with the embedded alignment reward."""
    from ..rl.grpo import GRPORunConfig, finetune_grpo

    rcfg = GRPORunConfig(model=str(out / "run" / "final"), steps=1, group=2, prompts_per_step=1, num_steps=4, eval_num=1,
                         eval_every=0, checkpoint_every=1, out=str(out / "grpo"), threads=cfg.threads, seed=cfg.seed,
                         device=cfg.device, dtype=cfg.dtype)
    t0 = time.perf_counter()
    finetune_grpo(rcfg, progress=False)
    log = [json.loads(line) for line in (out / "grpo" / "log.jsonl").read_text().splitlines()]
    return {"iteration_seconds": round(time.perf_counter() - t0, 1), "group": 2, "log": log}
