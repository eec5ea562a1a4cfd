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


def test_candidate_grids_put_draws_on_the_chosen_grids():
    """grids=("uniform", "quadratic"): every t is k/N or (k/N)^2 with gamma the beta integral to the
    next point of the same grid; the uniform grid alone draws exactly what it always did."""
    from proxt2i.schedule import VPSchedule
    from proxt2i.training.draws import draw_t_lam

    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    base = draw_t_lam(256, g(), (4,))
    assert torch.equal(base.t, draw_t_lam(256, g(), (4,), grids=("uniform",)).t)
    d = draw_t_lam(256, g(), (4,), grids=("uniform", "quadratic"))
    k_uni, k_quad = d.t * 4, d.t.sqrt() * 4
    on_uni = (k_uni - k_uni.round()).abs() < 1e-9
    on_quad = (k_quad - k_quad.round()).abs() < 1e-9
    assert bool((on_uni | on_quad).all()) and bool((on_quad & ~on_uni).any()) and bool((on_uni & ~on_quad).any())
    # gamma runs to the next point of the grid the draw lies on (t = 0 and 1/4 lie on both)
    s = VPSchedule()
    g_uni = s.beta_integral(d.t, (k_uni.round() + 1) / 4)
    g_quad = s.beta_integral(d.t, ((k_quad.round() + 1) / 4) ** 2)
    match_uni, match_quad = (d.gamma - g_uni).abs() < 1e-9, (d.gamma - g_quad).abs() < 1e-9
    assert bool(((match_uni & on_uni) | (match_quad & on_quad)).all())
    assert bool(match_quad[on_quad & ~on_uni].all()) and bool(match_uni[on_uni & ~on_quad].all())
    with pytest.raises(ValueError, match="unknown time grid"):
        draw_t_lam(4, g(), (4,), grids=("cubic",))


def test_candidate_grids_config_is_checked_up_front():
    from proxt2i.training.presets import resolve_config

    assert resolve_config("test-tiny", ["candidate_grids=uniform,quadratic,power:1.5"]).candidate_grids == "uniform,quadratic,power:1.5"
    with pytest.raises(ValueError, match="candidate_grids: unknown time grid 'cubic'"):
        resolve_config("test-tiny", ["candidate_grids=uniform,cubic"])
