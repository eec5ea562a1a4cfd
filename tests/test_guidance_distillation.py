"""Guidance distillation (train distill_guidance=W): the student regresses the init model's CFG-guided output,
the exported model samples unguided by default (one pass per step), and bad settings are one line."""

import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train

PROMPTS = ["a smiling person with red hair", "a person wearing a cap"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train(resolve_config("test-tiny", [f"out={tmp_path_factory.mktemp('gd') / 't'}", "steps=2"]), progress=False)


def test_the_student_learns_the_teachers_guided_output(teacher, tmp_path):
    """On fresh draws of the training problem (rendered faces, (t, lam) on the sampler grids), the distilled
    student's plain conditional output is closer to the teacher's guided output (scale 4) than the teacher's
    own conditional output is: the guidance moved into the weights."""
    from proxt2i.data.synthfaces import render_batch
    from proxt2i.imaging import to_float_images
    from proxt2i.models.io import load_model_folder, save_model_folder
    from proxt2i.samplers.guidance import guided_eps
    from proxt2i.schedule import VPSchedule
    from proxt2i.training.factories import build_autoencoder
    from proxt2i.training.losses import matching_batch

    folder = load_model_folder(teacher)
    base = folder.net.eval()
    torch.manual_seed(0)
    torch.nn.init.normal_(base.uvit.final_conv.weight, std=0.2)  # the zero-initialised output layer: make text matter
    strong = save_model_folder(tmp_path / "teacher", base.uvit, base.text_encoder, folder.autoencoder, objective="prox",
                               image_size=32, schedule=VPSchedule())
    cfg = resolve_config("test-tiny", [f"out={tmp_path / 's'}", "steps=60", f"init={strong}", "distill_guidance=4",
                                       "lr=1e-3", "lr_warmup=1", "batch=8", "ema=0"])
    student = load_model_folder(train(cfg, progress=False)).net.eval()
    base = load_model_folder(strong).net.eval()  # as saved (float16 weights), as the run's teacher read it
    images, _, captions = render_batch(123, 0, 16, 32, split="train")
    x0 = build_autoencoder("identity").encode(to_float_images(images))
    batch = matching_batch(x0, "prox", torch.Generator().manual_seed(5), VPSchedule(), prox_target=cfg.prox_target,
                           candidates=cfg.step_candidates, power=cfg.candidate_power, mode=cfg.mode)
    with torch.no_grad():
        target = guided_eps(base, captions, 4.0)(batch.x, batch.t, batch.lam)
        before = (base(batch.x, batch.t, batch.lam, captions) - target).pow(2).mean()
        after = (student(batch.x, batch.t, batch.lam, captions) - target).pow(2).mean()
    assert after < 0.5 * before, (float(before), float(after))


def test_a_distilled_model_samples_unguided_by_default(teacher, tmp_path):
    out = tmp_path / "s"
    final = train(resolve_config("test-tiny", [f"out={out}", "steps=2", f"init={teacher}", "distill_guidance=3"]), progress=False)
    config = json.loads((final / "config.json").read_text())
    assert config["sampling"]["guidance"] == 1.0
    pipe = ProxT2IPipeline.from_pretrained(final)
    default = pipe(PROMPTS, num_steps=2, output_type="tensor")
    assert torch.equal(default, pipe(PROMPTS, num_steps=2, guidance_scale=1.0, output_type="tensor"))
    assert not torch.equal(default, pipe(PROMPTS, num_steps=2, guidance_scale=4.0, output_type="tensor"))
    # the teacher keeps its guidance 4 by default
    base = ProxT2IPipeline.from_pretrained(teacher)
    assert torch.equal(base(PROMPTS, num_steps=2, output_type="tensor"), base(PROMPTS, num_steps=2, guidance_scale=4.0, output_type="tensor"))
    # generate records the guidance it used
    assert main(["generate", "--model", str(final), "--prompts", str(_prompt_file(tmp_path)), "--steps", "2", "--out", str(tmp_path / "g")]) == 0
    row = json.loads((tmp_path / "g" / "metadata.jsonl").read_text().splitlines()[0])
    assert row["guidance"] == 1.0


def _prompt_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    return path


@pytest.mark.parametrize("extra, message", [(["distill_guidance=4"], "distill_guidance needs init"),
                                            (["distill_guidance=-1", "init=synthfaces-prox"], "must be a finite scale >= 0")])
def test_bad_distillation_settings_are_one_line(tmp_path, capsys, extra, message):
    assert main(["train", "test-tiny", f"out={tmp_path / 'x'}", *extra]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_the_server_defaults_to_the_models_guidance():
    from proxt2i.serve.page import page_html
    from proxt2i.serve.validation import parse_generation

    request = {"prompt": "a smiling person"}
    assert parse_generation(request, objective="prox", image_size=32, default_guidance=1.0).guidance == 1.0
    assert parse_generation(request, objective="prox", image_size=32).guidance == 4.0
    assert parse_generation({**request, "guidance": 2.5}, objective="prox", image_size=32, default_guidance=1.0).guidance == 2.5
    assert 'id="guidance" type="number" min="0" max="50" step="0.5" value="1"' in page_html("m", 32, 8, False, guidance=1.0)
