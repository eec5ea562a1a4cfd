"""The contract every registered sampler passes unchanged (diffusers-style): one signature, the callback
record, reproducibility, per-row noise, trajectories, and convergence on a closed-form Gaussian target."""

import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.parameterization import score_from_eps_model
from proxt2i.samplers import registry
from proxt2i.samplers.pda import gaussian_prox
from proxt2i.samplers.registry import SAMPLERS, SamplerSpec, get_sampler, samplers_for
from proxt2i.schedule import VPSchedule, uniform_grid

MU, S2 = 0.8, 0.2


def gaussian_score(x, t):
    a = VPSchedule().alpha(t.double()).view(-1, *[1] * (x.dim() - 1))
    return (-(x - a.sqrt() * MU) / (a * S2 + 1 - a)).to(x.dtype)


def gaussian_consistency(x, t):
    """The probability-flow consistency function of N(MU, S2), in score form (its Tweedie estimate is f(x_t))."""
    a = VPSchedule().alpha(t.double()).view(-1, *[1] * (x.dim() - 1))
    f = MU + (S2 / (a * S2 + 1 - a)).sqrt() * (x - a.sqrt() * MU)
    return ((a.sqrt() * f - x) / (1 - a)).to(x.dtype)


MODELS = {"prox": gaussian_prox(torch.tensor([MU]), S2), "score": gaussian_score}
# the exact model of a sampler that needs more than the score: the consistency sampler, a consistency function
EXACT_FOR = {"consistency": gaussian_consistency}


def exact_model(name: str):
    return EXACT_FOR.get(name) or MODELS[get_sampler(name).objective]


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_contract(name):
    spec = get_sampler(name)
    model = exact_model(name)
    x_T = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = []
    out = spec(model, x_T, uniform_grid(12), generator=gens([1, 2, 3]), callback=seen.append, schedule=VPSchedule())
    assert out.shape == x_T.shape and torch.isfinite(out).all()
    assert [info["i"] for info in seen] == list(range(12)) and all(torch.is_tensor(info["x"]) for info in seen)
    assert torch.equal(seen[-1]["x"], out)
    again = spec(model, x_T, 12, generator=gens([1, 2, 3]))  # an int grid is the uniform grid
    assert torch.equal(again, out)
    alone = spec(model, x_T[1:2], 12, generator=gens([2]))  # row 1's result depends on its own generator only
    assert torch.allclose(alone, out[1:2], atol=1e-12)
    traj = spec(model, x_T, 12, generator=gens([1, 2, 3]), return_trajectory=True)
    last = traj.sample if hasattr(traj, "sample") else traj[-1]
    assert torch.equal(last, out)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_converges_to_the_gaussian_target(name):
    spec = get_sampler(name)
    x_T = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = spec(exact_model(name), x_T, 50, generator=torch.Generator().manual_seed(1))
    assert float(out.mean()) == pytest.approx(MU, abs=0.03)
    assert float(out.var()) == pytest.approx(S2, rel=0.15)


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_consistency_sampling_is_exact_at_any_step_count(steps):
    """With the exact consistency function, one step maps x_T onto the target and every re-noise step keeps the
    marginal: N(MU, S2) at 1, 2 and 4 steps (where the score samplers are far off)."""
    x_T = torch.randn(40_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = get_sampler("consistency")(gaussian_consistency, x_T, steps, generator=torch.Generator().manual_seed(1))
    assert float(out.mean()) == pytest.approx(MU, abs=0.01)
    assert float(out.var()) == pytest.approx(S2, rel=0.03)


def test_registry_metadata():
    assert samplers_for("prox") == ["pda-hybrid", "pda-backward"]
    assert registry.chain_samplers() == ["pda-hybrid", "euler-maruyama-denoise"]
    backward = get_sampler("pda-backward")
    assert backward.undefined_reason(uniform_grid(4)) is not None and backward.undefined_reason(uniform_grid(16)) is None
    assert get_sampler("ddim").undefined_reason(uniform_grid(1)) is None
    with pytest.raises(UsageError, match="unknown sampler"):
        get_sampler("heun")
    with pytest.raises(UsageError, match="needs a score model"):
        get_sampler("ddim", "prox")


def test_a_new_sampler_is_one_function_and_one_registry_line(monkeypatch):
    """What docs/architecture.md shows: register a function of the shared signature, and the pipeline uses it."""
    from proxt2i.pipeline import sample_latents

    def prox_once(prox, x_T, grid, *, generator=None, callback=None, return_trajectory=False, schedule=None):
        lam = torch.ones(x_T.shape[0], dtype=x_T.dtype)
        return prox(x_T, torch.zeros_like(lam), lam)  # one prox step at t = 0 from the start itself

    monkeypatch.setitem(SAMPLERS, "prox-once", SamplerSpec(prox_once, "prox"))
    net = lambda y, t, lam, prompts: torch.ones_like(y)  # eps = 1: prox(y) = y - sqrt(lam)
    lat = sample_latents(net, "prox", ["a", "b"], (1, 2, 2), num_steps=1, guidance_scale=1.0, sampler="prox-once", seeds=[0, 1])
    x_T = torch.stack([torch.randn(1, 2, 2, generator=g) for g in gens([0, 1])])
    assert torch.allclose(lat, x_T - 1.0)


def test_model_score_from_eps_uses_its_schedule():
    eps = lambda x, t: torch.ones_like(x)
    t = torch.full((2,), 0.5)
    a = score_from_eps_model(eps, VPSchedule())(torch.zeros(2, 1), t)
    b = score_from_eps_model(eps, VPSchedule(beta_max=10.0))(torch.zeros(2, 1), t)
    assert not torch.allclose(a, b)
