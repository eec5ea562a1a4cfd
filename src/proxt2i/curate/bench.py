"""Measurements of curation, printed as JSON (docs/curation.md shows the tables):

    python -m proxt2i.curate.bench scaling [--num 3000] [--size 256] [--shard 100] [--workers 1,2] [--out FILE.json]
    python -m proxt2i.curate.bench hashes [--num 1000] [--size 256] [--out FILE.json]
    python -m proxt2i.curate.bench table FILE.json   (the markdown tables of docs/curation.md)

scaling: builds a webdataset source of SynthFaces renders saved as JPEG (quality 90, as web images are), times
the CPU stages one image at a time in this process (read, decode, shape rule, sha256, perceptual hash,
write), runs `curate --engine local` once and `curate --engine ray` for each worker count in one Ray session, after a
warm-up run, three times in alternating order (images per second of the scan stage, the CPU-bound one: steady, i.e. over the span from its first
part's start to its last part's end, and including the actors' start-up; and end to end; the speedups from
the medians), checks that every run wrote the
same bytes, and projects a 15M-image curation onto a stated cluster from the measured CPU cost and assumed
model rates (the assumptions are printed with the projection; none of those models runs here).

hashes: how far the perceptual hash moves under edits of one image (JPEG re-encode, half size, +10%
brightness, a 3% crop) against the distance from each image to its nearest other image, for the 64-bit
and the 256-bit hash: what the default --near-duplicate-distance is chosen from.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_json
from ..data.export import add_tar_member
from ..errors import UsageError

LAION_FACE_IMAGES = 15_000_000
# Assumed throughputs of the model stages on one GPU (not measured here: these models are not available offline).
# Captioning: Qwen2.5-VL-7B, bf16, batched with vLLM, ~80 new tokens per caption; aesthetic: CLIP ViT-L/14 + MLP.
ASSUMED_IMAGES_PER_GPU_S = {"captioner": 4.0, "aesthetic": 800.0}


def _face_jpeg(index: int, size: int) -> bytes:
    from PIL import Image

    from ..data.synthfaces import render_item

    buf = io.BytesIO()
    Image.fromarray(render_item(0, "train", index, size)[0]).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build_source(root: Path, num: int, size: int, shard: int) -> Path:
    """`num` SynthFaces JPEGs in shards of `shard`, with their captions."""
    from ..data.synthfaces import render_item

    root.mkdir(parents=True, exist_ok=True)
    for start in range(0, num, shard):
        with tarfile.open(root / f"{start // shard:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(start, min(start + shard, num)):
                add_tar_member(tar, f"{i:08d}.jpg", _face_jpeg(i, size))
                add_tar_member(tar, f"{i:08d}.txt", render_item(0, "train", i, 32)[2].encode())
    return root


def stage_costs(source: Path, cfg) -> dict:
    """Milliseconds per image of each CPU stage, one process, one image at a time."""
    from .checks import content_hash, decode, perceptual_hash, shape_reason
    from .sources import list_parts, read_part
    from .writer import write_part_output

    totals = dict.fromkeys(("read", "decode", "shape", "sha256", "phash", "write"), 0.0)
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for part in list_parts(source, cfg.shard_size):
            t0 = time.perf_counter()
            records, _ = read_part(part)
            totals["read"] += time.perf_counter() - t0
            items = []
            for row, rec in enumerate(records):
                t = [time.perf_counter()]
                image, _, _ = decode(rec.image)
                t.append(time.perf_counter())
                shape_reason(image.width, image.height, cfg)
                t.append(time.perf_counter())
                content_hash(rec.image)
                t.append(time.perf_counter())
                perceptual_hash(image)
                t.append(time.perf_counter())
                for name, a, b in zip(("decode", "shape", "sha256", "phash"), t, t[1:]):
                    totals[name] += b - a
                items.append({"row": row, "source": rec.source, "text": rec.text, "original_text": rec.text, "image": rec.image,
                              "ext": rec.ext, "meta": {}, "width": image.width, "height": image.height})
            t0 = time.perf_counter()
            write_part_output(Path(tmp), "webdataset", part["index"], items)
            totals["write"] += time.perf_counter() - t0
            n += len(records)
    return {"images": n, "ms_per_image": {k: round(1000 * v / n, 3) for k, v in totals.items()},
            "ms_per_image_total": round(1000 * sum(totals.values()) / n, 3)}


def _shards(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}


def scaling(num: int, size: int, shard: int, workers: list[int], work: Path, repeats: int = 3) -> dict:
    import os

    import ray

    from .config import CurateConfig
    from .run import curate

    source = build_source(work / "source", num, size, shard)
    cfg = CurateConfig()
    costs = stage_costs(source, cfg)
    runs = {}
    local = curate(source, work / "local", cfg, progress=False)
    runs["local"] = _rates(local)
    reference = _shards(work / "local")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        # warm-up: Ray starts its worker processes (and they import torch and imagehash) on first use
        curate(source, work / "warm-up", CurateConfig(engine="ray", workers=max(workers)), progress=False)
        for rep in range(repeats):
            for w in (workers if rep % 2 == 0 else workers[::-1]):  # alternate the order: drift in the machine's speed cancels
                out = work / f"ray-{w}-{rep}"
                report = curate(source, out, CurateConfig(engine="ray", workers=w), progress=False)
                runs.setdefault(f"ray-{w}", []).append({**_rates(report), "same_bytes_as_local": _shards(out) == reference})
                shutil.rmtree(out)
    finally:
        if started:
            ray.shutdown()

    def median(w, key):
        return float(np.median([r[key] for r in runs[f"ray-{w}"]]))

    speedups = {key: {f"ray-{w}": round(median(w, key) / median(workers[0], key), 3) for w in workers}
                for key in ("scan_steady_images_per_s", "scan_images_per_s", "end_to_end_images_per_s")}
    return {"images": num, "size": size, "shard": shard, "cpus": os.cpu_count(), "kept": local["kept"],
            "stage_costs": costs, "runs": runs,
            "medians": {key: {f"ray-{w}": median(w, key) for w in workers} for key in speedups}, "speedup_vs_first": speedups, "projection": projection(costs)}


def _rates(report: dict) -> dict:
    s = report["seconds"]
    return {"seconds": s, "scan_workers": report["scan_workers"], "scan_steady_images_per_s": report["scan_workers"]["images_per_s"],
            "scan_images_per_s": round(report["input"] / s["scan"], 1),
            "end_to_end_images_per_s": round(report["input"] / s["total"], 1),
            "after_start_images_per_s": round(report["input"] / (s["total"] - s["start"]), 1)}


def projection(costs: dict, images: int = LAION_FACE_IMAGES, cpu_cores: int = 256, gpus: int = 64) -> dict:
    """Hours for `images` on a cluster of `cpu_cores` cores and `gpus` GPUs: each stage's time if it ran alone
    at the measured (CPU) or assumed (GPU) rate; stages stream into one another, so the slowest bounds the run."""
    cpu_hours = images * costs["ms_per_image_total"] / 1000 / cpu_cores / 3600
    stage_hours = {"cpu_stages": round(cpu_hours, 2)}
    for name, rate in ASSUMED_IMAGES_PER_GPU_S.items():
        stage_hours[name] = round(images / (rate * gpus) / 3600, 2)
    return {"images": images, "cluster": {"cpu_cores": cpu_cores, "gpus": gpus}, "hours_per_stage_alone": stage_hours,
            "bound_hours": max(stage_hours.values()), "bottleneck": max(stage_hours, key=stage_hours.get),
            "assumed_images_per_gpu_s": ASSUMED_IMAGES_PER_GPU_S,
            "assumptions": "CPU cost as measured on this machine's cores, spread evenly; model rates assumed (not run "
                           "here); one image read once; download (img2dataset) not included"}


def hashes(num: int, size: int) -> dict:
    import imagehash
    from PIL import Image, ImageEnhance

    from ..data.synthfaces import render_item

    images = [Image.fromarray(render_item(0, "train", i, size)[0]) for i in range(num)]

    def jpeg(im):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=70)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    edits = {"jpeg_q70": jpeg, "half_size": lambda im: im.resize((im.width // 2, im.height // 2)),
             "brightness_+10%": lambda im: ImageEnhance.Brightness(im).enhance(1.1),
             "crop_3%": lambda im: im.crop((im.width * 3 // 200, im.height * 3 // 200, im.width - im.width * 3 // 200,
                                            im.height - im.height * 3 // 200))}
    out = {"images": num, "size": size}
    for side in (8, 16):
        bits = np.array([imagehash.phash(im, hash_size=side).hash.flatten() for im in images])
        dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
        np.fill_diagonal(dist, bits.shape[1])
        nearest = dist.min(1)
        entry = {"nearest_other_image": {"min": int(nearest.min()), "p1": float(np.percentile(nearest, 1)),
                                         "median": float(np.median(nearest))}}
        for name, edit in edits.items():
            moved = np.array([(imagehash.phash(edit(im), hash_size=side).hash.flatten() != b).sum() for im, b in zip(images, bits)])
            entry[name] = {"max": int(moved.max()), "p99": float(np.percentile(moved, 99)), "median": float(np.median(moved))}
        out[f"{side * side}_bits"] = entry
    return out


def table(result: dict) -> str:
    """The markdown tables of docs/curation.md from a scaling or hashes result."""
    if "runs" in result:
        lines = ["| run | scan, steady (img/s) | scan incl. actor start-up (img/s) | end to end (img/s) | same bytes as local |",
                 "|---|---:|---:|---:|---|"]
        local = result["runs"]["local"]
        lines.append(f"| local (1 process) | {local['scan_steady_images_per_s']} | {local['scan_images_per_s']} | "
                     f"{local['end_to_end_images_per_s']} | (reference) |")
        for name, runs in result["runs"].items():
            if name == "local":
                continue
            med = {k: result["medians"][k][name] for k in result["medians"]}
            spd = {k: result["speedup_vs_first"][k][name] for k in result["speedup_vs_first"]}
            lines.append(f"| {name} worker(s), median of {len(runs)} | {med['scan_steady_images_per_s']:.0f} ({spd['scan_steady_images_per_s']:.2f}x) | "
                         f"{med['scan_images_per_s']:.0f} ({spd['scan_images_per_s']:.2f}x) | {med['end_to_end_images_per_s']:.0f} "
                         f"({spd['end_to_end_images_per_s']:.2f}x) | {all(r['same_bytes_as_local'] for r in runs)} |")
        costs = result["stage_costs"]["ms_per_image"]
        lines += ["", "| stage | ms per image (one process) |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in costs.items()]
        proj = result["projection"]
        lines += ["", f"Projection for {proj['images']:,} images on {proj['cluster']['cpu_cores']} CPU cores and "
                      f"{proj['cluster']['gpus']} GPUs ({proj['assumptions']}; assumed images/s per GPU: "
                      + ", ".join(f"{k} {v:g}" for k, v in proj["assumed_images_per_gpu_s"].items()) + "):", "",
                  "| stage | hours if it ran alone |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in proj["hours_per_stage_alone"].items()]
        lines += ["", f"Bound: {proj['bound_hours']} h, set by {proj['bottleneck']}."]
        return "\n".join(lines)
    edits = [k for k in result["64_bits"] if k != "nearest_other_image"]
    lines = ["| hash | nearest other image: min / p1 / median bits | " + " | ".join(f"{e}: max / p99" for e in edits) + " |",
             "|---|---|" + "---|" * len(edits)]
    for bits in ("64_bits", "256_bits"):
        r = result[bits]
        n = r["nearest_other_image"]
        lines.append(f"| {bits.replace('_', ' ')} | {n['min']} / {n['p1']:g} / {n['median']:g} | "
                     + " | ".join(f"{r[e]['max']} / {r[e]['p99']:g}" for e in edits) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxt2i.curate.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scaling", help="images/s of curate with 1 and 2 Ray workers, per-stage cost, a 15M projection")
    s.add_argument("--num", type=int, default=3000)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--shard", type=int, default=100)
    s.add_argument("--workers", default="1,2", help="comma list of Ray worker counts (default 1,2)")
    s.add_argument("--repeats", type=int, default=3, help="runs per worker count (default 3)")
    s.add_argument("--keep", default=None, help="keep the source and outputs in this folder (default: a temporary one)")
    h = sub.add_parser("hashes", help="perceptual-hash distances: edits of one image vs different images")
    h.add_argument("--num", type=int, default=1000)
    h.add_argument("--size", type=int, default=256)
    for a in (s, h):
        a.add_argument("--out", default=None, help="also write the JSON here")
    t = sub.add_parser("table", help="print the markdown table of a result file")
    t.add_argument("file")
    args = p.parse_args(argv)
    if args.what == "table":
        print(table(json.loads(Path(args.file).read_text())))
        return 0
    if args.num < 2:
        p.error(f"--num must be >= 2, got {args.num}")
    if args.what == "scaling":
        workers = [int(w) for w in args.workers.split(",") if w]
        work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="curate-bench-"))
        try:
            result = scaling(args.num, args.size, args.shard, workers, work, args.repeats)
        except UsageError as err:
            raise SystemExit(f"error: {err}") from None
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    else:
        result = hashes(args.num, args.size)
    if args.out:
        atomic_write_json(args.out, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
