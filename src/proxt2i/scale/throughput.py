"""Generation throughput at the paper's sizes, for a lent GPU (docs/gpu/run.sh) and, shrunk, for the CPU.

    python -m proxt2i.scale.throughput --models DIR --out FILE.json [--device cuda] [--dtype bfloat16] [--shrunk]

Writes model folders with random weights at the paper sizes (a prox U-ViT and a score U-ViT of the same
size, at 256 and 512 px, over the local components of `proxt2i scale-check`'s MODELS folder) and times, per
size: PDA-hybrid at 4 steps against the score samplers at 4, 16 and 28 steps, with and without
torch.compile; then the shipped small models. Random weights time the same work as trained ones: the
network, the sampler and the decoder do not look at the values.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..errors import UsageError

RUNS = [("pda-hybrid", 4), ("ddim", 4), ("ddim", 16), ("ddim", 28), ("dpm-solver++-2m", 16), ("euler-maruyama-denoise", 28)]
SIZES = {"256": ("paper", 256), "512": ("paper-512", 512)}


def random_model_folder(folder: Path, objective: str, uvit_preset: str, image_size: int, models: Path, shrunk: bool) -> Path:
    """A model folder with a random U-ViT of `uvit_preset` over MODELS' VAE and text encoders (T5 limited to 77 tokens)."""
    import dataclasses

    from ..models.autoencoder import DiffusersKL
    from ..models.io import save_model_folder
    from ..models.text import load_text_encoder
    from ..models.uvit import UVIT_PRESETS, UViT

    t5 = next(p for p in sorted(models.glob("t5-*")) if (p / "config.json").exists())
    text = load_text_encoder(f"clip:{models / 'metaclip-h14'}+t5:{t5}", max_length=12 if shrunk else 77)
    vae = DiffusersKL(models / "sd3.5-vae")
    cfg = UVIT_PRESETS[uvit_preset]
    if shrunk:
        cfg = dataclasses.replace(cfg, width=32, depth=3, heads=2)
    cfg = dataclasses.replace(cfg, in_channels=vae.latent_channels, image_size=image_size // vae.downsample, text_dim=text.dim,
                              max_text_len=text.max_length, use_lam=objective == "prox")
    torch.manual_seed(0)
    uvit = UViT(cfg)
    with torch.no_grad():  # the output layer starts at zero; random values make the decoder see real latents
        uvit.final_conv.weight.normal_(0, 0.02)
    return save_model_folder(folder, uvit, text, vae, objective=objective, image_size=image_size,
                             recipe={"random_weights": True, "uvit_preset": uvit_preset}, overwrite=True)


def time_generation(pipe, sampler: str, steps: int, batch: int, repeats: int = 2) -> dict:
    """Images per second of `batch` prompts at `steps` steps, guidance 4 (the cond and uncond passes batched),
    decoder included; the first call (allocation, compilation) is timed apart."""
    prompts = ["a smiling woman with long red hair and glasses"] * batch
    sync = torch.cuda.synchronize if pipe.device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    pipe(prompts, num_steps=steps, sampler=sampler, batch_size=batch, output_type="tensor")
    sync()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        pipe(prompts, num_steps=steps, sampler=sampler, batch_size=batch, output_type="tensor")
    sync()
    seconds = (time.perf_counter() - t0) / repeats
    return {"sampler": sampler, "steps": steps, "batch": batch, "images_per_second": round(batch / seconds, 2),
            "seconds_per_batch": round(seconds, 3), "first_call_seconds": round(first, 1)}


def measure(models: Path, work: Path, device: str, dtype: str, batch: int, shrunk: bool, sizes=("256", "512"), compile_too: bool = True,
            log=print) -> dict:
    from ..devices import dtype_name, resolve
    from ..pipeline import ProxT2IPipeline

    where, torch_dtype = resolve(device, dtype)
    if sizes and not (models / "sd3.5-vae" / "config.json").exists():
        raise UsageError(f"{models} has no sd3.5-vae/; run `proxt2i scale-check` first (it builds MODELS/) or give --models")
    result = {"device": str(where), "device_name": torch.cuda.get_device_name(where) if where.type == "cuda" else "cpu",
              "dtype": dtype_name(torch_dtype), "batch": batch, "shrunk": shrunk, "rows": []}
    for size in sizes:
        preset, image_size = SIZES[size]
        image_size = 32 if shrunk else image_size
        folders = {o: random_model_folder(work / f"{o}-{size}", o, preset, image_size, models, shrunk) for o in ("prox", "score")}
        for compiled in ((False, True) if compile_too else (False,)):
            for objective, folder in folders.items():
                pipe = ProxT2IPipeline.from_pretrained(folder, device=where, torch_dtype=torch_dtype, compile=compiled)
                for sampler, steps in RUNS:
                    if (objective == "prox") != (sampler.startswith("pda")):
                        continue
                    if compiled and (sampler, steps) not in (("pda-hybrid", 4), ("ddim", 28)):
                        continue
                    row = {"size": image_size, "uvit": preset, "objective": objective, "compiled": compiled,
                           **time_generation(pipe, sampler, steps, batch)}
                    result["rows"].append(row)
                    log(json.dumps(row))
                del pipe
                if where.type == "cuda":
                    torch.cuda.empty_cache()
    for compiled in ((False, True) if compile_too else (False,)):
        for name in ("synthfaces-prox-grpo", "synthfaces-score"):
            pipe = ProxT2IPipeline.from_pretrained(name, device=where, torch_dtype=torch_dtype, compile=compiled)
            sampler = "pda-hybrid" if pipe.objective == "prox" else "ddim"
            row = {"size": pipe.image_size, "uvit": name, "objective": pipe.objective, "compiled": compiled,
                   **time_generation(pipe, sampler, 4, 8 * batch)}
            result["rows"].append(row)
            log(json.dumps(row))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxt2i.scale.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="runs/scale-check/models",
                   help="MODELS folder of `proxt2i scale-check` (sd3.5-vae, metaclip-h14, t5-*; default runs/scale-check/models)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--work", help="where the random model folders go (default: beside --out)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--batch", type=int, default=16, help="prompts per call (the shipped small models: 8x this)")
    p.add_argument("--sizes", default="256,512", help="comma-separated: 256, 512; empty: the shipped small models only")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--shrunk", action="store_true", help="tiny U-ViTs at 32 px over a shrunk MODELS folder: checks the script on a CPU")
    args = p.parse_args(argv)
    from ..atomic import atomic_write_json

    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / "throughput-models"
    sizes = tuple(s for s in args.sizes.split(",") if s)
    if any(s not in SIZES for s in sizes) or args.batch < 1:
        raise SystemExit(f"error: --sizes takes {', '.join(SIZES)}; --batch >= 1")
    try:
        result = measure(Path(args.models), work, args.device, args.dtype, args.batch, args.shrunk, sizes, not args.no_compile)
    except UsageError as err:
        raise SystemExit(f"error: {err}") from None
    atomic_write_json(out, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
