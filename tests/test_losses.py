import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.schedule import VPSchedule
from proxt2i.training.losses import (
    PMSchedule,
    denoising_score_matching_loss,
    l1_loss,
    loss_phase,
    noisy_pair,
    prox_pair,
    proximal_matching_loss,
    proximal_matching_objective,
)


def test_pm_loss_limits():
    target = torch.zeros(3, 4, 4, dtype=torch.float64)
    pred = torch.stack([torch.zeros(4, 4), torch.full((4, 4), 0.01), torch.full((4, 4), 10.0)]).double()
    loss = proximal_matching_loss(pred, target, zeta=1.0)
    assert loss.shape == (3,)
    assert float(loss[0]) == 0.0  # exact match
    assert float(loss[1]) == pytest.approx(1e-4, rel=1e-3)  # small error: ~ mse / zeta^2
    assert float(loss[2]) == pytest.approx(1.0)  # far away: saturates at 1
    # zeta -> 0: any fixed error costs the full 1 (only exact matches are rewarded: the mode)
    assert float(proximal_matching_loss(pred[1:2], target[:1], zeta=1e-4)) == pytest.approx(1.0)
    # zeta -> inf: proportional to the mse (the MMSE regime)
    big = proximal_matching_loss(pred, target, zeta=1e3)
    assert torch.allclose(big * 1e6, torch.tensor([0.0, 1e-4, 100.0], dtype=torch.float64), rtol=1e-3)
    with pytest.raises(UsageError):
        proximal_matching_loss(pred, target, zeta=0.0)


def test_pm_minimiser_is_the_mode_not_the_mean():
    """For a bimodal 1-D sample, the PM minimiser with small zeta sits at the heavier mode; l2 gives the mean."""
    data = torch.cat([torch.full((70,), 1.0), torch.full((30,), -1.0)]) + 0.01 * torch.randn(100, generator=torch.Generator().manual_seed(0))
    cands = torch.linspace(-1.5, 1.5, 301)
    pm = torch.stack([proximal_matching_loss(c.expand(100, 1), data[:, None], 0.1).mean() for c in cands])
    l2 = torch.stack([denoising_score_matching_loss(c.expand(100, 1), data[:, None]).mean() for c in cands])
    assert float(cands[pm.argmin()]) == pytest.approx(1.0, abs=0.03)
    assert float(cands[l2.argmin()]) == pytest.approx(float(data.mean()), abs=0.02)


def test_l1_and_dsm_per_sample():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    b[1] = 3
    assert torch.equal(l1_loss(a, b), torch.tensor([1.0, 2.0]))
    assert torch.equal(denoising_score_matching_loss(a, b), torch.tensor([1.0, 4.0]))


def test_loss_schedule_stages():
    sched = PMSchedule(total_steps=100, warmup_fraction=0.2, zeta_start=2.0, zeta_decay=0.5, num_stages=2)
    phases = [loss_phase(s, sched) for s in range(100)]
    assert phases[0] == ("l1", None) and phases[19] == ("l1", None)
    assert phases[20] == ("pm", 2.0) and phases[59] == ("pm", 2.0)
    assert phases[60] == ("pm", 1.0) and phases[99] == ("pm", 1.0)
    assert loss_phase(500, sched) == ("pm", 1.0)  # past the end: last stage


def test_objective_dispatch_and_eps_space_balancing():
    """||prox - x_t||^2 / lam equals ||eps - n||^2: the eps-space loss is lam-independent."""
    s = VPSchedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 2, 3, 3, generator=g)
    t = torch.tensor([0.0, 0.1, 0.5, 0.9])
    x_t, e = noisy_pair(x0, t, s, generator=g)
    assert torch.allclose(x_t[0], x0[0])
    lam = torch.tensor([1e-3, 0.1, 1.0, 10.0])
    y, n = prox_pair(x_t, lam, generator=g)
    eps_pred = n + 0.1
    prox_err = ((y - lam.sqrt()[:, None, None, None] * eps_pred - x_t) ** 2).mean((1, 2, 3)) / lam
    assert torch.allclose(prox_err, torch.full((4,), 0.01), rtol=1e-3)
    assert torch.allclose(proximal_matching_objective(eps_pred, n, "l1", None), torch.full((4,), 0.1), rtol=1e-4)
    assert torch.allclose(proximal_matching_objective(eps_pred, n, "pm", 1.0), 1 - torch.exp(torch.tensor(-0.01)).expand(4), rtol=1e-3)
    with pytest.raises(UsageError):
        proximal_matching_objective(eps_pred, n, "l3", None)


def test_conditional_mean_noise_is_the_regression_of_n_on_y_given_x0():
    """E[n | y, x0] = sqrt(lam) (y - sqrt(alpha) x0) / (1 - alpha + lam): check by least squares over draws,
    and that it leaves the drawn n's unpredictable part (variance 1 - lam / (1 - alpha + lam)) out."""
    from proxt2i.training.losses import conditional_mean_noise, noisy_pair, prox_pair

    sched = VPSchedule()
    g = torch.Generator().manual_seed(0)
    num = 200_000
    x0 = torch.full((num, 1), 0.7, dtype=torch.float64)
    t = torch.full((num,), 0.5, dtype=torch.float64)
    lam = torch.full((num,), 0.8, dtype=torch.float64)
    x_t, _ = noisy_pair(x0, t, sched, generator=g)
    y, n = prox_pair(x_t, lam, generator=g)
    target = conditional_mean_noise(y, x0, t, lam, sched)
    a = sched.alpha(torch.tensor(0.5, dtype=torch.float64))
    r = y - a.sqrt() * x0
    slope = float((r * n).sum() / (r * r).sum())
    assert abs(slope - float(0.8**0.5 / (1 - a + 0.8))) < 0.01
    assert torch.allclose(target, slope * r, rtol=0.02)
    resid = float((n - target).var())
    assert abs(resid - float(1 - 0.8 / (1 - a + 0.8))) < 0.01
    assert float(((n - target) * target).mean()).__abs__() < 0.01  # the residual is uncorrelated with the target


