"""Curate a face dataset the way ProxT2I built LAION-Face-T2I-15M: check, deduplicate, filter by aesthetic
score, recaption; resumable, on one process or on Ray Data (engines.py).

Stages, in order (the paper's thresholds are the defaults):
1. scan (per part, CPU): the record is usable (bad input is counted: missing image or text, bad metadata,
   a path outside the folder, not an image, a corrupt image), the shape rule (short edge >= 256 px, aspect
   9:16..16:9), the hashes for deduplication;
2. deduplicate (over the whole input, in input order, the first kept): repeated keys, exact duplicates
   (sha256), near duplicates (perceptual hash within `near_duplicate_distance` bits);
3. aesthetic (with `aesthetic`, a local folder): the LAION aesthetic predictor >= min_aesthetic (4.5);
4. faces (with `face_filter`; curate/faces.py): one large, sure face, colour; with `face_captions`, a caption from
   the real face readers' attributes;
4b. recaption (with `captioner`, a local folder): a transformers image-text-to-text model, greedy;
5. write: per part, one webdataset shard (or image files), named by part, keys PART_ROW.

Resume: the run lives in .OUT.curate-work beside OUT (run.json: the source's parts and the settings;
scan/ and done/: one JSON per finished part; out/: the output being built). A killed run, started again
with the same command, skips every part already scanned or written: each input record is accounted for
once, and a written shard is never rewritten. Other settings on an unfinished run are refused (or
discarded with `restart`). When every part is done, OUT/curation.json is written last and out/ is swapped
into OUT at once: OUT is the old complete folder or the new complete one, never a mix.

The report counts every input record exactly once: input = kept + sum(dropped); shards cut short or
unreadable are counted apart (their lost samples cannot be), with a few examples for every reason.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from ..atomic import (atomic_write_json, check_output_folder, clean_temporaries, marked_by, output_lock, sibling_stem,
                      swap_into_place, usual_permissions)
from ..errors import UsageError, read_json
from ..extras import require
from .checks import HASH_BITS
from .config import REPORT, CurateConfig
from .dedup import MAX_EXAMPLES, decide
from .engines import Stage, make_engine
from .sources import count_records, list_parts, part_label
from .faces import FACE_REASONS, FaceStage
from .stages import AestheticStage, CaptionStage, ScanStage, load_kept, write_part

WHAT = "curated dataset (curation.json)"
WORK_TAG = ".curate-work"
RUN = "run.json"
SCAN_REASONS = ("bad_metadata", "unsafe_path", "missing_image", "missing_text", "bad_text", "not_image", "corrupt_image",
                "too_large", "short_side", "aspect")
DEDUP_REASONS = ("duplicate_key", "exact_duplicate", "near_duplicate")
SHARD_PROBLEMS = ("truncated_shard", "unreadable_shard")
# settings that change where or how fast the work runs, not its result: a run may resume under others
RUNTIME_FIELDS = ("engine", "address", "workers", "model_workers", "num_gpus", "device", "batch_size")


def curate(source, out, cfg: CurateConfig, progress: bool = True, overwrite: bool = False, restart: bool = False) -> dict:
    """Curate `source` into `out` (a new or empty folder; with `overwrite`, an earlier curation is replaced).
    Returns the report (also OUT/curation.json): {"input", "kept", "dropped": {reason: n}, "shards": {problem: n},
    "examples", "aesthetic_mean_kept", "recaptioned", "parts", "resumed_parts": {"scan": n, "write": n}, "seconds": {"start", "scan", "deduplicate", "write",
    "total"} (wall time of this run: start is the engine's start-up, write includes the model stages), "config"}."""
    cfg.check()
    out = Path(out)
    check_output_folder(out, overwrite, marked_by(REPORT), WHAT)
    parts = list_parts(source, cfg.shard_size)  # a missing or empty source raises here, before any output
    _check_model_folders(cfg)
    if cfg.engine == "ray":
        for module in ("ray", "ray.data"):
            require(module, "curate", "--engine ray")
    with output_lock(out):
        clean_temporaries(out)
        check_output_folder(out, overwrite, marked_by(REPORT), WHAT)
        if cfg.limit:
            parts = _limited(parts, cfg.limit)
        work = _open_work(out, _fingerprint(source, parts, cfg), restart)
        model_stages = [s for s in (_model_stage(cfg, "aesthetic", AestheticStage), _model_stage(cfg, "face_filter", FaceStage),
                                    _model_stage(cfg, "captioner", CaptionStage)) if s]
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return round(clock[-1] - clock[-2], 3)

        with make_engine(cfg, len(model_stages)) as engine:
            seconds = {"start": lap()}
            done_before = {p["index"] for p in parts if _state_path(work, "scan", p["index"]).is_file()}
            scans, resumed = _scan(engine, parts, work, cfg, progress)
            seconds["scan"] = lap()
            scanned_now = [p["index"] for p in parts if p["index"] not in done_before]
            if not any(scan["records"] for scan in scans.values()):
                problem = next((p["detail"] for scan in scans.values() for p in scan["problems"]), "")
                shutil.rmtree(work, ignore_errors=True)
                raise UsageError(f"{source}: no readable records{f' ({problem})' if problem else ''}")
            drops, dedup_counts, dedup_examples = decide(((i, scans[i]["records"]) for i in range(len(parts))),
                                                          cfg.exact_dedup, cfg.near_duplicate_distance, HASH_BITS)
            seconds["deduplicate"] = lap()
            manifests, resumed_finish = _finish(engine, parts, scans, drops, work, cfg, model_stages, progress)
            seconds["write"] = lap()
        report = _report(source, parts, scans, dedup_counts, dedup_examples, manifests, cfg,
                         {"scan": resumed, "write": resumed_finish})
        report["seconds"] = {**seconds, "total": round(clock[-1] - clock[0], 3)}  # this run's, resumed parts not included
        report["scan_workers"] = _scan_workers([scans[i] for i in scanned_now])
        _complete(work, out, cfg, manifests, report)
    return report


def _check_model_folders(cfg: CurateConfig) -> None:
    from .scorers import check_model_folder

    for name in ("aesthetic", "captioner"):
        if getattr(cfg, name):
            check_model_folder(getattr(cfg, name), name)
    if cfg.face_filter:  # on Ray the readers load in the actors, after the scan: refuse a missing extra first
        from ..faces.readers import DESCRIPTOR_FILE, LANDMARKS_FILE, model_file

        require("dlib", "photo", "--face-filter")
        model_file(LANDMARKS_FILE), model_file(DESCRIPTOR_FILE)


def _model_stage(cfg: CurateConfig, name: str, cls) -> Stage | None:
    return Stage(cls, {"cfg": cfg}, actor=True, model=True, name=name) if getattr(cfg, name) else None


def _limited(parts: list[dict], limit: int) -> list[dict]:
    """The first parts holding `limit` records, the last one cut at the limit."""
    kept, total = [], 0
    for part in parts:
        n = count_records(part)
        if total + n >= limit:
            kept.append({**part, "limit_stop": limit - total})
            return kept
        kept.append(part)
        total += n
    return kept


def _fingerprint(source, parts: list[dict], cfg: CurateConfig) -> dict:
    """What a resumed run must share with the killed one: the input (each part's file, size and mtime) and the settings."""
    def stat(part):
        st = os.stat(Path(part["path"]) / ("metadata.jsonl" if part["kind"] == "imagefolder" else ""))
        return [st.st_size, st.st_mtime_ns]

    settings = {k: v for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS}
    return {"source": str(source), "parts": [{**p, "stat": stat(p)} for p in parts], "settings": settings}


def _work_folder(out: Path) -> Path:
    return out.parent / f"{sibling_stem(out)}{WORK_TAG}"


def _open_work(out: Path, fingerprint: dict, restart: bool) -> Path:
    work = _work_folder(out)
    if work.exists():
        run = work / RUN
        if not run.is_file() or not (work / "out").is_dir():
            shutil.rmtree(work)  # a start killed before run.json, or a finished run killed before its cleanup
        elif read_json(run) != _jsonable(fingerprint):
            if not restart:
                raise UsageError(f"{work} holds an unfinished curation of another source or other settings; run that "
                                 f"command again to finish it, or add --restart to discard it")
            shutil.rmtree(work)
        else:
            for sub in ("out", "scan", "done"):  # what killed writers left: their atomic temporaries
                for tmp in (work / sub).glob(".*"):
                    shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
            return work
    for sub in ("out", "scan", "done"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / RUN, _jsonable(fingerprint))
    return work


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj))


