"""`proxt2i data ...`: the SynthFaces dataset (export, prompt sets, prompt parsing, previews, speed)."""

from __future__ import annotations

import argparse
import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"data": "SynthFaces: export the procedural face dataset, print prompt sets, parse prompts; PhotoFaces; curate your own face data"}


GRID_MAX = 32  # rows and columns of `data grid`: 32 x 32 renders is already a 56 x 78 inch figure
BENCH_MAX_SECONDS = 600.0


def register(sub) -> None:
    from ..config import add_config_arguments_lazily, positive_float, seed_value

    p = sub.add_parser(
        "data",
        help=COMMANDS["data"],
        description="SynthFaces, the embedded face-centric text-to-image dataset (docs/synthfaces.md).",
    )
    p.set_defaults(func=lambda args: _help(p))
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    a = actions.add_parser("synthfaces", help="render N items to an imagefolder or webdataset shards")
    a.add_argument("--num", type=int, required=True, help="number of items (>= 1)")
    a.add_argument("--size", type=int, default=64, help="image side in pixels, 32..256 (default 64)")
    a.add_argument("--format", choices=("imagefolder", "webdataset"), default="imagefolder", help="output layout (default imagefolder)")
    a.add_argument("--out", required=True, help="output folder (new, or empty)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing export at --out as a whole (only a folder with "
                                                             "metadata.jsonl or shard-*.tar; any other non-empty folder is never replaced)")
    a.add_argument("--seed", type=seed_value, default=0, help="dataset seed (default 0)")
    a.add_argument("--split", default="train", help="train; test (training distribution, fresh draws); heldout; full (all combinations, for training evaluators only) (default train)")
    a.add_argument("--shard-size", type=int, default=1000, help="samples per webdataset shard (default 1000)")
    a.set_defaults(func=run_synthfaces)

    a = actions.add_parser(
        "photofaces", help="generate photoreal faces (MobileStyleGAN on FFHQ; the optional [photo] extra, non-commercial weights)",
        description=("Photoreal faces from the MobileStyleGAN generator shipped in the random-face wheel (distilled from "
                     "StyleGAN2-FFHQ: non-commercial weights; pip install 'proxt2i[photo]' && pip install --no-deps "
                     "random-face==2021.7.21.1). Item i is a pure function of (--seed, i): latent, truncation toward the "
                     "mean face (--psi), a random crop (framing from head-and-shoulders to close-up), resized to --size. "
                     "Captions are the placeholder 'a photo of a person'; caption them with the real face readers: "
                     "proxt2i data curate OUT --face-filter --face-captions --out CURATED. Written shard by shard: a "
                     "killed run resumes when started again with the same command (docs/photofaces.md)."))
    a.add_argument("--num", type=int, required=True, help="number of items (>= 1)")
    a.add_argument("--size", type=int, default=256, help="image side in pixels, 16..1024 (default 256: what curation's shape rule accepts)")
    a.add_argument("--format", choices=("imagefolder", "webdataset"), default="webdataset", help="output layout (default webdataset)")
    a.add_argument("--out", required=True, help="output folder (new, or empty)")
    a.add_argument("--overwrite", action="store_true", help="replace an earlier PhotoFaces export at --out (a folder with photofaces.json)")
    a.add_argument("--restart", action="store_true", help="discard an unfinished run of other settings at --out and start over")
    a.add_argument("--seed", type=seed_value, default=0, help="dataset seed (default 0)")
    a.add_argument("--psi", type=float, default=0.7, help="truncation toward the mean face, 0..1 (1: none; default 0.7)")
    a.add_argument("--shard-size", type=int, default=1000, help="items per shard, the unit of resume (default 1000)")
    a.add_argument("--workers", type=int, default=1, help="processes, each taking whole shards (default 1)")
    a.add_argument("--threads", type=int, default=None, help="inference threads per process (default: openvino's choice)")
    a.set_defaults(func=run_photofaces)

    a = actions.add_parser(
        "read-faces", help="read faces with the real face models: attribute counts, agreement under flips and crops, a labelled grid",
        description=("Run the real face readers (dlib's detector and 68 landmarks; pip install 'proxt2i[photo]') over the first "
                     "--num images of SOURCE (webdataset shards or an imagefolder) and report, per PhotoFaces family, the "
                     "values read, the share the rules are sure of, and the agreement of each reading with itself under a "
                     "mirror image and under small random crops; for PhotoFaces exports also the framing reading against "
                     "the known crop. --grid saves the first images with their readings, to check them by eye."))
    a.add_argument("source", help="webdataset shards or an imagefolder (e.g. the output of `data photofaces`)")
    a.add_argument("--num", type=int, default=200, help="images to read (default 200)")
    a.add_argument("--crops", type=int, default=2, help="small crops per image (default 2)")
    a.add_argument("--grid", metavar="IMAGE", help="also save the first --grid-num images with their readings (.png, or .jpg: "
                                                   "a tenth of the size for photos)")
    a.add_argument("--grid-num", type=int, default=25, help="images in the grid, 1..100 (default 25)")
    a.add_argument("--start", type=int, default=0, help="first image of the grid (default 0)")
    a.add_argument("--grid-captions", action="store_true", help="label the grid with the records' captions instead of the readings")
    a.add_argument("--overwrite", action="store_true", help="replace an existing --grid file")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=run_read_faces)

    a = actions.add_parser("prompts", help="print a standard prompt set, one prompt per line")
    a.add_argument("set", help="heldin, heldout or paraphrase (training-distribution faces in phrasings no training caption uses); "
                               "photofaces: prompts over the PhotoFaces families (docs/photofaces.md)")
    a.add_argument("--num", type=int, default=None, help="print only the first N (after shuffling, if --seed)")
    a.add_argument("--seed", type=seed_value, default=None, help="shuffle deterministically with this seed (default: file order)")
    a.set_defaults(func=run_prompts)

    a = actions.add_parser("make-prompts", help="regenerate the shipped heldin.txt / heldout.txt / paraphrase.txt prompt files")
    a.add_argument("--out-dir", default=None, help="write here instead of the package's assets/prompts")
    a.set_defaults(func=run_make_prompts)

    a = actions.add_parser("parse", help="print the attributes each prompt names, as JSON (one line per prompt)")
    a.add_argument("prompt", nargs="+", help="prompt text (quote it)")
    a.set_defaults(func=run_parse)

    a = actions.add_parser("vocab", help="print attribute families, values and the words for each")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=run_vocab)

    a = actions.add_parser("grid", help="save a PNG grid of samples with their captions")
    a.add_argument("--out", required=True, help="PNG path")
    a.add_argument("--overwrite", action="store_true", help="replace an existing file at --out")
    a.add_argument("--seed", type=seed_value, default=0)
    a.add_argument("--size", type=int, default=96, help="image side, 32..256 (default 96)")
    a.add_argument("--rows", type=int, default=4, help=f"1..{GRID_MAX} (default 4)")
    a.add_argument("--cols", type=int, default=6, help=f"1..{GRID_MAX} (default 6)")
    a.add_argument("--split", default="train")
    a.set_defaults(func=run_grid)

    a = actions.add_parser(
        "curate", help="check, deduplicate, filter (shape, aesthetic) and recaption a face dataset, LAION-Face-T2I style; local or on Ray",
        description=("Curate a text-image dataset as ProxT2I built LAION-Face-T2I-15M: count and drop bad records (missing "
                     "image or text, not an image, corrupt), keep images whose short edge is >= --min-side and whose aspect "
                     "ratio is in --aspect, drop repeated keys, exact duplicates (sha256) and near duplicates (perceptual "
                     "hash), optionally score with the LAION aesthetic predictor (--aesthetic DIR) and keep >= "
                     "--min-aesthetic, optionally recaption with a local vision-language model (--captioner DIR: any "
                     "transformers image-text-to-text model with its processor, e.g. Qwen2.5-VL). --engine ray runs the "
                     "stages on Ray Data (this machine, or a cluster with --address). A killed run resumes when started "
                     "again with the same command. OUT/curation.json counts what each stage dropped, with examples "
                     "(docs/curation.md)."))
    a.add_argument("source", help="webdataset shards (a .tar, a folder of them, a glob or a {00000..00099} range; quote it; "
                                  "img2dataset's output too), an imagefolder, img2dataset's files layout, or parquet files")
    a.add_argument("--out", required=True, help="new (or empty) output folder, written beside and swapped in when complete")
    a.add_argument("--overwrite", action="store_true", help="replace an earlier curation at --out as a whole (only a folder with "
                                                             "curation.json; any other non-empty folder is never replaced)")
    add_config_arguments_lazily(a, _curate_config_class)  # curate/ imports torch: `data prompts` need not
    a.add_argument("--aspect", type=str, nargs=2, metavar=("MIN", "MAX"), action=_Aspect, default=argparse.SUPPRESS,
                   help="allowed width / height range: --min-aspect MIN --max-aspect MAX (default 0.5625 1.7778, i.e. 9:16 to 16:9)")
    a.add_argument("--restart", action="store_true", help="discard an unfinished curation of other settings at --out and start "
                                                           "over (without it, an unfinished run of the same command resumes)")
    a.add_argument("--json", action="store_true", help="print the report as one JSON object")
    a.set_defaults(func=run_curate)

    a = actions.add_parser("bench", help="measure single-core rendering speed (images/s per size)")
    a.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    a.add_argument("--seconds", type=positive_float, default=1.0, help=f"time per size, at most {BENCH_MAX_SECONDS:g} (default 1)")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=run_bench)


