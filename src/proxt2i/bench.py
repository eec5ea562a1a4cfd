"""Quality versus steps: the prox samplers against the best score-based samplers (docs/benchmark.md).

The chain generate -> evaluate, run over samplers x step counts x prompt sets:

    for sampler, steps, prompt_set:
        images = pipeline(prompts of the set, steps, guidance, sampler, seeds seed + i)   # same x_T per image
        row    = evaluate_images(images, prompts)  +  steps, nfe, sec_per_image

NFE counts network evaluations, guidance included: with w != 1 each step is one batched cond + uncond
pass, 2 NFE; with w = 1 it is 1 NFE. Every sampler here (PDA, Euler-Maruyama, PF-ODE Euler and the
diffusers multistep solvers) makes one guided evaluation per step.

Speedup (the paper's way, ProxT2I Sec. 5): a quality level fixed in advance, then for every sampler the
smallest NFE that reaches it, and speedup = (best score sampler's NFE) / (pda-hybrid's NFE), separately
for alignment and FD and for each prompt set. The level is relative to the score samplers' best at their
largest step count (50 in the standard run): alignment >= ALIGNMENT_FRACTION x the best alignment,
FD <= FD_FACTOR x the best FD. NFE-to-level: the first measured point that reaches the level,
interpolated linearly in log NFE against the point before it (the first point itself when it already
reaches the level: then the NFE is an upper bound).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from .config import option
from .errors import UsageError

from .samplers.registry import SAMPLERS, get_sampler

ALL_SAMPLERS = tuple(SAMPLERS)  # prox samplers first, in registry order
DEFAULT_STEPS = (1, 2, 3, 4, 6, 8, 10, 16, 25, 50)
PROMPT_SETS = ("heldin", "heldout")
DEFAULT_NUM_PROMPTS = 256  # per set: the whole shipped prompt files

# Quality levels, fixed before any measurement (docs/benchmark.md).
ALIGNMENT_FRACTION = 0.95  # alignment target = 0.95 x the best score sampler's alignment at its largest step count
FD_FACTOR = 1.10  # FD target = 1.1 x the best score sampler's FD at its largest step count
PROX_REFERENCE = "pda-hybrid"  # the sampler whose NFE is the speedup's denominator
GRID_STEPS = (2, 16)  # sampler_grid.png shows the measured step counts in this range

# --overhead
OVERHEAD_STEPS = 4
OVERHEAD_BATCHES = (1, 32)


@dataclass(frozen=True)
class BenchConfig:
    """`proxt2i bench`: which models and samplers are measured, at which step counts, on which prompts."""

    prox_model: str = option("synthfaces-prox", "shipped name or folder of a prox model")
    score_model: str = option("synthfaces-score", "shipped name or folder of a score model")
    samplers: tuple[str, ...] = option(ALL_SAMPLERS, "comma-separated samplers")
    steps: tuple[int, ...] = option(DEFAULT_STEPS, "comma-separated step counts")
    num_prompts: int = option(DEFAULT_NUM_PROMPTS, "prompts per set, the first N of each file")
    prompt_sets: tuple[str, ...] = option(PROMPT_SETS, "comma-separated prompt sets")
    guidance: float = option(4.0, "classifier-free guidance scale w >= 0; 1 = off")
    seed: int = option(0, "image i of a set uses seed + i, for every sampler")
    batch_size: int = option(64, "prompts per network batch")
    reference_num: int | None = option(None, "fresh renders behind FD; none = the evaluator default (2048)")
    evaluator: str | None = option(None, "evaluator folder; none = the shipped one", metavar="DIR")

    def __post_init__(self):
        check_samplers(self.samplers)
        check_steps(self.steps)
        if not self.prompt_sets or any(s not in PROMPT_SETS for s in self.prompt_sets):
            raise UsageError(f"prompt sets must be among {', '.join(PROMPT_SETS)}, got {list(self.prompt_sets)}")
        from .data.prompts import PROMPT_COUNT

        if isinstance(self.num_prompts, bool) or not isinstance(self.num_prompts, int) or not 2 <= self.num_prompts <= PROMPT_COUNT:
            raise UsageError(f"--num-prompts must be an integer in 2..{PROMPT_COUNT} (FD needs two images; "
                             f"each prompt set has {PROMPT_COUNT}), got {self.num_prompts!r}")
        if not self.guidance >= 0:
            raise UsageError(f"--guidance must be >= 0, got {self.guidance}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.reference_num is not None and self.reference_num < 2:
            raise UsageError(f"--reference-num must be >= 2, got {self.reference_num}")


def check_samplers(samplers) -> None:
    if not samplers:
        raise UsageError("no samplers given")
    for s in samplers:
        if s not in SAMPLERS:
            raise UsageError(f"unknown sampler {s!r}; choose from: {', '.join(SAMPLERS)}")


def check_steps(steps) -> None:
    from .pipeline import MAX_STEPS

    if not steps:
        raise UsageError("no step counts given")
    for n in steps:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS:
            raise UsageError(f"step counts must be integers in 1..{MAX_STEPS}, got {n!r}")


PRESETS: dict[str, BenchConfig] = {
    "full": BenchConfig(),
    # --quick: a few minutes on 2 CPU cores with the shipped 32 px models
    "quick": BenchConfig(num_prompts=32, steps=(2, 4, 8, 16),
                         samplers=("pda-hybrid", "euler-maruyama-denoise", "ddim", "dpm-solver++-2m", "unipc")),
}


def objective_of(sampler: str) -> str:
    return get_sampler(sampler).objective


def nfe(steps: int, guidance: float) -> int:
    """Network evaluations of one image: one per step, two (cond + uncond) when guidance is on (w != 1)."""
    return steps * (1 if guidance == 1.0 else 2)


def undefined_reason(pipe, sampler: str, steps: int) -> str | None:
    """None if the sampler runs at this step count on `pipe`'s grid and schedule, else the reason it does not
    (PDA-backward needs gamma < 2)."""
    from .pipeline import sampler_grid

    spec = get_sampler(sampler)
    grid = sampler_grid(spec, sampler, pipe.time_grid_for(sampler) if spec.walks_grid else None, steps)
    return spec.undefined_reason(grid, pipe.schedule)


def load_pipelines(prox_model: str, score_model: str, samplers) -> dict:
    """{objective: ProxT2IPipeline} for the objectives the samplers need; checks each model's objective."""
    from .pipeline import ProxT2IPipeline

    pipes = {}
    for objective, name, flag in (("prox", prox_model, "--prox-model"), ("score", score_model, "--score-model")):
        if any(objective_of(s) == objective for s in samplers):
            pipe = ProxT2IPipeline.from_pretrained(name)
            if pipe.objective != objective:
                raise UsageError(f"{flag} {name!r} is a {pipe.objective} model; give a {objective} model")
            pipes[objective] = pipe
    return pipes


