"""GRPO on the proximal sampler: the chain's exact log-probabilities, rollout == the sampler, the GRPO
objective's pieces, and `proxt2i finetune grpo` end to end on the tiny model."""

import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.models.io import load_model_folder
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.samplers.guidance import guided_model
from proxt2i.rl.diversity import DiversityMonitor, group_diversity
from proxt2i.rl.grpo import GRPOConfig, clipped_surrogate, gaussian_kl, group_advantages, grpo_update
from proxt2i.rl.policy import (gaussian_log_prob, make_chain, pick_transitions, rollout, same_kernels_with_and_without_grad,
                               step_log_prob)
from proxt2i.samplers.pda import gaussian_prox, pda_sample
from proxt2i.samplers.score import euler_maruyama_sample
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train

PROMPTS = ["a smiling person with red hair", "a person wearing a cap"]


@pytest.fixture(scope="module")
def prox_dir(tmp_path_factory):
    return train(resolve_config("test-tiny", [f"out={tmp_path_factory.mktemp('grpo') / 'p'}", "steps=2"]), progress=False)


@pytest.fixture()
def tiny_net(prox_dir):
    net = load_model_folder(prox_dir).net
    torch.manual_seed(0)
    torch.nn.init.normal_(net.uvit.final_conv.weight, std=0.2)  # the zero-initialised output layer: make eps matter
    return net


# ---------------------------------------------------------------------------------------------- policy
def test_gaussian_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    ref = torch.distributions.Normal(mean.double(), 0.7).log_prob(x.double()).flatten(1).sum(1)
    assert torch.allclose(gaussian_log_prob(x, mean, 0.7), ref, rtol=0, atol=1e-9)
    assert torch.allclose(gaussian_log_prob(x, mean, 0.7, reduce="mean"), ref / 32, rtol=0, atol=1e-9)


def test_step_log_prob_brute_force_on_closed_form_prox():
    """Transition i of PDA-hybrid: y_{k-1} ~ N((1 + gamma_{k-1}/2) prox(y_k, t_k, gamma_k), gamma_{k-1} I)."""
    prox = gaussian_prox(torch.tensor([0.5, -1.0, 2.0]), 0.3)
    x_T = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    traj = rollout(prox, x_T, 5, torch.Generator().manual_seed(1))
    chain = make_chain("pda-hybrid", 5)
    assert len(traj.states) == 5 and len(traj.log_probs) == 4
    for i in range(4):
        k = 4 - i  # states[i] = y_k
        t, lam = torch.full((4,), chain.grid[k]), torch.full((4,), chain.gammas[k])
        g_next = chain.gammas[k - 1]
        dist = torch.distributions.Normal((1 + g_next / 2) * prox(traj.states[i], t, lam).double(), g_next**0.5)
        brute = dist.log_prob(traj.states[i + 1].double()).sum(1)
        assert torch.allclose(traj.log_probs[i], brute, atol=1e-9)
        assert torch.allclose(step_log_prob(prox, traj.states[i], traj.states[i + 1], i, chain)[0], brute, atol=1e-9)


def test_rollout_reproduces_pda_hybrid_on_the_network(tiny_net):
    fn = guided_model(tiny_net, "prox", PROMPTS, 4.0)
    x_T = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for make_gen in (lambda: torch.Generator().manual_seed(1), lambda: [torch.Generator().manual_seed(s) for s in (3, 4)]):
        with torch.no_grad():
            expected = pda_sample(fn, x_T, 4, mode="hybrid", generator=make_gen(), return_trajectory=True)
        traj = rollout(fn, x_T, 4, make_gen())
        assert torch.equal(traj.x0, expected.sample)
        assert all(torch.equal(a, b) for a, b in zip(traj.states, expected.ys))  # the states are PDA's prox inputs
        assert not torch.equal(traj.states[1], traj.means[0])  # noise was added


