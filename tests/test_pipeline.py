import json

import pytest
import torch

from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.pipeline import ProxT2IPipeline, sample_latents
from proxt2i.samplers.guidance import guided_model
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train


def test_generation_is_deterministic_and_batch_independent(model_dir):
    import proxt2i

    assert proxt2i.ProxT2IPipeline is ProxT2IPipeline  # the diffusers-style top-level import
    pipe = proxt2i.ProxT2IPipeline.from_pretrained(model_dir)
    torch.nn.init.normal_(pipe.net.uvit.final_conv.weight, std=0.2)
    prompts = ["a smiling person with red hair", "a sad person with a beard", "a person wearing a cap"]
    a = pipe(prompts, num_steps=3, seed=5, output_type="tensor")
    b = pipe(prompts, num_steps=3, seed=5, output_type="tensor")
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    alone = pipe(prompts[1:2], num_steps=3, seed=6, output_type="tensor")  # image 1 of the batch uses seed 5 + 1
    assert torch.allclose(alone[0], a[1], atol=1e-5)
    assert not torch.equal(pipe(prompts, num_steps=3, seed=9, output_type="tensor"), a)
    images = pipe("a smiling person", num_steps=2)
    assert images[0].size == (32, 32)


def test_guidance_formula_on_mock_network():
    calls = []

    def net(x, t, lam, prompts):
        calls.append(list(prompts))
        cond = torch.tensor([0.0 if p == "" else 1.0 for p in prompts])[:, None]
        return cond + 0 * x

    x, t, lam = torch.zeros(2, 1), torch.full((2,), 0.5), torch.full((2,), 0.25)
    prox = guided_model(net, "prox", ["a", "b"], guidance_scale=3.0)
    # eps_c = 1, eps_u = 0 -> eps_w = 3; prox = y - sqrt(lam) * 3
    assert torch.allclose(prox(x, t, lam), torch.full((2, 1), -1.5))
    assert calls[-1] == ["a", "b", "", ""]  # one batched call: cond then uncond
    assert torch.allclose(guided_model(net, "prox", ["a", "b"], 1.0)(x, t, lam), torch.full((2, 1), -0.5))
    assert calls[-1] == ["a", "b"]  # w = 1: the conditional model alone
    only_late = guided_model(net, "prox", ["a", "b"], 3.0, guidance_interval=(0.6, 1.0))
    assert torch.allclose(only_late(x, t, lam), torch.full((2, 1), -0.5))  # t outside the interval: w = 1


def test_bad_inputs(model_dir, tmp_path):
    pipe = ProxT2IPipeline.from_pretrained(model_dir)
    with pytest.raises(UsageError, match="empty prompt"):
        pipe([" "])
    with pytest.raises(UsageError, match="steps"):
        pipe(["a person"], num_steps=0)
    with pytest.raises(UsageError, match="steps"):
        pipe(["a person"], num_steps=10**6)
    with pytest.raises(UsageError, match="guidance"):
        pipe(["a person"], guidance_scale=-1.0)
    with pytest.raises(UsageError, match="needs a score model"):
        pipe(["a person"], sampler="euler-maruyama")
    with pytest.raises(UsageError, match="not found"):
        ProxT2IPipeline.from_pretrained(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    w = broken / "uvit.safetensors"
    w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    with pytest.raises(UsageError, match="corrupt or truncated"):
        ProxT2IPipeline.from_pretrained(broken)
    w.unlink()
    with pytest.raises(UsageError, match="missing weights"):
        ProxT2IPipeline.from_pretrained(broken)
    cfg = json.loads((model_dir / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**cfg, "colour": 1}))
    with pytest.raises(UsageError, match="unknown keys"):
        ProxT2IPipeline.from_pretrained(broken)


