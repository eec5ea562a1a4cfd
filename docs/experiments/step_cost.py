"""Experiment (docs/benchmark.md; run from the repository root): what one sampler step costs, piece by piece.

For the shipped prox and score models at batch 1 and 32 (guidance on: the network sees 2B rows), times
with the text already encoded (a sampling run encodes its prompts once):
- the U-ViT alone, and for the prox model also without its preconditioning wrapper (the scaling of the
  input by 1 / sqrt(1 + lam) and of the output by prox_output_scale);
- the whole guided step of each sampler through the pipeline's own path (network included; per-image
  generators, x_T, the sampler's arithmetic) and the same without the network (a stand-in that returns
  zeros in no time): what a step costs beside its network.
Median over `--repeats` rounds after warm-up, every variant timed once per round (interleaved), in
milliseconds; sampler times are per step (a run of --steps steps divided by the steps). Prints one JSON object.

    python docs/experiments/step_cost.py --threads 2 --repeats 30
"""

import argparse
import json
import statistics
import time

import torch

from proxt2i.models.conditional import TextMemo
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.shipped import resolve_model


def interleaved_median_ms(fns: dict, repeats: int) -> dict:
    """{name: median ms of fn()} with the calls interleaved (one of each per round, after warm-up), so that a
    slow spell of the machine falls on every variant alike instead of on whichever ran then."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: round(1000 * statistics.median(v), 3) for name, v in times.items()}


class ZeroNet(torch.nn.Module):
    """A network stand-in: eps = 0 with no work, so a sampler step around it is the step's own arithmetic."""

    def forward(self, y, t, lam, prompts):
        return torch.zeros_like(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prox", default="synthfaces-prox")
    ap.add_argument("--score", default="synthfaces-score")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--steps", type=int, default=4, help="steps of the sampler runs the per-step time is taken from")
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from proxt2i.data.prompts import load_prompts

    pipes = {"prox": ProxT2IPipeline.from_pretrained(resolve_model(args.prox)),
             "score": ProxT2IPipeline.from_pretrained(resolve_model(args.score))}
    samplers = {"prox": ["pda-hybrid"], "score": ["euler-maruyama-denoise", "ddim"]}
    rows = []
    with torch.inference_mode():
        for b in (int(x) for x in args.batches.split(",")):
            prompts = load_prompts("heldin", b)
            fns, steps = {}, {}
            for family, pipe in pipes.items():
                net = pipe.net.eval()
                enc = net.text_encoder.encode(prompts + [""] * b)
                y = torch.randn(2 * b, *pipe.latent_shape, generator=torch.Generator().manual_seed(0))
                t, lam = torch.full((2 * b,), 0.5), torch.full((2 * b,), 0.1 if family == "prox" else 0.0)
                fns[f"{family}:uvit"] = lambda net=net, y=y, t=t, lam=lam, enc=enc: net.eps_from_encoding(y, t, lam, enc)
                if net.precond is not None:
                    fns[f"{family}:uvit_without_precond"] = lambda net=net, y=y, t=t, lam=lam, enc=enc: net.uvit(
                        y, t, lam, enc.tokens, enc.mask, enc.pooled)
                memo = TextMemo(net)  # one memo for every timed run: the prompts are encoded once, as in one sampling run
                for sampler in samplers[family]:
                    for label, model in (("step", memo), ("step_without_network", ZeroNet())):
                        fns[f"{sampler}:{label}"] = lambda pipe=pipe, sampler=sampler, model=model: pipe.sample_latents(
                            prompts, args.steps, args.guidance, sampler, list(range(b)), net=model)
                        steps[f"{sampler}:{label}"] = args.steps
            ms = interleaved_median_ms(fns, args.repeats)
            row = {"batch": b, **{f"{k}_ms": round(v / steps.get(k, 1), 3) for k, v in ms.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"threads": args.threads, "steps": args.steps, "guidance": args.guidance, "rows": rows}))


if __name__ == "__main__":
    main()
