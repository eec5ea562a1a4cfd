"""Reward guidance against fine-tuned models at equal wall time per image (docs/finetune.md, "Reward guidance").

    python docs/experiments/reward_guidance.py [--num N] [--threads T] [--sets A,B] [--no-diversity] \
        LABEL=MODEL:STEPS[:SPEC[:SCHEDULE]] ...

For each configuration: the first N prompts of heldin, heldout and paraphrase, one image each (seed i), the
model's default sampler and CFG scale (4; 1 for a guidance-distilled model), float32 on the CPU; generation seconds per image (after a warm-up batch,
decoding included), the model's own CFG scale and the NFE, alignment, FD and clip score (`proxt2i evaluate`'s; the clip score is the contrastive
model's, the one judge here that is not the recogniser behind alignment, FD and the alignment-prob reward); then within-prompt diversity from the first
128 held-out prompts x 4 images (seeds 0.., as docs/finetune.md measures it for the shipped models).
SPEC is a --reward-guidance value, e.g. alignment-prob=0.1. Prints one JSON line per configuration and set.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> None:
    import torch

    from proxt2i import ProxT2IPipeline
    from proxt2i.data.prompts import load_prompts
    from proxt2i.evaluation.metrics import evaluate_images

    num = int(argv[argv.index("--num") + 1]) if "--num" in argv else 256
    torch.set_num_threads(int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 2)
    sets = argv[argv.index("--sets") + 1].split(",") if "--sets" in argv else ["heldin", "heldout", "paraphrase"]
    configs = [a for a in argv if "=" in a and not a.startswith("--")]
    for config in configs:
        label, _, rest = config.partition("=")
        model, steps, *guidance = rest.split(":")
        spec = guidance[0] if guidance else None
        schedule = guidance[1] if len(guidance) > 1 else "late"
        pipe = ProxT2IPipeline.from_pretrained(model)
        options = {"reward_guidance": pipe.reward_guidance(spec, schedule)} if spec else {}
        pipe(["a person"] * 32, num_steps=int(steps), seed=0, output_type="tensor", batch_size=32, **options)  # warm-up
        for prompt_set in sets:
            prompts = load_prompts(prompt_set, num)
            t0 = time.perf_counter()
            images = pipe(prompts, num_steps=int(steps), seed=0, output_type="tensor", batch_size=32, **options)
            seconds = (time.perf_counter() - t0) / len(prompts)
            scores = evaluate_images(images, prompts)
            cfg_scale = pipe.guidance_or_default(None)  # the model's own: 4, or 1 for a guidance-distilled model
            print(json.dumps({"label": label, "model": model, "steps": int(steps), "guidance": cfg_scale,
                              "nfe": int(steps) * (1 if cfg_scale == 1 else 2), "reward_guidance": spec, "schedule": schedule,
                              "set": prompt_set, "n": len(prompts), "alignment": scores["alignment"], "fd": scores["fd"],
                              "clip_score": scores["clip_score"],
                              "sec_per_image": seconds}), flush=True)
        if "--no-diversity" in argv:
            continue
        prompts = [p for p in load_prompts("heldout", 128) for _ in range(4)]
        images = pipe(prompts, num_steps=int(steps), seed=0, output_type="tensor", batch_size=32, **options)
        print(json.dumps({"label": label, "set": "heldout x4", "n": len(prompts),
                          "diversity": evaluate_images(images, prompts)["diversity"]}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
