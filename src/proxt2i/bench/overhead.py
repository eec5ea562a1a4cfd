"""Sampler overhead: time per step inside the network and outside it (the sampler's own arithmetic), and
end-to-end images per second."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .config import OVERHEAD_BATCHES, OVERHEAD_STEPS, BenchConfig, bench_methods, check_steps, nfe, undefined_reason


@dataclass
class TimedNetwork:
    """Wraps the network net(x, t, lam, prompts) and accumulates the seconds spent inside it."""

    net: object
    device: str = "cpu"
    seconds: float = 0.0
    calls: int = 0

    def _sync(self):
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()

    def __call__(self, *args):
        self._sync()
        t0 = time.perf_counter()
        out = self.net(*args)
        self._sync()
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def sampler_overhead(cfg: BenchConfig, steps: int = OVERHEAD_STEPS, batch_sizes=OVERHEAD_BATCHES, repeats: int = 3,
                     devices=None, progress: bool = False) -> dict:
    """Per sampler, device and batch size: time per step inside the network (text encoder + U-ViT, the
    batched cond + uncond pass) and outside it (the sampler's own arithmetic, noise, guidance combination,
    parameterisation), and end-to-end images/s (sampling + decoding) at `steps` steps."""
    from tqdm import tqdm

    from ..data.prompts import load_prompts
    check_steps([steps])
    if devices is None and cfg.device != "auto":
        devices = [cfg.device]
    devices = list(devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])))
    methods = bench_methods(cfg, dtype=cfg.dtype)
    prompts = load_prompts("heldin", max(batch_sizes))
    rows, skipped = [], []
    jobs = [(d, m, b) for d in devices for m in methods for b in batch_sizes]
    for device, m, b in tqdm(jobs, desc="overhead", disable=not progress):
        pipe, sampler = m.pipe, m.sampler
        reason = undefined_reason(pipe, sampler, steps)
        if reason:
            if device == devices[0] and b == batch_sizes[0]:
                skipped.append({"sampler": sampler, "method": m.label, "steps": steps, "reason": reason})
            continue
        pipe.to(device)
        timed = TimedNetwork(pipe.net, device)
        seeds = [cfg.seed + i for i in range(b)]

        def generate():
            lat = pipe.sample_latents(prompts[:b], steps, m.guidance, sampler, seeds, net=timed, device=device)
            timed._sync()
            t_mid = time.perf_counter()
            pipe.decode(lat)
            timed._sync()
            return time.perf_counter() - t_mid

        generate()  # warm-up
        timed.seconds, timed.calls = 0.0, 0
        t0, decode = time.perf_counter(), 0.0
        for _ in range(repeats):
            decode += generate()
        total = time.perf_counter() - t0
        sampling = total - decode
        n_steps = repeats * steps
        rows.append({"device": device, "method": m.label, "family": m.family, "sampler": sampler, "batch": b, "steps": steps,
                     "guidance": m.guidance, "nfe": nfe(steps, m.guidance),
                     "network_calls_per_step": timed.calls / n_steps,
                     "network_ms_per_step": 1e3 * timed.seconds / n_steps,
                     "overhead_ms_per_step": 1e3 * (sampling - timed.seconds) / n_steps,
                     "overhead_fraction": (sampling - timed.seconds) / sampling if sampling > 0 else None,
                     "images_per_s": b * repeats / total})
    for m in methods:
        m.pipe.net.to("cpu")
        m.pipe.autoencoder.to("cpu")
    return {"config": {"prox_model": cfg.prox_model, "score_model": cfg.score_model, "few_step_models": list(cfg.few_step_models),
                       "steps": steps, "guidance": cfg.guidance,
                       "batch_sizes": list(batch_sizes), "repeats": repeats, "devices": devices,
                       "torch_threads": torch.get_num_threads(),
                       "cuda_device": torch.cuda.get_device_name(0) if "cuda" in devices else None},
            "rows": rows, "skipped": skipped}