def test_rollout_reproduces_euler_maruyama_with_final_denoise():
    score = lambda x, t: -x / (1.0 + t[:, None])  # noqa: E731  any smooth score
    x_T = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    expected = euler_maruyama_sample(score, x_T, 4, denoise_final=True, generator=torch.Generator().manual_seed(2))
    traj = rollout(score, x_T, 4, torch.Generator().manual_seed(2), sampler="euler-maruyama-denoise")
    assert torch.equal(traj.x0, expected) and len(traj.log_probs) == 3
    chain = traj.chain
    brute = torch.distributions.Normal(traj.means[1].double(), chain.gammas[2] ** 0.5).log_prob(traj.states[2].double()).sum(1)
    assert torch.allclose(traj.log_probs[1], brute, atol=1e-9)


def test_on_policy_ratio_is_exactly_one(tiny_net):
    """Rollout (no_grad) and update (with grad) must evaluate the same policy bit for bit."""
    fn = guided_model(tiny_net, "prox", PROMPTS, 4.0)
    x_T = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with same_kernels_with_and_without_grad():
        traj = rollout(fn, x_T, 4, torch.Generator().manual_seed(1))
        for i in range(traj.chain.num_transitions):
            logp, _ = step_log_prob(fn, traj.states[i], traj.states[i + 1], i, traj.chain)
            assert logp.requires_grad and torch.equal(logp.detach(), traj.log_probs[i])


def test_shared_start_gives_a_group_one_first_state_and_then_independent_transitions():
    """start_group=G: rows of a group share the parameter-free first state (DanceGRPO's shared initial
    noise); the transitions after it stay independent, and their log-probs are still exact."""
    prox = gaussian_prox(torch.tensor([0.5, -1.0, 2.0]), 0.3)
    x_T = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    traj = rollout(prox, x_T, 4, torch.Generator().manual_seed(1), start_group=3)
    first = traj.states[0]
    assert torch.equal(first[0], first[1]) and torch.equal(first[1], first[2]) and torch.equal(first[3], first[5])
    assert not torch.equal(first[0], first[3])
    assert not torch.equal(traj.states[1][0], traj.states[1][1])  # the policy's noise is per row
    brute = torch.distributions.Normal(traj.means[0].double(), traj.chain.std(0)).log_prob(traj.states[1].double()).sum(1)
    assert torch.allclose(traj.log_probs[0], brute, atol=1e-9)
    # the shared first state is what the group's first row alone would start from
    alone = rollout(prox, x_T[[0, 3]], 4, torch.Generator().manual_seed(1))
    assert torch.equal(alone.states[0], first[[0, 3]])
    with pytest.raises(ValueError, match="divide the batch"):
        rollout(prox, x_T, 4, torch.Generator().manual_seed(1), start_group=4)


def test_pick_transitions_and_chain_checks():
    assert pick_transitions(3, 0) == [0, 1, 2] and pick_transitions(3, 5) == [0, 1, 2]
    sub = pick_transitions(9, 3, torch.Generator().manual_seed(0))
    assert len(sub) == 3 and sub == sorted(set(sub))
    with pytest.raises(ValueError, match="num_steps >= 2"):
        make_chain("pda-hybrid", 1)
    with pytest.raises(ValueError, match="no policy chain"):
        make_chain("ddim", 4)


# ---------------------------------------------------------------------------------------------- grpo
def test_group_advantages_are_normalised_per_group():
    r = torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0, 0.0, 100.0, 50.0])
    a = group_advantages(r, 3).view(3, 3)
    assert torch.allclose(a[0], torch.tensor([-1.2247, 0.0, 1.2247]), atol=1e-3)
    assert torch.equal(a[1], torch.zeros(3))  # equal rewards: no signal
    assert torch.allclose(a[2], a[0][[0, 2, 1]], atol=1e-3)  # scale-free within a group
    assert float(group_advantages(torch.tensor([0.0, 0.0, 0.0, 1.0]), 4, clip=1.5).max()) == 1.5
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), 3)


def test_clipped_surrogate_and_clip_fraction():
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    logp_old = torch.zeros(4, dtype=torch.float64)
    logp_new = torch.log(torch.tensor([1.05, 1.5, 0.5, 1.5], dtype=torch.float64))
    loss, clipped = clipped_surrogate(logp_new, logp_old, adv, 0.2)
    assert torch.allclose(loss, torch.tensor([-1.05, -1.2, 0.8, 1.5], dtype=torch.float64))
    assert clipped.tolist() == [False, True, True, True]


