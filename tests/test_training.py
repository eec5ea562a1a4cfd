import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.training.presets import resolve_config
from proxt2i.training.recipe import recipe_stages
from proxt2i.training.ema import ema_decay
from proxt2i.training.run import train
from proxt2i.training.schedules import lr_at


def test_overrides_and_errors(tmp_path):
    cfg = resolve_config("test-tiny", ["steps=7", "lr=0.01", "step_candidates=5,10", "objective=score"])
    assert (cfg.steps, cfg.lr, cfg.step_candidates, cfg.objective) == (7, 0.01, (5, 10), "score")
    with pytest.raises(UsageError, match="unknown config keys \\['stpes'\\]"):
        resolve_config("test-tiny", ["stpes=3"])
    with pytest.raises(UsageError, match="steps must be >= 1"):
        resolve_config("test-tiny", ["steps=0"])
    with pytest.raises(UsageError, match="bad value"):
        resolve_config("test-tiny", ["batch=many"])
    with pytest.raises(UsageError, match="unknown config"):
        resolve_config("nope")
    (tmp_path / "c.json").write_text(json.dumps({"steps": 3, "width": 16}))
    assert resolve_config(str(tmp_path / "c.json")).steps == 3
    (tmp_path / "bad.json").write_text("{steps: 3")
    with pytest.raises(UsageError, match="config file .*bad.json.* is not valid JSON"):
        resolve_config(str(tmp_path / "bad.json"))
    with pytest.raises(UsageError, match="config file .*missing.json.* not found"):
        resolve_config(str(tmp_path / "missing.json"))
    assert lr_at(0, cfg) < lr_at(10, cfg) == cfg.lr
    warm = resolve_config("test-tiny", ["ema=0.999"])
    assert ema_decay(0, warm) == 0.1 and ema_decay(90, warm) == 0.91 and ema_decay(100_000, warm) == 0.999
    assert ema_decay(0, resolve_config("test-tiny", ["ema=0.999", "ema_warmup=false"])) == 0.999


