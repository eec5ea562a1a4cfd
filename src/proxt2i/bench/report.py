"""The bench's outputs: results.json, results.md (tables and the speedup summary), quality_vs_nfe.png,
sampler_grid.png."""

from __future__ import annotations

from .config import GRID_STEPS, PROX_REFERENCE, nfe
from .speedup import METRICS, method_of


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def methods_of(cfg: dict) -> list[str]:
    """The curve labels of a report's config, in order (older reports: the samplers)."""
    return list(cfg.get("methods") or cfg["samplers"])


def format_markdown(report: dict) -> str:
    """results.md: per prompt set, tables of alignment, FD, CLIP score and sec/image (samplers x steps),
    then the speedup summary."""
    cfg, results = report["config"], report["results"]
    steps = cfg["steps"]
    g = cfg["guidance"]
    lines = ["# Quality versus steps", "",
             f"prox model `{cfg['prox_model']}`, score model `{cfg['score_model']}`"
             + (f", few-step models {', '.join(f'`{m}`' for m in cfg['few_step_models'])}" if cfg.get("few_step_models") else "")
             + f"; {cfg['num_prompts']} prompts per set, "
             f"seeds {cfg['seed']}.., guidance {g} (NFE = {nfe(1, g)} x steps); FD against {cfg['reference_num']} fresh renders.", ""]
    tables = [("alignment", "alignment (higher is better)", ".3f"), ("fd", "Frechet distance (lower is better)", ".2f"),
              ("clip_score", "CLIP score (higher is better)", ".2f"), ("sec_per_image", "seconds per image", ".4f")]
    by_key = {(method_of(r), r["steps"], r["prompt_set"]): r for r in results}
    grids = {method_of(r): r.get("time_grid") for r in results}
    guidance = {method_of(r): r.get("guidance", g) for r in results}
    methods = methods_of(cfg)
    label = {s: f"{s} [{grids[s]} grid]" if grids.get(s) not in (None, "diffusers") else s for s in methods}
    few = [m for m in methods if m not in cfg["samplers"]]
    for m in few:
        r = next((r for r in results if method_of(r) == m), None)
        if r is not None:
            label[m] = f"{m} ({r['sampler']}, guidance {guidance[m]:g}, NFE {nfe(1, guidance[m])} x steps)"
    for pset in cfg["prompt_sets"]:
        for key, title, spec in tables:
            lines += [f"## {pset}: {title}", "",
                      "| sampler | " + " | ".join(f"{n} ({nfe(n, g)})" for n in steps) + " |",
                      "|---|" + "---|" * len(steps)]
            for s in methods:
                cells = [_fmt(by_key[(s, n, pset)][key], spec) if (s, n, pset) in by_key else "n/a" for n in steps]
                lines.append(f"| {label[s]} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["column header: steps (NFE of the samplers at the bench's guidance; a few-step model's own NFE is in its label); n/a: not run or undefined (PDA-backward needs gamma < 2); [grid]: the time grid "
              "the project's samplers walk (diffusers samplers use their own trailing timesteps)", "", "## Speedup", "",
              f"level: {report['speedup']['levels']['alignment']} (alignment), {report['speedup']['levels']['fd']} (FD); "
              f"NFE to the level: {report['speedup']['levels']['nfe_rule']}.", "",
              "| prompt set | metric | target | pda-hybrid NFE | best score sampler | its NFE | speedup | best few-step model | its NFE | speedup |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for pset in cfg["prompt_sets"]:
        sp = report["speedup"].get(pset) or {}
        for metric in METRICS:
            m = sp.get(metric)
            if not m:
                lines.append(f"| {pset} | {metric} |" + " n/a |" * 8)
                continue
            best, few_best = m["best_score_sampler"], m.get("best_few_step_model")
            few_cells = (f"{few_best or ('none reaches it' if few else 'none measured')} | {_fmt(m['nfe_to_target'].get(few_best), '.1f')} | "
                         f"{_fmt(m.get('speedup_vs_few_step'), '.2f')} |")
            lines.append(f"| {pset} | {metric} | {m['target']:.3f} | {_fmt(m['nfe_to_target'].get(PROX_REFERENCE), '.1f')} | "
                         f"{best or 'none reaches it'} | {_fmt(m['nfe_to_target'].get(best), '.1f')} | {_fmt(m['speedup'], '.2f')} | " + few_cells)
    return "\n".join(lines) + "\n"


def plot_quality(report: dict, path) -> None:
    """quality_vs_nfe.png: alignment (top) and FD (bottom) against NFE, one line per sampler, one column per prompt set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_save_figure

    cfg, results = report["config"], report["results"]
    psets = cfg["prompt_sets"]
    fig, axes = plt.subplots(2, len(psets), figsize=(5.5 * len(psets), 7.5), squeeze=False)
    for j, pset in enumerate(psets):
        for i, (metric, label) in enumerate((("alignment", "alignment"), ("fd", "Frechet distance"))):
            ax = axes[i][j]
            for k, s in enumerate(methods_of(cfg)):
                rows = [r for r in results if method_of(r) == s and r["prompt_set"] == pset and r[metric] is not None]
                pts = sorted((r["nfe"], r[metric]) for r in rows)
                if pts:
                    prox, few = s == PROX_REFERENCE, rows[0].get("family") == "few-step"
                    ax.plot(*zip(*pts), "o-" if prox else ("^-." if few else "s--"), lw=2.2 if (prox or few) else 1.2, ms=4,
                            color="k" if prox else f"C{k % 10}", label=s)
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

    from ..atomic import atomic_save_figure

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

    from ..atomic import atomic_write_json, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / k for k in ("results.json", "results.md", "quality_vs_nfe.png", "sampler_grid.png")}
    atomic_write_json(paths["results.json"], report)
    atomic_write_text(paths["results.md"], format_markdown(report))
    plot_quality(report, paths["quality_vs_nfe.png"])
    cfg = report["config"]
    plot_sampler_grid(grid, methods_of(cfg), cfg["steps"], paths["sampler_grid.png"], cfg.get("grid_prompt", ""))
    return {k: str(v) for k, v in paths.items()}
