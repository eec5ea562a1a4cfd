import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.schedule import VPSchedule
from proxt2i.training.draws import draw_t_lam


def test_draws_stay_on_their_grids():
    d = draw_t_lam(20_000, generator=torch.Generator().manual_seed(0))
    n = d.num_steps.double()
    k = d.t * n
    assert torch.allclose(k, k.round(), atol=1e-9)
    assert bool((d.t >= 0).all()) and bool((d.t <= 1 - 1 / n + 1e-12).all())
    assert bool((d.t == 0).any())  # the last sampling step (landing at t = 0) is trained
    s = VPSchedule()
    assert torch.allclose(d.gamma, s.beta_integral(d.t, d.t + 1 / n))
    assert torch.equal(d.lam, d.gamma)  # hybrid


def test_step_count_weights_follow_power_law():
    cands = (5, 10, 20, 50, 100, 1000)
    d = draw_t_lam(60_000, generator=torch.Generator().manual_seed(1), candidates=cands)
    w = torch.tensor(cands, dtype=torch.float64) ** (1 / 3)
    expected = w / w.sum()
    observed = torch.tensor([(d.num_steps == c).double().mean() for c in cands])
    assert torch.allclose(observed, expected, atol=0.01)


def test_backward_mode_lam_and_validation():
    d = draw_t_lam(1000, generator=torch.Generator().manual_seed(2), candidates=(10, 20), mode="backward")
    assert torch.allclose(d.lam, d.gamma / (1 - d.gamma / 2))
    with pytest.raises(UsageError, match="backward"):
        draw_t_lam(1000, generator=torch.Generator().manual_seed(2), candidates=(5,), mode="backward")
    with pytest.raises(UsageError):
        draw_t_lam(10, candidates=(0, 5))


def test_reproducible():
    a = draw_t_lam(100, generator=torch.Generator().manual_seed(3))
    b = draw_t_lam(100, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.t, b.t) and torch.equal(a.lam, b.lam)
