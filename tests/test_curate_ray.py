"""Curation on Ray Data (issue 22): the same output as the local engine, model stages as actor pools, and a
run killed at any point (kill -9 of the driver, or of a Ray worker) that finishes on the next start with every
input record accounted for once. Ray runs on this machine (a local cluster per process)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_tiny import save_aesthetic, save_blip_captioner
from proxt2i.cli import main
from proxt2i.curate import CurateConfig, curate
from proxt2i.data.readers import read_records
from test_curate_sources import face, sample, write_tar

SRC = Path(__file__).resolve().parents[1] / "src"
CFG = dict(min_side=16)


def env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module's in-process runs (the engine leaves a Ray it did not start running)."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def make_source(root: Path, shards=6, per=5, duplicates=True) -> Path:
    root.mkdir()
    for s in range(shards):
        members = [m for i in range(s * per, (s + 1) * per) for m in sample(f"k{i:03d}", image=face(i))]
        if duplicates and s == shards - 1:
            members += sample("k900", image=face(0))  # an exact duplicate of the first image
            members += sample("k901", image=b"garbage", ext="jpg")
        write_tar(root / f"{s:05d}.tar", members)
    return root


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "curation.json"}


def counts(report):
    return {k: report[k] for k in ("input", "kept", "dropped", "shards")}


@pytest.mark.parametrize("fmt", ["webdataset", "imagefolder"])
def test_ray_and_local_write_the_same_bytes(tmp_path, ray_session, fmt):
    src = make_source(tmp_path / "src")
    local = curate(src, tmp_path / "local", CurateConfig(**CFG, format=fmt), progress=False)
    ray_report = curate(src, tmp_path / "ray", CurateConfig(**CFG, format=fmt, engine="ray", workers=2), progress=False)
    assert snapshot(tmp_path / "local") == snapshot(tmp_path / "ray")
    assert counts(local) == counts(ray_report) and local["dropped"]["exact_duplicate"] == 1 and local["dropped"]["not_image"] == 1


def test_model_stages_run_as_actor_pools_with_the_same_captions(tmp_path, ray_session):
    src = make_source(tmp_path / "src", shards=3, per=4, duplicates=False)
    models = {"aesthetic": str(save_aesthetic(tmp_path / "aesthetic")), "captioner": str(save_blip_captioner(tmp_path / "blip"))}
    settings = dict(CFG, **models, min_aesthetic=-1e9, caption_prompt="a", max_caption_tokens=5, batch_size=3)
    local = curate(src, tmp_path / "local", CurateConfig(**settings), progress=False)
    ray_report = curate(src, tmp_path / "ray", CurateConfig(**settings, engine="ray", workers=2, model_workers=2), progress=False)
    rows = {name: list(read_records(tmp_path / name, decode=False)) for name in ("local", "ray")}
    assert [(r["key"], r["text"]) for r in rows["local"]] == [(r["key"], r["text"]) for r in rows["ray"]]
    assert all(r["text"] != r["original_text"] for r in rows["ray"]) and ray_report["recaptioned"]
    assert [r["aesthetic"] for r in rows["local"]] == pytest.approx([r["aesthetic"] for r in rows["ray"]], abs=2e-4)
    assert counts(local) == counts(ray_report) and local["kept"] == 12


def test_broken_model_folders_are_refused_before_ray_starts(tmp_path, capfd):
    src = make_source(tmp_path / "src", shards=2, per=2, duplicates=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    for flag in ("--captioner", "--aesthetic"):
        assert main(["data", "curate", str(src), "--out", str(tmp_path / "o"), "--min-side", "16", "--engine", "ray",
                     flag, str(broken), "--json"]) == 2
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "safetensors" in err[0] and flag.strip("-") in err[0], err
        assert not (tmp_path / "o").exists() and not (tmp_path / ".o.curate-work").exists()


def raise_usage_error(row):
    from proxt2i.errors import UsageError

    raise UsageError(f"part {row['part']} is bad")


def test_a_usage_error_in_a_ray_worker_comes_back_as_one_line(ray_session):
    import ray.cloudpickle

    from proxt2i.curate.engines import RayEngine, Stage
    from proxt2i.errors import UsageError

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    with RayEngine(CurateConfig(engine="ray", workers=2), 0) as engine:
        with pytest.raises(UsageError, match=r"^part \d is bad$"):
            list(engine.run([{"part": i} for i in range(3)], [Stage(raise_usage_error)]))


# --- kill -9 and resume ---------------------------------------------------------------------------------------

def run_cli(args, cwd) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "proxt2i", *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def ray_processes_of(pid: int) -> list[int]:
    """Ray worker processes running a stage (titled ray::Map...) that descend from the driver `pid` (driver ->
    raylet -> workers): only this test's run, not another test's Ray."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout.splitlines()
    procs = {int(line.split()[0]): (int(line.split()[1]), line.split(None, 2)[2]) for line in out if line.strip()}

    def descends(p):
        seen = 0
        while p in procs and seen < 20:
            if p == pid:
                return True
            p, seen = procs[p][0], seen + 1
        return False

    return [p for p, (_, args) in procs.items() if args.startswith("ray::Map") and descends(p)]


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_kill_9_of_the_driver_then_resume_accounts_for_every_record_once(tmp_path, engine):
    make_source(tmp_path / "src", shards=8, per=6)
    args = ["data", "curate", "src", "--out", "out", "--min-side", "16", "--engine", engine, "--json"]
    if engine == "ray":
        args += ["--workers", "2"]
    t0 = time.time()
    reference = json.loads(run_cli(args[:4] + ["ref"] + args[5:], tmp_path).stdout)
    duration = time.time() - t0
    rng = random.Random(f"kill-{engine}")
    for _ in range(2 if engine == "ray" else 3):
        p = subprocess.Popen([sys.executable, "-m", "proxt2i", *args], cwd=tmp_path, env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            p.wait(timeout=rng.uniform(0.3, 1.0) * duration)
        except subprocess.TimeoutExpired:
            p.kill()  # SIGKILL of the driver alone: its Ray processes notice and exit
            p.wait()
        assert not (tmp_path / "out").exists() or (tmp_path / "out" / "curation.json").is_file()  # whole or absent
        if (tmp_path / "out").exists():
            break
    if not (tmp_path / "out").exists():
        work = tmp_path / ".out.curate-work"
        left = {stage: len(list((work / stage).glob("part-*.json"))) if (work / "run.json").is_file() else 0
                for stage in ("scan", "done")}
        report = json.loads(run_cli(args, tmp_path).stdout)
        assert report["resumed_parts"] == {"scan": left["scan"], "write": left["done"]}  # what the kills left is used
    else:
        report = json.loads((tmp_path / "out" / "curation.json").read_text())
    assert counts(report) == counts(reference) and report["input"] == report["kept"] + sum(report["dropped"].values())
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "ref")
    keys = [r["key"] for r in read_records(tmp_path / "out", decode=False)]
    assert len(keys) == len(set(keys)) == reference["kept"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_kill_9_of_a_ray_worker_is_retried(tmp_path):
    src = make_source(tmp_path / "src", shards=16, per=12)
    reference = curate(src, tmp_path / "ref", CurateConfig(**CFG), progress=False)
    args = ["data", "curate", "src", "--out", "out", "--min-side", "16", "--engine", "ray", "--workers", "2", "--json"]
    p = subprocess.Popen([sys.executable, "-m", "proxt2i", *args], cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    killed, deadline = [], time.time() + 120
    while not killed and p.poll() is None and time.time() < deadline:
        for worker in ray_processes_of(p.pid):
            os.kill(worker, signal.SIGKILL)
            killed.append(worker)
            break
        time.sleep(0.02)
    out, err = p.communicate(timeout=600)
    assert killed, "no Ray worker was seen running a stage"
    assert p.returncode == 0, err[-3000:]
    report = json.loads(out)
    assert counts(report) == counts(reference)
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "ref")


def test_the_scaling_and_hash_benchmarks_run_and_tabulate(tmp_path, ray_session):
    from proxt2i.curate.bench import hashes, scaling, table

    result = scaling(num=24, size=256, shard=6, workers=[1, 2], work=tmp_path, repeats=1)
    assert result["kept"] == 24 and set(result["runs"]) == {"local", "ray-1", "ray-2"}
    assert all(r["same_bytes_as_local"] and r["scan_workers"]["images"] == 24 for r in result["runs"]["ray-2"])
    # the pool bounds the processes (with 4 small parts, one actor may take them all)
    assert result["runs"]["ray-1"][0]["scan_workers"]["processes"] == 1
    assert result["runs"]["ray-2"][0]["scan_workers"]["processes"] in (1, 2)
    assert result["speedup_vs_first"]["scan_steady_images_per_s"]["ray-1"] == 1.0
    assert "| ray-2 worker(s)" in table(result) and "Bound:" in table(result)
    h = hashes(num=6, size=64)
    assert h["256_bits"]["jpeg_q70"]["max"] < h["256_bits"]["nearest_other_image"]["median"]
    assert table(h).count("\n") == 3