def test_generate_cli_layouts_and_errors(model_dir, tmp_path, capsys):
    assert main(["generate", "a smiling person", "--model", str(model_dir), "--num", "2", "--steps", "2", "--out", str(tmp_path / "one" / "img")]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["img_00.png", "img_01.png", "img_grid.png"]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a smiling person\n\na person with glasses\n")
    assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--num", "1", "--steps", "2", "--out", str(tmp_path / "folder")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "folder" / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["00000.png", "00001.png"] and rows[1]["text"] == "a person with glasses"
    assert {"seed", "steps", "sampler", "guidance"} <= set(rows[0]) and rows[0]["sampler"] == "pda-hybrid"
    assert rows[0]["time_grid"] == "uniform"  # a model folder without sampling defaults
    assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--compare-steps", "1,2", "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp.png").stat().st_size > 0
    capsys.readouterr()
    for bad in (["generate", "", "--model", str(model_dir)], ["generate", "x", "--steps", "0", "--model", str(model_dir)],
                ["generate", "x", "--guidance", "-2", "--model", str(model_dir)], ["generate", "--prompts", str(tmp_path / "none.txt")],
                ["generate", "x", "--model", str(tmp_path / "nomodel")], ["generate", "x", "--model", "synthfaces-nonexistent"],
                ["generate", "x", "--model", str(model_dir), "--time-grid", "cubic"],
                ["generate", "x", "--model", str(model_dir), "--time-grid", "power:-1"]):
        assert main(bad) == 2, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("proxt2i: error:"), err


def test_time_grid_is_the_models_default_or_uniform(tmp_path):
    """A model's config.json may name the grid its sampler walks ("sampling": {"time_grid": {...}}, set by
    training's default_time_grid); without it the grid is uniform; an explicit time_grid wins; the walk
    is pda_sample on that grid; diffusers samplers refuse a grid."""
    from proxt2i.models.conditional import TextMemo
    from proxt2i.samplers.pda import pda_sample
    from proxt2i.schedule import time_grid

    plain = train(resolve_config("test-tiny", [f"out={tmp_path / 'u'}", "steps=1"]), progress=False)
    quad = train(resolve_config("test-tiny", [f"out={tmp_path / 'q'}", "steps=1", "default_time_grid=quadratic"]), progress=False)
    assert "sampling" not in json.loads((plain / "config.json").read_text())
    assert json.loads((quad / "config.json").read_text())["sampling"] == {"time_grid": {"pda-hybrid": "quadratic"}}
    pipe_u, pipe_q = ProxT2IPipeline.from_pretrained(plain), ProxT2IPipeline.from_pretrained(quad)
    assert pipe_u.time_grid_for() == "uniform" and pipe_q.time_grid_for() == "quadratic"
    assert pipe_q.time_grid_for("pda-hybrid", "power:1.5") == "power:1.5" and pipe_q.time_grid_for("pda-backward") == "uniform"
    torch.nn.init.normal_(pipe_q.net.uvit.final_conv.weight, std=0.2)
    prompts = ["a smiling person with red hair", "a person wearing a cap"]
    default = pipe_q(prompts, num_steps=3, seed=0, output_type="tensor")
    assert torch.equal(default, pipe_q(prompts, num_steps=3, seed=0, output_type="tensor", time_grid="quadratic"))
    assert not torch.equal(default, pipe_q(prompts, num_steps=3, seed=0, output_type="tensor", time_grid="uniform"))
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    x_T = torch.stack([torch.randn(pipe_q.latent_shape, generator=g) for g in gens])
    with torch.no_grad():
        lat = pda_sample(guided_model(TextMemo(pipe_q.net), "prox", prompts, 4.0), x_T, time_grid(3, "quadratic"), mode="hybrid", generator=gens)
        by_hand = pipe_q.autoencoder.decode(lat).clamp(0, 1)
    assert torch.allclose(default, by_hand, rtol=1e-5, atol=1e-4)
    with pytest.raises(UsageError, match="diffusers' own timesteps"):
        sample_latents(pipe_q.net, "score", prompts, pipe_q.latent_shape, 3, sampler="ddim", time_grid="uniform")
    with pytest.raises(UsageError, match="default_time_grid: unknown time grid"):
        resolve_config("test-tiny", ["default_time_grid=cubic"])


def test_shipped_prox_model_walks_the_quadratic_grid():
    assert ProxT2IPipeline.from_pretrained("synthfaces-prox").time_grid_for() == "quadratic"
    assert ProxT2IPipeline.from_pretrained("synthfaces-score").time_grid_for() == "uniform"


def test_the_schedule_comes_from_config_json(model_dir, tmp_path):
    """config.json "schedule" is honoured (a different beta_max gives different images) or refused."""
    import shutil

    from proxt2i.models.io import read_model_config

    base = ProxT2IPipeline.from_pretrained(model_dir)
    torch.nn.init.normal_(base.net.uvit.final_conv.weight, std=0.2)
    assert read_model_config(model_dir)["schedule"] == {"type": "vp", "beta_min": 0.1, "beta_max": 20.0}
    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["schedule"]["beta_max"] = 10.0
    (other / "config.json").write_text(json.dumps(cfg))
    pipe = ProxT2IPipeline.from_pretrained(other)
    pipe.net.uvit.final_conv.weight.data.copy_(base.net.uvit.final_conv.weight)
    assert pipe.schedule.beta_max == 10.0
    a = base(["a smiling person"], num_steps=3, output_type="tensor")
    assert not torch.allclose(a, pipe(["a smiling person"], num_steps=3, output_type="tensor"))
    for bad, match in (({"type": "cosine"}, "unknown schedule type"), ({"type": "vp", "beta_max": "x"}, "finite number"),
                       ({"type": "vp", "beta_min": 5.0, "beta_max": 1.0}, "beta_min <= beta_max"),
                       ({"type": "vp", "beta_mx": 1.0}, "unknown schedule keys")):
        cfg["schedule"] = bad
        (other / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(UsageError, match=match):
            ProxT2IPipeline.from_pretrained(other)