# ---------------------------------------------------------------------------------------------- quality vs steps
def run_bench(cfg: BenchConfig, evaluator=None, progress: bool = True) -> tuple[dict, dict]:
    """Generate and score every (sampler, steps, prompt set). Returns (report, grid) where report is
    {"config", "results": [row...], "skipped": [...], "speedup": {...}} and grid maps (sampler, steps)
    to image 0 of the first prompt set, float [3, H, W] in [0, 1]."""
    from tqdm import tqdm

    from .data.prompts import load_prompts
    from .evaluation import evaluate_images, load_evaluator
    from .evaluation.features import REFERENCE_NUM

    pipes = load_pipelines(cfg.prox_model, cfg.score_model, cfg.samplers)
    ev = evaluator or load_evaluator(cfg.evaluator)
    reference_num = cfg.reference_num or REFERENCE_NUM
    prompts = {s: load_prompts(s, cfg.num_prompts) for s in cfg.prompt_sets}
    for sampler in cfg.samplers:  # warm-up: the first call pays for lazy imports (diffusers) and allocations
        if not undefined_reason(pipes[objective_of(sampler)], sampler, 1):
            pipes[objective_of(sampler)](prompts[cfg.prompt_sets[0]][:1], num_steps=1, guidance_scale=cfg.guidance,
                                         sampler=sampler, output_type="tensor")

    steps = sorted(cfg.steps)
    configs = [(s, n, p) for s in cfg.samplers for n in steps for p in cfg.prompt_sets]
    results, skipped, grid = [], [], {}
    for sampler, n, pset in tqdm(configs, desc="bench", disable=not progress):
        pipe = pipes[objective_of(sampler)]
        reason = undefined_reason(pipe, sampler, n)
        if reason:
            if pset == cfg.prompt_sets[0]:
                skipped.append({"sampler": sampler, "steps": n, "reason": reason})
            continue
        t0 = time.perf_counter()
        images = pipe(prompts[pset], num_steps=n, guidance_scale=cfg.guidance, sampler=sampler, seed=cfg.seed,
                      batch_size=cfg.batch_size, output_type="tensor")
        seconds = time.perf_counter() - t0
        m = evaluate_images(images, prompts[pset], ev, reference_num=reference_num)
        results.append({"sampler": sampler, "objective": objective_of(sampler), "steps": n, "nfe": nfe(n, cfg.guidance),
                        "guidance": cfg.guidance, "time_grid": pipe.time_grid_for(sampler), "prompt_set": pset, "n": m["n"], "alignment": m["alignment"],
                        "alignment_all": m["alignment_all"], "fd": m["fd"], "precision": m["precision"],
                        "recall": m["recall"], "clip_score": m["clip_score"], "sec_per_image": seconds / len(images)})
        if pset == cfg.prompt_sets[0]:
            grid[(sampler, n)] = images[0]
    config = asdict(cfg)
    config.update(samplers=list(cfg.samplers), steps=steps, prompt_sets=list(cfg.prompt_sets), reference_num=reference_num,
                  prox_model=cfg.prox_model, score_model=cfg.score_model,  # as given: a shipped name or the user's path
                  grid_prompt=prompts[cfg.prompt_sets[0]][0], torch_threads=torch.get_num_threads())
    report = {"config": config, "results": results, "skipped": skipped, "speedup": speedup(results)}
    return report, grid


