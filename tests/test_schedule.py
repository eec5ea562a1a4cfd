import math

import pytest
import torch
from scipy.integrate import quad

from proxt2i.errors import UsageError
from proxt2i.schedule import VPSchedule, check_backward_grid, prox_weight, step_sizes, time_grid, uniform_grid


def test_beta_integral_matches_quadrature():
    s = VPSchedule()
    for lo, hi in [(0.0, 1.0), (0.2, 0.3), (0.9, 1.0), (0.0, 0.001)]:
        exact, _ = quad(lambda u: s.beta(u), lo, hi)
        assert s.beta_integral(lo, hi) == pytest.approx(exact, rel=1e-12)


def test_alpha_endpoints_and_tensor_float_agree():
    s = VPSchedule()
    assert s.alpha(0.0) == 1.0
    assert s.alpha(1.0) == pytest.approx(math.exp(-(0.1 + 0.5 * 19.9)))
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    assert torch.allclose(s.alpha(t), torch.tensor([s.alpha(float(v)) for v in t], dtype=torch.float64))


def test_discrete_ddpm_limit():
    """prod(1 - beta_i) with linear betas 1e-4..0.02 over 1000 steps approximates alpha(t)."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alphas_bar = torch.cumprod(1 - betas, 0)
    s = VPSchedule()
    for i in [99, 499, 999]:
        assert float(alphas_bar[i]) == pytest.approx(s.alpha((i + 1) / 1000), rel=0.05, abs=1e-5)


def test_step_sizes_sum_to_total_integral():
    s = VPSchedule()
    g = step_sizes(s, uniform_grid(7))
    assert g.shape == (7,)
    assert float(g.sum()) == pytest.approx(s.beta_integral(0.0, 1.0))


def test_prox_weight_both_modes():
    assert prox_weight(0.5, "hybrid") == 0.5
    assert prox_weight(0.5, "backward") == pytest.approx(0.5 / 0.75)
    with pytest.raises(UsageError, match="unknown PDA mode"):
        prox_weight(0.5, "sideways")


def test_backward_grid_limit_is_about_ten_steps():
    s = VPSchedule()
    ok = [n for n in range(1, 30) if float(step_sizes(s, uniform_grid(n)).max()) < 2]
    assert ok[0] == 10
    with pytest.raises(UsageError, match="hybrid"):
        check_backward_grid(step_sizes(s, uniform_grid(5)))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_uniform_grid_rejects_bad_step_counts(bad):
    with pytest.raises(UsageError, match="num_steps"):
        uniform_grid(bad)


def test_time_grids():
    assert torch.equal(time_grid(4), uniform_grid(4))
    assert torch.allclose(time_grid(4, "quadratic"), torch.tensor([0.0, 0.0625, 0.25, 0.5625, 1.0], dtype=torch.float64))
    assert torch.allclose(time_grid(2, "power:1.5"), torch.tensor([0.0, 0.5**1.5, 1.0], dtype=torch.float64))
    g = time_grid(7, "quadratic")
    assert g[0] == 0 and g[-1] == 1 and bool((g[1:] > g[:-1]).all())
    for bad in ("cubic", "power:0", "power:x", "power:-2"):
        with pytest.raises(ValueError, match="time grid"):
            time_grid(4, bad)
