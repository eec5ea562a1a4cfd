"""`proxt2i generate`: images from a prompt, or a folder of images from a prompt file."""

from __future__ import annotations

import json
import os
from pathlib import Path

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"generate": "generate images from a prompt (default model: synthfaces-prox-nft, 4 PDA-hybrid steps)"}


def register(sub) -> None:
    from ..config import finite_float, seed_value
    from ..devices import add_device_arguments
    from ..samplers.registry import SAMPLERS
    from ..shipped import DEFAULT_MODEL

    p = sub.add_parser(
        "generate", help=COMMANDS["generate"],
        description=("Generate images with a learned proximal operator. One prompt: writes OUT_00.png ... and OUT_grid.png. "
                     "With --prompts FILE (one prompt per line): writes DIR/NNNNN.png and DIR/metadata.jsonl, the layout "
                     "`proxt2i evaluate DIR` reads."),
    )
    p.add_argument("prompt", nargs="?", help="the text prompt")
    p.add_argument("--prompts", metavar="FILE", help="a file with one prompt per line (instead of PROMPT)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped name (see `proxt2i models`) or model folder (default {DEFAULT_MODEL}: "
                                                           "synthfaces-prox after the forward-process reward route; synthfaces-prox is the pretrained model)")
    p.add_argument("--steps", type=int, default=4, help="sampling steps = network evaluations per image before guidance (default 4)")
    p.add_argument("--guidance", type=finite_float, default=None,
                   help="classifier-free guidance scale w >= 0; 1 = off (default: the model's, 4; 1 for a guidance-distilled model)")
    p.add_argument("--guidance-interval", type=finite_float, nargs=2, metavar=("T_LO", "T_HI"), help="apply guidance only for t in [T_LO, T_HI]")
    p.add_argument("--sampler", choices=list(SAMPLERS), help="default: pda-hybrid for prox models, euler-maruyama-denoise for score models")
    p.add_argument("--time-grid", metavar="GRID", help="times the project's samplers visit: uniform (t_k = k/N), quadratic ((k/N)^2) or "
                                                      "power:R (default: the model's own, from its config.json: quadratic for pda-hybrid on the shipped "
                                                      "prox model; otherwise uniform; diffusers samplers use their own timesteps)")
    p.add_argument("--reward-guidance", metavar="NAME=W[,...]",
                   help="training-free reward guidance (prox samplers): after every prox step, a step of W (latent RMS units) up "
                        "the normalised gradient of each differentiable reward of the decoded clean estimate, e.g. "
                        "alignment-prob=0.1 or clip=0.1,brightness=0.05; real models as NAME:DIR=W. Each guided step costs one "
                        "decode and reward pass, forward and backward (no U-ViT backward); docs/finetune.md measures it")
    p.add_argument("--reward-guidance-schedule", default="late", choices=["constant", "late", "final"],
                   help="the reward step over the prox time t: constant, late (scaled by 1 - t; default) or final (the last step only)")
    p.add_argument("--seed", type=seed_value, default=0, help="image i uses seed + i (default 0)")
    p.add_argument("--num", type=int, default=4, help="images per prompt (default 4)")
    p.add_argument("--batch-size", type=int, default=32, help="images per network batch (default 32)")
    p.add_argument("--compare-steps", metavar="LIST", help="e.g. 2,4,8: one figure, a row per prompt (first seed) and a column per step count, written to OUT.png")
    add_device_arguments(p)
    p.add_argument("--compile", action="store_true", help="torch.compile the U-ViT first: the first batch pays the compilation "
                                                         "(14-26 s on a 2-core CPU), later ones ran up to 15%% faster there (docs/scale.md)")
    p.add_argument("--out", default="outputs/sample", help="output path prefix (single prompt) or folder (--prompts); default outputs/sample")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs: the OUT_*.png files, or the --prompts folder as a whole (only a folder with "
                        "a metadata.jsonl, i.e. an earlier generate or dataset; any other non-empty folder is never replaced). "
                        "Without it an existing output is refused")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError

    if (args.prompt is None) == (args.prompts is None):
        raise UsageError("give either a PROMPT or --prompts FILE")
    if args.num < 1 or args.num > 10000:
        raise UsageError(f"--num must be in 1..10000, got {args.num}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    prompts = read_prompts(args)
    from ..devices import resolve
    from ..pipeline import check_prompts
    check_prompts(prompts)
    resolve(args.device, args.dtype)  # refused in one line before anything loads
    check_sampling_flags(args)
    check_outputs(args)
    from ..atomic import check_output_file, output_lock, replace_folder

    out = Path(args.out)
    if args.compare_steps:
        check_output_file(out.with_suffix(".png"), args.overwrite)
        return compare_steps(load_pipeline(args), prompts, args)
    if args.prompts is not None:
        # the whole folder is built beside --out and swapped in: a kill leaves the old folder or the new one
        with replace_folder(out, overwrite=args.overwrite, is_ours=_is_image_folder, what="imagefolder (metadata.jsonl)") as tmp:
            pipe = load_pipeline(args)
            expanded = [p for p in prompts for _ in range(args.num)]
            images = _generate(pipe, expanded, args)
            used = args.sampler or pipe.default_sampler
            write_folder(tmp, images, expanded, args, used, pipe.time_grid_for(used, args.time_grid))
        print(f"wrote {len(expanded)} images and metadata.jsonl to {out}")
        return 0
    for path in single_paths(out, args.num):
        check_output_file(path, args.overwrite)
    with output_lock(out):
        images = _generate(load_pipeline(args), prompts * args.num, args)
        write_single(out, images)
    return 0


def load_pipeline(args):
    """The pipeline of --model on --device in --dtype (compiled with --compile); an unset --guidance becomes
    the model's default (recorded as such in metadata.jsonl)."""
    from ..pipeline import ProxT2IPipeline

    pipe = ProxT2IPipeline.from_pretrained(args.model, device=args.device, torch_dtype=args.dtype, compile=getattr(args, "compile", False))
    args.guidance = pipe.guidance_or_default(args.guidance)
    return pipe


def read_prompts(args) -> list[str]:
    """The prompts: PROMPT, or the non-blank lines of --prompts FILE (UTF-8; a byte-order mark and CRLF
    are fine); a line past the prompt length limit is refused with its line number."""
    from ..errors import UsageError, read_text
    from ..pipeline import MAX_PROMPT_CHARS

    if args.prompt is None:
        prompts = []
        for number, line in enumerate(read_text(args.prompts, "prompt file").split("\n"), 1):
            if len(line.strip()) > MAX_PROMPT_CHARS:
                raise UsageError(f"prompt file {args.prompts!r} line {number}: prompt of {len(line.strip())} characters is too long "
                                 f"(at most {MAX_PROMPT_CHARS})")
            if line.strip():
                prompts.append(line.strip())
        if not prompts:
            raise UsageError(f"prompt file {args.prompts!r} has no prompts")
        return prompts
    return [args.prompt]


def check_sampling_flags(args) -> None:
    """Refuse flags the sampler could not honour, blaming the flag (not the model) before anything loads."""
    from ..errors import UsageError

    if args.guidance is not None and args.guidance < 0:
        raise UsageError(f"--guidance must be >= 0, got {args.guidance}")
    if args.guidance_interval:
        lo, hi = args.guidance_interval
        if not 0 <= lo <= hi <= 1:
            raise UsageError(f"--guidance-interval T_LO T_HI needs 0 <= T_LO <= T_HI <= 1, got {lo} {hi}")
    if not 1 <= args.steps <= 1000:
        raise UsageError(f"--steps must be in 1..1000, got {args.steps}")
    if args.reward_guidance is not None:
        from ..rewards import parse_reward_spec
        from ..samplers.registry import get_sampler

        parse_reward_spec(args.reward_guidance)
        if args.sampler is not None and get_sampler(args.sampler).objective != "prox":
            raise UsageError(f"--reward-guidance acts after each prox step; --sampler {args.sampler} drives a score model "
                             "(use pda-hybrid or pda-backward with a prox model)")
    if args.compare_steps:
        steps = compare_step_counts(args.compare_steps)
        bad = [n for n in steps if not 1 <= n <= 1000]
        if bad:
            raise UsageError(f"--compare-steps: step counts must be in 1..1000, got {bad[0]}")


def check_outputs(args) -> None:
    """Refuse an --out that cannot be written before the model loads (a parent that is a file, a name too long)."""
    from ..errors import UsageError, check_output_path

    out = Path(args.out)
    if args.compare_steps:
        check_output_path(out.with_suffix(".png"))
    elif args.prompts is not None:
        check_output_path(out, folder=True)
    else:
        if args.out.endswith(("/", os.sep)) or out.is_dir():  # g/ would write g_00.png beside the folder, not in it
            raise UsageError(f"--out {args.out!r} is a folder; with one PROMPT --out is a file prefix (e.g. {str(out / 'sample')!r} "
                             f"writes sample_00.png ... there), or give --prompts FILE to fill a folder")
        check_output_path(out.with_name(f"{out.name}_grid.png"))  # the longest of the names written


def compare_step_counts(text: str) -> list[int]:
    from ..errors import UsageError

    try:
        steps = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--compare-steps must be comma-separated integers, got {text!r}") from None
    if not steps:
        raise UsageError("--compare-steps needs at least one step count")
    return steps


def _is_image_folder(folder: Path) -> bool:
    return (folder / "metadata.jsonl").is_file()


def _generate(pipe, prompts: list[str], args):
    return pipe(prompts, num_steps=args.steps, guidance_scale=args.guidance, sampler=args.sampler, seed=args.seed,
                guidance_interval=tuple(args.guidance_interval) if args.guidance_interval else None,
                batch_size=args.batch_size, output_type="tensor", progress=True, time_grid=args.time_grid,
                **reward_guidance_options(args))


def reward_guidance_options(args) -> dict:
    """The pipeline keywords of --reward-guidance (none without it)."""
    if args.reward_guidance is None:
        return {}
    return {"reward_guidance": args.reward_guidance, "reward_guidance_schedule": args.reward_guidance_schedule}


def single_paths(prefix: Path, num: int) -> list[Path]:
    """The files one prompt writes: PREFIX_00.png ... and PREFIX_grid.png."""
    return [prefix.with_name(f"{prefix.name}_{i:02d}.png") for i in range(num)] + [prefix.with_name(f"{prefix.name}_grid.png")]


def write_single(prefix: Path, images) -> None:
    """Every file encoded to a temporary beside it first, then all renamed into place back to back, so that a
    kill leaves whole files and (but for that last instant) all old or all new ones."""
    from contextlib import ExitStack

    from ..atomic import atomic_path
    from ..imaging import grid_image, to_pil

    *paths, grid = single_paths(prefix, len(images))
    with ExitStack() as renames:  # each atomic_path renames its temporary when the stack closes
        for im, path in zip(to_pil(images) + [grid_image(images, cols=min(len(paths), 8))], paths + [grid]):
            im.save(renames.enter_context(atomic_path(path)), format="PNG")
    print("\n".join([str(p) for p in paths] + [f"grid: {grid}"]))


def write_folder(out: Path, images, prompts, args, sampler: str, grid: str) -> None:
    """NNNNN.png and metadata.jsonl into `out`, a fresh temporary folder (replace_folder swaps it into place)."""
    from ..atomic import atomic_save_image, atomic_write_text
    from ..imaging import to_pil

    rows = []
    for i, (im, text) in enumerate(zip(to_pil(images), prompts)):
        name = f"{i:05d}.png"
        atomic_save_image(im, out / name)
        rows.append(json.dumps({"file_name": name, "text": text, "seed": args.seed + i, "steps": args.steps,
                                "sampler": sampler, "guidance": args.guidance, "model": args.model, "time_grid": grid,
                                **({"reward_guidance": args.reward_guidance, "reward_guidance_schedule": args.reward_guidance_schedule}
                                   if args.reward_guidance else {})}))
    atomic_write_text(out / "metadata.jsonl", "\n".join(rows) + "\n")


def compare_steps(pipe, prompts: list[str], args) -> int:
    """A figure of prompts (rows) x step counts (columns), same seed per row: OUT.png."""
    steps = compare_step_counts(args.compare_steps)
    interval = tuple(args.guidance_interval) if args.guidance_interval else None
    columns = [pipe(prompts, num_steps=n, guidance_scale=args.guidance, sampler=args.sampler, seed=args.seed,
                    guidance_interval=interval, time_grid=args.time_grid, batch_size=args.batch_size, output_type="tensor",
                    **reward_guidance_options(args))
               for n in steps]
    path = Path(args.out).with_suffix(".png")
    save_steps_figure(columns, prompts, steps, path)
    print(f"wrote {path}")
    return 0


def save_steps_figure(columns, prompts: list[str], steps: list[int], path: Path) -> None:
    """columns[j]: images [P, 3, S, S] at steps[j]; one PNG with captions on the left, written atomically."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from ..atomic import atomic_save_image

    rows, cols = len(prompts), len(steps)
    fig, axes = plt.subplots(rows, cols + 1, figsize=(1.3 * cols + 2.6, 1.3 * rows + 0.3), squeeze=False,
                             gridspec_kw={"width_ratios": [2.0] + [1.0] * cols})
    for i, prompt in enumerate(prompts):
        axes[i, 0].set_axis_off()
        axes[i, 0].text(1.0, 0.5, textwrap.fill(prompt, 30, max_lines=4, placeholder=" ..."), ha="right", va="center", fontsize=7,
                        transform=axes[i, 0].transAxes)
        for j, n in enumerate(steps):
            ax = axes[i, j + 1]
            ax.imshow(columns[j][i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{n} step{'s' if n > 1 else ''}", fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    atomic_save_image(Image.fromarray(rgb), path)