# ---------------------------------------------------------------------------------------------- speedup
def nfe_to_reach(points, target: float, higher_is_better: bool) -> float | None:
    """Smallest NFE at which a metric reaches `target`, from measured (nfe, value) points.

    The first point (in increasing NFE) that reaches the target; between it and the point before,
    linear interpolation of the value in log NFE. The first point itself if it already reaches the
    target (an upper bound: fewer NFE were not measured). None if no point reaches it."""
    pts = sorted((float(n), float(v)) for n, v in points if v is not None)
    prev = None
    for n, v in pts:
        if (v >= target) if higher_is_better else (v <= target):
            if prev is None:
                return n
            n0, v0 = prev
            frac = (target - v0) / (v - v0)
            return math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0)))
        prev = (n, v)
    return None


METRICS = {"alignment": (True, ALIGNMENT_FRACTION), "fd": (False, FD_FACTOR)}


def speedup(results: list[dict], prox_sampler: str = PROX_REFERENCE, alignment_fraction: float = ALIGNMENT_FRACTION,
            fd_factor: float = FD_FACTOR) -> dict:
    """Per prompt set and metric: the target level, every sampler's NFE to reach it, the best score
    sampler and speedup = best score NFE / prox_sampler NFE (None where either never reaches it).
    results: rows with sampler, steps, nfe, prompt_set, alignment, fd."""
    factors = {"alignment": alignment_fraction, "fd": fd_factor}
    out = {"levels": {"alignment": f"{alignment_fraction} x best score-sampler alignment at its largest step count",
                      "fd": f"{fd_factor} x best score-sampler FD at its largest step count",
                      "nfe_rule": "first measured point reaching the level, interpolated linearly in log NFE",
                      "prox_sampler": prox_sampler}}
    for pset in dict.fromkeys(r["prompt_set"] for r in results):
        rows = [r for r in results if r["prompt_set"] == pset]
        score_rows = [r for r in rows if objective_of(r["sampler"]) == "score"]
        if not score_rows:
            out[pset] = None
            continue
        ref_steps = max(r["steps"] for r in score_rows)
        samplers = list(dict.fromkeys(r["sampler"] for r in rows))
        out[pset] = {"reference_steps": ref_steps}
        for metric, (higher, _) in METRICS.items():
            ref = [r[metric] for r in score_rows if r["steps"] == ref_steps and r[metric] is not None]
            if not ref:
                out[pset][metric] = None
                continue
            best = max(ref) if higher else min(ref)
            target = factors[metric] * best
            reach = {s: nfe_to_reach([(r["nfe"], r[metric]) for r in rows if r["sampler"] == s], target, higher) for s in samplers}
            score_reach = {s: v for s, v in reach.items() if objective_of(s) == "score" and v is not None}
            best_score = min(score_reach, key=score_reach.get) if score_reach else None
            p = reach.get(prox_sampler)
            out[pset][metric] = {
                "best_at_reference": best, "target": target, "nfe_to_target": reach, "best_score_sampler": best_score,
                "speedup": (score_reach[best_score] / p) if (best_score and p) else None,
                "speedup_vs": {s: v / p for s, v in score_reach.items()} if p else {},
            }
    return out


