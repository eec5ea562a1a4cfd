import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.samplers import gaussian_pda_moments, gaussian_prox, pda_sample

MU = torch.tensor([1.5, -0.5], dtype=torch.float64)
S2 = 0.3


@pytest.mark.parametrize("mode,num_steps", [("hybrid", 1), ("hybrid", 3), ("hybrid", 10), ("hybrid", 40), ("backward", 10), ("backward", 25)])
def test_gaussian_target_matches_closed_form_recursion(mode, num_steps):
    g = torch.Generator().manual_seed(1)
    n = 200_000
    x = pda_sample(gaussian_prox(MU, S2), torch.randn(n, 2, generator=g, dtype=torch.float64), num_steps, mode=mode, generator=g)
    for d in range(2):
        m, v = gaussian_pda_moments(float(MU[d]), S2, num_steps, mode)
        se_mean = (v / n) ** 0.5
        assert abs(float(x[:, d].mean()) - m) < 5 * se_mean + 1e-9
        assert float(x[:, d].var()) == pytest.approx(v, rel=0.02)


def test_recursion_converges_towards_target_mean_with_many_steps():
    m, v = gaussian_pda_moments(1.5, S2, 2000, "hybrid")
    assert m == pytest.approx(1.5, rel=0.01)
    assert 0 < v < S2  # prox at t = 0 is a MAP-like step: it shrinks the last noise


def test_reproducible_given_generator_and_different_for_other_seeds():
    prox = gaussian_prox(MU, S2)
    x_T = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = pda_sample(prox, x_T, 5, generator=torch.Generator().manual_seed(3))
    b = pda_sample(prox, x_T, 5, generator=torch.Generator().manual_seed(3))
    c = pda_sample(prox, x_T, 5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_trajectory_and_callback():
    seen = []
    traj = pda_sample(
        gaussian_prox(MU, S2), torch.zeros(3, 2, dtype=torch.float64), 4,
        generator=torch.Generator().manual_seed(0), return_trajectory=True, callback=lambda info: seen.append(info["k"]),
    )
    assert len(traj.xs) == 5 and len(traj.ys) == 4 and seen == [3, 2, 1, 0]
    assert traj.ts == [0.75, 0.5, 0.25, 0.0]
    assert traj.lams == traj.gammas  # hybrid: lam = gamma
    assert torch.equal(traj.sample, traj.xs[-1])


def test_prox_receives_batched_t_and_lam():
    calls = []

    def prox(y, t, lam):
        calls.append((t.shape, lam.shape, float(t[0]), float(lam[0])))
        return y

    pda_sample(prox, torch.zeros(5, 3, 4, 4), 2, mode="hybrid")
    assert [c[:2] for c in calls] == [((5,), (5,))] * 2
    assert calls[0][2] == 0.5 and calls[1][2] == 0.0


def test_backward_refuses_coarse_grid_and_names_hybrid():
    with pytest.raises(UsageError, match="mode='hybrid'"):
        pda_sample(gaussian_prox(MU, S2), torch.zeros(2, 2), 5, mode="backward")


@pytest.mark.parametrize("kwargs,match", [
    ({"grid": 0}, "num_steps"),
    ({"grid": 3, "mode": "forward"}, "unknown PDA mode"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(UsageError, match=match):
        pda_sample(gaussian_prox(MU, S2), torch.zeros(2, 2), **kwargs)


def test_bad_prox_outputs():
    x = torch.zeros(2, 2)
    with pytest.raises(UsageError, match="shape"):
        pda_sample(lambda y, t, lam: y[:, :1], x, 3)
    with pytest.raises(UsageError, match="NaN"):
        pda_sample(lambda y, t, lam: y * float("nan"), x, 3)


def test_custom_grid():
    grid = torch.tensor([0.0, 0.1, 0.4, 1.0])
    traj = pda_sample(gaussian_prox(MU, S2), torch.zeros(2, 2, dtype=torch.float64), grid, return_trajectory=True)
    assert traj.ts == pytest.approx([0.4, 0.1, 0.0])
    with pytest.raises(UsageError, match="increasing"):
        pda_sample(gaussian_prox(MU, S2), torch.zeros(2, 2), torch.tensor([0.0, 0.5, 0.4, 1.0]))
