"""proxt2i.config: one mechanism for every command's settings (flags, presets, key=value, --print-config,
the command that rebuilds a config, recorded configs with legacy sentinels)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxt2i import config
from proxt2i.cli import build_parser, main
from proxt2i.config import option
from proxt2i.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "proxt2i" / "assets" / "models"


@dataclass(frozen=True)
class Demo:
    name: str = option("a", "a name")
    count: int = option(2, "how many")
    rate: float = option(0.5, "a rate")
    fast: bool = option(False, "go fast")
    sizes: tuple[int, ...] = option((1, 2), "sizes")
    grid: str | None = option(None, "a grid; none = the default", legacy="")
    limit: int | None = option(None, "a limit", legacy=0, flag="cap")


DEMO_PRESETS = {"big": Demo(count=100, fast=True)}


def _parse(argv, cls=Demo, presets=DEMO_PRESETS):
    import argparse

    p = argparse.ArgumentParser(prog="demo")
    config.add_config_arguments(p, cls, presets=presets)
    return config.config_from_args(cls, p.parse_args(argv), presets=presets)


def test_flags_overrides_presets_and_types():
    assert _parse([]) == Demo()
    assert _parse(["--count", "3", "--fast", "--sizes", "4,8", "--grid", "quadratic", "--cap", "7", "--rate", "1e-3"]) == \
        Demo(count=3, fast=True, sizes=(4, 8), grid="quadratic", limit=7, rate=1e-3)
    assert _parse(["big"]) == DEMO_PRESETS["big"]
    # preset, then flags, then key=value words, in any order on the line
    assert _parse(["big", "--no-fast", "count=5", "--name", "b", "sizes=3", "limit=none"]) == Demo(name="b", count=5, sizes=(3,))
    assert _parse(["cap=4", "grid=power:2"]) == Demo(limit=4, grid="power:2")  # the flag alias works as a key too


@pytest.mark.parametrize("argv, message", [
    (["count=x"], "bad value 'x' for count (expected int)"),
    (["--rate", "fast"], "bad value 'fast' for rate (expected finite float)"),
    (["fast=maybe"], "bad value 'maybe' for fast (expected bool)"),
    (["sizes=1,b"], "bad value '1,b' for sizes (expected comma-separated ints)"),
    (["limit=lots"], "bad value 'lots' for limit (expected int or none)"),
    (["cuont=3"], "unknown config keys ['cuont'] for Demo; valid keys: name, count"),
    (["small"], "unknown config 'small'; use a preset (big) or a .json file"),
    (["count=3", "big"], "override 'big' must look like key=value"),
])
def test_bad_values_and_keys_are_one_line_usage_errors(argv, message):
    with pytest.raises(UsageError) as err:
        _parse(argv)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_values_exit_2_with_one_line(capsys):
    assert main(["finetune", "grpo", "--steps", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["proxt2i: error: bad value 'many' for steps (expected int)"]
    assert main(["bench", "samplers=ddim", "stpes=2"]) == 2
    assert "unknown config keys ['stpes'] for BenchConfig" in capsys.readouterr().err


def test_recorded_configs_map_legacy_sentinels_to_none(tmp_path):
    assert config.config_from_dict(Demo, {"grid": "", "limit": 0, "sizes": [3, 4]}) == Demo(sizes=(3, 4))
    assert config.config_from_dict(Demo, {"grid": "uniform", "limit": 5}) == Demo(grid="uniform", limit=5)
    path = tmp_path / "demo.json"
    path.write_text(json.dumps({"count": 9, "grid": ""}))
    assert _parse([str(path), "fast=true"]) == Demo(count=9, fast=True)
    with pytest.raises(UsageError, match="unknown config keys"):
        config.config_from_dict(Demo, {"colour": "red"})
    for bad, message in (({"count": "3"}, "bad value '3' for count (expected int)"), ({"fast": 1}, "for fast (expected bool)"),
                         ({"sizes": [1, "a"]}, "for sizes (expected comma-separated ints)")):
        with pytest.raises(UsageError, match=re.escape(message)):
            config.config_from_dict(Demo, bad)
    assert config.config_from_dict(Demo, {"rate": 1}).rate == 1.0


def _commands():
    """(command words, config class, presets, how to read a config from parsed args) for every command."""
    from proxt2i.bench import PRESETS as BENCH_PRESETS, BenchConfig
    from proxt2i.cli.bench import bench_config
    from functools import partial

    from proxt2i.cli.finetune import finetune_config
    from proxt2i.curate import CurateConfig
    from proxt2i.evaluation.train import EvaluatorTrainConfig
    from proxt2i.rl.grpo import GRPORunConfig
    from proxt2i.rl.nft import NFTConfig
    from proxt2i.rl.r0 import R0Config
    from proxt2i.training.vae import VAETrainConfig

    return {
        "nft": (["finetune", "nft"], NFTConfig, partial(finetune_config, "nft")),
        "grpo": (["finetune", "grpo"], GRPORunConfig, partial(finetune_config, "grpo")),
        "r0": (["finetune", "r0"], R0Config, partial(finetune_config, "r0")),
        "bench": (["bench"], BenchConfig, bench_config),
        "train-vae": (["train-vae"], VAETrainConfig, lambda a: config.config_from_args(VAETrainConfig, a)),
        "evaluator": (["evaluator", "train", "--out", "d"], EvaluatorTrainConfig, lambda a: config.config_from_args(EvaluatorTrainConfig, a)),
        "curate": (["data", "curate", "SRC", "--out", "d"], CurateConfig, lambda a: config.config_from_args(CurateConfig, a)),
    }, BENCH_PRESETS


def _train_config(argv):
    from proxt2i.training.presets import TrainConfig, resolve_config

    args = build_parser("train").parse_args(argv)
    return resolve_config(args.config, args.overrides, config.flag_values(TrainConfig, args))


def _config_of(argv):
    """The config a `proxt2i ...` command line resolves to (without running it)."""
    if argv[0] == "train":
        return _train_config(argv)
    table, _ = _commands()
    for words, _cls, read in table.values():
        if argv[: len(words[:2])] == words[:2]:
            return read(build_parser(argv[0]).parse_args(argv))
    raise AssertionError(argv)


CHANGED = {
    "grpo": dict(reward="alignment-prob", prompts="synthfaces-heldout", steps=150, lr=5e-5, kl=0.1, reduce="mean", start_noise="shared",
                 stop_on_collapse=True, keep_checkpoints=10, out="runs/a b", time_grid="quadratic", train_steps_per_update=2,
                 weight_decay=0.01, adv_clip=3.0),
    "nft": dict(reward="alignment-prob=1,clip=0.5", beta=0.5, inner_epochs=3, step_candidates=(2, 4), reg=0.1, lr=3.25e-5),
    "r0": dict(reward="alignment-prob=1,clip=1", normalise_gradients=False, eta_min=0.5, reg=1e5, lr=1.2345678901e-4, time_grid="power:2"),
    "bench": dict(samplers=("ddim", "pda-hybrid"), steps=(2, 3), num_prompts=16, prompt_sets=("heldout",), reference_num=64,
                  evaluator="my evaluator"),
    "train-vae": dict(out="runs/v", init="synthfaces-vae", decoder_only=True, lr=5e-4, kl_weight=1e-3),
    "evaluator": dict(recogniser_steps=10, contrastive_steps=20, resize_prob=0.0, threads=2),
    "curate": dict(min_side=64, min_aspect=0.25, aesthetic="models/aesthetic", limit=10, caption_prompt="say 'hi'", format="imagefolder"),
}


@pytest.mark.parametrize("name", list(CHANGED))
@pytest.mark.parametrize("changed", [False, True])
def test_to_command_parses_back_to_the_same_config(name, changed):
    table, _ = _commands()
    words, cls, read = table[name]
    base = {"out": "runs/v"} if name == "train-vae" else {}
    cfg = cls(**{**base, **(CHANGED[name] if changed else {})})
    prog = " ".join(["proxt2i", *words])
    argv = shlex.split(config.to_command(prog, cfg))[1:]
    assert read(build_parser(argv[0]).parse_args(argv)) == cfg
    # and as key=value words
    argv = shlex.split(config.to_command(prog, cfg, overrides=True))[1:]
    assert read(build_parser(argv[0]).parse_args(argv)) == cfg


@pytest.mark.parametrize("preset", ["synthfaces-prox", "synthfaces-score", "test-tiny", "laion-face-prox-256"])
def test_train_command_parses_back_to_the_same_config(preset):
    from dataclasses import replace

    from proxt2i.training.presets import PRESETS, train_command

    for cfg in (PRESETS[preset], replace(PRESETS[preset], steps=7, init="synthfaces-prox", heads=2, default_time_grid="power:2",
                                          step_candidates=(2, 4), out="runs/x y")):
        command = train_command(cfg)
        assert _train_config(shlex.split(command)[1:]) == cfg
    assert train_command(PRESETS[preset]) == f"proxt2i train {preset}"


def test_print_config_prints_the_resolved_config_for_every_command(capsys):
    table, bench_presets = _commands()
    for name, (words, cls, _read) in table.items():
        base = {"out": "runs/v"} if name == "train-vae" else {}
        changed = {"min_side": 3} if name == "curate" else {"seed": 3}
        key, value = next(iter(changed.items()))
        assert main([*words, *(["--out", "runs/v"] if base else []), "--print-config", f"{key}={value}"]) == 0, name
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert printed == config.config_dict(cls(**base, **changed)), name
    assert main(["bench", "--quick", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == config.config_dict(bench_presets["quick"])
    assert main(["train", "test-tiny", "--steps", "3", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3


def test_sentinel_values_are_errors_not_defaults():
    from proxt2i.rl.grpo import GRPORunConfig
    from proxt2i.training.presets import resolve_config

    for bad in ("width=0", "depth=-1", "patch_size=0", "heads=0"):
        with pytest.raises(UsageError, match="must be >= 1"):
            resolve_config("test-tiny", [bad])
    with pytest.raises(UsageError, match="unknown time grid"):
        resolve_config("test-tiny", ["default_time_grid="])
    with pytest.raises(UsageError, match="must be >= 1"):
        GRPORunConfig(train_steps_per_update=0)
    assert main(["finetune", "grpo", "time_grid=", "--print-config"]) == 2


def _shipped_recipes():
    for folder in sorted(MODELS.iterdir()):
        if (folder / "config.json").exists():
            yield folder.name, json.loads((folder / "config.json").read_text())["recipe"]


def test_shipped_recipes_load_with_their_legacy_sentinels():
    from proxt2i.rl.grpo import GRPORunConfig
    from proxt2i.rl.nft import NFTConfig
    from proxt2i.training.presets import config_from_dict
    from proxt2i.training.recipe import recipe_stages

    seen = set()
    for name, recipe in _shipped_recipes():
        for stage in recipe_stages(recipe):
            if "finetune" in stage:
                algorithm = stage["finetune"]["algorithm"]
                ft = {k: v for k, v in stage["finetune"].items() if k not in ("algorithm", "chain", "chain_time_grid")}
                cfg = config.config_from_dict({"grpo": GRPORunConfig, "nft": NFTConfig}[algorithm], ft)
                assert cfg.time_grid is None  # "" meant the model's grid
                if algorithm == "grpo":
                    assert cfg.train_steps_per_update is None  # 0 meant all
                argv = shlex.split(stage["command"])
                assert _config_of(argv[1:]) == cfg  # the recorded command reruns the recorded config
                seen.add(algorithm)
            elif "config" in stage:
                cfg = config_from_dict(stage["config"])
                assert cfg.patch_size is None and cfg.heads is None and (cfg.width, cfg.depth) == (128, 5)
                assert cfg.default_time_grid == (stage["config"].get("default_time_grid") or None)
                seen.add("train")
            elif stage.get("command", "").startswith("proxt2i train-vae"):
                argv = shlex.split(stage["command"])
                assert _config_of(argv[1:]).steps == stage["steps"]
                seen.add("vae")
    assert seen == {"grpo", "nft", "train", "vae"}


def test_shipped_architectures_need_no_silent_heads_change():
    """build_network used to change heads silently when width % heads != 0; no shipped or preset config relied on it."""
    from proxt2i.models.uvit import UVIT_PRESETS
    from proxt2i.training.presets import PRESETS, config_from_dict
    from proxt2i.training.recipe import recipe_stages

    configs = list(PRESETS.values()) + [config_from_dict(st["config"]) for _, r in _shipped_recipes() for st in recipe_stages(r)
                                        if "config" in st and "finetune" not in st]
    for cfg in configs:
        width = cfg.width or UVIT_PRESETS[cfg.model].width
        assert width % (cfg.heads or UVIT_PRESETS[cfg.model].heads) == 0


def test_width_not_a_multiple_of_heads_is_an_error_naming_a_valid_heads():
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import build_network

    with pytest.raises(UsageError, match="width=30 is not a multiple of heads=4 .* set heads=2"):
        build_network(resolve_config("test-tiny", ["width=30"]), 3, 32, ["a", "face"])
    net = build_network(resolve_config("test-tiny", ["width=30", "heads=2"]), 3, 32, ["a", "face"])
    assert net.uvit.config.heads == 2


def _documented_commands():
    """Every `proxt2i train|finetune|bench|train-vae|evaluator train ...` line of the README and docs/, with its continuations."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        for line in text.splitlines():
            for m in re.finditer(r"proxt2i (?:train-vae|train|finetune (?:grpo|r0)|bench|evaluator train)\b[^`|#\n]*", line):
                command = m.group(0).strip()
                if "[" in command or "CONFIG" in command or ".json" in command or "..." in command or "--help" in command:
                    continue
                try:
                    words = shlex.split(command)
                except ValueError:
                    continue
                if any(re.fullmatch(r"[A-Z]+", w) and w not in ("DIR", "M", "R") for w in words):
                    continue  # a placeholder for a number (--kl BETA)
                if words[1] == "train" and len(words) == 2 or words[1:3] == ["evaluator", "train"] and "--out" not in words:
                    continue  # prose: "proxt2i train" alone, not a command
                out.append((path.name, words))
    return out


def test_every_documented_command_still_parses():
    commands = _documented_commands()
    assert len(commands) > 30
    for where, words in commands:
        if words[1] == "train-vae" and "--out" not in words:
            continue
        try:
            _config_of(words[1:])
        except (UsageError, SystemExit) as err:
            raise AssertionError(f"{where}: {' '.join(words)}: {err}") from None


def test_shipped_rebuild_commands_still_parse():
    """`proxt2i models` prints how to rebuild each shipped model: every configured step of it still resolves."""
    from proxt2i.shipped import SHIPPED

    steps = [shlex.split(part) for info in SHIPPED.values() for part in info["rebuild"].split("&&")]
    configured = [w for w in steps if w[1] in ("train", "train-vae", "finetune")]
    assert len(configured) >= 8
    for words in configured:
        _config_of(words[1:])