def test_total_noise_is_the_backbone_target_of_a_preconditioned_prox():
    """z = (y - sqrt(alpha) x0) / sqrt(1 - alpha + lam) is unit Gaussian given x0, and the conditional-mean
    target of n is z times the preconditioned model's output scale (so a loss on z is the same target, reweighted)."""
    from proxt2i.models.precond import prox_output_scale
    from proxt2i.schedule import VPSchedule
    from proxt2i.training.losses import conditional_mean_noise, noisy_pair, prox_pair, total_noise

    sched = VPSchedule()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 2, 64, 64, generator=g)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95])
    lam = torch.tensor([0.001, 0.1, 1.0, 5.0])
    x_t, _ = noisy_pair(x0, t, sched, generator=g)
    y, _ = prox_pair(x_t, lam, generator=g)
    z = total_noise(y, x0, t, lam, sched)
    for row in z:
        assert abs(float(row.mean())) < 0.05 and abs(float(row.std()) - 1) < 0.05
    scaled = prox_output_scale(t, lam, VPSchedule()).view(-1, 1, 1, 1) * z
    assert torch.allclose(scaled, conditional_mean_noise(y, x0, t, lam, sched), atol=1e-5)


@pytest.mark.parametrize("prox_target", ["sample", "conditional-mean", "total-noise"])
def test_chain_inputs_are_the_samplers_prox_inputs_with_a_target_that_recovers_x_t(prox_target):
    """chain_share=1: y has the sampler's statistics (from x_T ~ N(0, I) the first hybrid input of a 2-step grid
    has variance (1 + gamma/2)^2 + gamma, not the 1 + lam of x_t + sqrt(lam) n). The prox read off the exact
    target, y - sqrt(lam) * output_scale * target, is x_t itself ("sample") or E[x_t | y, x0] (the other two):
    its error is uncorrelated with y, and smaller than x_t's own spread. chain_share=0 keeps the random stream."""
    from proxt2i.training.draws import draw_t_lam
    from proxt2i.training.losses import matching_batch

    sched = VPSchedule()
    x0 = torch.randn(2048, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    plain = matching_batch(x0, "prox", torch.Generator().manual_seed(1), sched, prox_target=prox_target, candidates=(2,))
    same = matching_batch(x0, "prox", torch.Generator().manual_seed(1), sched, prox_target=prox_target, candidates=(2,), chain_share=0.0)
    assert torch.equal(plain.x, same.x) and torch.equal(plain.target, same.target)
    chain = matching_batch(x0, "prox", torch.Generator().manual_seed(1), sched, prox_target=prox_target, candidates=(2,), chain_share=1.0)
    first = chain.t == 0.5  # the first step of the 2-step grid: x_{t_next} = x_1 is almost pure noise
    gamma = float(chain.lam[first][0])
    assert gamma > 5
    want, trained = ((1 + gamma / 2) ** 2 + gamma) ** 0.5, (1 + gamma) ** 0.5
    assert abs(float(chain.x[first].std()) - want) < 0.05 * want
    assert abs(float(plain.x[first].std()) - trained) < 0.05 * trained
    g = torch.Generator().manual_seed(1)  # the same draws as inside matching_batch: (t, lam), then x_t
    d = draw_t_lam(2048, g, (2,), schedule=sched)
    x_t, _ = noisy_pair(x0, d.t.float(), sched, generator=g)
    scale = chain.output_scale.view(-1, 1, 1, 1) if chain.output_scale is not None else 1.0
    recovered = chain.x - chain.lam.view(-1, 1, 1, 1).sqrt() * scale * chain.target
    if prox_target == "sample":
        assert torch.allclose(recovered, x_t, atol=1e-4)
        return
    err = x_t - recovered
    m = sched.alpha(chain.t.double()).sqrt().float().view(-1, 1, 1, 1) * x0
    e, y = err[first], chain.x[first] - chain.x[first].mean()  # from t = 1, y says almost nothing of x_t
    assert abs(float((e * y).mean())) < 0.05 * float(e.std() * y.std())
    assert float(e.std()) <= 1.01 * float((x_t - m)[first].std())
    assert torch.allclose(recovered[~first], x0[~first], atol=1e-4)  # t = 0: x_t is x0, known given x0


@pytest.mark.parametrize("kwargs, message", [
    ({"chain_inputs": 1.5}, "chain_inputs must be in [0, 1], got 1.5"),
    ({"chain_inputs": -0.1}, "chain_inputs must be in [0, 1], got -0.1"),
    ({"chain_inputs": 0.5, "objective": "score"}, "chain_inputs applies to objective=prox only"),
])
def test_chain_inputs_setting_is_checked(kwargs, message):
    from proxt2i.training.presets import TrainConfig

    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig(**kwargs)
    assert TrainConfig(chain_inputs=0.5).chain_inputs == 0.5