# ---------------------------------------------------------------------------------------------- outputs
def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def format_markdown(report: dict) -> str:
    """results.md: per prompt set, tables of alignment, FD, CLIP score and sec/image (samplers x steps),
    then the speedup summary."""
    cfg, results = report["config"], report["results"]
    steps = cfg["steps"]
    g = cfg["guidance"]
    lines = ["# Quality versus steps", "",
             f"prox model `{cfg['prox_model']}`, score model `{cfg['score_model']}`; {cfg['num_prompts']} prompts per set, "
             f"seeds {cfg['seed']}.., guidance {g} (NFE = {nfe(1, g)} x steps); FD against {cfg['reference_num']} fresh renders.", ""]
    tables = [("alignment", "alignment (higher is better)", ".3f"), ("fd", "Frechet distance (lower is better)", ".2f"),
              ("clip_score", "CLIP score (higher is better)", ".2f"), ("sec_per_image", "seconds per image", ".4f")]
    by_key = {(r["sampler"], r["steps"], r["prompt_set"]): r for r in results}
    grids = {r["sampler"]: r.get("time_grid") for r in results}
    label = {s: f"{s} [{grids[s]} grid]" if grids.get(s) not in (None, "diffusers") else s for s in cfg["samplers"]}
    for pset in cfg["prompt_sets"]:
        for key, title, spec in tables:
            lines += [f"## {pset}: {title}", "",
                      "| sampler | " + " | ".join(f"{n} ({nfe(n, g)})" for n in steps) + " |",
                      "|---|" + "---|" * len(steps)]
            for s in cfg["samplers"]:
                cells = [_fmt(by_key[(s, n, pset)][key], spec) if (s, n, pset) in by_key else "n/a" for n in steps]
                lines.append(f"| {label[s]} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["column header: steps (NFE); n/a: not run or undefined (PDA-backward needs gamma < 2); [grid]: the time grid "
              "the project's samplers walk (diffusers samplers use their own trailing timesteps)", "", "## Speedup", "",
              f"level: {report['speedup']['levels']['alignment']} (alignment), {report['speedup']['levels']['fd']} (FD); "
              f"NFE to the level: {report['speedup']['levels']['nfe_rule']}.", "",
              "| prompt set | metric | target | pda-hybrid NFE | best score sampler | its NFE | speedup |", "|---|---|---|---|---|---|---|"]
    for pset in cfg["prompt_sets"]:
        sp = report["speedup"].get(pset) or {}
        for metric in METRICS:
            m = sp.get(metric)
            if not m:
                lines.append(f"| {pset} | {metric} | n/a | n/a | n/a | n/a | n/a |")
                continue
            best = m["best_score_sampler"]
            lines.append(f"| {pset} | {metric} | {m['target']:.3f} | {_fmt(m['nfe_to_target'].get(PROX_REFERENCE), '.1f')} | "
                         f"{best or 'none reaches it'} | {_fmt(m['nfe_to_target'].get(best), '.1f')} | {_fmt(m['speedup'], '.2f')} |")
    return "\n".join(lines) + "\n"


