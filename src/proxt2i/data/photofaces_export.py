"""`data photofaces`: write PhotoFaces items as webdataset shards or an imagefolder, resumably.

The unit of work is a shard of `shard_size` items. The run lives in .OUT.photofaces-work beside OUT
(run.json: the settings; out/: the shards or images being built; parts/: an imagefolder's finished
shards' metadata lines). A killed run started again with the same command skips every finished shard;
other settings on an unfinished run are refused (or discarded with `restart`). When every shard is done,
OUT/photofaces.json is written last and out/ is swapped into OUT at once.

Captions are the placeholder "a photo of a person": the real captions come from the face readers
(`data curate --face-captions`), as LAION-Face-T2I recaptioned its photos. Each item's JSON holds its
draw (index, seed, psi, crop) so it can be rebuilt.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from ..atomic import (atomic_path, atomic_write_json, check_output_folder, clean_temporaries, marked_by, output_lock,
                      sibling_stem, swap_into_place, usual_permissions)
from ..errors import UsageError, read_json
from .export import FORMATS, add_tar_member, png_bytes
from .photofaces import LICENCE, PLACEHOLDER_CAPTION, PhotoFaceGenerator, check_photo_settings, draw_item

MANIFEST = "photofaces.json"
WHAT = f"PhotoFaces export ({MANIFEST})"
WORK_TAG = ".photofaces-work"


def shard_ranges(num: int, shard_size: int) -> list[range]:
    return [range(first, min(num, first + shard_size)) for first in range(0, num, shard_size)]


def _key(index: int) -> str:
    return f"{index:08d}"


def _write_shard(gen: PhotoFaceGenerator, work: Path, fmt: str, shard: int, items: range, settings: dict,
                 progress: Callable[[int], None] | None) -> None:
    out, seed, size, psi = work / "out", settings["seed"], settings["size"], settings["psi"]
    if fmt == "webdataset":
        with atomic_path(out / f"shard-{shard:06d}.tar") as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in items:
                item = draw_item(seed, i)
                add_tar_member(tar, f"{_key(i)}.png", png_bytes(gen.image(item, size, psi)))
                add_tar_member(tar, f"{_key(i)}.txt", PLACEHOLDER_CAPTION.encode())
                add_tar_member(tar, f"{_key(i)}.json", json.dumps(item.meta(seed, psi)).encode())
                if progress:
                    progress(1)
        return
    lines = []
    for i in items:
        item = draw_item(seed, i)
        name = f"{_key(i)}.png"
        with atomic_path(out / name) as tmp:
            Path(tmp).write_bytes(png_bytes(gen.image(item, size, psi)))
        lines.append(json.dumps({"file_name": name, "text": PLACEHOLDER_CAPTION, **item.meta(seed, psi)}))
        if progress:
            progress(1)
    with atomic_path(work / "parts" / f"part-{shard:06d}.jsonl") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def _shard_done(work: Path, fmt: str, shard: int) -> bool:
    if fmt == "webdataset":
        return (work / "out" / f"shard-{shard:06d}.tar").is_file()
    return (work / "parts" / f"part-{shard:06d}.jsonl").is_file()


_WORKER: dict = {}


def _worker_init(threads: int | None) -> None:
    _WORKER["gen"] = PhotoFaceGenerator(threads)


def _worker_shard(work: str, fmt: str, shard: int, items: range, settings: dict) -> int:
    _write_shard(_WORKER["gen"], Path(work), fmt, shard, items, settings, None)
    return len(items)


def _open_work(out: Path, settings: dict, restart: bool) -> Path:
    work = out.parent / f"{sibling_stem(out)}{WORK_TAG}"
    run = work / "run.json"
    if work.exists() and restart:
        shutil.rmtree(work)
    if work.exists():
        previous = read_json(run, "the unfinished run's run.json") if run.is_file() else None
        if previous != settings:
            raise UsageError(f"{work} holds an unfinished PhotoFaces run with other settings ({previous}); "
                             "rerun that command to finish it, or pass --restart to discard it")
        return work
    (work / "out").mkdir(parents=True)
    (work / "parts").mkdir()
    atomic_write_json(run, settings)
    return work


def export_photofaces(out, num: int, size: int = 256, seed: int = 0, psi: float = 0.7, fmt: str = "webdataset",
                      shard_size: int = 1000, workers: int = 1, threads: int | None = None, overwrite: bool = False,
                      restart: bool = False, progress: Callable[[int], None] | None = None) -> dict:
    """Generate items 0..num-1 into `out`; returns the manifest (also OUT/photofaces.json): the settings, the
    licence, the shards written and resumed, seconds and images per second of this run."""
    if num < 1 or shard_size < 1 or workers < 1 or seed < 0:
        raise UsageError(f"--num, --shard-size and --workers must be >= 1 and --seed >= 0, got {num}, {shard_size}, {workers}, {seed}")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    check_photo_settings(size, psi)
    out = Path(out)
    is_ours = marked_by(MANIFEST)
    check_output_folder(out, overwrite, is_ours, WHAT)
    settings = {"num": num, "size": size, "seed": seed, "psi": psi, "format": fmt, "shard_size": shard_size}
    with output_lock(out):
        clean_temporaries(out)
        check_output_folder(out, overwrite, is_ours, WHAT)
        work = _open_work(out, settings, restart)
        shards = shard_ranges(num, shard_size)
        todo = [(s, r) for s, r in enumerate(shards) if not _shard_done(work, fmt, s)]
        resumed = len(shards) - len(todo)
        if progress and resumed:
            progress(sum(len(r) for s, r in enumerate(shards) if _shard_done(work, fmt, s)))
        start = time.perf_counter()
        if todo and workers == 1:
            gen = PhotoFaceGenerator(threads)
            for s, r in todo:
                _write_shard(gen, work, fmt, s, r, settings, progress)
        elif todo:
            with ProcessPoolExecutor(min(workers, len(todo)), initializer=_worker_init, initargs=(threads,)) as pool:
                for n in pool.map(_worker_shard, *zip(*[(str(work), fmt, s, r, settings) for s, r in todo])):
                    if progress:
                        progress(n)
        seconds = time.perf_counter() - start
        made = sum(len(r) for _, r in todo)
        if fmt == "imagefolder":
            lines = "".join((work / "parts" / f"part-{s:06d}.jsonl").read_text() for s in range(len(shards)))
            with atomic_path(work / "out" / "metadata.jsonl") as tmp:
                Path(tmp).write_text(lines)
        manifest = {**settings, "licence": LICENCE, "shards": len(shards), "resumed_shards": resumed,
                    "generated": made, "seconds": round(seconds, 2),
                    "images_per_second": round(made / seconds, 3) if made and seconds > 0 else None,
                    "workers": workers, "threads": threads}
        atomic_write_json(work / "out" / MANIFEST, manifest)
        usual_permissions(work / "out", 0o777)
        swap_into_place(work / "out", out)
        shutil.rmtree(work, ignore_errors=True)  # the old folder after a swap sits at work/out
    return manifest
