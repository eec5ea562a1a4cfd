"""Fingerprints of fixed generations: every shipped model with every sampler it takes, the RL chains, R0's
generator, the toy testbed and `proxt2i evaluate` numbers. A restructuring must leave every value unchanged.
The record (output_hashes.before.json) was taken on this project's current CPU kind ("Intel(R) Xeon(R)
Processor", 2 cores; 26 of 29 values differed from an older CPU kind at the same commit: float kernels differ
between CPU kinds) from the commit before the device/dtype change (75c2b04), which the change then reproduced
29 of 29; retaken since whenever the shipped models were retrained (issue 18, stages 6, 7 and 8).

    python docs/experiments/output_hashes.py > after.json && diff before.json after.json

Prints one JSON object {name: sha256 of the float32 bytes, or a number}. Takes about two minutes on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import sys

import torch

PROMPTS = ["a smiling woman with long red hair and glasses", "a man with a beard and a blue cap, green background",
           "a surprised person with short blond hair", "a sad bald man wearing sunglasses"]


def digest(x: torch.Tensor) -> str:
    return hashlib.sha256(x.detach().float().contiguous().numpy().tobytes()).hexdigest()[:16]


def main() -> dict:
    torch.set_num_threads(1)
    from proxt2i import ProxT2IPipeline

    out = {}
    prox_samplers = ["pda-hybrid", "pda-backward"]
    score_samplers = ["euler-maruyama", "euler-maruyama-denoise", "pf-ode-euler", "ddim", "dpm-solver++-2m",
                      "dpm-solver++-2m-sde", "unipc", "euler-diffusers"]
    pipes = {}
    for name in ("synthfaces-prox", "synthfaces-prox-grpo", "synthfaces-score"):
        pipe = pipes[name] = ProxT2IPipeline.from_pretrained(name)
        for sampler in prox_samplers if pipe.objective == "prox" else score_samplers:
            steps = 16 if sampler == "pda-backward" else 4
            img = pipe(PROMPTS, num_steps=steps, sampler=sampler, seed=3, output_type="tensor")
            out[f"{name}/{sampler}/{steps}"] = digest(img)
        default = pipe(PROMPTS, num_steps=2, guidance_scale=1.0, seed=7, output_type="tensor")
        out[f"{name}/default/2/w1"] = digest(default)
        inter = pipe(PROMPTS, num_steps=6, guidance_scale=2.5, guidance_interval=(0.1, 0.7), seed=11, time_grid="quadratic"
                     if pipe.objective == "prox" else "uniform", output_type="tensor")
        out[f"{name}/default/6/interval"] = digest(inter)
        out[f"{name}/default/4/pil0"] = hashlib.sha256(pipe(PROMPTS[:1], num_steps=4)[0].tobytes()).hexdigest()[:16]

    # RL chains (GRPO) and R0's generator with gradients
    from proxt2i.rl.policy import rollout
    try:
        from proxt2i.samplers.guidance import guided_model as guided
        chain_of = {"pda-hybrid": {"sampler": "pda-hybrid"}, "euler-maruyama": {"sampler": "euler-maruyama-denoise"}}
    except ImportError:  # before the sampler registry (commit c248802 and earlier)
        from proxt2i.pipeline import guided_callable as guided
        chain_of = {"pda-hybrid": {"kind": "pda-hybrid"}, "euler-maruyama": {"kind": "euler-maruyama"}}
    for name, kind in (("synthfaces-prox", "pda-hybrid"), ("synthfaces-score", "euler-maruyama")):
        pipe = pipes[name]
        g = torch.Generator().manual_seed(5)
        x_T = torch.randn((4, *pipe.latent_shape), generator=g)
        fn = guided(pipe.net, pipe.objective, PROMPTS, 4.0)
        traj = rollout(fn, x_T, 4, g, grid="quadratic", **chain_of[kind])
        out[f"rollout/{kind}/x0"] = digest(traj.x0)
        out[f"rollout/{kind}/logp"] = digest(torch.stack(traj.log_probs))
    from proxt2i.rl.r0 import pda_hybrid_with_eta

    pipe = pipes["synthfaces-prox"]
    g = torch.Generator().manual_seed(9)
    x_T = torch.randn((2, *pipe.latent_shape), generator=g)
    x0 = pda_hybrid_with_eta(guided(pipe.net, "prox", PROMPTS[:2], 4.0), x_T, 4, [1.0, 0.8, 0.9, 0.7], g, "quadratic")
    x0.square().sum().backward()
    out["r0/x0"] = digest(x0)
    out["r0/grad"] = digest(torch.cat([p.grad.flatten() for p in pipe.net.parameters() if p.grad is not None]))
    pipe.net.zero_grad(set_to_none=True)

    # toy testbed
    from proxt2i.toy import run_toy

    res = run_toy(steps=(3, 10), num_samples=200, num_points=50)
    out["toy/w2"] = {k.replace("_", "-"): [None if v is None else round(v, 12) for v in vals] for k, vals in res.w2.items()}

    # evaluate numbers on 32 held-in prompts with the default model
    from proxt2i.data.prompts import load_prompts
    from proxt2i.evaluation import evaluate_images

    prompts = load_prompts("heldin", 32)
    images = ProxT2IPipeline.from_pretrained()(prompts, num_steps=4, seed=0, output_type="tensor")
    m = evaluate_images(images, prompts)
    out["evaluate/default/heldin32"] = {k: m[k] for k in ("alignment", "alignment_all", "fd", "clip_score") if k in m}
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout, indent=1)
    print()
