"""`proxt2i bench` on tiny random models: structure, NFE accounting, files, speedup arithmetic, bad input.
(The numbers of untrained models are meaningless: nothing here asserts quality.)"""

import json
import math

import pytest
import torch

from proxt2i.bench import BenchConfig, nfe, nfe_to_reach, run_bench, sampler_overhead, speedup
from proxt2i.cli import main
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.training.presets import resolve_config
from proxt2i.training.run import train

SCHEDULER_SAMPLERS = {"ddim", "dpm-solver++-2m", "dpm-solver++-2m-sde", "unipc", "euler-diffusers"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    prox = train(resolve_config("test-tiny", [f"out={tmp}/p", "steps=2"]), progress=False)
    score = train(resolve_config("test-tiny", [f"out={tmp}/s", "steps=2", "objective=score"]), progress=False)
    return str(prox), str(score)


def bench_args(models, out, *extra):
    return ["bench", "--prox-model", models[0], "--score-model", models[1], "--num-prompts", "4", "--reference-num", "16",
            "--out", str(out), *extra]


def test_bench_rows_nfe_and_files(models, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = main(bench_args(models, out, "--samplers", "pda-hybrid,pda-backward,ddim,dpm-solver++-2m-sde,euler-maruyama",
                         "--steps", "2,1", "--json"))
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((out / "results.json").read_text())
    rows = report["results"]
    # pda-backward is undefined at 1 and 2 steps (gamma >= 2): skipped with a note, no rows
    assert {(s["sampler"], s["steps"]) for s in report["skipped"]} == {("pda-backward", 1), ("pda-backward", 2)}
    assert all("gamma" in s["reason"] for s in report["skipped"])
    keys = {(r["sampler"], r["steps"], r["prompt_set"]) for r in rows}
    assert keys == {(s, n, p) for s in ("pda-hybrid", "ddim", "dpm-solver++-2m-sde", "euler-maruyama") for n in (1, 2)
                    for p in ("heldin", "heldout", "paraphrase")}
    for r in rows:
        assert {"sampler", "steps", "nfe", "guidance", "prompt_set", "alignment", "fd", "clip_score", "sec_per_image", "time_grid"} <= set(r)
        assert r["time_grid"] == ("diffusers" if r["sampler"] in SCHEDULER_SAMPLERS else "uniform")  # tiny models: no grid of their own
        assert r["nfe"] == 2 * r["steps"] and r["guidance"] == 4.0 and r["n"] == 4  # guidance: cond + uncond per step
        assert 0 <= r["alignment"] <= 1 and r["fd"] >= 0 and r["sec_per_image"] > 0
    assert set(report["speedup"]) == {"levels", "heldin", "heldout", "paraphrase"}
    assert report["speedup"]["heldin"]["reference_steps"] == 2
    assert set(report["speedup"]["heldin"]["alignment"]["nfe_to_target"]) == {"pda-hybrid", "ddim", "dpm-solver++-2m-sde", "euler-maruyama"}
    for name in ("results.md", "quality_vs_nfe.png", "sampler_grid.png"):
        assert (out / name).stat().st_size > 0
    md = (out / "results.md").read_text()
    assert "| pda-backward | n/a | n/a |" in md and "## heldout: Frechet distance" in md and "## Speedup" in md
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_bench_nfe_without_guidance_and_same_seeds(models):
    cfg = BenchConfig(prox_model=models[0], score_model=models[1], samplers=("ddim",), steps=(3,), guidance=1.0,
                      num_prompts=4, reference_num=16, seed=7)
    report, grid = run_bench(cfg, progress=False)
    assert [r["nfe"] for r in report["results"]] == [3, 3, 3] and nfe(3, 1.0) == 3 and nfe(3, 0.0) == 6
    # the grid cell is image 0 of the held-in set: its first prompt with seed 7, as the pipeline makes it alone
    pipe = ProxT2IPipeline.from_pretrained(models[1])
    alone = pipe(report["config"]["grid_prompt"], num_steps=3, guidance_scale=1.0, sampler="ddim", seed=7, output_type="tensor")
    assert torch.allclose(grid[("ddim", 3)], alone[0], atol=1e-5)


def test_nfe_to_reach_and_speedup_on_known_results():
    assert nfe_to_reach([(2, 0.9), (4, 1.0)], 0.95, True) == pytest.approx(2 * math.sqrt(2))  # halfway in log NFE
    assert nfe_to_reach([(2, 0.96), (4, 1.0)], 0.95, True) == 2.0  # first point already reaches it
    assert nfe_to_reach([(2, 0.5), (4, 0.6)], 0.95, True) is None
    assert nfe_to_reach([(4, 20.0), (2, 50.0), (8, 10.0)], 11.0, False) == pytest.approx(4 * 2**0.9)

    def rows(sampler, pset, align, fd):
        return [{"sampler": sampler, "steps": n, "nfe": n, "prompt_set": pset, "alignment": a, "fd": f}
                for n, a, f in zip((2, 4, 8, 16), align, fd)]

    results = (rows("ddim", "heldin", (0.5, 0.7, 0.85, 0.9), (50, 20, 10, 10))
               + rows("unipc", "heldin", (0.6, 0.8, 0.9, 1.0), (40, 12, 11, 11))
               + rows("pda-hybrid", "heldin", (0.9, 1.0, 1.0, 1.0), (10.5, 9, 9, 9))
               + rows("ddim", "heldout", (0.5, 0.6, 0.7, 0.8), (30, 20, 10, 10))
               + rows("pda-hybrid", "heldout", (0.1, 0.1, 0.1, 0.1), (30, 30, 30, 30)))
    sp = speedup(results)
    a, f = sp["heldin"]["alignment"], sp["heldin"]["fd"]
    # alignment: target 0.95 x 1.0; unipc reaches it at 8 sqrt(2), pda-hybrid at 2 sqrt(2), ddim never
    assert a["target"] == pytest.approx(0.95) and a["best_score_sampler"] == "unipc"
    assert a["nfe_to_target"]["ddim"] is None and a["speedup"] == pytest.approx(4.0)
    # FD: target 1.1 x 10; ddim reaches it at 4 * 2^0.9, unipc at 8, pda-hybrid at its first point, 2
    assert f["target"] == pytest.approx(11.0) and f["best_score_sampler"] == "ddim"
    assert f["nfe_to_target"]["unipc"] == pytest.approx(8.0)
    assert f["speedup"] == pytest.approx(4 * 2**0.9 / 2) and f["speedup_vs"]["unipc"] == pytest.approx(4.0)
    # held-out: pda-hybrid never reaches the level -> no speedup
    assert sp["heldout"]["alignment"]["speedup"] is None and sp["heldout"]["fd"]["speedup"] is None
    assert sp["heldout"]["reference_steps"] == 16


def test_overhead(models, capsys, tmp_path):
    cfg = BenchConfig(prox_model=models[0], score_model=models[1], samplers=("pda-hybrid", "pda-backward", "unipc"))
    result = sampler_overhead(cfg, steps=4, batch_sizes=(1, 2), repeats=1, devices=["cpu"])
    assert [(r["sampler"], r["batch"]) for r in result["rows"]] == [("pda-hybrid", 1), ("pda-hybrid", 2), ("unipc", 1), ("unipc", 2)]
    assert result["skipped"][0]["sampler"] == "pda-backward"
    for r in result["rows"]:
        assert r["network_calls_per_step"] == 1.0 and r["nfe"] == 8
        assert r["network_ms_per_step"] > 0 and r["overhead_ms_per_step"] >= 0 and r["images_per_s"] > 0
    assert main(bench_args(models, tmp_path, "--overhead", "--samplers", "ddim", "--repeats", "1")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "overhead.json").read_text())
    assert [r["batch"] for r in printed["rows"] if r["device"] == "cpu"] == [1, 32]


@pytest.mark.parametrize("extra, message", [
    (["--samplers", "pda-hybrid,heun"], "unknown sampler 'heun'"),
    (["--steps", "0,4"], "step counts must be integers in 1..1000"),
    (["--steps", "four"], "bad value 'four' for steps (expected comma-separated ints)"),
    (["--num-prompts", "1"], "--num-prompts must be"),
    (["--num-prompts", "257"], "--num-prompts must be an integer in 2..256"),
    (["--guidance", "-1"], "--guidance must be >= 0"),
])
def test_bad_input_is_one_line_exit_2(extra, message, tmp_path, capsys):
    rc = main(["bench", "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.startswith("proxt2i: error:") and err.count("\n") == 1


def test_model_with_the_wrong_objective(models, tmp_path, capsys):
    rc = main(["bench", "--prox-model", models[1], "--samplers", "pda-hybrid", "--out", str(tmp_path)])
    assert rc == 2 and "is a score model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def consistency_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-ct")
    return str(train(resolve_config("test-tiny", [f"out={tmp}/ct", "steps=2", "objective=score", "consistency=training"]), progress=False))


def test_few_step_models_are_families_of_their_own(models, consistency_model, tmp_path, capsys):
    """A few-step model is measured with its own sampler and guidance, labelled by its name, and the speedup
    is computed against it as well as against the score samplers."""
    import shutil

    distilled = tmp_path / "distilled"
    shutil.copytree(consistency_model, distilled)
    config = json.loads((distilled / "config.json").read_text())
    config["sampling"]["guidance"] = 1.0  # as a distilled model records it
    (distilled / "config.json").write_text(json.dumps(config))
    out = tmp_path / "bench"
    rc = main(bench_args(models, out, "--samplers", "pda-hybrid,ddim", "--few-step-models", f"{consistency_model},{distilled}",
                         "--steps", "1,2", "--prompt-sets", "heldin", "--json"))
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    ct = "ct"  # a folder is labelled by its name
    assert report["config"]["methods"] == ["pda-hybrid", "ddim", ct, "distilled"]
    few = [r for r in report["results"] if r["family"] == "few-step"]
    assert {(r["method"], r["sampler"], r["steps"], r["nfe"]) for r in few} == {
        (ct, "consistency", 1, 2), (ct, "consistency", 2, 4), ("distilled", "consistency", 1, 1), ("distilled", "consistency", 2, 2)}
    assert {r["family"] for r in report["results"] if r["method"] in ("pda-hybrid", "ddim")} == {"prox", "score"}
    align = report["speedup"]["heldin"]["alignment"]
    assert set(align["nfe_to_target"]) == {"pda-hybrid", "ddim", ct, "distilled"}
    assert align["best_few_step_model"] in (ct, "distilled", None)
    if align["nfe_to_target"]["pda-hybrid"] is not None:
        assert set(align["speedup_vs"]) <= {"ddim", ct, "distilled"}
    md = (out / "results.md").read_text()
    assert "| distilled (consistency, guidance 1, NFE 1 x steps) |" in md and "best few-step model" in md


def test_few_step_speedup_on_known_results():
    def rows(method, family, align):
        return [{"method": method, "family": family, "sampler": "x", "steps": n, "nfe": n, "prompt_set": "heldin",
                 "alignment": a, "fd": 1.0} for n, a in zip((2, 4, 8, 16), align)]

    results = (rows("ddim", "score", (0.5, 0.7, 0.85, 1.0)) + rows("pda-hybrid", "prox", (0.5, 0.95, 1.0, 1.0))
               + rows("lcm", "few-step", (0.96, 0.96, 0.96, 0.96)) + rows("ct", "few-step", (0.1, 0.2, 0.3, 0.4)))
    a = speedup(results)["heldin"]["alignment"]
    assert a["target"] == pytest.approx(0.95)  # set by the score model's samplers only, not by a few-step model
    assert a["best_few_step_model"] == "lcm" and a["nfe_to_target"]["ct"] is None
    assert a["speedup_vs_few_step"] == pytest.approx(0.5)  # the few-step model reaches the level at half pda-hybrid's NFE
    assert a["speedup_vs"]["lcm"] == pytest.approx(0.5) and "ct" not in a["speedup_vs"]


def test_a_consistency_model_given_as_the_score_model_is_refused(models, consistency_model, tmp_path, capsys):
    rc = main(["bench", "--score-model", consistency_model, "--samplers", "ddim", "--out", str(tmp_path)])
    assert rc == 2 and "--few-step-models" in capsys.readouterr().err


def test_overhead_times_few_step_models_too(models, consistency_model):
    cfg = BenchConfig(prox_model=models[0], score_model=models[1], samplers=("pda-hybrid",), few_step_models=(consistency_model,))
    result = sampler_overhead(cfg, steps=2, batch_sizes=(1,), repeats=1, devices=["cpu"])
    assert [(r["method"], r["family"], r["sampler"]) for r in result["rows"]] == [("pda-hybrid", "prox", "pda-hybrid"),
                                                                                 ("ct", "few-step", "consistency")]