def _state_path(work: Path, stage: str, index: int) -> Path:
    return work / stage / f"part-{index:06d}.json"


def _run_pass(engine, parts, work, state: str, rows, stages, progress) -> tuple[dict, int]:
    """One pass over the parts: results of parts finished earlier are read back from work/STATE, the others
    (`rows(part)`, the engine's input) run through `stages`, each result saved as it arrives.
    Returns ({part index: result}, how many were read back)."""
    from tqdm import tqdm

    results, todo = {}, []
    for part in parts:
        path = _state_path(work, state, part["index"])
        if path.is_file():
            results[part["index"]] = read_json(path)
        else:
            todo.append(rows(part))
    with tqdm(total=len(parts), desc={"done": "write"}.get(state, state), unit="part", disable=not progress) as bar:
        bar.update(len(parts) - len(todo))
        for result in engine.run(todo, stages):
            index = result["part"]["index"]
            atomic_write_json(_state_path(work, state, index), result)
            results[index] = result
            bar.update(1)
    return results, len(parts) - len(todo)


def _scan(engine, parts, work, cfg, progress) -> tuple[dict, int]:
    return _run_pass(engine, parts, work, "scan", lambda part: {"part": part},
                     [Stage(ScanStage, {"cfg": cfg}, actor=True, name="scan")], progress)