def _help(parser) -> int:
    parser.print_help()
    return 2


def _check_size(size: int) -> None:
    from ..data.synthfaces import MAX_SIZE, MIN_SIZE
    from ..errors import UsageError

    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"--size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")


def run_synthfaces(args) -> int:
    from tqdm import tqdm

    from ..atomic import check_output_folder, marked_by
    from ..data.attributes import check_split
    from ..data.export import EXPORT_FOLDER, EXPORT_MARKERS, export
    from ..errors import UsageError, check_output_path

    if args.num < 1:
        raise UsageError(f"--num must be >= 1, got {args.num}")
    _check_size(args.size)
    check_split(args.split)
    if args.seed < 0 or args.shard_size < 1:
        raise UsageError(f"--seed must be >= 0 and --shard-size >= 1, got {args.seed} and {args.shard_size}")
    kwargs = {"shard_size": args.shard_size} if args.format == "webdataset" else {}
    check_output_path(args.out, "--out", folder=True)
    check_output_folder(args.out, args.overwrite, marked_by(*EXPORT_MARKERS), EXPORT_FOLDER)  # before the progress bar
    with tqdm(total=args.num, unit="img", desc=f"synthfaces {args.split}") as bar:
        export(args.format, args.out, args.num, args.size, args.seed, args.split, progress=bar.update, overwrite=args.overwrite, **kwargs)
    print(f"wrote {args.num} {args.split} items ({args.size}px, {args.format}) to {args.out}")
    return 0


