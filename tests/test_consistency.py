"""The few-step competitors: the consistency sampler, the consistency losses (training and LCM-style distillation),
their training runs and how their models sample by default."""

import json
import math

import pytest
import torch

from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.parameterization import clean_from_eps
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.samplers.consistency import consistency_sample
from proxt2i.samplers.registry import get_sampler
from proxt2i.schedule import VPSchedule
from proxt2i.training.losses import consistency_intervals, consistency_loss, consistency_pair, ddim_step
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train

SCHED = VPSchedule()


def test_the_sampler_makes_one_evaluation_per_step_and_reports_each():
    calls, seen = [], []

    def score(x, t):
        calls.append(float(t[0]))
        return -x

    out = consistency_sample(score, torch.randn(3, 2), 4, generator=torch.Generator().manual_seed(0),
                             callback=seen.append, return_trajectory=True)
    assert calls == [1.0, 0.75, 0.5, 0.25]  # t_N .. t_1: never t = 0
    assert [info["i"] for info in seen] == [0, 1, 2, 3] and seen[-1]["t"] == 0.0 and "x0" in seen[0]
    assert len(out) == 5 and torch.equal(out[-1], seen[-1]["x0"])


def test_the_sampler_is_registered_for_score_models_only():
    assert get_sampler("consistency", "score").walks_grid
    with pytest.raises(UsageError, match="needs a score model"):
        get_sampler("consistency", "prox")


def test_a_pair_shares_one_trajectory():
    x0 = torch.randn(64, 4, 2, 2)
    pair = consistency_pair(x0, 10, torch.Generator().manual_seed(0), SCHED)
    dt = (1 - 1e-3) / 10
    assert torch.allclose(pair.t_hi - pair.t_lo, torch.full((64,), dt), atol=1e-6)
    assert float(pair.t_lo.min()) >= 1e-3 - 1e-7 and float(pair.t_hi.max()) <= 1.0
    z_hi = (pair.x_hi - SCHED.alpha(pair.t_hi.double()).sqrt().float().view(-1, 1, 1, 1) * x0) / (1 - SCHED.alpha(pair.t_hi.double())).sqrt().float().view(-1, 1, 1, 1)
    z_lo = (pair.x_lo - SCHED.alpha(pair.t_lo.double()).sqrt().float().view(-1, 1, 1, 1) * x0) / (1 - SCHED.alpha(pair.t_lo.double())).sqrt().float().view(-1, 1, 1, 1)
    assert torch.allclose(z_hi, z_lo, atol=1e-3)


def test_the_loss_is_min_snr_weighted_clean_space_error():
    """Zero when the student's clean estimate hits the target; otherwise min(SNR, cap) x the clean-space MSE."""
    x0 = torch.randn(32, 4, 2, 2)
    pair = consistency_pair(x0, 4, torch.Generator().manual_seed(1), SCHED)
    eps = torch.randn_like(x0)
    exact = clean_from_eps(pair.x_hi, eps, pair.t_hi, SCHED)
    assert float(consistency_loss(eps, pair, exact, SCHED).abs().max()) < 1e-6
    target = exact + 0.1 * torch.randn_like(x0)
    a = SCHED.alpha(pair.t_hi.double())
    weight = (a / (1 - a)).clamp(max=5.0)
    expected = weight * (exact - target).double().pow(2).mean(dim=(1, 2, 3))
    assert torch.allclose(consistency_loss(eps, pair, target, SCHED).double(), expected, rtol=1e-3, atol=1e-6)


def test_ddim_step_stays_on_a_point_mass_trajectory():
    """For data that is one point, the exact eps of x_t is its noise: a DDIM step lands on the same trajectory."""
    x0 = torch.randn(8, 3)
    z = torch.randn(8, 3)
    t_hi, t_lo = torch.full((8,), 0.8), torch.full((8,), 0.3)
    a_hi, a_lo = SCHED.alpha(t_hi.double()).float()[:, None], SCHED.alpha(t_lo.double()).float()[:, None]
    x_hi = a_hi.sqrt() * x0 + (1 - a_hi).sqrt() * z
    assert torch.allclose(ddim_step(x_hi, z, t_hi, t_lo, SCHED), a_lo.sqrt() * x0 + (1 - a_lo).sqrt() * z, atol=1e-4)


def test_the_interval_curriculum_doubles_from_start_to_end():
    counts = [consistency_intervals(s, 1000, 10, 160) for s in range(1000)]
    assert counts[0] == 10 and counts[-1] == 160
    assert sorted(set(counts)) == [10, 20, 40, 80, 160] and counts == sorted(counts)
    assert consistency_intervals(500, 1000, 50, 50) == 50


@pytest.mark.parametrize("overrides, message", [
    (["consistency=training"], "objective=score"),
    (["objective=score", "consistency=distillation"], "needs init=MODEL and distill_guidance"),
    (["objective=score", "consistency=training", "init=x", "distill_guidance=2"], "has no teacher"),
    (["objective=score", "consistency=training", "consistency_intervals=20,10"], "START <= END"),
    (["objective=score", "consistency=sometimes"], "consistency must be one of"),
])
def test_bad_consistency_settings_are_one_line(overrides, message):
    with pytest.raises(UsageError, match=message):
        resolve_config("test-tiny", overrides)