def _finish(engine, parts, scans, drops, work, cfg, model_stages, progress) -> tuple[dict, int]:
    def rows(part):
        dropped = drops.get(part["index"], {})
        return {"part": part, "keep": {r["row"]: (r["width"], r["height"]) for r in scans[part["index"]]["records"]
                                       if not r.get("reason") and r["row"] not in dropped}}

    stages = [Stage(load_kept, name="load"), *model_stages, Stage(write_part, {"out": str(work / "out"), "cfg": cfg}, name="write")]
    return _run_pass(engine, parts, work, "done", rows, stages, progress)


def _scan_workers(scans: list[dict]) -> dict:
    """How the scan ran: worker processes, their summed busy time, and the span from the first part's start to
    the last one's end (images / span: the stage's throughput without the engine's start-up)."""
    timings = [s["timing"] for s in scans]
    if not timings:
        return {"processes": 0, "images": 0, "busy_seconds": 0.0, "span_seconds": 0.0, "images_per_s": None}
    span = max(t["end"] for t in timings) - min(t["start"] for t in timings)
    images = sum(len(s["records"]) for s in scans)
    return {"processes": len({t["process"] for t in timings}), "images": images,
            "busy_seconds": round(sum(t["end"] - t["start"] for t in timings), 3), "span_seconds": round(span, 3),
            "images_per_s": round(images / span, 1) if span > 0 else None}


def _report(source, parts, scans, dedup_counts, dedup_examples, manifests, cfg, resumed: dict) -> dict:
    dropped = {k: 0 for k in (*SCAN_REASONS, *DEDUP_REASONS, "aesthetic", *(FACE_REASONS if cfg.face_filter else ()))}
    examples: dict[str, list] = {}
    shards = {k: 0 for k in SHARD_PROBLEMS}
    n_input = 0

    def example(reason, item):
        if len(examples.setdefault(reason, [])) < MAX_EXAMPLES:
            examples[reason].append(item)

    for part in parts:
        scan = scans[part["index"]]
        n_input += len(scan["records"])
        for rec in scan["records"]:
            if rec.get("reason"):
                dropped[rec["reason"]] += 1
                example(rec["reason"], {"source": rec["source"], "detail": rec["detail"]})
        for problem in scan["problems"]:
            shards[problem["problem"]] += 1
            example(problem["problem"], {"source": part_label(part), "detail": problem["detail"]})
    for reason, n in dedup_counts.items():
        dropped[reason] = n
        for ex in dedup_examples[reason]:
            example(reason, ex)
    scores, face_values = [], {}
    for part in parts:
        manifest = manifests[part["index"]]
        for reason, n in manifest["model_dropped"].items():
            dropped[reason] += n
        scores += manifest["aesthetic_kept"]
        for ex in manifest["examples"]:
            example(ex["reason"], {k: v for k, v in ex.items() if k != "reason"})
        for attrs in manifest["face_attributes"]:
            for family, value in attrs.items():
                counts = face_values.setdefault(family, {})
                counts[value] = counts.get(value, 0) + 1
    kept = sum(m["kept"] for m in manifests.values())
    if n_input != kept + sum(dropped.values()):  # an accounting bug, never bad input
        raise AssertionError(f"curation accounting: {n_input} input records, {kept} kept + {sum(dropped.values())} dropped")
    return {"source": str(source), "input": n_input, "kept": kept, "dropped": dropped, "shards": shards, "examples": examples,
            "aesthetic_mean_kept": sum(scores) / len(scores) if scores else None, "recaptioned": bool(cfg.captioner) or cfg.face_captions,
            "face_attributes": face_values,
            "parts": len(parts), "resumed_parts": resumed, "config": asdict(cfg)}


def _complete(work: Path, out: Path, cfg: CurateConfig, manifests: dict, report: dict) -> None:
    """Write the imagefolder's metadata.jsonl and the report into the built folder, then swap it into OUT."""
    from ..atomic import atomic_write_text

    built = work / "out"
    if cfg.format == "imagefolder":
        lines = [line for i in sorted(manifests) for line in manifests[i]["metadata"]]
        atomic_write_text(built / "metadata.jsonl", "".join(line + "\n" for line in lines))
    atomic_write_json(built / REPORT, report)
    os.replace(work / RUN, work / "run.finished")  # from here a rerun discards the work folder: OUT is (being) replaced
    usual_permissions(built, 0o777)
    swap_into_place(built, out)
    shutil.rmtree(work, ignore_errors=True)