def run_photofaces(args) -> int:
    from tqdm import tqdm

    from ..data.photofaces_export import export_photofaces
    from ..errors import check_output_path

    check_output_path(args.out, "--out", folder=True)
    with tqdm(total=args.num, unit="img", desc="photofaces") as bar:
        manifest = export_photofaces(args.out, args.num, args.size, args.seed, args.psi, args.format, args.shard_size,
                                     args.workers, args.threads, args.overwrite, args.restart, progress=bar.update)
    rate = manifest["images_per_second"]
    print(f"wrote {args.num} PhotoFaces items ({args.size}px, {args.format}) to {args.out}"
          + (f"; {manifest['generated']} generated at {rate} img/s" if rate else "") + f". {manifest['licence']}")
    return 0


def run_read_faces(args) -> int:
    import itertools

    from ..atomic import check_output_file
    from ..data.readers import read_records
    from ..errors import UsageError, check_output_path
    from ..faces import FaceReader
    from ..faces.reliability import reliability

    if args.num < 1 or args.crops < 0 or not 1 <= args.grid_num <= 100 or args.start < 0:
        raise UsageError(f"--num must be >= 1, --crops >= 0, --grid-num in 1..100 and --start >= 0; got {args.num}, "
                         f"{args.crops}, {args.grid_num}, {args.start}")
    if args.grid:
        if not args.grid.lower().endswith((".png", ".jpg", ".jpeg")):
            raise UsageError(f"--grid {args.grid!r}: the grid is an image; give a path ending in .png or .jpg")
        check_output_path(args.grid)
        check_output_file(args.grid, args.overwrite)
    reader = FaceReader()
    records = list(itertools.islice(read_records(args.source), max(args.num, args.start + args.grid_num if args.grid else 0)))
    if not records:
        raise UsageError(f"{args.source}: no records")
    scored = records[:args.num]
    scales = [r["crop"][2] / 1024 for r in scored] if all("crop" in r for r in scored) else None
    report = {"source": args.source, **reliability([r["image"] for r in scored], reader, crops=args.crops, crop_scales=scales)}
    if args.grid:
        _save_reading_grid(reader, records[args.start:args.start + args.grid_num], args.start, args.grid, args.grid_captions)
        report["grid"] = args.grid
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['images']} images, {report['no_face']} without a face")
    print(f"{'family':<12} {'sure':>6} {'flip':>6} {'crop':>6}  values")
    for f, counts in report["values"].items():
        cells = [report[k][f] for k in ("sure", "flip_agreement", "crop_agreement")]
        print(f"{f:<12} " + " ".join("   n/a" if c is None else f"{c:6.3f}" for c in cells) + "  "
              + ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda x: -x[1])))
    if "framing_vs_crop_spearman" in report:
        print(f"framing against the generator's crop: Spearman {report['framing_vs_crop_spearman']:.3f}")
    if args.grid:
        print(f"grid written to {args.grid}")
    return 0


