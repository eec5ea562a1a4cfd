"""Where a prox model is queried off its training distribution: the inputs of a few-step PDA-hybrid chain
against proximal matching's y = x_t + sqrt(lam) n, on a model's own cached training latents.

    python docs/experiments/prox_input_shift.py --model runs/photofaces-prox/final \
        --latents runs/photofaces-prox/latents.safetensors [--steps 4] [--num 64]

For each step of the model's default grid it draws x_t from the latents (forward process), then
  matching: y = x_t + sqrt(lam) n                       (what training saw)
  chain:    y = (1 + gamma/2) x_{t'} + sqrt(gamma) z    (what the sampler builds; x_{t'} forward from x_t)
and prints, as JSON, the std of y, of the unguided prox output and its RMS error against x_t, next to the
error of the Gaussian-prior prox y / (1 + lam) (the exact prox when x_t ~ N(0, I)). Then the std and
largest |value| of the latents that full unguided samples end at for 2, 4 and 8 steps (the data's std is ~1).
"""

from __future__ import annotations

import argparse
import json

import torch


def main(argv=None) -> int:
    from safetensors.torch import load_file

    from proxt2i.pipeline import ProxT2IPipeline, resolve_sampling
    from proxt2i.samplers.guidance import guided_model
    from proxt2i.samplers.pda import pda_step_input
    from proxt2i.schedule import step_sizes

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a prox model folder or name")
    p.add_argument("--latents", required=True, help="OUT/latents.safetensors of its training run (cache_latents=true)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    pipe = ProxT2IPipeline.from_pretrained(args.model)
    sched = pipe.schedule
    x0 = load_file(args.latents)["latents"][: args.num].float()
    _, grid = resolve_sampling("prox", pipe.default_sampler, args.steps, pipe.grid_kind(None, None))
    grid = grid.double()
    gammas = step_sizes(sched, grid)
    prox = guided_model(pipe.net, "prox", [""] * len(x0), 1.0, None, sched)
    rows = []
    for k in reversed(range(args.steps)):
        t, t_next, lam = float(grid[k]), float(grid[k + 1]), float(gammas[k])
        a, a_next = sched.alpha(torch.tensor(t)).float(), sched.alpha(torch.tensor(t_next)).float()
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn_like(x0)
        ratio = (a_next / a).sqrt()
        x_next = ratio * x_t + (1 - ratio**2).clamp_min(0).sqrt() * torch.randn_like(x0)
        inputs = {"matching": x_t + lam**0.5 * torch.randn_like(x0),
                  "chain": pda_step_input(x_next, lam, torch.randn_like(x0), "hybrid")[0]}
        row = {"k": k, "t": round(t, 4), "lam": round(lam, 4)}
        with torch.no_grad():
            for name, y in inputs.items():
                out = prox(y, torch.full((len(y),), t), torch.full((len(y),), lam))
                row[name] = {"y_std": round(float(y.std()), 3), "out_std": round(float(out.std()), 3),
                             "rms_error": round(float((out - x_t).pow(2).mean().sqrt()), 3),
                             "gaussian_prox_rms_error": round(float((y / (1 + lam) - x_t).pow(2).mean().sqrt()), 3)}
        rows.append(row)
    samples = {}
    prompts = [""] * min(16, len(x0))
    for n in (2, 4, 8):
        x = pipe.sample_latents(prompts, n, 1.0, seeds=list(range(len(prompts))))
        samples[str(n)] = {"std": round(float(x.std()), 3), "max_abs": round(float(x.abs().max()), 2)}
    print(json.dumps({"model": args.model, "steps": args.steps, "data_latent_std": round(float(x0.std()), 3),
                      "per_step": rows, "samples_unguided": samples}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