def test_gaussian_kl_closed_form():
    m, m_ref = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m, 0.5), torch.distributions.Normal(m_ref, 0.5)).flatten(1).sum(1)
    assert torch.allclose(gaussian_kl(m, m_ref, 0.5), ref, atol=1e-5)
    assert torch.allclose(gaussian_kl(m, m_ref, 0.5, "mean"), ref / 12, atol=1e-6)


def _update(net, lr, cfg, steps=1):
    fn = guided_model(net, "prox", PROMPTS * 2, 4.0)
    ref = __import__("copy").deepcopy(net).requires_grad_(False)
    ref_fn = guided_model(ref, "prox", PROMPTS * 2, 4.0)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    x_T = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with same_kernels_with_and_without_grad():
        traj = rollout(fn, x_T, 3, torch.Generator().manual_seed(1))
        adv = group_advantages(torch.tensor([0.0, 1.0, 3.0, 1.0]), 2)
        return grpo_update(fn, traj, adv, opt, params, cfg, ref_fn=ref_fn, generator=torch.Generator().manual_seed(0))


def test_update_with_zero_lr_changes_nothing_and_kl_is_zero_at_init(tiny_net):
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    stats = _update(tiny_net, 0.0, GRPOConfig(kl=0.1, inner_epochs=2))
    assert all(torch.equal(before[k], v) for k, v in tiny_net.state_dict().items())
    assert stats["kl"] == 0.0 and stats["ratio_max_dev"] == 0.0 and stats["clip_fraction"] == 0.0
    assert stats["transitions"] == 4 and stats["grad_norm"] > 0  # 2 epochs x 2 transitions; gradients did flow


def test_update_moves_the_policy_and_reports_clipping(tiny_net):
    stats = _update(tiny_net, 1e-2, GRPOConfig(clip=1e-3, inner_epochs=3, train_transitions=1))
    assert stats["transitions"] == 3 and stats["ratio_max_dev"] > 0  # epochs 2-3 are off-policy
    assert 0 < stats["clip_fraction"] <= 2 / 3 + 1e-9  # the first epoch is never clipped
    assert stats["kl"] is not None and stats["kl"] > 0


def test_grpo_increases_a_reward_on_a_closed_form_policy():
    """Gaussian target N(mu, 0.3): the prox is closed form and mu is the only parameter. Rewarding the
    sample mean must push mu up (a sign and plumbing check of the whole update)."""
    mu = torch.nn.Parameter(torch.zeros(4))
    prox_at = lambda y, t, lam: gaussian_prox(mu, 0.3)(y, t, lam)  # noqa: E731
    opt = torch.optim.Adam([mu], lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        x_T = torch.randn(16, 4, generator=g)
        traj = rollout(prox_at, x_T, 4, g)
        adv = group_advantages(traj.x0.mean(1), 8)
        grpo_update(prox_at, traj, adv, opt, [mu], GRPOConfig(inner_epochs=2), generator=g)
    assert float(mu.detach().mean()) > 0.3


# ---------------------------------------------------------------------------------------------- diversity
def test_group_diversity_and_monitor():
    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]])
    assert group_diversity(f, 2) == pytest.approx(2.5)  # (5 + 0) / 2
    mon = DiversityMonitor(0.5)
    assert mon.update(2.0) == 1.0 and not mon.collapsed
    assert mon.update(0.9) == pytest.approx(0.45) and mon.collapsed


