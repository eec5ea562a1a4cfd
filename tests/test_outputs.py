"""Outputs never clobber (issue 17): an existing non-empty target is refused (exit 2, one line, nothing
changed) unless --overwrite is given and it is that command's own output, then it is replaced as a whole;
one writer per target; a resumed run keeps its settings; evaluate refuses an inconsistent folder."""

import json
import os
from pathlib import Path

import pytest

from proxt2i import atomic
from proxt2i.atomic import clean_temporaries, marked_by, output_lock, replace_folder
from proxt2i.cli import main
from proxt2i.errors import UsageError
from proxt2i.evaluation.folder import check_folder_complete

MODEL = "synthfaces-prox"  # the shipped model: fast at one step


def snapshot(root: Path) -> dict:
    """Every file under `root` (hidden ones included) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err
    assert err.startswith("proxt2i: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# --- atomic.replace_folder and output_lock --------------------------------------------------------------------

def write_into(path, files: dict, **kwargs):
    with replace_folder(path, **kwargs) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)


def test_replace_folder_refuses_then_replaces_wholly(tmp_path):
    out = tmp_path / "out"
    write_into(out, {"marker": "1", "stale.png": "old"})
    before = snapshot(out)
    with pytest.raises(UsageError, match="--overwrite"):
        write_into(out, {"marker": "2"})
    with pytest.raises(UsageError, match="is not a"):  # overwrite, but the folder is not this command's output
        write_into(out, {"marker": "2"}, overwrite=True, is_ours=marked_by("metadata.jsonl"))
    assert snapshot(out) == before
    write_into(out, {"marker": "2"}, overwrite=True, is_ours=marked_by("marker"))
    assert snapshot(out) == {"marker": b"2"}  # the stale file went with the old folder
    assert hidden(tmp_path) == []


def test_replace_folder_accepts_an_empty_folder_and_a_trailing_slash(tmp_path):
    (tmp_path / "g").mkdir()
    write_into(f"{tmp_path / 'g'}/", {"a": "1"})  # --out g/ writes the folder g, not next to it
    assert snapshot(tmp_path) == {"g/a": b"1"}


def test_replace_folder_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(UsageError, match="is not a"):
        write_into(tmp_path / "f", {"a": "1"}, overwrite=True)
    assert (tmp_path / "f").read_text() == "mine"


def test_an_error_inside_leaves_the_old_folder(tmp_path):
    out = tmp_path / "out"
    write_into(out, {"a": "old"})
    with pytest.raises(RuntimeError):
        with replace_folder(out, overwrite=True) as tmp:
            (tmp / "a").write_text("new")
            raise RuntimeError("killed")
    assert snapshot(out) == {"a": b"old"} and hidden(tmp_path) == []


def test_swap_without_renameat2(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    write_into(out, {"a": "old"})
    write_into(out, {"b": "new"}, overwrite=True)
    assert snapshot(out) == {"b": b"new"} and hidden(tmp_path) == []


def test_leftovers_of_a_killed_writer_are_cleaned_and_a_half_swap_is_undone(tmp_path):
    out = tmp_path / "out"
    (tmp_path / ".out.tmp-abc").mkdir()
    (tmp_path / ".out.tmp-abc" / "half.png").write_text("x")
    old = tmp_path / ".out.old-xyz"  # killed between the two renames of a fallback swap: `out` is gone
    old.mkdir()
    (old / "a").write_text("old")
    clean_temporaries(out)
    assert snapshot(out) == {"a": b"old"} and hidden(tmp_path) == []


def test_a_second_writer_fails_at_once_and_a_stale_lock_file_does_not_block(tmp_path):
    out = tmp_path / "out"
    with output_lock(out):
        with pytest.raises(UsageError, match="another proxt2i process is writing"):
            write_into(out, {"a": "1"})
    assert hidden(tmp_path) == []
    (tmp_path / ".out.lock").write_text("")  # what a kill -9 leaves: the file, without the kernel's lock
    write_into(out, {"a": "1"})
    assert snapshot(out) == {"a": b"1"} and hidden(tmp_path) == []


def test_a_name_near_the_length_limit(tmp_path):
    out = tmp_path / ("n" * 250)
    write_into(out, {"a": "1"})
    write_into(out, {"a": "2"}, overwrite=True)
    assert (out / "a").read_text() == "2" and hidden(tmp_path) == []


# --- the commands ------------------------------------------------------------------------------------------------

@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a smiling woman\na man with glasses\n")
    return path


def generate(prompts, out, *extra):
    return main(["generate", "--prompts", str(prompts), "--out", str(out), "--model", MODEL, "--steps", "1", "--num", "1", *extra])


def test_generate_folder_refuses_overwrites_and_leaves_no_stale_images(tmp_path, prompts, capsys):
    out = tmp_path / "gen"
    assert generate(prompts, f"{out}/") == 0 and sorted(os.listdir(out)) == ["00000.png", "00001.png", "metadata.jsonl"]
    before = snapshot(out)
    capsys.readouterr()
    assert generate(prompts, out, "--seed", "3") == 2
    one_line_error(capsys, "--overwrite")
    assert snapshot(out) == before
    prompts.write_text("a smiling woman\n")  # fewer prompts: the rerun must not leave 00001.png behind
    assert generate(prompts, out, "--seed", "3", "--overwrite") == 0
    assert sorted(os.listdir(out)) == ["00000.png", "metadata.jsonl"]
    assert json.loads((out / "metadata.jsonl").read_text())["seed"] == 3
    check_folder_complete(out)
    assert hidden(tmp_path) == []


def test_overwrite_never_replaces_a_users_folder(tmp_path, prompts, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    commands = [
        ["generate", "--prompts", str(prompts), "--model", MODEL, "--steps", "1", "--num", "1"],
        ["data", "synthfaces", "--num", "2", "--size", "32"],
        ["train-vae", "steps=1", "size=32", "batch=2"],
        ["evaluator", "train", "--recogniser-steps", "1", "--contrastive-steps", "1"],
        ["bench", "--num-prompts", "2"],
    ]
    for command in commands:
        assert main([*command, "--out", str(mine), "--overwrite"]) == 2, command
        one_line_error(capsys, "refusing to replace it")
    assert snapshot(mine) == {"notes.txt": b"keep me"} and hidden(tmp_path) == []


def test_generate_single_prompt_files(tmp_path, capsys):
    prefix = tmp_path / "face"
    args = ["generate", "a smiling woman", "--model", MODEL, "--steps", "1", "--num", "2", "--out", str(prefix)]
    assert main(args) == 0
    names = ["face_00.png", "face_01.png", "face_grid.png"]
    assert sorted(os.listdir(tmp_path)) == names
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(args + ["--seed", "1"]) == 2
    one_line_error(capsys, "face_00.png exists", "--overwrite")
    assert snapshot(tmp_path) == before
    assert main(args + ["--seed", "1", "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == names and snapshot(tmp_path) != before


def test_synthfaces_export_refuses_then_replaces(tmp_path, capsys):
    out = tmp_path / "data"
    base = ["data", "synthfaces", "--num", "3", "--size", "32", "--out", str(out)]
    assert main(base) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(base + ["--seed", "1"]) == 2
    one_line_error(capsys, "--overwrite")
    assert snapshot(out) == before
    assert main(["data", "synthfaces", "--num", "2", "--size", "32", "--format", "webdataset", "--out", str(out), "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["shard-000000.tar"] and hidden(tmp_path) == []


def test_data_grid_refuses_an_existing_file(tmp_path, capsys):
    path = tmp_path / "grid.png"
    path.write_bytes(b"mine")
    assert main(["data", "grid", "--out", str(path), "--rows", "1", "--cols", "1", "--size", "32"]) == 2
    one_line_error(capsys, "--overwrite")
    assert path.read_bytes() == b"mine"
    assert main(["data", "grid", "--out", str(path), "--rows", "1", "--cols", "1", "--size", "32", "--overwrite"]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_curate_refuses_then_replaces(tmp_path, capsys):
    from proxt2i.data.export import export_imagefolder

    export_imagefolder(tmp_path / "src", num=4, size=32)
    out = tmp_path / "cur"
    base = ["data", "curate", str(tmp_path / "src"), "--out", str(out), "--min-side", "16", "--json"]
    assert main(base) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(base + ["--limit", "2"]) == 2
    one_line_error(capsys, "--overwrite")
    assert snapshot(out) == before
    assert main(base + ["--limit", "2", "--overwrite"]) == 0
    assert json.loads((out / "curation.json").read_text())["input"] == 2 and hidden(tmp_path) == []


def test_train_vae_refuses_before_training_then_replaces(tmp_path, capsys):
    out = tmp_path / "vae"
    base = ["train-vae", "--out", str(out), "steps=1", "size=32", "batch=2"]
    assert main(base) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(base + ["seed=1"]) == 2
    one_line_error(capsys, "--overwrite")
    assert snapshot(out) == before
    assert main(base + ["seed=1", "--overwrite"]) == 0
    assert snapshot(out) != before and sorted(os.listdir(out)) == ["autoencoder.safetensors", "config.json"]


# --- training runs ----------------------------------------------------------------------------------------------

def test_keep_checkpoints_must_keep_one():
    from proxt2i.training.presets import resolve_config

    for bad in ("-1", "0"):
        with pytest.raises(UsageError, match="keep_checkpoints must be >= 1"):
            resolve_config("test-tiny", [f"keep_checkpoints={bad}"])


def test_a_resumed_run_keeps_its_settings_but_may_grow(tmp_path):
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import train

    out = tmp_path / "run"
    train(resolve_config("test-tiny", [f"out={out}", "steps=2"]), progress=False)
    with pytest.raises(UsageError, match=r"was started with lr=.*pass the run's own settings"):
        train(resolve_config("test-tiny", [f"out={out}", "steps=2", "lr=0.5"]), progress=False)
    train(resolve_config("test-tiny", [f"out={out}", "steps=4", "log_every=2"]), progress=False)  # extend: allowed
    assert json.loads((out / "final" / "config.json").read_text())["recipe"]["steps"] == 4


def test_check_resume_config_ignores_only_the_free_settings(tmp_path):
    from proxt2i.training.checkpoint import check_resume_config

    ckpt = tmp_path / "run" / "checkpoints" / "step-00000002"
    saved = {"lr": 1e-3, "steps": 2, "eval_every": 0, "group": 8, "out": "a"}
    check_resume_config(ckpt, saved, {**saved, "steps": 9, "eval_every": 5, "out": "b", "new_field": 1})
    with pytest.raises(UsageError, match=r"lr=0.001, not 1.0 \(and 1 more"):
        check_resume_config(ckpt, saved, {**saved, "group": 4, "lr": 1.0})


# --- evaluate refuses an inconsistent folder -------------------------------------------------------------------

def test_evaluate_refuses_an_incomplete_or_mixed_folder(tmp_path, prompts, capsys):
    out = tmp_path / "gen"
    assert generate(prompts, out) == 0
    meta = out / "metadata.jsonl"
    rows = meta.read_text().splitlines()
    (out / "00007.png").write_bytes((out / "00000.png").read_bytes())  # an image of another run
    with pytest.raises(UsageError, match=r"1 image\(s\) that no metadata.jsonl row names \(first: 00007.png\)"):
        check_folder_complete(out)
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    one_line_error(capsys, "not a complete imagefolder")
    (out / "00007.png").unlink()
    meta.write_text("\n".join([rows[0], rows[0], rows[1]]) + "\n")
    with pytest.raises(UsageError, match=r"1 image\(s\) named on more than one metadata.jsonl line \(first: 00000.png\)"):
        check_folder_complete(out)
    meta.write_text(rows[0] + "\n")
    with pytest.raises(UsageError, match=r"first: 00001.png"):
        check_folder_complete(out)
    (out / ".00001.png.x.tmp.png").write_bytes(b"")  # an unfinished write's temporary is not an image
    meta.write_text("\n".join(rows) + "\n")
    check_folder_complete(out)


def test_bench_refuses_then_replaces_keeping_overhead_json(tmp_path, capsys):
    out = tmp_path / "bench"
    base = ["bench", "--samplers", "pda-hybrid", "--steps", "1", "--num-prompts", "2", "--reference-num", "8",
            "--prompt-sets", "heldin", "--guidance", "1", "--json", "--out", str(out)]
    out.mkdir()
    (out / "overhead.json").write_text("{}")  # what `bench --overhead` wrote there earlier
    capsys.readouterr()
    assert main(base) == 2
    one_line_error(capsys, "--overwrite")
    assert snapshot(out) == {"overhead.json": b"{}"}
    assert main(base + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["overhead.json", "quality_vs_nfe.png", "results.json", "results.md", "sampler_grid.png"]
    assert (out / "overhead.json").read_text() == "{}" and hidden(tmp_path) == []


@pytest.mark.parametrize("command", [
    ["generate", "a smiling woman", "--model", MODEL, "--compare-steps", "1", "--out"],
    ["toy", "--steps", "3", "--num-samples", "200", "--plot"],
], ids=["compare-steps", "toy-plot"])
def test_single_figure_outputs_refuse_an_existing_file(command, tmp_path, capsys):
    path = tmp_path / "figure.png"
    path.write_bytes(b"mine")
    assert main([*command, str(path)]) == 2
    one_line_error(capsys, "--overwrite")
    assert path.read_bytes() == b"mine"
    assert main([*command, str(path), "--overwrite"]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG" and hidden(tmp_path) == []