def test_lr_decay_schedules():
    # warm-up 10 steps to 1e-3, then constant / linear / cosine down to 0 at step 110
    base = ["lr=1e-3", "lr_warmup=10", "steps=110"]
    const, linear, cosine = (resolve_config("test-tiny", base + [f"lr_decay={d}"]) for d in ("constant", "linear", "cosine"))
    for cfg in (const, linear, cosine):
        assert lr_at(4, cfg) == pytest.approx(5e-4) and lr_at(10, cfg) == pytest.approx(1e-3)
    assert lr_at(109, const) == pytest.approx(1e-3)
    assert lr_at(60, linear) == pytest.approx(5e-4) and lr_at(60, cosine) == pytest.approx(5e-4)
    assert lr_at(35, cosine) > lr_at(35, linear) and lr_at(85, cosine) < lr_at(85, linear)
    lrs = [lr_at(s, linear) for s in range(10, 110)]
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and 0 < lrs[-1] < 2e-5
    with pytest.raises(UsageError, match="lr_decay must be one of constant, linear, cosine"):
        resolve_config("test-tiny", ["lr_decay=step"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "prox"
    train(resolve_config("test-tiny", [f"out={out}"]), progress=False)
    return out


def test_run_writes_checkpoints_and_model(tiny_run):
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    state = json.loads((tiny_run / "checkpoints" / "step-00000004" / "state.json").read_text())
    assert state["step"] == 4 and state["config"]["steps"] == 4
    cfg = json.loads((tiny_run / "final" / "config.json").read_text())
    assert cfg["objective"] == "prox" and cfg["uvit"]["use_lam"] is True
    assert any((tiny_run / "tensorboard").iterdir())


def test_resume_is_bit_exact(tiny_run, tmp_path):
    """Copy the step-2 checkpoint into a fresh run folder; rerunning the command must land on the same weights."""
    out = tmp_path / "resumed"
    shutil.copytree(tiny_run / "checkpoints" / "step-00000002", out / "checkpoints" / "step-00000002")
    train(resolve_config("test-tiny", [f"out={out}"]), progress=False)
    a = load_file(tiny_run / "checkpoints" / "step-00000004" / "model.safetensors")
    b = load_file(out / "checkpoints" / "step-00000004" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ea, eb = (load_file(p / "checkpoints" / "step-00000004" / "ema.safetensors") for p in (tiny_run, out))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_corrupt_checkpoint_is_one_clear_error(tiny_run, tmp_path, capsys):
    out = tmp_path / "bad"
    shutil.copytree(tiny_run / "checkpoints" / "step-00000002", out / "checkpoints" / "step-00000002")
    f = out / "checkpoints" / "step-00000002" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    assert main(["train", "test-tiny", f"out={out}", "--no-progress"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_init_from_a_trained_model(tiny_run, tmp_path):
    """init=DIR starts from that model's weights: with a vanishing learning rate the export equals the source."""
    out = tmp_path / "ft"
    train(resolve_config("test-tiny", [f"out={out}", f"init={tiny_run / 'final'}", "steps=1", "lr=1e-30"]), progress=False)
    for name in ("uvit.safetensors", "text_encoder.safetensors"):
        a, b = load_file(tiny_run / "final" / name), load_file(out / "final" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the fine-tuned model records the run it started from; so do its checkpoints and their exports
    source = json.loads((tiny_run / "final" / "config.json").read_text())["recipe"]
    recipe = json.loads((out / "final" / "config.json").read_text())["recipe"]
    assert recipe["init_recipe"] == source and [st["steps"] for st in recipe_stages(recipe)] == [source["steps"], 1]
    assert main(["export", str(out), "--out", str(tmp_path / "ft-export")]) == 0
    assert json.loads((tmp_path / "ft-export" / "config.json").read_text())["recipe"]["init_recipe"] == source
    with pytest.raises(UsageError, match="does not match"):
        train(resolve_config("test-tiny", [f"out={tmp_path / 'wide'}", f"init={tiny_run / 'final'}", "width=48"]), progress=False)
    with pytest.raises(UsageError, match="is a prox model"):
        train(resolve_config("test-tiny", [f"out={tmp_path / 'score'}", f"init={tiny_run / 'final'}", "objective=score"]), progress=False)


def test_export_a_checkpoint_as_a_model_folder(tiny_run, tmp_path, capsys):
    """The newest checkpoint's EMA export is the run's final model; --weights raw gives the optimiser's weights."""
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "ema")]) == 0
    final, ema = load_file(tiny_run / "final" / "uvit.safetensors"), load_file(tmp_path / "ema" / "uvit.safetensors")
    assert final.keys() == ema.keys() and all(torch.equal(final[k], ema[k]) for k in final)
    step2 = tiny_run / "checkpoints" / "step-00000002"
    assert main(["export", str(step2), "--out", str(tmp_path / "raw"), "--weights", "raw"]) == 0
    raw = load_file(tmp_path / "raw" / "uvit.safetensors")
    assert any(not torch.equal(raw[k], final[k]) for k in final)
    recipe = json.loads((tmp_path / "raw" / "config.json").read_text())["recipe"]
    assert (recipe["steps"], recipe["weights"]) == (2, "raw")
    from proxt2i.pipeline import ProxT2IPipeline

    assert len(ProxT2IPipeline.from_pretrained(tmp_path / "raw")(["a man"], num_steps=1, generator=torch.Generator().manual_seed(0))) == 1
    # the checkpoint carries the text vocabulary: export does not need the training data any more
    moved = tmp_path / "moved"
    shutil.copytree(step2, moved)
    state = json.loads((moved / "state.json").read_text())
    assert state["vocabulary"] and all(isinstance(w, str) for w in state["vocabulary"])
    state["config"]["data"] = f"imagefolder:{tmp_path / 'deleted'}"
    (moved / "state.json").write_text(json.dumps(state))
    assert main(["export", str(moved), "--out", str(tmp_path / "moved-out"), "--weights", "raw"]) == 0
    moved_raw = load_file(tmp_path / "moved-out" / "uvit.safetensors")
    assert all(torch.equal(moved_raw[k], raw[k]) for k in raw)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "neither a checkpoint folder" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_total_noise_target_trains_a_preconditioned_prox(tiny_run, tmp_path):
    with pytest.raises(UsageError, match="needs precondition=true"):
        resolve_config("test-tiny", ["prox_target=total-noise"])
    out = tmp_path / "tn"
    train(resolve_config("test-tiny", [f"out={out}", "precondition=true", "prox_target=total-noise", "steps=2"]), progress=False)
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["uvit"]["precondition"] is True
    weights = load_file(out / "final" / "uvit.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_chain_inputs_train_and_change_the_run(tmp_path):
    """chain_inputs=1 reaches the loop: the same seed trains other weights than matching inputs alone, finite."""
    runs = {}
    for share in ("0", "1"):
        out = tmp_path / f"chain{share}"
        train(resolve_config("test-tiny", [f"out={out}", "precondition=true", "prox_target=total-noise", "steps=2",
                                           f"chain_inputs={share}", "step_candidates=2,4"]), progress=False)
        runs[share] = load_file(out / "final" / "uvit.safetensors")
        assert json.loads((out / "final" / "config.json").read_text())["recipe"]["config"]["chain_inputs"] == float(share)
    assert all(torch.isfinite(v).all() for v in runs["1"].values())
    assert any(not torch.equal(runs["0"][k], runs["1"][k]) for k in runs["0"])


def test_score_objective_trains_without_lam(tmp_path):
    out = tmp_path / "score"
    train(resolve_config("test-tiny", [f"out={out}", "objective=score", "steps=2"]), progress=False)
    assert json.loads((out / "final" / "config.json").read_text())["uvit"]["use_lam"] is False


def two_processes(*settings) -> None:
    """`proxt2i train test-tiny SETTINGS` in 2 CPU processes (gloo) under torch.distributed.run."""
    # --standalone: the rendezvous picks its own free port (a port chosen here could be taken by a parallel test)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "proxt2i", "train", "test-tiny", *settings, "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def test_two_process_ddp_on_cpu_stays_in_sync(tmp_path):
    out = tmp_path / "ddp"
    two_processes(f"out={out}")
    recipe = json.loads((out / "final" / "config.json").read_text())["recipe"]
    assert recipe["processes"] == 2
    a, b = recipe["rank_weight_checksums"]
    assert a == b  # each rank saw different data: equal weights mean gradients were all-reduced
    # FSDP: one copy, sharded; the same updates as DDP up to the order of the reductions
    two_processes(f"out={tmp_path / 'fsdp'}", "fsdp=true")
    recipe = json.loads((tmp_path / "fsdp" / "final" / "config.json").read_text())["recipe"]
    ddp_ckpt, fsdp_ckpt = (tmp_path / run / "checkpoints" / "step-00000004" for run in ("ddp", "fsdp"))
    total = sum(v.numel() for v in load_file(ddp_ckpt / "model.safetensors").values())
    local = recipe["fsdp_local_trained_parameters"]
    assert len(local) == 2 and sum(local) == total and max(local) < 0.6 * total  # each process holds about half
    for name in ("model", "ema", "optimizer"):
        a, b = load_file(ddp_ckpt / f"{name}.safetensors"), load_file(fsdp_ckpt / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a), name
    # a killed FSDP run resumes bit for bit (from whole-tensor checkpoints, sliced again)
    resumed = tmp_path / "fsdp-resumed"
    shutil.copytree(tmp_path / "fsdp", resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-00000004")
    shutil.rmtree(resumed / "final")
    two_processes(f"out={resumed}", "fsdp=true")
    for name in ("model", "ema", "optimizer"):
        a, b = (load_file(run / "checkpoints" / "step-00000004" / f"{name}.safetensors") for run in (tmp_path / "fsdp", resumed))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # the same checkpoint is a single process's: one process extends the FSDP run
    train(resolve_config("test-tiny", [f"out={tmp_path / 'fsdp'}", "steps=5"]), progress=False)
    assert (tmp_path / "fsdp" / "checkpoints" / "step-00000005").is_dir()


def test_fsdp_needs_several_processes(tmp_path):
    with pytest.raises(UsageError, match="fsdp=true needs several processes"):
        train(resolve_config("test-tiny", [f"out={tmp_path / 'one'}", "fsdp=true"]), progress=False)


def test_imagefolder_training_with_and_without_cached_latents_is_identical(tmp_path):
    from proxt2i.data.export import export_imagefolder

    export_imagefolder(tmp_path / "data", num=6, size=32, seed=3)
    runs = {}
    for cache in ("false", "true"):
        out = tmp_path / f"cache-{cache}"
        train(resolve_config("test-tiny", [f"out={out}", f"data=imagefolder:{tmp_path / 'data'}", "steps=2", f"cache_latents={cache}"]), progress=False)
        runs[cache] = load_file(out / "checkpoints" / "step-00000002" / "model.safetensors")
    assert (tmp_path / "cache-true" / "latents.safetensors").exists()
    assert not (tmp_path / "cache-false" / "latents.safetensors").exists()
    a, b = runs["false"], runs["true"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # SynthFaces renders fresh images every step: nothing to cache
    with pytest.raises(UsageError, match="cache_latents needs"):
        resolve_config("test-tiny", ["cache_latents=true"])


def test_training_with_a_frozen_local_clip_text_encoder(tmp_path):
    from test_models_text import make_clip

    from proxt2i.pipeline import ProxT2IPipeline

    make_clip(tmp_path / "clip")
    out = tmp_path / "clip-run"
    train(resolve_config("test-tiny", [f"out={out}", "steps=2", f"text_encoder=clip:{tmp_path / 'clip'}"]), progress=False)
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["text_encoder"]["type"] == "clip" and cfg["uvit"]["text_dim"] == 32
    assert not (out / "final" / "text_encoder.safetensors").exists()  # frozen weights stay in the user's folder
    images = ProxT2IPipeline.from_pretrained(out / "final")(["a smiling woman"], num_steps=2, output_type="tensor")
    assert images.shape == (1, 3, 32, 32)


def test_export_never_replaces_what_is_not_a_model_folder(tiny_run, tmp_path, capsys):
    """A user's folder, a file or a training run at --out is refused (and left as it was); a model folder is
    replaced only with --overwrite."""
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me too")
    run_files = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    for target in (user, a_file, tiny_run):
        capsys.readouterr()
        assert main(["export", str(tiny_run), "--out", str(target), "--overwrite"]) == 2
        assert "not a proxt2i model folder" in capsys.readouterr().err
    assert (user / "notes.txt").read_text() == "keep me" and a_file.read_text() == "keep me too"
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == run_files
    model = tmp_path / "model"
    assert main(["export", str(tiny_run), "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--out", str(model), "--weights", "raw"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((model / "config.json").read_text())["recipe"]["weights"] == "ema"
    assert main(["export", str(tiny_run), "--out", str(model), "--weights", "raw", "--overwrite"]) == 0
    assert json.loads((model / "config.json").read_text())["recipe"]["weights"] == "raw"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left behind