def test_rollout_walks_the_named_time_grid():
    from proxt2i.schedule import time_grid

    prox = gaussian_prox(torch.tensor([0.5, -1.0]), 0.3)
    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    quad = time_grid(4, "quadratic")
    expected = pda_sample(prox, x_T, quad, mode="hybrid", generator=torch.Generator().manual_seed(1))
    traj = rollout(prox, x_T, 4, torch.Generator().manual_seed(1), grid="quadratic")
    assert traj.chain.grid == (0.0, 0.0625, 0.25, 0.5625, 1.0) and torch.equal(traj.x0, expected)
    assert not torch.equal(traj.x0, rollout(prox, x_T, 4, torch.Generator().manual_seed(1)).x0)  # uniform differs
    score = lambda x, t: -x / (1.0 + t[:, None])  # noqa: E731
    em = euler_maruyama_sample(score, x_T, quad, denoise_final=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(rollout(score, x_T, 4, torch.Generator().manual_seed(2), sampler="euler-maruyama-denoise", grid="quadratic").x0, em)


# ---------------------------------------------------------------------------------------------- CLI
def _grpo_args(prox_dir, out, steps, *extra):
    return ["finetune", "grpo", "--model", str(prox_dir), "--reward", "brightness", "--prompts", "heldin", "--steps", str(steps),
            "--out", str(out), "--group", "2", "--prompts-per-step", "2", "--num-steps", "2", "--eval-num", "4",
            "--checkpoint-every", "1", "--no-progress", "--lr", "1e-3", *extra]


def test_finetune_cli_end_to_end_and_resume(prox_dir, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(_grpo_args(prox_dir, out, 2, "--eval-every", "1")) == 0
    text = capsys.readouterr().out
    assert "step 2/2 reward" in text and "eval step 0: alignment" in text and "model written to" in text
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "eval" not in r]
    assert [r["step"] for r in train_rows] == [1, 2]
    assert {"reward_mean", "reward_std", "kl", "clip_fraction", "diversity_rel"} <= set(train_rows[0])
    evals = [r["eval"] for r in rows if "eval" in r]
    assert [r["step"] for r in rows if "eval" in r] == [0, 1, 2]
    assert all(e["fd"] > 0 and 0 <= e["alignment"] <= 1 for e in evals)  # FD beside alignment: the hacking signal
    assert train_rows[0]["ratio_max_dev"] == 0.0  # one inner epoch: exactly on-policy
    recipe = json.loads((out / "final" / "config.json").read_text())["recipe"]
    assert recipe["finetune"]["algorithm"] == "grpo" and recipe["steps_done"] == 2
    images = ProxT2IPipeline.from_pretrained(out / "final")(PROMPTS, num_steps=2, output_type="tensor")
    assert images.shape == (2, 3, 32, 32)

    # resume: rerun with more steps continues from the checkpoint at step 2
    assert main(_grpo_args(prox_dir, out, 3, "--eval-every", "1")) == 0
    assert "resuming from" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2, 3]
    assert [r["step"] for r in rows if "eval" in r] == [0, 1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]


def test_finetune_shared_start_noise_runs(prox_dir, tmp_path, capsys):
    out = tmp_path / "shared"
    assert main(_grpo_args(prox_dir, out, 1, "--start-noise", "shared")) == 0
    assert json.loads((out / "config.json").read_text())["start_noise"] == "shared"
    row = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert row["reward_std"] > 0  # the group still differs: through the policy's transitions


def test_finetune_score_baseline_runs(tmp_path):
    from proxt2i.rl.grpo import GRPORunConfig, finetune_grpo

    score_dir = train(resolve_config("test-tiny", [f"out={tmp_path / 's'}", "steps=1", "objective=score"]), progress=False)
    final = finetune_grpo(GRPORunConfig(model=str(score_dir), reward="brightness", prompts="heldin", steps=1, out=str(tmp_path / "ft"),
                                          group=2, prompts_per_step=1, num_steps=3, eval_num=2, kl=0.01), progress=False)
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert cfg["chain"] == "euler-maruyama-denoise" and (final / "uvit.safetensors").exists()
    row = json.loads((tmp_path / "ft" / "log.jsonl").read_text().splitlines()[0])
    assert row["kl"] == 0.0  # one update: the KL is measured before it, at the reference


def test_finetune_tunes_and_keeps_the_models_own_time_grid(tmp_path, capsys):
    quad_dir = train(resolve_config("test-tiny", [f"out={tmp_path / 'q'}", "steps=1", "default_time_grid=quadratic"]), progress=False)
    for extra, grid in (((), "quadratic"), (("--time-grid", "uniform"), "uniform")):
        out = tmp_path / f"ft-{grid}"
        assert main(_grpo_args(quad_dir, out, 1, *extra)) == 0
        assert json.loads((out / "config.json").read_text())["chain_time_grid"] == grid
        final = json.loads((out / "final" / "config.json").read_text())
        assert final["sampling"]["time_grid"]["pda-hybrid"] == grid and final["recipe"]["finetune"]["chain_time_grid"] == grid
        assert ProxT2IPipeline.from_pretrained(out / "final").time_grid_for() == grid
    capsys.readouterr()


