import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.samplers import euler_maruyama_sample, pf_ode_euler_sample
from proxt2i.schedule import VPSchedule, step_sizes, uniform_grid

MU, S2 = 0.8, 0.2


def gaussian_score(x, t):
    a = VPSchedule().alpha(t.double())[:, None]
    return (-(x - a.sqrt() * MU) / (a * S2 + 1 - a)).to(x.dtype)


def moments(num_steps, noise, score_weight, denoise_final):
    """Closed-form mean/var of the explicit samplers for the Gaussian target (each step is linear)."""
    s = VPSchedule()
    grid = uniform_grid(num_steps)
    gam = step_sizes(s, grid)
    m, v = 0.0, 1.0
    for k in range(num_steps - 1, -1, -1):
        g, a = float(gam[k]), s.alpha(float(grid[k + 1]))
        vt = a * S2 + 1 - a
        c = 1 + g / 2 - score_weight * g / vt
        m = c * m + score_weight * g * a**0.5 * MU / vt
        v = c * c * v + (noise * g if not (denoise_final and k == 0) else 0.0)
    return m, v


@pytest.mark.parametrize("num_steps", [3, 10, 50])
@pytest.mark.parametrize("name", ["em", "em_denoise", "ode"])
def test_explicit_samplers_match_closed_form(num_steps, name):
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    if name == "ode":
        x, (m, v) = pf_ode_euler_sample(gaussian_score, x_T, num_steps), moments(num_steps, 0.0, 0.5, False)
    else:
        den = name == "em_denoise"
        x = euler_maruyama_sample(gaussian_score, x_T, num_steps, denoise_final=den, generator=g)
        m, v = moments(num_steps, 1.0, 1.0, den)
    assert float(x.mean()) == pytest.approx(m, abs=5 * (v / 2e5) ** 0.5 + 1e-9)
    assert float(x.var()) == pytest.approx(v, rel=0.02)


def test_many_steps_reach_the_target():
    g = torch.Generator().manual_seed(0)
    x = euler_maruyama_sample(gaussian_score, torch.randn(100_000, 1, generator=g, dtype=torch.float64), 1000, generator=g)
    assert float(x.mean()) == pytest.approx(MU, abs=0.01)
    assert float(x.var()) == pytest.approx(S2, rel=0.03)


def test_reproducible_and_validated():
    x_T = torch.randn(4, 2)
    a = euler_maruyama_sample(gaussian_score, x_T, 4, generator=torch.Generator().manual_seed(1))
    b = euler_maruyama_sample(gaussian_score, x_T, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    with pytest.raises(UsageError, match="num_steps"):
        pf_ode_euler_sample(gaussian_score, x_T, 0)
    with pytest.raises(UsageError, match="NaN"):
        euler_maruyama_sample(lambda x, t: x / 0 * 0, x_T, 2)
    traj = pf_ode_euler_sample(gaussian_score, x_T, 3, return_trajectory=True)
    assert len(traj) == 4 and torch.equal(traj[0], x_T)
