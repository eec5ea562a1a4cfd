"""The bench's configuration: samplers, step counts, prompt sets, guidance; the quality levels fixed
before any measurement; NFE accounting; which (sampler, steps) pairs are defined."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_seed, option
from ..data.prompts import PROMPT_SETS as SHIPPED_PROMPT_SETS
from ..errors import UsageError
from ..samplers.registry import SAMPLERS, get_sampler

ALL_SAMPLERS = tuple(SAMPLERS)  # prox samplers first, in registry order
DEFAULT_STEPS = (1, 2, 3, 4, 6, 8, 10, 16, 25, 50)
PROMPT_SETS = tuple(SHIPPED_PROMPT_SETS)  # heldin, heldout, paraphrase
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
    few_step_models: tuple[str, ...] = option((), "comma-separated models (shipped names or folders) each measured with its own "
                                                  "default sampler and guidance as a family of its own: consistency models "
                                                  "(synthfaces-ct, synthfaces-lcm), guidance-distilled models")
    steps: tuple[int, ...] = option(DEFAULT_STEPS, "comma-separated step counts")
    num_prompts: int = option(DEFAULT_NUM_PROMPTS, "prompts per set, the first N of each file")
    prompt_sets: tuple[str, ...] = option(PROMPT_SETS, "comma-separated prompt sets")
    guidance: float = option(4.0, "classifier-free guidance scale w >= 0; 1 = off")
    seed: int = option(0, "image i of a set uses seed + i, for every sampler")
    batch_size: int = option(64, "prompts per network batch")
    reference_num: int | None = option(None, "fresh renders behind FD; none = the evaluator default (2048)")
    evaluator: str | None = option(None, "evaluator folder; none = the shipped one", metavar="DIR")
    device: str = option("auto", "where the generators run: auto (cuda if available), cpu, cuda, cuda:N, mps (--overhead: auto = cpu and cuda)")
    dtype: str = option("float32", "the generators' weights: float32, bfloat16 or float16 (the evaluator stays float32)")

    def __post_init__(self):
        check_samplers(self.samplers)
        check_steps(self.steps)
        if not self.prompt_sets or any(s not in PROMPT_SETS for s in self.prompt_sets):
            raise UsageError(f"prompt sets must be among {', '.join(PROMPT_SETS)}, got {list(self.prompt_sets)}")
        from ..data.prompts import PROMPT_COUNT

        if isinstance(self.num_prompts, bool) or not isinstance(self.num_prompts, int) or not 2 <= self.num_prompts <= PROMPT_COUNT:
            raise UsageError(f"--num-prompts must be an integer in 2..{PROMPT_COUNT} (FD needs two images; "
                             f"each prompt set has {PROMPT_COUNT}), got {self.num_prompts!r}")
        if not self.guidance >= 0:
            raise UsageError(f"--guidance must be >= 0, got {self.guidance}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.reference_num is not None and self.reference_num < 2:
            raise UsageError(f"--reference-num must be >= 2, got {self.reference_num}")
        check_seed(self.seed, "--seed")
        from ..devices import resolve

        resolve(self.device, self.dtype)


@dataclass(frozen=True)
class Method:
    """One curve of the bench: `pipe` driven by `sampler` at guidance `guidance`. label names it in tables (the
    sampler for the prox and score models, the model for a few-step model); family: "prox", "score" or "few-step"."""

    label: str
    pipe: object
    sampler: str
    guidance: float
    family: str


def bench_methods(cfg: BenchConfig, device="cpu", dtype=None) -> list[Method]:
    """The samplers on the prox / score models at cfg.guidance, then each few-step model with its own default
    sampler and guidance (a model's config.json "sampling"); a model of the wrong objective or a label given twice
    is a UsageError."""
    from pathlib import Path

    from ..pipeline import ProxT2IPipeline

    pipes = load_pipelines(cfg.prox_model, cfg.score_model, cfg.samplers, device, dtype)
    methods = [Method(s, pipes[objective_of(s)], s, cfg.guidance, objective_of(s)) for s in cfg.samplers]
    for name in cfg.few_step_models:
        label = folder_label(Path(name)) if ("/" in name or Path(name).exists()) else name
        if label in {m.label for m in methods}:
            raise UsageError(f"--few-step-models: {label!r} is measured twice; give each model once (folders need distinct names)")
        pipe = ProxT2IPipeline.from_pretrained(name, device=device, torch_dtype=dtype)
        methods.append(Method(label, pipe, pipe.default_sampler, pipe.guidance_or_default(None), "few-step"))
    return methods


def folder_label(path) -> str:
    """A model folder's name in tables: its own, or its run's for a training output RUN/final."""
    path = path.resolve()
    return path.parent.name if path.name == "final" else path.name


def check_samplers(samplers) -> None:
    if not samplers:
        raise UsageError("no samplers given (to measure few-step models alone, give --samplers pda-hybrid as the reference)")
    for s in samplers:
        if s not in SAMPLERS:
            raise UsageError(f"unknown sampler {s!r}; choose from: {', '.join(SAMPLERS)}")


def check_steps(steps) -> None:
    from ..pipeline import MAX_STEPS

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
    from ..pipeline import sampler_grid

    spec = get_sampler(sampler)
    grid = sampler_grid(spec, sampler, pipe.time_grid_for(sampler) if spec.walks_grid else None, steps)
    return spec.undefined_reason(grid, pipe.schedule)


def load_pipelines(prox_model: str, score_model: str, samplers, device="cpu", dtype=None) -> dict:
    """{objective: ProxT2IPipeline} on `device` in `dtype` for the objectives the samplers need; checks each model's objective
    and that it is not a consistency model (whose own sampler is the only right one: give it as a few-step model)."""
    from ..pipeline import ProxT2IPipeline

    pipes = {}
    for objective, name, flag in (("prox", prox_model, "--prox-model"), ("score", score_model, "--score-model")):
        if any(objective_of(s) == objective for s in samplers):
            pipe = ProxT2IPipeline.from_pretrained(name, device=device, torch_dtype=dtype)
            if pipe.objective != objective:
                raise UsageError(f"{flag} {name!r} is a {pipe.objective} model; give a {objective} model")
            if pipe.default_sampler == "consistency":
                raise UsageError(f"{flag} {name!r} is a consistency model; measure it with --few-step-models {name}")
            pipes[objective] = pipe
    return pipes
