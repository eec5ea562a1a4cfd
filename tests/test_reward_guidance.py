"""Training-free reward guidance (samplers.guidance.reward_guided_prox, pipeline.RewardGuidance, generate
--reward-guidance): the step it adds, its schedules, that it climbs the reward, and its refusals."""

import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.pipeline import ProxT2IPipeline, RewardGuidance
from proxt2i.samplers.guidance import reward_guidance_factor, reward_guided_prox
from proxt2i.samplers.pda import gaussian_prox


def test_schedule_factors():
    t = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(reward_guidance_factor("constant", t), torch.ones(3))
    assert torch.allclose(reward_guidance_factor("late", t), torch.tensor([1.0, 0.75, 0.0]))
    assert torch.equal(reward_guidance_factor("final", t), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(UsageError, match="unknown reward-guidance schedule"):
        reward_guidance_factor("sometimes", t)


def test_the_step_is_the_factor_times_the_direction_of_the_tweedie_estimate():
    """With the exact Gaussian prox, x0_hat is the Tweedie estimate: for data N(mu, 0), E[x0 | x_t] = mu."""
    mu = torch.tensor([1.5, -2.0])
    prox = gaussian_prox(mu, 0.0)
    seen = []

    def direction(x0_hat):
        seen.append(x0_hat)
        return torch.ones_like(x0_hat)

    guided = reward_guided_prox(prox, direction, "late")
    y = torch.randn(4, 2)
    t, lam = torch.full((4,), 0.3), torch.full((4,), 0.2)
    assert torch.allclose(guided(y, t, lam), prox(y, t, lam) + 0.7, atol=1e-6)
    assert torch.allclose(seen[0], mu.expand(4, 2), atol=1e-5)
    seen.clear()
    final = reward_guided_prox(prox, direction, "final")
    assert torch.equal(final(y, t, lam), prox(y, t, lam)) and not seen  # not the last step: no reward pass at all


def test_guidance_climbs_a_differentiable_reward(model_dir):
    pipe = ProxT2IPipeline.from_pretrained(model_dir)
    prompts = ["a smiling person with red hair", "a person with glasses"] * 2
    plain = pipe(prompts, num_steps=3, seed=0, output_type="tensor")
    bright = pipe(prompts, num_steps=3, seed=0, output_type="tensor", reward_guidance="brightness=0.5", reward_guidance_schedule="constant")
    assert (bright.mean(dim=(1, 2, 3)) > plain.mean(dim=(1, 2, 3))).all()
    # row by row: an image's guided result does not depend on the rest of the batch
    alone = pipe(prompts[:1], num_steps=3, seed=0, output_type="tensor", reward_guidance="brightness=0.5",
                 reward_guidance_schedule="constant")
    assert torch.allclose(alone[0], bright[0], atol=1e-5)


@pytest.mark.parametrize("spec, message", [
    ("brightness=-1", "must be >= 0"), ("alignment-acc=0.1", "not differentiable"), ("brightness=nan", "must be finite"),
    ("nope=1", "unknown reward"),
])
def test_bad_guidance_specs_are_refused(model_dir, spec, message):
    pipe = ProxT2IPipeline.from_pretrained(model_dir)
    with pytest.raises(UsageError, match=message):
        pipe(["a person"], num_steps=2, output_type="tensor", reward_guidance=spec)


def test_score_models_cannot_take_it(tmp_path):
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import train

    score = ProxT2IPipeline.from_pretrained(train(resolve_config("test-tiny", [f"out={tmp_path / 's'}", "steps=1", "objective=score"]),
                                                  progress=False))
    with pytest.raises(UsageError, match="acts after each prox step"):
        score(["a person"], num_steps=2, reward_guidance=RewardGuidance("brightness=0.1"))
    with pytest.raises(UsageError, match="acts after each prox step"):
        score.reward_guidance("brightness=0.1")


@pytest.mark.parametrize("extra, message", [
    (["--reward-guidance", "brightness=-0.1"], "must be >= 0"), (["--reward-guidance", "alignment-acc=0.1"], "not differentiable"),
    (["--reward-guidance", "brightness=0.1", "--sampler", "ddim"], "drives a score model"),
    (["--reward-guidance", "pickscore:/no/such/folder=0.1"], "not found"),
])
def test_generate_refuses_in_one_line_and_writes_nothing(model_dir, tmp_path, capsys, extra, message):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a smiling person\n")
    assert main(["generate", "--model", str(model_dir), "--prompts", str(prompts), "--num", "1", "--steps", "2",
                 "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_generate_records_the_guidance(model_dir, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a smiling person\n")
    assert main(["generate", "--model", str(model_dir), "--prompts", str(prompts), "--num", "2", "--steps", "2",
                 "--out", str(tmp_path / "out"), "--reward-guidance", "brightness=0.2"]) == 0
    row = json.loads((tmp_path / "out" / "metadata.jsonl").read_text().splitlines()[0])
    assert row["reward_guidance"] == "brightness=0.2" and row["reward_guidance_schedule"] == "late"
