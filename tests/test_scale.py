"""The scale check: the paper stack through the user's path, shrunk here (the true size is the slow test)."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.scale import check
from proxt2i.scale.check import resolve_scale_config, run_scale_check
from proxt2i.scale.components import stack

STAGES = {"build", "data", "train", "resume", "export", "generate", "grpo"}


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory):
    """(OUT, record) of one shrunk scale check."""
    out = tmp_path_factory.mktemp("scale") / "sc"
    return out, run_scale_check(resolve_scale_config("shrunk", [f"out={out}"]), progress=False, log=lambda s: None)


def test_shrunk_stack_runs_every_stage_and_resumes_bit_for_bit(shrunk):
    out, record = shrunk
    assert set(record["stages"]) == STAGES and json.loads((out / "scale_check.json").read_text())["stages"].keys() == STAGES
    s = record["stages"]
    assert s["resume"]["bit_exact"] and s["resume"]["tensors_equal"] == {"model": True, "ema": True, "optimizer": True}
    assert s["train"]["steps"] == 2 and len(s["resume"]["seconds_per_step"]) == 1
    assert s["generate"]["finite"] and s["generate"]["image"] == [3, 32, 32] and (out / "sample.png").stat().st_size > 0
    assert [e.get("step") for e in s["grpo"]["log"]][-1] == 1
    assert {c["class"] for c in record["components"].values()} == {"AutoencoderKL", "CLIPTextModel", "T5EncoderModel"}
    assert all(record["parameters"][name] == c["parameters"] for name, c in record["components"].items())
    # the frozen text encoders live in their own folders: a checkpoint holds the U-ViT only
    keys = load_file(out / "run" / "checkpoints" / "step-00000002" / "model.safetensors").keys()
    assert keys and all(k.startswith("uvit.") for k in keys)
    # what was trained loads as a user's model folder naming the local weights folders
    cfg = json.loads((out / "run" / "final" / "config.json").read_text())
    assert cfg["autoencoder"] == {"type": "diffusers_kl", "path": str(out / "models" / "sd3.5-vae")}
    assert cfg["text_encoder"]["type"] == "concat" and cfg["text_encoder"]["second"]["max_length"] == 12
    # a rerun reuses the models that are there and replaces the runs
    again = run_scale_check(resolve_scale_config("shrunk", [f"out={out}", "grpo=false", "dtype=bfloat16"]), progress=False, log=lambda s: None)
    assert again["stages"]["build"]["reused"] == ["sd3.5-vae", "metaclip-h14", "t5-xl"] and "grpo" not in again["stages"]
    assert again["stages"]["resume"]["bit_exact"] and again["stages"]["train"]["mixed_precision"] == "bf16"
    assert again["components"]["t5-xl"]["dtype"] == "bfloat16" and again["stages"]["generate"]["finite"]


def test_a_models_folder_of_another_configuration_is_refused_before_any_work(tmp_path):
    models = tmp_path / "models" / "t5-xl"
    models.mkdir(parents=True)
    (models / "config.json").write_text(json.dumps({"d_model": 4096, "num_layers": 24}))
    with pytest.raises(UsageError, match="d_model=4096"):
        run_scale_check(resolve_scale_config("shrunk", [f"out={tmp_path / 'out'}", f"models={tmp_path / 'models'}"]), log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_too_little_memory_is_refused_with_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "available_gib", lambda device: 1e-6)
    with pytest.raises(UsageError, match=r"needs about .* GiB .* has 0.0 GiB free"):
        run_scale_check(resolve_scale_config("shrunk", [f"out={tmp_path / 'out'}"]), log=lambda s: None)
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(check, "available_gib", lambda device: 1000.0)  # the true size passes the memory check, not the disk
    monkeypatch.setattr(check.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 2**30})())
    with pytest.raises(UsageError, match=r"writes about 39 GiB .* 1 GiB free"):
        run_scale_check(resolve_scale_config("paper-256", [f"out={tmp_path / 'out'}"]), log=lambda s: None)
    assert not (tmp_path / "out").exists()


def test_true_size_estimate_matches_the_public_parameter_counts(capsys):
    est = check.estimate(resolve_scale_config("paper-256"), stack("xl"))
    p = est["parameters"]
    assert round(p["sd3.5-vae"] / 1e6, 1) == 83.8 and round(p["metaclip-h14"] / 1e6) == 353 and round(p["t5-xl"] / 1e6) == 1224
    assert 500e6 < p["uvit"] < 520e6 and est["uvit_tokens"] == 2 + 154 + 256
    assert main(["scale-check", "paper-512", "t5=xxl", "--estimate"]) == 0
    big = json.loads(capsys.readouterr().out)
    assert big["uvit_tokens"] == 2 + 154 + 1024 and big["estimate_gib"]["total"] > est["estimate_gib"]["total"]


def test_bad_settings_and_a_foreign_out_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("user data")
    for argv in (["scale-check", "t5=huge"], ["scale-check", "size=medium"], ["scale-check", "train_steps=1"],
                 ["scale-check", "shrunk", f"out={tmp_path}"], ["scale-check", "shrunk", "device=cuda:7"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("proxt2i: error:"), (argv, err)
    assert (tmp_path / "mine.txt").read_text() == "user data"


def test_throughput_script_on_the_shrunk_stack(shrunk, tmp_path):
    from proxt2i.scale import throughput

    out, _ = shrunk
    assert throughput.main(["--models", str(out / "models"), "--out", str(tmp_path / "t.json"), "--shrunk", "--device", "cpu",
                            "--dtype", "float32", "--batch", "2", "--sizes", "256", "--no-compile"]) == 0
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert [(r["sampler"], r["steps"]) for r in rows if r["uvit"] == "paper"] == throughput.RUNS
    assert {r["uvit"] for r in rows} == {"paper", "synthfaces-prox-grpo", "synthfaces-score"}
    assert all(r["images_per_second"] > 0 for r in rows)
    with pytest.raises(SystemExit, match="no sd3.5-vae"):
        throughput.main(["--models", str(tmp_path), "--out", str(tmp_path / "u.json"), "--shrunk"])


@pytest.mark.slow
def test_true_size_paper_stack_on_this_machine(tmp_path):
    """About 15 minutes on 2 CPU cores, 17.7 GiB of memory and 42 GiB of disk: the real sizes, every stage (docs/scale.md)."""
    record = run_scale_check(resolve_scale_config("paper-256", [f"out={tmp_path / 'sc'}"]), progress=False, log=print)
    shutil.rmtree(tmp_path / "sc")  # 42 GiB: not left for pytest's kept temporary folders
    assert set(record["stages"]) == STAGES and record["stages"]["resume"]["bit_exact"]
    assert record["components"]["t5-xl"]["parameters"] > 1.2e9 and record["stages"]["generate"]["image"] == [3, 256, 256]
    assert torch.isfinite(torch.tensor(record["stages"]["grpo"]["log"][0]["reward_mean"]))


def test_shards_for_sizes_past_the_renderer_are_rendered_at_its_largest(tmp_path):
    record = check.write_shards(resolve_scale_config("paper-512", ["images=2"]), tmp_path, 512)
    assert record == {"images": 2, "size": 256, "shards": 2}  # training resizes them to 512


def test_the_gpu_script_runs_every_part_in_its_cpu_check_mode(tmp_path):
    """docs/gpu/run.sh with CHECK=1: the same commands, shrunk, on the CPU, so the script cannot rot unseen."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CHECK": "1", "WORK": str(tmp_path / "work"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", str(root / "docs" / "gpu" / "run.sh"), str(tmp_path / "out")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    parts = (tmp_path / "out" / "parts.txt").read_text().splitlines()
    assert [p.split(":")[0] for p in parts] == ["scale_check_256", "scale_check_512", "throughput"]
    assert all(": rc 0 " in p for p in parts), parts
    for name in ("scale_check_256.json", "scale_check_512.json", "throughput.json"):
        assert json.loads((tmp_path / "out" / name).read_text())
    assert len(list((tmp_path / "out").iterdir())) <= 8  # what the device tool brings back: at most 8 files
