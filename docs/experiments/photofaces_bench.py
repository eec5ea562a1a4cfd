"""PhotoFaces quality against NFE: prox models with PDA samplers against score models with diffusers samplers,
scored by the PhotoFaces evaluator (real face models). The reference descriptors are read once.

    python docs/experiments/photofaces_bench.py --reference data/photofaces-curated \
        --method prox=runs/photofaces-prox/final:pda-hybrid --method score=runs/photofaces-score/final:ddim \
        --steps 2,4,8,50 --num-prompts 64 --per-prompt 2 --out docs/photofaces/bench.json [--grid-dir docs/photofaces]

A method's sampler may carry a guidance scale, NAME=MODEL:SAMPLER@SCALE (default: the model's own), so one run
can sweep guidance: --method g2=M:pda-hybrid@2 --method g8=M:pda-hybrid@8.

Prints one JSON object (also written to --out): for every method and step count the evaluator's numbers,
the NFE (guided steps cost two network passes) and the wall time; with --grid-dir, a grid of the first 8
prompts at every step count per method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from proxt2i.atomic import atomic_write_json
    from proxt2i.data.photo_captions import photo_prompts
    from proxt2i.evaluation.photo import descriptors, evaluate_photo_images, read_all, read_images
    from proxt2i.faces import FaceReader
    from proxt2i.imaging import save_captioned_grid, to_uint8_images
    from proxt2i.pipeline import ProxT2IPipeline

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, help="real PhotoFaces images (export or curated set)")
    p.add_argument("--reference-num", type=int, default=512)
    p.add_argument("--method", action="append", required=True, metavar="NAME=MODEL:SAMPLER[@SCALE]",
                   help="a model folder and the sampler to run it with; @SCALE sets the guidance scale")
    p.add_argument("--steps", default="2,4,8,50")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--per-prompt", type=int, default=2, help="images per prompt (>= 2 for the identity diversity)")
    p.add_argument("--out", required=True)
    p.add_argument("--grid-dir", default=None)
    args = p.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    reader = FaceReader()
    t0 = time.time()
    real = descriptors(read_all(reader, read_images(args.reference, args.reference_num)[0]))
    result = {"reference": args.reference, "reference_num": len(real), "reference_seconds": round(time.time() - t0, 1),
              "num_prompts": args.num_prompts, "per_prompt": args.per_prompt, "methods": {}}
    prompts = [q for q in photo_prompts(args.num_prompts) for _ in range(args.per_prompt)]
    for spec in args.method:
        name, _, rest = spec.partition("=")
        model, _, sampler = rest.rpartition(":")
        sampler, _, scale = sampler.partition("@")
        pipe = ProxT2IPipeline.from_pretrained(model)
        guidance = pipe.guidance_or_default(float(scale) if scale else None)
        rows, grid = {}, []
        for n in steps:
            t = time.time()
            x = pipe(prompts, num_steps=n, sampler=sampler, guidance_scale=guidance, seed=0, output_type="tensor", batch_size=32)
            seconds = time.time() - t
            images = list(to_uint8_images(x))
            scores = evaluate_photo_images(images, prompts, real, reader)
            guided = guidance != 1.0  # CFG: two passes per step
            rows[str(n)] = {**{k: scores[k] for k in ("face_rate", "fd", "precision", "recall", "diversity", "alignment",
                                                        "alignment_all", "alignment_per_family", "sure_per_family",
                                                        "alignment_when_sure_per_family")},
                            "nfe": n * (2 if guided else 1), "generate_seconds": round(seconds, 1)}
            grid += [(images[i * args.per_prompt], f"{n} steps: {prompts[i * args.per_prompt]}") for i in range(8)]
            print(json.dumps({"method": name, "steps": n, **rows[str(n)]}), file=sys.stderr, flush=True)
        result["methods"][name] = {"model": model, "sampler": sampler, "guidance": guidance, "by_steps": rows}
        if args.grid_dir:
            Path(args.grid_dir).mkdir(parents=True, exist_ok=True)
            save_captioned_grid(np.stack([g[0] for g in grid]), [g[1] for g in grid], Path(args.grid_dir) / f"grid_{name}.jpg", cols=8,
                                quantize=False)
    atomic_write_json(args.out, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
