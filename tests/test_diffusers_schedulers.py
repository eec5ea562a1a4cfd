"""The diffusers schedulers against the project's VP schedule: closed forms on a Gaussian target,
one contract every scheduler passes, per-row noise, and the pipeline registration."""

import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.parameterization import expand_like
from proxt2i.pipeline import sample_latents
from proxt2i.samplers.registry import SAMPLERS
from proxt2i.samplers.diffusers_schedulers import (
    SCHEDULERS,
    continuous_time,
    diffusers_sample,
    make_scheduler,
    vp_betas,
)
from proxt2i.schedule import VPSchedule

SCHEDULE = VPSchedule()
MU, S2 = 1.5, 0.25


def gaussian_eps(x, t):
    """Exact eps of the data law N(MU, S2): p_t = N(sqrt(a) MU, v), v = a S2 + 1 - a, score = -(x - sqrt(a) MU) / v,
    eps = -sqrt(1 - a) score = sqrt(1 - a) (x - sqrt(a) MU) / v."""
    a = expand_like(SCHEDULE.alpha(t.double()), x)
    v = a * S2 + 1.0 - a
    return ((1.0 - a).sqrt() * (x.double() - a.sqrt() * MU) / v).to(x.dtype)


def x_T(n=4000, d=4, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_vp_betas_reproduce_alpha_and_ddpm_linear():
    betas = torch.tensor(vp_betas(), dtype=torch.float64)
    cum = torch.cumprod(1.0 - betas, 0)
    t = (torch.arange(1000, dtype=torch.float64) + 1) / 1000
    assert torch.allclose(cum, SCHEDULE.alpha(t), rtol=1e-10, atol=0)
    ddpm = torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    assert float((cum - ddpm).abs().max()) < 1e-3  # the same process up to discretisation
    sched = make_scheduler("ddim", 4)
    assert torch.allclose(sched.alphas_cumprod.double(), SCHEDULE.alpha(t), rtol=1e-5, atol=1e-7)
    assert [int(s) for s in sched.timesteps] == [999, 749, 499, 249]  # trailing: starts at t = 1
    assert continuous_time(999) == 1.0 and continuous_time(0) == 1e-3


def test_one_ddim_step_matches_closed_form():
    x = x_T(8, 5)
    eps_fn = lambda x, t: torch.sin(3 * x) + expand_like(t, x)  # any eps will do
    states = []
    diffusers_sample(eps_fn, x, 4, scheduler="ddim", callback=lambda info: states.append(info["x"]))
    # DDIM (eta = 0) from t = 1 (timestep 999) to timestep 749, t = 0.75:
    # x0 = (x - sqrt(1 - a) eps) / sqrt(a);  x' = sqrt(a') x0 + sqrt(1 - a') eps
    a, a_prev = SCHEDULE.alpha(1.0), SCHEDULE.alpha(0.75)
    eps = eps_fn(x, torch.ones(8))
    x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
    expected = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps
    assert torch.allclose(states[0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_steps", [4, 25])
def test_ddim_is_the_exact_affine_map_on_a_gaussian(num_steps):
    """With the exact eps every DDIM step is affine: x' - sqrt(a') MU = c (x - sqrt(a) MU),
    c = (sqrt(a a') S2 + sqrt((1 - a)(1 - a'))) / v. The output must be that map of x_T."""
    xt = x_T(500, 2)
    out = diffusers_sample(gaussian_eps, xt, num_steps, scheduler="ddim")
    dev = xt.double()
    for i in make_scheduler("ddim", num_steps).timesteps.tolist():
        j = i - 1000 // num_steps
        a = SCHEDULE.alpha(continuous_time(i))
        a_prev = SCHEDULE.alpha(continuous_time(j)) if j >= 0 else 1.0
        if i == 999:
            dev = dev - a**0.5 * MU
        c = ((a * a_prev) ** 0.5 * S2 + ((1 - a) * (1 - a_prev)) ** 0.5) / (a * S2 + 1 - a)
        dev = c * dev
    expected = MU + dev  # a' = 1 at the end
    assert torch.allclose(out.double(), expected, atol=1e-4)


# Output variance tolerance at 50 steps: first-order ODE solvers lose ~10 % of the variance on the
# uniform-in-t trailing grid; second-order ones are within a few %; the SDE solver carries its own bias.
VAR_TOL = {"ddim": 0.15, "euler": 0.15, "dpm-solver++-2m": 0.05, "unipc": 0.05, "dpm-solver++-2m-sde": 0.12}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_samples_the_gaussian(name):
    out = diffusers_sample(gaussian_eps, x_T(), 50, scheduler=name, generator=torch.Generator().manual_seed(1))
    assert out.shape == (4000, 4) and torch.isfinite(out).all()
    assert abs(float(out.mean()) - MU) < 0.03
    assert abs(float(out.var()) / S2 - 1) < VAR_TOL[name]


def test_euler_in_sigma_space_equals_ddim():
    """DDIM is Euler on the probability-flow ODE in sigma-space (Karras et al. 2022): equal outputs check
    the x_T * init_noise_sigma start and scale_model_input."""
    xt = x_T(200, 3)
    assert torch.allclose(diffusers_sample(gaussian_eps, xt, 25, scheduler="euler"), diffusers_sample(gaussian_eps, xt, 25, scheduler="ddim"), atol=1e-4)


def test_trailing_spacing_beats_leading_at_few_steps():
    xt = x_T(2000, 2)
    err = {}
    for spacing in ("trailing", "leading"):
        out = diffusers_sample(gaussian_eps, xt, 4, scheduler="dpm-solver++-2m", timestep_spacing=spacing)
        err[spacing] = abs(float(out.mean()) - MU)
    assert err["trailing"] < err["leading"]


def test_sde_noise_is_per_row_and_reproducible():
    xt = x_T(3, 6)
    gens = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]
    a = diffusers_sample(gaussian_eps, xt, 5, scheduler="dpm-solver++-2m-sde", generator=gens([5, 6, 7]))
    b = diffusers_sample(gaussian_eps, xt, 5, scheduler="dpm-solver++-2m-sde", generator=gens([5, 6, 7]))
    alone = diffusers_sample(gaussian_eps, xt[1:2], 5, scheduler="dpm-solver++-2m-sde", generator=gens([6]))
    assert torch.equal(a, b) and torch.allclose(alone[0], a[1], atol=1e-6)
    c = diffusers_sample(gaussian_eps, xt, 5, scheduler="dpm-solver++-2m-sde", generator=gens([8, 6, 7]))
    assert not torch.allclose(c[0], a[0]) and torch.allclose(c[1], a[1], atol=1e-6)


def test_bad_input():
    with pytest.raises(UsageError, match="unknown diffusers scheduler"):
        diffusers_sample(gaussian_eps, x_T(2, 2), 4, scheduler="heun")
    with pytest.raises(UsageError, match="num_steps"):
        diffusers_sample(gaussian_eps, x_T(2, 2), 0, scheduler="ddim")
    with pytest.raises(UsageError, match="wrong shape"):
        diffusers_sample(lambda x, t: x[:1], x_T(2, 2), 2, scheduler="ddim")
    with pytest.raises(UsageError, match="NaN"):
        diffusers_sample(lambda x, t: x * float("nan"), x_T(2, 2), 2, scheduler="unipc")


def test_pipeline_registers_them_for_score_models():
    names = {"ddim": "ddim", "dpm-solver++-2m": "dpm-solver++-2m", "dpm-solver++-2m-sde": "dpm-solver++-2m-sde",
             "unipc": "unipc", "euler-diffusers": "euler"}

    def net(x, t, lam, prompts):  # an eps network: conditional on the prompt through a constant
        cond = torch.tensor([0.0 if p == "" else 0.3 for p in prompts]).reshape(-1, 1, 1, 1)
        return 0.5 * x + cond

    for sampler, scheduler in names.items():
        assert SAMPLERS[sampler].objective == "score"
        out = sample_latents(net, "score", ["a", "b"], (2, 4, 4), num_steps=3, guidance_scale=2.0, sampler=sampler, seeds=[3, 4])
        gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
        xt = torch.stack([torch.randn((2, 4, 4), generator=g) for g in gens])
        # the guided eps, as the scheduler should see it after the eps -> score -> eps round trip
        direct = diffusers_sample(lambda x, t: 0.5 * x + 0.6, xt, 3, scheduler=scheduler, generator=gens)
        assert torch.allclose(out, direct, atol=1e-4), sampler
