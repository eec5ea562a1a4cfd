"""kill -9 at random moments (issue 17): every writing command leaves its target as the old complete output or
the new complete one, never a mix; the next run cleans what the killed one left and succeeds; and two
generates into one folder at once give one clear error and a consistent folder.

Each command first writes an "old" output, then is killed (SIGKILL, at seeded random moments within the time
a full run took) while replacing it with --overwrite, then rerun to the end. Runs are subprocesses of the real
CLI on tiny inputs; about a minute in all on two cores.
"""

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from proxt2i.evaluation.folder import check_folder_complete

SRC = Path(__file__).resolve().parents[1] / "src"
MODEL = ["--model", "synthfaces-prox"]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def start(args: list, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "proxt2i", *args], cwd=cwd, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_to_end(args: list, cwd: Path) -> float:
    """Run a command to the end (it must succeed); returns its wall time."""
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "proxt2i", *args], cwd=cwd, env=env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    return time.time() - t0


def kill_after(args: list, cwd: Path, delay: float) -> None:
    p = start(args, cwd)
    try:
        p.wait(timeout=delay)  # it may finish first: then the target must be the new output
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def all_bytes(snap: dict):
    return tuple(sorted(snap.items()))


def hidden(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def imagefolder_complete(target: Path) -> None:
    check_folder_complete(target)  # what `proxt2i evaluate` checks before scoring


@dataclass
class Writer:
    """A writing command: `old` writes the first output, `new` (with --overwrite) is killed, then run to the end.
    fingerprint: what must equal between two complete outputs (all bytes, unless a file records wall time)."""

    name: str
    old: list
    new: list
    target: str
    kills: int = 3
    fingerprint: Callable[[dict], object] = all_bytes
    check: Callable[[Path], None] | None = None
    setup: Callable[[Path], None] | None = None
    extra_hidden: list = field(default_factory=list)


def curate_source(tmp: Path) -> None:
    from proxt2i.data.export import export_imagefolder

    export_imagefolder(tmp / "src", num=6, size=32)


def vae_fingerprint(snap: dict):  # config.json records the wall time: the weights and the file names must match
    return sorted(snap), snap.get("autoencoder.safetensors")


def bench_fingerprint(snap: dict):  # results record seconds per image: the files and the settings must match
    return sorted(snap), json.loads(snap["results.json"])["config"] if "results.json" in snap else None


def curate_fingerprint(snap: dict):  # curation.json records the run's wall time and what it resumed: the rest must match
    report = json.loads(snap["curation.json"]) if "curation.json" in snap else None
    run_only = ("seconds", "resumed_parts", "scan_workers")
    return all_bytes({k: v for k, v in snap.items() if k != "curation.json"}), report and {k: v for k, v in report.items() if k not in run_only}


def curate_complete(target: Path) -> None:
    imagefolder_complete(target)
    json.loads((target / "curation.json").read_text())


GEN = ["generate", "--prompts", "prompts.txt", "--out", "gen", "--steps", "1", *MODEL]
SYNTH = ["data", "synthfaces", "--size", "32", "--out", "data"]
CURATE = ["data", "curate", "src", "--out", "cur", "--min-side", "16", "--format", "imagefolder"]
VAE = ["train-vae", "--out", "vae", "steps=1", "size=32", "batch=2"]
BENCH = ["bench", "--samplers", "pda-hybrid,ddim", "--steps", "1", "--num-prompts", "2", "--reference-num", "8",
         "--prompt-sets", "heldin", "--out", "bench"]
WRITERS = [
    Writer("generate", GEN + ["--num", "1"], GEN + ["--num", "6", "--seed", "5", "--overwrite"], "gen", check=imagefolder_complete),
    Writer("synthfaces", SYNTH + ["--num", "3"], SYNTH + ["--num", "40", "--seed", "1", "--overwrite"], "data", check=imagefolder_complete),
    Writer("export", ["export", "synthfaces-prox", "--out", "model"],
           ["export", "synthfaces-score", "--out", "model", "--overwrite"], "model"),
    Writer("curate", CURATE + ["--limit", "3"], CURATE + ["--overwrite"], "cur", fingerprint=curate_fingerprint, check=curate_complete,
           setup=curate_source),
    Writer("train-vae", VAE, VAE + ["seed=1", "--overwrite"], "vae", kills=2, fingerprint=vae_fingerprint),
    Writer("bench", BENCH, BENCH + ["--seed", "1", "--overwrite"], "bench", kills=1, fingerprint=bench_fingerprint),
]


@pytest.mark.parametrize("writer", WRITERS, ids=[w.name for w in WRITERS])
def test_a_kill_leaves_the_old_or_the_new_output(writer, tmp_path):
    (tmp_path / "prompts.txt").write_text("a smiling woman\na man with glasses\n")
    if writer.setup:
        writer.setup(tmp_path)
    target = tmp_path / writer.target
    duration = run_to_end(writer.old, tmp_path)
    old = writer.fingerprint(snapshot(target))
    rng = random.Random(f"kill-{writer.name}")
    seen = []
    for _ in range(writer.kills):
        kill_after(writer.new, tmp_path, rng.uniform(0.2, 1.2 * duration))
        seen.append(writer.fingerprint(snapshot(target)))
        if writer.check:
            writer.check(target)  # old or new, it is complete
    run_to_end(writer.new, tmp_path)  # the rerun cleans up after the kills and succeeds
    new = writer.fingerprint(snapshot(target))
    assert new != old
    assert all(state in (old, new) for state in seen), f"{writer.name}: a killed run left a mix of old and new files"
    assert hidden(tmp_path) == [], f"{writer.name}: temporaries left after the rerun"


def test_two_generates_into_one_folder(tmp_path):
    """One wins and writes a consistent folder; the other fails with one line (the lock, or, if the first was
    already done, the existing folder) and changes nothing."""
    (tmp_path / "prompts.txt").write_text("a smiling woman\na man with glasses\n")
    runs = [start(GEN + ["--num", "8", "--steps", "4", "--seed", str(seed)], tmp_path) for seed in (0, 100)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    err = next(err for rc, err in results if rc == 2).strip().splitlines()
    assert len(err) == 1 and ("another proxt2i process is writing" in err[0] or "--overwrite" in err[0]), err
    check_folder_complete(tmp_path / "gen")
    rows = [json.loads(line) for line in (tmp_path / "gen" / "metadata.jsonl").read_text().splitlines()]
    first_seeds = {row["seed"] - i for i, row in enumerate(rows)}
    assert len(rows) == 16 and len(first_seeds) == 1  # every row from one run
    assert hidden(tmp_path) == []
