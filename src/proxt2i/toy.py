"""The exact-prox testbed: a 2-D target on a finite point set, where the noisy score and the
proximal operator are known exactly, so samplers can be compared without any learning error
(the 2-D experiment of ProxDM, arXiv 2507.08956, Fig. 1).

Target: the uniform distribution on M points c_i along a heart-shaped curve. Under the VP process,
p_t = (1/M) sum_i N(sqrt(alpha_t) c_i, s_t I) with s_t = 1 - alpha_t, so

    score_t(x) = sum_i w_i(x) (sqrt(alpha_t) c_i - x) / s_t,   w = softmax_i(-||x - sqrt(alpha_t) c_i||^2 / (2 s_t)),

and prox_{lam, t}(y) = argmin_x 1/2 ||x - y||^2 - lam log p_t(x), a non-convex problem solved
numerically from several starting points (see exact_prox). At t = 0, p_0 is the point set itself
and the prox is the projection onto the nearest point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .samplers.registry import get_sampler
from .schedule import Schedule, VPSchedule, uniform_grid

TOY_STEPS: tuple[int, ...] = (3, 5, 10, 20, 40)
# the registry's samplers that walk the project's grid (the diffusers ones are compared on the face models)
TOY_SAMPLERS: tuple[str, ...] = ("pda-hybrid", "pda-backward", "euler-maruyama", "euler-maruyama-denoise", "pf-ode-euler")


def heart_points(num_points: int = 200) -> torch.Tensor:
    """[M, 2] float64 points evenly spaced in parameter along a heart curve, centred, max radius ~1.3."""
    s = torch.arange(num_points, dtype=torch.float64) * (2 * math.pi / num_points)
    x = 16 * torch.sin(s) ** 3
    y = 13 * torch.cos(s) - 5 * torch.cos(2 * s) - 2 * torch.cos(3 * s) - torch.cos(4 * s)
    pts = torch.stack([x, y], dim=1) / 12.0
    return pts - pts.mean(dim=0)


def _scaled_centres(centres: torch.Tensor, t: torch.Tensor, schedule: Schedule):
    """sqrt(alpha_t) c_i per sample, [B, M, 2], and s_t = 1 - alpha_t, [B]."""
    a = schedule.alpha(t.double())
    return a.sqrt()[:, None, None] * centres[None], 1.0 - a


def exact_score(x: torch.Tensor, t: torch.Tensor, centres: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """grad log p_t(x) for x [B, 2], t [B] (t > 0), in closed form. Returns [B, 2]."""
    m, s = _scaled_centres(centres, t, schedule)
    xd = x.double()
    logits = -((xd[:, None, :] - m) ** 2).sum(-1) / (2 * s[:, None])
    w = torch.softmax(logits, dim=1)
    return ((w[..., None] * (m - xd[:, None, :])).sum(1) / s[:, None]).to(x.dtype)


def exact_prox(
    y: torch.Tensor,
    t: torch.Tensor,
    lam: torch.Tensor,
    centres: torch.Tensor,
    schedule: Schedule,
    num_starts: int = 6,
    tol: float = 1e-9,
    max_iters: int = 500,
) -> torch.Tensor:
    """prox_{lam, t}(y) = argmin_x 1/2 ||x - y||^2 - lam log p_t(x), batched. y [B, 2]; t, lam [B] -> [B, 2].

    Starts from y and from the num_starts - 1 scaled centres nearest to y; each start runs Newton steps
    where the Hessian is positive definite and majorise-minimise (EM) steps elsewhere, keeping whichever
    lowers the objective (EM steps never raise it); the start with the lowest objective wins.
    Converges to |dx| < tol (far below the 1e-6 asked of it).
    """
    m, s = _scaled_centres(centres, t, schedule)  # [B, M, 2], [B]
    yd, lamd = y.double(), lam.double()
    at_data = s <= 1e-12
    out = torch.empty_like(yd)
    if bool(at_data.any()):  # t = 0: projection onto the nearest point of the support
        d2 = ((yd[at_data, None, :] - m[at_data]) ** 2).sum(-1)
        out[at_data] = m[at_data][torch.arange(int(at_data.sum())), d2.argmin(1)]
    rest = ~at_data
    if bool(rest.any()):
        out[rest] = _prox_solve(yd[rest], lamd[rest], m[rest], s[rest], num_starts, tol, max_iters)
    return out.to(y.dtype)


def _sq_dist(x, m):
    """||x_s - m_i||^2 for x [B, S, 2], m [B, M, 2] -> [B, S, M] (as a batched matmul)."""
    return (x * x).sum(-1)[..., None] - 2 * torch.bmm(x, m.transpose(1, 2)) + (m * m).sum(-1)[:, None, :]


def _prox_objective(x, y, lam, m, s):
    """1/2 ||x - y||^2 - lam log p(x) up to a constant; x [B, S, 2] -> [B, S]."""
    logp = torch.logsumexp(-_sq_dist(x, m) / (2 * s[:, None, None]), dim=-1)
    return 0.5 * ((x - y[:, None]) ** 2).sum(-1) - lam[:, None] * logp


def _prox_solve(y, lam, m, s, num_starts, tol, max_iters):
    batch = y.shape[0]
    d2_start = ((y[:, None, :] - m) ** 2).sum(-1)
    nearest = d2_start.topk(min(num_starts - 1, m.shape[1]), dim=1, largest=False).indices
    starts = torch.gather(m, 1, nearest[..., None].expand(-1, -1, 2))
    x = torch.cat([y[:, None, :], starts], dim=1)  # [B, S, 2]
    r = (lam / s)[:, None, None]  # lam / s_t
    eye = torch.eye(2, dtype=x.dtype)
    m_outer = (m[..., :, None] * m[..., None, :]).reshape(*m.shape[:2], 4)  # [B, M, 4]
    prev_best = torch.full_like(y, float("inf"))
    for _ in range(max_iters):
        w = torch.softmax(-_sq_dist(x, m) / (2 * s[:, None, None]), dim=-1)  # [B, S, M]
        mbar = torch.bmm(w, m)
        x_em = (y[:, None, :] + r * mbar) / (1 + r)
        # Newton: grad = (x - y) + r (x - mbar); Hessian = (1 + r) I - (r / s) Cov_w(m)
        grad = (x - y[:, None, :]) + r * (x - mbar)
        cov = torch.bmm(w, m_outer).reshape(*w.shape[:2], 2, 2) - mbar[..., :, None] * mbar[..., None, :]
        hess = (1 + r)[..., None] * eye - (r / s[:, None, None])[..., None] * cov
        det = hess[..., 0, 0] * hess[..., 1, 1] - hess[..., 0, 1] * hess[..., 1, 0]
        pd = (hess[..., 0, 0] > 0) & (det > 1e-12)
        safe = torch.where(pd[..., None, None], hess, eye.expand_as(hess))
        x_newton = x - torch.linalg.solve(safe, grad[..., None])[..., 0]
        f_em = _prox_objective(x_em, y, lam, m, s)
        f_nt = torch.where(pd, _prox_objective(x_newton, y, lam, m, s), torch.full_like(f_em, float("inf")))
        better_newton = f_nt < f_em
        x_new = torch.where(better_newton[..., None], x_newton, x_em)
        f_new = torch.where(better_newton, f_nt, f_em)
        # Converged when every sample's best start has stopped moving and stays the best start;
        # starts crawling slowly past a saddle (EM steps) sit above the best and need not finish.
        best = f_new.argmin(dim=1)
        x_best = x_new[torch.arange(batch), best]
        x = x_new
        if float((x_best - prev_best).abs().max()) < tol:
            break
        prev_best = x_best
    return x_best


def w2_to_points(samples: torch.Tensor, centres: torch.Tensor) -> float:
    """Exact 2-Wasserstein distance between the empirical measure of samples [n, 2] and the uniform
    measure on centres [M, 2], n a multiple of M (each centre repeated n / M times; optimal assignment)."""
    n, M = samples.shape[0], centres.shape[0]
    if n % M:
        raise ValueError(f"number of samples ({n}) must be a multiple of the number of target points ({M})")
    target = centres.repeat(n // M, 1).numpy()
    cost = ((samples.double().numpy()[:, None, :] - target[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


@dataclass(frozen=True)
class ToyResult:
    steps: tuple[int, ...]
    w2: dict  # sampler -> list of float | None, aligned with steps
    floor: float
    samples: dict  # sampler -> {steps: [n, 2] tensor}


def run_toy(
    steps: tuple[int, ...] = TOY_STEPS,
    num_samples: int = 1000,
    num_points: int = 200,
    seed: int = 0,
    schedule: Schedule | None = None,
) -> ToyResult:
    """Sample num_samples points with every sampler at every step count from the same x_T and noise seed."""
    schedule = schedule or VPSchedule()
    centres = heart_points(num_points)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor ops: one thread is faster, and immune to a busy machine
    try:
        return _run_toy(steps, num_samples, num_points, seed, schedule, centres)
    finally:
        torch.set_num_threads(threads)


def _run_toy(steps, num_samples, num_points, seed, schedule, centres) -> ToyResult:

    def prox(y, t, lam):
        return exact_prox(y, t, lam, centres, schedule)

    def score(x, t):
        return exact_score(x, t, centres, schedule)

    models = {"prox": prox, "score": score}
    w2 = {name: [] for name in TOY_SAMPLERS}
    samples = {name: {} for name in TOY_SAMPLERS}
    for n in steps:
        grid = uniform_grid(n)
        for name in TOY_SAMPLERS:
            spec = get_sampler(name)
            if spec.undefined_reason(grid, schedule):
                w2[name].append(None)
                continue
            g = torch.Generator().manual_seed(seed)
            x_T = torch.randn(num_samples, 2, generator=g, dtype=torch.float64)
            out = spec(models[spec.objective], x_T, grid, generator=g, schedule=schedule)
            samples[name][n] = out
            w2[name].append(w2_to_points(out, centres))
    g = torch.Generator().manual_seed(seed + 1)
    exact = centres[torch.randint(num_points, (num_samples,), generator=g)]
    return ToyResult(steps=tuple(steps), w2=w2, floor=w2_to_points(exact, centres), samples=samples)


def format_table(result: ToyResult) -> str:
    """A markdown table of W2 by sampler (rows) and step count (columns)."""
    head = "| sampler | " + " | ".join(f"{n} steps" for n in result.steps) + " |"
    sep = "|---|" + "---|" * len(result.steps)
    rows = [
        f"| {name} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in vals) + " |"
        for name, vals in result.w2.items()
    ]
    return "\n".join([head, sep, *rows, f"\nfloor (W2 of {1000} exact draws): {result.floor:.3f}"])


def plot_toy(result: ToyResult, path: str, show_steps: int = 5) -> None:
    """Samples of every sampler at show_steps steps (top) and W2 against steps (bottom), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_save_figure

    names = list(result.w2)
    centres = heart_points()
    fig = plt.figure(figsize=(3 * len(names), 6.4))
    for i, name in enumerate(names):
        ax = fig.add_subplot(2, len(names), i + 1)
        ax.scatter(centres[:, 0], centres[:, 1], s=2, c="lightgray")
        pts = result.samples[name].get(show_steps)
        if pts is not None:
            ax.scatter(pts[:, 0], pts[:, 1], s=1.5, c="C%d" % i)
        else:
            ax.text(0.5, 0.5, "undefined\n(gamma >= 2)", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{name}\n{show_steps} steps", fontsize=9)
        ax.set_xlim(-2.2, 2.2)
        ax.set_ylim(-2.2, 2.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(2, 1, 2)
    for i, name in enumerate(names):
        xs = [n for n, v in zip(result.steps, result.w2[name]) if v is not None]
        ys = [v for v in result.w2[name] if v is not None]
        ax.plot(xs, ys, "o-", label=name, color="C%d" % i)
    ax.axhline(result.floor, color="k", ls="--", lw=1, label="floor (exact draws)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(result.steps))
    ax.set_xticklabels([str(n) for n in result.steps])
    ax.set_xlabel("sampling steps (= prox / score evaluations)")
    ax.set_ylabel("W2 to target")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)
