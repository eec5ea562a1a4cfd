import torch

from proxt2i.parameterization import (
    eps_from_prox,
    eps_from_score_model,
    prox_from_eps,
    prox_from_eps_model,
    score_from_eps_model,
)
from proxt2i.schedule import VPSchedule


def test_prox_eps_round_trip():
    g = torch.Generator().manual_seed(0)
    y, eps = torch.randn(4, 3, 5, 5, generator=g), torch.randn(4, 3, 5, 5, generator=g)
    lam = torch.tensor([1e-4, 0.1, 1.0, 15.0])
    x = prox_from_eps(y, eps, lam)
    assert torch.allclose(eps_from_prox(y, x, lam), eps, atol=1e-4)
    assert torch.allclose(x[2], y[2] - eps[2])


def test_model_wrappers_round_trip():
    s = VPSchedule()
    eps_net = lambda x, t: torch.tanh(x) * (1 + t[:, None])
    score = score_from_eps_model(eps_net, s)
    eps_back = eps_from_score_model(score, s)
    x, t = torch.randn(6, 2, dtype=torch.float64), torch.rand(6, dtype=torch.float64) * 0.9 + 0.05
    assert torch.allclose(eps_back(x, t), eps_net(x, t))
    sigma = (1 - s.alpha(t)).sqrt()[:, None]
    assert torch.allclose(score(x, t), -eps_net(x, t) / sigma)
    prox = prox_from_eps_model(lambda y, t, lam: 2 * y)
    lam = torch.full((6,), 0.25, dtype=torch.float64)
    assert torch.allclose(prox(x, t, lam), x - 0.5 * 2 * x)