def plot_quality(report: dict, path) -> None:
    """quality_vs_nfe.png: alignment (top) and FD (bottom) against NFE, one line per sampler, one column per prompt set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_save_figure

    cfg, results = report["config"], report["results"]
    psets = cfg["prompt_sets"]
    fig, axes = plt.subplots(2, len(psets), figsize=(5.5 * len(psets), 7.5), squeeze=False)
    for j, pset in enumerate(psets):
        for i, (metric, label) in enumerate((("alignment", "alignment"), ("fd", "Frechet distance"))):
            ax = axes[i][j]
            for k, s in enumerate(cfg["samplers"]):
                pts = sorted((r["nfe"], r[metric]) for r in results if r["sampler"] == s and r["prompt_set"] == pset and r[metric] is not None)
                if pts:
                    prox = objective_of(s) == "prox"
                    ax.plot(*zip(*pts), "o-" if prox else "s--", lw=2.2 if prox else 1.2, ms=4, color=f"C{k % 10}", label=s)
            target = ((report["speedup"].get(pset) or {}).get(metric) or {}).get("target")
            if target is not None:
                ax.axhline(target, color="k", ls=":", lw=1, label="quality level")
            ax.set_xscale("log")
            ticks = sorted({r["nfe"] for r in results})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("NFE (network evaluations per image, guidance included)")
            ax.set_ylabel(label)
            ax.set_title(f"{pset}: {label}", fontsize=10)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


def plot_sampler_grid(grid: dict, samplers, steps, path, prompt: str = "") -> None:
    """sampler_grid.png: the same prompt and seed, one row per sampler, one column per step count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_save_figure

    import textwrap

    cols = [n for n in steps if GRID_STEPS[0] <= n <= GRID_STEPS[1]] or list(steps)
    cell, left, top = 1.2, 1.9, 0.75  # inches
    width, height = left + cell * len(cols) + 0.1, top + cell * len(samplers) + 0.1
    fig, axes = plt.subplots(len(samplers), len(cols), figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=left / width, right=1 - 0.1 / width, top=1 - top / height, bottom=0.1 / height, wspace=0.05, hspace=0.05)
    for i, s in enumerate(samplers):
        for j, n in enumerate(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_box_aspect(1)
            im = grid.get((s, n))
            if im is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            else:
                ax.imshow(im.clamp(0, 1).permute(1, 2, 0).cpu().numpy())
            if i == 0:
                ax.set_title(f"{n} steps", fontsize=8)
            if j == 0:
                ax.set_ylabel(s, fontsize=8, rotation=0, ha="right", va="center")
    if prompt:
        fig.suptitle("\n".join(textwrap.wrap(prompt, 20 + 12 * len(cols))[:2]), fontsize=7, y=1 - 0.08 / height, va="top")
    atomic_save_figure(fig, path)
    plt.close(fig)


def write_outputs(report: dict, grid: dict, out) -> dict:
    """Write results.json, results.md, quality_vs_nfe.png and sampler_grid.png into `out` (atomically);
    returns {name: path}."""
    from pathlib import Path

    from .atomic import atomic_write_json, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / k for k in ("results.json", "results.md", "quality_vs_nfe.png", "sampler_grid.png")}
    atomic_write_json(paths["results.json"], report)
    atomic_write_text(paths["results.md"], format_markdown(report))
    plot_quality(report, paths["quality_vs_nfe.png"])
    cfg = report["config"]
    plot_sampler_grid(grid, cfg["samplers"], cfg["steps"], paths["sampler_grid.png"], cfg.get("grid_prompt", ""))
    return {k: str(v) for k, v in paths.items()}


# ---------------------------------------------------------------------------------------------- sampler overhead
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

    from .data.prompts import load_prompts
    check_steps([steps])
    devices = list(devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])))
    pipes = load_pipelines(cfg.prox_model, cfg.score_model, cfg.samplers)
    prompts = load_prompts("heldin", max(batch_sizes))
    rows, skipped = [], []
    jobs = [(d, s, b) for d in devices for s in cfg.samplers for b in batch_sizes]
    for device, sampler, b in tqdm(jobs, desc="overhead", disable=not progress):
        pipe = pipes[objective_of(sampler)]
        reason = undefined_reason(pipe, sampler, steps)
        if reason:
            if device == devices[0] and b == batch_sizes[0]:
                skipped.append({"sampler": sampler, "steps": steps, "reason": reason})
            continue
        pipe.net.to(device)
        pipe.autoencoder.to(device)
        timed = TimedNetwork(pipe.net, device)
        seeds = [cfg.seed + i for i in range(b)]

        def generate():
            lat = pipe.sample_latents(prompts[:b], steps, cfg.guidance, sampler, seeds, net=timed, device=device)
            timed._sync()
            t_mid = time.perf_counter()
            with torch.no_grad():
                pipe.autoencoder.decode(lat)
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
        rows.append({"device": device, "sampler": sampler, "batch": b, "steps": steps, "nfe": nfe(steps, cfg.guidance),
                     "network_calls_per_step": timed.calls / n_steps,
                     "network_ms_per_step": 1e3 * timed.seconds / n_steps,
                     "overhead_ms_per_step": 1e3 * (sampling - timed.seconds) / n_steps,
                     "overhead_fraction": (sampling - timed.seconds) / sampling if sampling > 0 else None,
                     "images_per_s": b * repeats / total})
    for pipe in pipes.values():
        pipe.net.to("cpu")
        pipe.autoencoder.to("cpu")
    return {"config": {"prox_model": cfg.prox_model, "score_model": cfg.score_model, "steps": steps, "guidance": cfg.guidance,
                       "batch_sizes": list(batch_sizes), "repeats": repeats, "devices": devices,
                       "torch_threads": torch.get_num_threads(),
                       "cuda_device": torch.cuda.get_device_name(0) if "cuda" in devices else None},
            "rows": rows, "skipped": skipped}
