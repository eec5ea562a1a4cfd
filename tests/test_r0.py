"""R0 on the proximal sampler: the differentiable chain equals PDA-hybrid, reward gradients are
normalised per reward, the weight pull, and `proxt2i finetune r0` end to end on the tiny model."""

import json

import pytest
import torch
from safetensors.torch import load_file

from proxt2i.cli import main
from proxt2i.rewards.registry import reward_gradient
from proxt2i.rl.r0 import pda_hybrid_with_eta, weight_pull
from proxt2i.samplers.pda import gaussian_prox, pda_sample
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train


@pytest.fixture(scope="module")
def prox_dir(tmp_path_factory):
    return train(resolve_config("test-tiny", [f"out={tmp_path_factory.mktemp('r0') / 'p'}", "steps=2"]), progress=False)


def test_chain_with_unit_eta_is_pda_hybrid_and_differentiable():
    prox = gaussian_prox(torch.tensor([0.5, -1.0, 2.0]), 0.3)
    x_T = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    ref = pda_sample(prox, x_T, 4, mode="hybrid", generator=torch.Generator().manual_seed(2))
    out = pda_hybrid_with_eta(prox, x_T, 4, [1.0] * 4, torch.Generator().manual_seed(2))
    assert torch.allclose(out, ref, atol=1e-6)
    # eta = 0 removes the noise: the output no longer depends on the generator
    a = pda_hybrid_with_eta(prox, x_T, 4, [0.0] * 4, torch.Generator().manual_seed(3))
    b = pda_hybrid_with_eta(prox, x_T, 4, [0.0] * 4, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.allclose(a, out)
    # gradients reach the start through every step
    x = x_T.clone().requires_grad_(True)
    pda_hybrid_with_eta(prox, x, 3, [1.0] * 3, torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # on a named grid it is pda_sample on that grid
    from proxt2i.schedule import time_grid

    quad = pda_sample(prox, x_T, time_grid(4, "quadratic"), mode="hybrid", generator=torch.Generator().manual_seed(2))
    assert torch.allclose(pda_hybrid_with_eta(prox, x_T, 4, [1.0] * 4, torch.Generator().manual_seed(2), "quadratic"), quad, atol=1e-6)


def test_reward_gradients_are_normalised_per_reward():
    images = torch.rand(4, 3, 8, 8, requires_grad=True)
    terms = {"small": images[:, 0].mean(dim=(1, 2)), "big": 1000.0 * images[:, 1].mean(dim=(1, 2))}
    g = reward_gradient(terms, {"small": 1.0, "big": 1.0}, images, "batch", "R0 needs it")
    assert torch.allclose(g[:, 0].norm(), torch.tensor(1.0)) and torch.allclose(g[:, 1].norm(), torch.tensor(1.0))
    assert g[:, 2].abs().sum() == 0
    terms = {"small": images[:, 0].mean(dim=(1, 2)), "big": 1000.0 * images[:, 1].mean(dim=(1, 2))}
    raw = reward_gradient(terms, {"small": 1.0, "big": 1.0}, images, None, "R0 needs it")
    assert raw[:, 1].norm() / raw[:, 0].norm() > 900  # unnormalised, the big-scale reward dominates


def test_weight_pull_is_zero_at_the_start_and_relative():
    p0 = [torch.ones(3), 2 * torch.ones(2)]
    assert weight_pull([p.clone() for p in p0], p0) == 0
    moved = [p0[0] + 1, p0[1].clone()]
    assert torch.isclose(weight_pull(moved, p0), torch.tensor(3.0 / 11.0))
    assert torch.isclose(weight_pull([10 * m for m in moved], [10 * p for p in p0]), weight_pull(moved, p0))


def _r0_args(prox_dir, out, steps, *extra):
    return ["finetune", "r0", "--model", str(prox_dir), "--reward", "brightness", "--prompts", "heldin", "--steps", str(steps),
            "--out", str(out), "--prompts-per-step", "2", "--num-steps", "2", "--eval-num", "4", "--checkpoint-every", "1",
            "--no-progress", "--ema", "0", *extra]


def test_r0_cli_raises_a_reward_and_resumes(prox_dir, tmp_path, capsys):
    out = tmp_path / "r0"
    assert main(_r0_args(prox_dir, out, 3, "--lr", "3e-3", "--reg", "0", "--eval-every", "3")) == 0
    text = capsys.readouterr().out
    assert "step 3/3 reward" in text and "model written to" in text
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval" in r]
    assert [r["step"] for r in evals] == [0, 3]
    assert evals[-1]["eval"]["reward"] > evals[0]["eval"]["reward"]  # brighter images on the same seeds
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2, 3]
    recipe = json.loads((out / "final" / "config.json").read_text())["recipe"]
    assert recipe["finetune"]["algorithm"] == "r0" and recipe["steps_done"] == 3
    assert main(_r0_args(prox_dir, out, 4, "--lr", "3e-3", "--reg", "0", "--eval-every", "3")) == 0
    assert "resuming from" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2, 3, 4]


def test_r0_with_zero_lr_changes_nothing(prox_dir, tmp_path):
    assert main(_r0_args(prox_dir, tmp_path / "z", 1, "--lr", "0")) == 0
    a, b = load_file(prox_dir / "uvit.safetensors"), load_file(tmp_path / "z" / "final" / "uvit.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_r0_tunes_a_score_model_through_its_euler_maruyama_generator(tmp_path):
    """R0's own setting: the generator initialised from a score model; the weights move and the run records its chain."""
    score_dir = train(resolve_config("test-tiny", [f"out={tmp_path / 's'}", "steps=1", "objective=score"]), progress=False)
    assert main(_r0_args(score_dir, tmp_path / "r", 1, "--lr", "1e-3")) == 0
    a, b = load_file(score_dir / "uvit.safetensors"), load_file(tmp_path / "r" / "final" / "uvit.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["chain"] == "euler-maruyama-denoise"


def test_r0_rejects_bad_input(prox_dir, tmp_path, capsys):
    for extra, message in ((["--eta-min", "2"], "--eta-min must be in [0, 1]"), (["--reward", "nope"], "unknown reward"),
                           (["--num-steps", "0"], "--num-steps must be in 1..50"),
                           (["--reward", "alignment-acc"], "not differentiable")):
        assert main(_r0_args(prox_dir, tmp_path / "bad2", 1, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert not (tmp_path / "bad2").exists()