def test_bad_consistency_settings_exit_2(capsys):
    assert main(["train", "test-tiny", "consistency=training"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "objective=score" in err[0]


@pytest.fixture(scope="module")
def score_teacher(tmp_path_factory):
    return train(resolve_config("test-tiny", ["objective=score", f"out={tmp_path_factory.mktemp('ct') / 't'}", "steps=2"]), progress=False)


def test_a_consistency_model_samples_with_its_own_sampler(tmp_path):
    final = train(resolve_config("test-tiny", ["objective=score", "consistency=training", "consistency_intervals=2,8",
                                               f"out={tmp_path / 'ct'}", "steps=3"]), progress=False)
    config = json.loads((final / "config.json").read_text())
    assert config["objective"] == "score" and config["sampling"] == {"sampler": "consistency"}
    pipe = ProxT2IPipeline.from_pretrained(final)
    assert pipe.default_sampler == "consistency" and pipe.time_grid_for() == "uniform"
    seen = []
    pipe.sample_latents(["a smiling man"], num_steps=2, callback=seen.append)
    assert len(seen) == 2 and "x0" in seen[0]  # the consistency sampler's record
    assert pipe("a smiling man", num_steps=2, output_type="tensor").shape == (1, 3, 32, 32)
    assert pipe("a smiling man", num_steps=2, sampler="ddim", output_type="tensor").shape == (1, 3, 32, 32)  # any score sampler still runs


def test_a_distilled_consistency_model_samples_unguided(score_teacher, tmp_path):
    final = train(resolve_config("test-tiny", ["objective=score", "consistency=distillation", f"init={score_teacher}",
                                               "distill_guidance=3", "consistency_intervals=20", f"out={tmp_path / 'cd'}",
                                               "steps=2"]), progress=False)
    config = json.loads((final / "config.json").read_text())
    assert config["sampling"] == {"sampler": "consistency", "guidance": 1.0}
    assert config["recipe"]["config"]["consistency"] == "distillation"


def test_distillation_learns_the_teachers_guided_ddim_step(tmp_path):
    """On fresh pairs, the distilled student's clean estimate at t_hi is closer to its own estimate after the
    teacher's guided DDIM step than the teacher's is: the guided trajectory's end moved into one evaluation."""
    from proxt2i.data.synthfaces import render_batch
    from proxt2i.imaging import to_float_images
    from proxt2i.models.io import load_model_folder, save_model_folder
    from proxt2i.samplers.guidance import guided_eps
    from proxt2i.training.factories import build_autoencoder

    base_dir = train(resolve_config("test-tiny", ["objective=score", f"out={tmp_path / 't'}", "steps=2"]), progress=False)
    folder = load_model_folder(base_dir)
    base = folder.net.eval()
    torch.manual_seed(0)
    torch.nn.init.normal_(base.uvit.final_conv.weight, std=0.2)  # the zero-initialised output layer: make text matter
    strong = save_model_folder(tmp_path / "teacher", base.uvit, base.text_encoder, folder.autoencoder, objective="score",
                               image_size=32, schedule=SCHED)
    cfg = resolve_config("test-tiny", ["objective=score", "consistency=distillation", f"init={strong}", "distill_guidance=4",
                                       "consistency_intervals=4", f"out={tmp_path / 's'}", "steps=60", "lr=1e-3", "lr_warmup=1",
                                       "batch=8", "ema=0"])
    student = load_model_folder(train(cfg, progress=False)).net.eval()
    teacher = load_model_folder(strong).net.eval()
    images, _, captions = render_batch(123, 0, 16, 32, split="train")
    x0 = build_autoencoder("identity").encode(to_float_images(images))
    pair = consistency_pair(x0, 4, torch.Generator().manual_seed(5), SCHED)
    zero = torch.zeros_like(pair.t_hi)

    def mismatch(net):
        with torch.no_grad():
            x_lo = ddim_step(pair.x_hi, guided_eps(teacher, captions, 4.0)(pair.x_hi, pair.t_hi, zero), pair.t_hi, pair.t_lo, SCHED)
            target = clean_from_eps(x_lo, net(x_lo, pair.t_lo, zero, captions), pair.t_lo, SCHED)
            return float(consistency_loss(net(pair.x_hi, pair.t_hi, zero, captions), pair, target, SCHED).mean())

    before, after = mismatch(teacher), mismatch(student)
    assert math.isfinite(after) and after < 0.6 * before, (before, after)


def test_a_model_config_naming_a_sampler_of_another_objective_is_refused(score_teacher, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(score_teacher, bad)
    config = json.loads((bad / "config.json").read_text())
    config["sampling"] = {"sampler": "pda-hybrid"}
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="sampling.sampler must name a sampler of a score model"):
        ProxT2IPipeline.from_pretrained(bad)
