"""The forward-process reward route (rl/nft.py): optimality weights, the implicit positive / negative loss,
and `proxt2i finetune nft` end to end on the tiny model (prox and score), with exact resume and bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file

from proxt2i.cli import main
from proxt2i.rl.nft import nft_loss, optimality_weights
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train


def test_optimality_weights_map_group_rank_to_unit_interval():
    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0])
    w = optimality_weights(rewards, 4, adv_clip=2.0)
    assert torch.all((w >= 0) & (w <= 1))
    assert torch.allclose(w[4:], torch.full((4,), 0.5))  # equal rewards: no preference
    assert torch.all(w[1:4] > w[:3]) and torch.isclose(w[:4].mean(), torch.tensor(0.5))


def test_nft_gradient_at_the_old_policy_is_the_signed_matching_gradient():
    """At theta = theta_old: d L / d pred = beta (2w - 1) d ||pred - target||^2 / d pred."""
    torch.manual_seed(0)
    pred_old, target = torch.randn(3, 5), torch.randn(3, 5)
    weights, beta = torch.tensor([1.0, 0.0, 0.25]), 0.7
    pred = pred_old.clone().requires_grad_(True)
    nft_loss(pred, pred_old, target, weights, beta).sum().backward()
    plain = 2 * (pred_old - target) / 5
    assert torch.allclose(pred.grad, beta * (2 * weights - 1).view(-1, 1) * plain, atol=1e-6)
    # a perfect positive sample (pred+ = target) costs nothing; its negative twin is pushed away
    assert nft_loss(target.clone(), target, target, torch.ones(3), beta).abs().max() < 1e-12


@pytest.fixture(scope="module")
def prox_dir(tmp_path_factory):
    return train(resolve_config("test-tiny", [f"out={tmp_path_factory.mktemp('nft') / 'p'}", "steps=2"]), progress=False)


def _nft_args(model, out, steps, *extra):
    return ["finetune", "nft", "--model", str(model), "--reward", "brightness", "--prompts", "heldin", "--steps", str(steps),
            "--out", str(out), "--prompts-per-step", "2", "--group", "2", "--num-steps", "2", "--eval-num", "4",
            "--checkpoint-every", "1", "--no-progress", "--lr", "1e-3", *extra]


def test_nft_trains_logs_and_resumes_exactly(prox_dir, tmp_path, capsys):
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert main(_nft_args(prox_dir, straight, 3, "--eval-every", "3")) == 0
    out = capsys.readouterr().out
    assert "step 3/3 reward" in out and "model written to" in out
    rows = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" in r] == [0, 3]
    steps = [r for r in rows if "eval" not in r]
    assert [r["step"] for r in steps] == [1, 2, 3] and all(0 <= r["weight_spread"] <= 0.5 for r in steps)
    a, b = load_file(prox_dir / "uvit.safetensors"), load_file(straight / "final" / "uvit.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    recipe = json.loads((straight / "final" / "config.json").read_text())["recipe"]
    assert recipe["finetune"]["algorithm"] == "nft" and recipe["command"].startswith("proxt2i finetune nft")
    # two steps, then the same command with --steps 3: the same weights as three steps in one go
    assert main(_nft_args(prox_dir, resumed, 2, "--eval-every", "3")) == 0
    assert main(_nft_args(prox_dir, resumed, 3, "--eval-every", "3")) == 0
    c = load_file(resumed / "final" / "uvit.safetensors")
    assert all(torch.equal(b[k], c[k]) for k in b)
    # the recipe's times cover both sessions: every logged iteration, and at least that much wall time
    rows = [json.loads(line) for line in (resumed / "log.jsonl").read_text().splitlines()]
    spent = sum(r["seconds"] for r in rows if "eval" not in r)
    recipe = json.loads((resumed / "final" / "config.json").read_text())["recipe"]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2, 3]
    assert recipe["iteration_seconds"] == pytest.approx(spent, abs=0.06) and recipe["wall_seconds"] >= spent - 0.06


def test_nft_tunes_a_score_model_with_its_own_objective(tmp_path):
    score_dir = train(resolve_config("test-tiny", [f"out={tmp_path / 's'}", "steps=1", "objective=score"]), progress=False)
    assert main(_nft_args(score_dir, tmp_path / "n", 1)) == 0
    assert json.loads((tmp_path / "n" / "config.json").read_text())["chain"] == "euler-maruyama-denoise"


@pytest.mark.parametrize("extra, message", [
    (["--beta", "0"], "--beta must be > 0"), (["--group", "1"], "--group must be >= 2"),
    (["--step-candidates", "0"], "--step-candidates"), (["--reward", "brightness=x"], "bad weight"),
    (["--adv-clip", "-1"], "--adv-clip must be > 0"), (["--reward", "brightness=-1"], "must be >= 0"),
    (["--reward", "alignment=nan"], "must be finite"), (["--reward", "pickscore:/no/such/folder"], "not found"),
])
def test_nft_bad_input_is_one_line_and_writes_nothing(prox_dir, tmp_path, capsys, extra, message):
    assert main(_nft_args(prox_dir, tmp_path / "bad", 1, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
