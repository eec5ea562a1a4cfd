import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.schedule import VPSchedule
from proxt2i.toy import exact_prox, exact_score, heart_points, run_toy, w2_to_points

S = VPSchedule()
C = heart_points(200)


def grid_log_density(t, grid_n=301, span=3.0):
    """log p_t (up to a constant) on a grid_n x grid_n grid over [-span, span]^2: ([G, 2], [G])."""
    a = S.alpha(t)
    xs = torch.linspace(-span, span, grid_n, dtype=torch.float64)
    X = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    d2 = (X * X).sum(-1)[:, None] - 2 * X @ (a**0.5 * C).T + (a * C * C).sum(-1)[None]
    return X, torch.logsumexp(-d2 / (2 * (1 - a)), 1)


def objective(x, y, t, lam):
    a = S.alpha(t)
    logp = torch.logsumexp(-((x[None] - a**0.5 * C) ** 2).sum(-1) / (2 * (1 - a)), 0)
    return float(0.5 * ((x - y) ** 2).sum() - lam * logp)


@pytest.mark.parametrize("t,lam", [(0.9, 3.0), (0.5, 0.5), (0.2, 0.2), (0.05, 0.05), (0.3, 2.0)])
def test_exact_prox_is_the_global_minimiser(t, lam):
    g = torch.Generator().manual_seed(0)
    ys = torch.randn(12, 2, generator=g, dtype=torch.float64) * 1.5
    out = exact_prox(ys, torch.full((12,), t, dtype=torch.float64), torch.full((12,), lam, dtype=torch.float64), C, S)
    X, logp = grid_log_density(t)
    for y, x in zip(ys, out):
        fb = float((0.5 * ((X - y) ** 2).sum(-1) - lam * logp).min())
        assert objective(x, y, t, lam) <= fb + 1e-9  # no point of a fine grid beats it: the global minimiser
        # stationarity: x = y + lam * score(x) to 1e-6
        sc = exact_score(x[None], torch.tensor([t], dtype=torch.float64), C, S)[0]
        assert torch.allclose(x, y + lam * sc, atol=1e-6)


def test_prox_at_t0_projects_to_nearest_point():
    y = torch.tensor([[0.3, 0.2], [2.0, -1.0]], dtype=torch.float64)
    out = exact_prox(y, torch.zeros(2, dtype=torch.float64), torch.full((2,), 0.01, dtype=torch.float64), C, S)
    for yi, xi in zip(y, out):
        assert torch.equal(xi, C[((C - yi) ** 2).sum(-1).argmin()])


def test_exact_score_matches_autograd():
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    t = torch.full((5,), 0.3, dtype=torch.float64)
    a = S.alpha(0.3)
    logp = torch.logsumexp(-((x[:, None] - a**0.5 * C) ** 2).sum(-1) / (2 * (1 - a)), 1).sum()
    (grad,) = torch.autograd.grad(logp, x)
    assert torch.allclose(exact_score(x.detach(), t, C, S), grad)


def test_w2_exact_cases():
    assert w2_to_points(C.repeat(2, 1)[torch.randperm(400)], C) == pytest.approx(0.0, abs=1e-12)
    assert w2_to_points(C + torch.tensor([0.3, 0.4], dtype=torch.float64), C) <= 0.5 + 1e-12
    with pytest.raises(ValueError, match="multiple"):
        w2_to_points(torch.zeros(7, 2), C)


def test_small_run_prox_beats_euler_maruyama_at_few_steps():
    r = run_toy(steps=(3, 10), num_samples=400)
    assert r.w2["pda-backward"][0] is None and r.w2["pda-backward"][1] is not None
    assert r.w2["pda-hybrid"][0] < r.w2["euler-maruyama"][0]
    assert r.floor < r.w2["pda-hybrid"][0]


def test_cli_json_and_errors(capsys, tmp_path):
    assert main(["toy", "--steps", "3", "--num-samples", "200", "--json", "--plot", str(tmp_path / "toy.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == [3]
    assert set(out["w2"]) == {"pda-hybrid", "pda-backward", "euler-maruyama", "euler-maruyama-denoise", "pf-ode-euler"}
    assert out["w2"]["pda-backward"] == [None] and out["floor"] > 0
    assert (tmp_path / "toy.png").stat().st_size > 1000
    assert main(["toy", "--steps", "0"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["toy", "--num-samples", "150"]) == 2


@pytest.mark.slow
def test_full_run_reproduces_the_readme_claims():
    """The issue's done-when on the full experiment (about a minute): `pytest -m slow tests/test_toy.py`."""
    r = run_toy()
    idx = {n: i for i, n in enumerate(r.steps)}
    for n in (3, 5):
        assert r.w2["pda-hybrid"][idx[n]] < r.w2["euler-maruyama"][idx[n]]
    for name, vals in r.w2.items():
        assert vals[idx[40]] < 2 * r.floor, name