def _save_reading_grid(reader, records, start: int, path, captions: bool = False) -> None:
    import numpy as np

    from ..faces import read_face
    from ..imaging import save_captioned_grid

    images, texts = [], []
    for i, rec in enumerate(records):
        if captions:
            label = rec["text"]
        else:
            reading = read_face(reader, rec["image"])
            label = ", ".join(f"{f} {v or '?'}" for f, v in reading.attributes.items()) if reading.face else "no face"
        images.append(np.asarray(rec["image"]))
        texts.append(f"{start + i}: {label}")
    save_captioned_grid(images, texts, path, cols=5, width=36, quantize=False)


def run_prompts(args) -> int:
    from ..data.photo_captions import PHOTO_PROMPT_SET, photo_prompts
    from ..data.prompts import load_prompts, select_prompts

    if args.set == PHOTO_PROMPT_SET:
        print("\n".join(select_prompts(photo_prompts(), PHOTO_PROMPT_SET, args.num, args.seed)))
        return 0
    for prompt in load_prompts(args.set, args.num, args.seed):
        print(prompt)
    return 0


def run_make_prompts(args) -> int:
    from ..data.prompts import write_prompt_files
    from ..errors import check_output_path

    if args.out_dir is not None:
        check_output_path(args.out_dir, "--out-dir", folder=True)

    for path in write_prompt_files(args.out_dir):
        print(f"wrote {path}")
    return 0


def run_parse(args) -> int:
    from ..data.synthfaces import parse_prompt

    for prompt in args.prompt:
        print(json.dumps(parse_prompt(prompt)))
    return 0


def run_vocab(args) -> int:
    from ..data.captions import vocabulary

    vocab = vocabulary()
    if args.json:
        print(json.dumps(vocab))
        return 0
    for family, values in vocab.items():
        print(f"{family}:")
        for value, words in values.items():
            print(f"  {value:<11} {', '.join(words)}")
    return 0


def run_grid(args) -> int:
    from ..atomic import check_output_file
    from ..data.attributes import check_split
    from ..errors import UsageError, check_output_path
    from ..data.preview import save_grid

    _check_size(args.size)
    check_split(args.split)
    if not (1 <= args.rows <= GRID_MAX and 1 <= args.cols <= GRID_MAX):
        raise UsageError(f"--rows and --cols must be in 1..{GRID_MAX}, got {args.rows} x {args.cols}")
    if not args.out.lower().endswith(".png"):
        raise UsageError(f"--out {args.out!r}: the grid is a PNG; give a path ending in .png")
    check_output_path(args.out)
    check_output_file(args.out, args.overwrite)
    save_grid(args.out, args.seed, args.rows, args.cols, args.size, args.split)
    print(f"grid written to {args.out}")
    return 0


def run_bench(args) -> int:
    from ..data.bench import bench

    from ..errors import UsageError

    for size in args.sizes:
        _check_size(size)
    if args.seconds > BENCH_MAX_SECONDS:
        raise UsageError(f"--seconds must be at most {BENCH_MAX_SECONDS:g} per size, got {args.seconds:g}")
    result = bench(tuple(args.sizes), args.seconds)
    if args.json:
        print(json.dumps(result))
    else:
        for size, rate in result["images_per_s"].items():
            print(f"{size:>4} px: {rate:8.1f} images/s wall, {result['images_per_cpu_s'][size]:8.1f} per CPU second (one core)")
    return 0


def _curate_config_class():
    from ..curate import CurateConfig

    return CurateConfig


class _Aspect(argparse.Action):
    """--aspect MIN MAX: both ends of the aspect range in one flag (what the paper's recipe gives)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from ..config import flag_dest

        setattr(namespace, flag_dest("min_aspect"), values[0])
        setattr(namespace, flag_dest("max_aspect"), values[1])


def run_curate(args) -> int:
    from ..config import config_from_args, print_config
    from ..curate import CurateConfig, curate
    from ..errors import check_output_path

    cfg = config_from_args(CurateConfig, args)
    if args.print_config:
        print_config(cfg)
        return 0
    check_output_path(args.out, "--out", folder=True)
    report = curate(args.source, args.out, cfg, progress=not args.json, overwrite=args.overwrite, restart=args.restart)
    if args.json:
        print(json.dumps(report))
    else:
        drops = ", ".join(f"{k} {v}" for k, v in report["dropped"].items() if v) or "none"
        shards = ", ".join(f"{k} {v}" for k, v in report["shards"].items() if v)
        print(f"kept {report['kept']} of {report['input']} (dropped: {drops}{'; shards: ' + shards if shards else ''}); "
              f"written to {args.out} (examples of each drop in curation.json)")
    return 0