def test_diversity_alarm_warns_and_stop_on_collapse_stops_after_a_checkpoint(prox_dir, tmp_path, capsys, monkeypatch):
    import proxt2i.rl.diversity as diversity

    spreads = iter([1.0, 0.3, 0.2, 0.1, 0.1])  # the within-prompt spread of each iteration: collapses at iteration 2
    monkeypatch.setattr(diversity, "group_diversity", lambda features, group: next(spreads))
    out = tmp_path / "collapse"
    assert main(_grpo_args(prox_dir, out, 5, "--eval-every", "1", "--stop-on-collapse")) == 0
    text = capsys.readouterr().out
    assert "warning: within-prompt diversity fell to 0.30 of its start" in text and "stopping: --stop-on-collapse" in text
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval" not in r] == [1, 2]
    assert [r["step"] for r in rows if "eval" in r] == [0, 1, 2]  # the stopping step is evaluated once
    assert (out / "checkpoints" / "step-00000002").is_dir()
    recipe = json.loads((out / "final" / "config.json").read_text())["recipe"]
    assert recipe["stopped_on_collapse"] and recipe["steps_done"] == 2


@pytest.mark.parametrize("extra, message", [
    (["--time-grid", "cubic"], "unknown time grid"),
    (["--reward", "nonsense"], "unknown reward 'nonsense'"),
    (["--reward", "brightness=abc"], "bad weight"),
    (["--reward", "pickscore"], "needs a local model folder"),
    (["--group", "1"], "--group must be >= 2"),
    (["--prompts", "no-such-file.txt"], "not a file nor one of"),
    (["--num-steps", "1"], "--num-steps must be in 2..1000"),
    (["--keep-checkpoints", "0"], "--keep-checkpoints must be >= 1"),
])
def test_finetune_cli_bad_input(prox_dir, tmp_path, capsys, extra, message):
    assert main(_grpo_args(prox_dir, tmp_path / "bad", 1, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("proxt2i: error:") and message in err and "\n" not in err
    assert not (tmp_path / "bad" / "checkpoints").exists()


@pytest.mark.parametrize("algorithm, cfg", [
    ("grpo", dict(reward="alignment-prob", prompts="synthfaces-heldout", steps=150, lr=5e-5, kl=0.1, reduce="mean",
                  start_noise="shared", stop_on_collapse=True, keep_checkpoints=10, out="runs/a b")),
    ("grpo", dict()),
    ("r0", dict(reward="alignment-prob=1,clip=1", normalise_gradients=False, eta_min=0.5, reg=1e5, lr=1.2345678901e-4, time_grid="power:2")),
])
def test_recipe_command_reruns_the_same_config(algorithm, cfg):
    """The command a fine-tuned model's recipe records parses back to the config that made it."""
    import shlex

    from proxt2i.cli import build_parser
    from proxt2i.cli.finetune import finetune_config
    from proxt2i.rl.grpo import GRPORunConfig, grpo_command
    from proxt2i.rl.r0 import R0Config, r0_command

    config = (GRPORunConfig if algorithm == "grpo" else R0Config)(**cfg)
    argv = shlex.split((grpo_command if algorithm == "grpo" else r0_command)(config))
    assert argv[:3] == ["proxt2i", "finetune", algorithm]
    args = build_parser("finetune").parse_args(argv[1:])
    assert finetune_config(algorithm, args) == config


# ---------------------------------------------------------------------------------------------- branching rollouts
def test_branch_strides_check_the_tree():
    from proxt2i.errors import UsageError
    from proxt2i.rl.policy import branch_strides

    assert branch_strides((2, 2, 2), 3, 8) == (8, 4, 2, 1)
    assert branch_strides((1, 4), 2, 4) == (4, 4, 1)
    for bad in ((2, 2), (2, 2, 3), (0, 8, 1)):
        with pytest.raises(UsageError, match="product is the group 8"):
            branch_strides(bad, 3, 8)


def test_branching_rollout_shares_prefixes_and_scores_each_transition_exactly():
    """Two prompts x a group of 4 on a tree 2,2 (5 steps would need 4 factors: here 3 steps, 2 transitions):
    each state holds one row per node, children of a node start from its state, and the recorded
    log-probabilities are those of the transitions as sampled (brute force against torch.distributions)."""
    from proxt2i.rl.policy import branch_strides

    prox = gaussian_prox(torch.tensor([0.5, -1.0, 2.0]), 0.3)
    x_T = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    strides = branch_strides((2, 2), 2, 4)
    traj = rollout([prox] * 3, x_T, 3, torch.Generator().manual_seed(1), strides=strides)
    assert [s.shape[0] for s in traj.states] == [2, 4, 8] and traj.x0.shape == (8, 3)
    assert [traj.branch(i) for i in range(2)] == [2, 2]
    chain = traj.chain
    for i in range(2):
        k = chain.num_transitions - i  # states[i] = y_k
        t, lam = torch.full((traj.states[i].shape[0],), chain.grid[k]), torch.full((traj.states[i].shape[0],), chain.gammas[k])
        g_next = chain.gammas[k - 1]
        mean = ((1 + g_next / 2) * prox(traj.states[i], t, lam)).repeat_interleave(2, dim=0)
        brute = torch.distributions.Normal(mean.double(), g_next**0.5).log_prob(traj.states[i + 1].double()).sum(1)
        assert torch.allclose(traj.log_probs[i], brute, atol=1e-9)
        assert torch.allclose(step_log_prob(prox, traj.states[i], traj.states[i + 1], i, chain, branch=2)[0], brute, atol=1e-9)
    # the two leaves under one node differ only by the last transition's noise; distinct nodes differ
    assert not torch.equal(traj.states[2][0], traj.states[2][1])
    # without strides, the same call is the plain rollout (one callable per state or one for all)
    plain = rollout(prox, x_T, 3, torch.Generator().manual_seed(1))
    listed = rollout([prox] * 3, x_T, 3, torch.Generator().manual_seed(1))
    assert torch.equal(plain.x0, listed.x0) and plain.strides == ()


def test_tree_advantages_compare_each_node_with_its_parent():
    from proxt2i.rl.grpo import tree_advantages

    rewards = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0, 5.0, 1.0, 1.0])  # two prompts, a group of 4, tree 2,2
    adv = tree_advantages(rewards, (4, 2, 1))
    assert [a.shape[0] for a in adv] == [4, 8]
    first, last = adv[0].view(2, 2), adv[1].view(4, 2)
    assert torch.allclose(first.sum(1), torch.zeros(2), atol=1e-6)  # siblings' advantages cancel: the parent is the baseline
    assert torch.allclose(last.sum(1), torch.zeros(4), atol=1e-6)
    assert first[0, 1] > 0 and first[1, 0] > 0  # the better half of each group is the positive branch
    assert all(torch.isclose(a.pow(2).mean().sqrt(), torch.tensor(1.0)) for a in adv)  # depth-wise unit RMS
    # one branch point at the end is plain GRPO
    assert torch.allclose(tree_advantages(rewards[:4], (4, 1))[0], group_advantages(rewards[:4], 4), atol=1e-3)


def test_finetune_with_branching_rollouts_runs_and_resumes(prox_dir, tmp_path, capsys):
    out = tmp_path / "branch"
    args = ["--group", "4", "--num-steps", "3", "--branches", "2,2"]
    assert main(_grpo_args(prox_dir, out, 1) + args) == 0
    (row,) = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "eval" not in r]
    assert row["step"] == 1 and row["reward_std"] > 0 and row["ratio_max_dev"] == 0.0
    assert json.loads((out / "config.json").read_text())["branches"] == [2, 2]
    assert main(_grpo_args(prox_dir, out, 2) + args) == 0
    assert "resuming from" in capsys.readouterr().out
    for bad, message in ((["--branches", "2,3"], "product is the group 4"),
                         (["--branches", "2,2", "--start-noise", "shared"], "already shares each group's first state")):
        assert main(_grpo_args(prox_dir, tmp_path / "bad", 1, "--group", "4", "--num-steps", "3", *bad)) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "bad").exists()
