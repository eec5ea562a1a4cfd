"""`proxt2i evaluate DIR` scores a folder of generated images; `proxt2i evaluator train|check`
builds and measures the evaluator (see docs/evaluation.md)."""

from __future__ import annotations

import json

# the subcommands this module adds, with their one-line help (cli/__init__ lists them without importing anything heavy)
COMMANDS = {"evaluate": "score generated images (alignment, Frechet distance, precision/recall, CLIP score)", "evaluator": "train or check the evaluator"}


def register(sub) -> None:
    from ..config import add_config_arguments
    from ..devices import add_device_arguments
    from ..evaluation.train import EvaluatorTrainConfig

    p = sub.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description=(
            "Score a folder of images with a metadata.jsonl (one {\"file_name\": ..., \"text\": ...} per line, the "
            "Hugging Face imagefolder layout) using the SynthFaces evaluator: attribute alignment of each image "
            "with its prompt, Frechet distance and k-NN precision/recall of recogniser features against fresh "
            "renders, and the contrastive CLIP-score analogue. A folder that is not complete and consistent (a row that "
            "does not parse or names a missing image, an image named on two rows, an image no row names) is refused."
        ),
    )
    p.add_argument("folder", help="folder with images and metadata.jsonl")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--evaluator", metavar="DIR", help="evaluator folder (default: the shipped one)")
    p.add_argument("--reference-num", type=int, default=None, help="fresh renders for the reference statistics (default 2048; "
                                                                   "with --photo-reference: reference images read, default 512)")
    p.add_argument("--photo-reference", metavar="SOURCE", help="score PhotoFaces images instead, with the real face models "
                   "(pip install 'proxt2i[photo]'): face rate, FD / precision / recall of dlib's 128-d face descriptors "
                   "against SOURCE's images (a `data photofaces` export or a curated set), identity diversity, and the "
                   "alignment of each PhotoFaces family the prompt names, read back by the same readers (docs/photofaces.md)")
    add_device_arguments(p)
    p.set_defaults(func=run_evaluate)

    e = sub.add_parser("evaluator", help=COMMANDS["evaluator"], description="Train or measure the SynthFaces evaluator.")
    esub = e.add_subparsers(dest="evaluator_command", metavar="ACTION", required=True)
    t = esub.add_parser(
        "train",
        help="train the recogniser and contrastive model on fresh renders",
        description="Train both evaluator models on SynthFaces renders drawn on the fly, then write config.json and safetensors weights to --out. "
                    "Every option may also be given as key=value (e.g. recogniser_steps=100).",
    )
    t.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty; swapped in whole when training ends)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing evaluator folder at --out (config.json and "
                                                             "recogniser.safetensors; any other non-empty folder is never replaced)")
    add_config_arguments(t, EvaluatorTrainConfig)
    t.set_defaults(func=run_train)
    c = esub.add_parser(
        "check",
        help="measure the evaluator on fresh renders",
        description="Per-family accuracy and contrastive retrieval on fresh renders; with --trust also the trust checks (fresh, shuffled prompts, blur, noise).",
    )
    c.add_argument("--evaluator", metavar="DIR", help="evaluator folder (default: the shipped one)")
    c.add_argument("--num", type=int, default=1024, help="fresh renders per split (default 1024)")
    c.add_argument("--trust", action="store_true", help="also run the trust checks on 256 renders")
    c.add_argument("--autoencoder", metavar="MODEL",
                   help="instead: the alignment ceiling of MODEL's autoencoder (shipped name, model folder, or a VAE folder "
                        "from `proxt2i train-vae`): per-family "
                        "accuracy on renders at the model's size after an encode/decode round trip, weighted by the "
                        "shipped prompt sets")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run_check)
    c = esub.add_parser(
        "photo-check", help="the PhotoFaces evaluator's trust checks on real images",
        description=("On the first --num images of SOURCE with their captions (a curated PhotoFaces set: `data curate "
                     "--face-captions`): the second half scored against the first half as is, with shuffled captions, and "
                     "under blur and noise. A trustworthy evaluator gives the real half a high alignment and a low FD, "
                     "collapses alignment under shuffling and raises FD monotonically with each corruption."))
    c.add_argument("source", help="webdataset shards or an imagefolder with captions the PhotoFaces parser reads")
    c.add_argument("--num", type=int, default=64, help="images, half of them the reference (default 64)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run_photo_check)


def format_result(r: dict) -> str:
    def num(v, fmt="{:.4f}"):
        return "n/a" if v is None else fmt.format(v)

    lines = [
        f"images        {r['n']}",
        f"alignment     {num(r['alignment'])}  (all attributes right: {num(r['alignment_all'])})",
        f"fd            {num(r['fd'], '{:.3f}')}  (reference: {r['reference_num']} fresh renders)",
        f"precision     {num(r['precision'])}",
        f"recall        {num(r['recall'])}",
        f"diversity     {num(r['diversity'], '{:.3f}')}  (within-prompt feature spread; needs >= 2 images per prompt)",
        f"clip_score    {num(r['clip_score'], '{:.2f}')}",
        "alignment per family:",
    ]
    lines += [f"  {k:<12} {num(v)}" for k, v in r["alignment_per_family"].items()]
    return "\n".join(lines)


def run_evaluate(args) -> int:
    from ..devices import autocast, resolve
    from ..errors import UsageError
    from ..evaluation import evaluate_folder, load_evaluator
    from ..evaluation.features import REFERENCE_NUM

    if args.photo_reference:
        return run_evaluate_photo(args)
    reference_num = REFERENCE_NUM if args.reference_num is None else args.reference_num
    if reference_num < 2:
        raise UsageError(f"--reference-num must be >= 2, got {reference_num}")
    device, dtype = resolve(args.device, args.dtype)
    with autocast(device, dtype):  # the evaluator's weights stay float32: its features feed float64 statistics
        result = evaluate_folder(args.folder, load_evaluator(args.evaluator).to(device), reference_num=reference_num)
    print(json.dumps(result) if args.json else format_result(result))
    return 0


def run_evaluate_photo(args) -> int:
    from ..errors import UsageError
    from ..evaluation.photo import REFERENCE_NUM, evaluate_photo_folder

    reference_num = REFERENCE_NUM if args.reference_num is None else args.reference_num
    if reference_num < 2:
        raise UsageError(f"--reference-num must be >= 2, got {reference_num}")
    result = evaluate_photo_folder(args.folder, args.photo_reference, reference_num)
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_photo_result(result))
    return 0


def format_photo_result(r: dict) -> str:
    def num(v, fmt="{:.4f}"):
        return "n/a" if v is None else fmt.format(v)

    lines = [f"images        {r['n']}", f"face_rate     {num(r['face_rate'])}",
             f"alignment     {num(r['alignment'])}  (all named families right: {num(r['alignment_all'])})",
             f"fd            {num(r['fd'])}  (dlib face descriptors; reference: {r['reference_num']} images of {r['reference']})",
             f"precision     {num(r['precision'])}", f"recall        {num(r['recall'])}",
             f"diversity     {num(r['diversity'])}  (within-prompt identity spread; dlib: < 0.6 is the same person)",
             "alignment per family (sure: the reader answered; when sure: alignment over those readings):"]
    lines += [f"  {k:<12} {num(v)}  ({r['named_per_family'][k]} prompts name it; sure {num(r['sure_per_family'][k], '{:.2f}')}, "
              f"when sure {num(r['alignment_when_sure_per_family'].get(k))})" for k, v in r["alignment_per_family"].items()]
    return "\n".join(lines)


def run_train(args) -> int:
    from ..config import config_dict, config_from_args, print_config
    from ..errors import check_output_path
    from ..evaluation.train import EvaluatorTrainConfig, train_evaluator

    cfg = config_from_args(EvaluatorTrainConfig, args)
    if args.print_config:
        print_config(cfg)
        return 0
    check_output_path(args.out, "--out", folder=True)  # before training, not when the weights are saved
    print(json.dumps({"train_config": config_dict(cfg)}))
    config = train_evaluator(args.out, cfg, log=lambda s: print(s, flush=True), overwrite=args.overwrite)
    print(json.dumps(config["measured"]["min_accuracy"]))
    return 0


def run_check(args) -> int:
    from ..errors import UsageError
    from ..evaluation import load_evaluator
    from ..evaluation.check import check_evaluator, trust_check

    if args.num < 2:
        raise UsageError(f"--num must be >= 2, got {args.num}")
    ev = load_evaluator(args.evaluator)
    if args.autoencoder:
        return print_autoencoder_ceiling(ev, args)
    result = check_evaluator(ev, num=args.num)
    if args.trust:
        result["trust"] = trust_check(ev)
    if args.json:
        print(json.dumps(result))
        return 0
    for name, acc in result["accuracy"].items():
        print(f"{name:<10} min {min(acc.values()):.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    print("contrastive " + "  ".join(f"{k} {v:.3f}" for k, v in result["contrastive"].items()))
    if args.trust:
        print("trust " + json.dumps(result["trust"]))
    return 0


def run_photo_check(args) -> int:
    from ..evaluation.photo import read_images, trust_check

    images, captions = read_images(args.source, args.num)
    result = {"source": args.source, **trust_check(images, captions)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"reference {result['n_reference']} images, test {result['n_test']}")
    rows = [("real", result["real"]), ("shuffled captions", result["shuffled_captions"])]
    rows += [(f"blur sigma {s}", v) for s, v in result["blur"].items()] + [(f"noise std {s}", v) for s, v in result["noise"].items()]
    print(f"{'':<18} {'faces':>6} {'fd':>7} {'prec':>6} {'recall':>6} {'align':>6}")
    for name, v in rows:
        print(f"{name:<18} " + " ".join("   n/a" if v[k] is None else f"{v[k]:6.3f}" for k in ("face_rate", "fd", "precision", "recall", "alignment")))
    return 0


def load_checked_autoencoder(name_or_path: str):
    """(autoencoder, image size) of a generator (shipped name or model folder) or of a VAE folder from
    `proxt2i train-vae` (or the embedded one, synthfaces-vae)."""
    from pathlib import Path

    from ..pipeline import ProxT2IPipeline
    from ..shipped import VAE_NAME, resolve_model, shipped_vae_dir
    from ..training.vae import load_autoencoder_dir

    folder = shipped_vae_dir() if name_or_path == VAE_NAME else Path(name_or_path)
    if (folder / "autoencoder.safetensors").exists() and not (folder / "uvit.safetensors").exists():
        autoencoder = load_autoencoder_dir(folder)  # checks config.json first: one clear error if missing
        return autoencoder, int(json.loads((folder / "config.json").read_text()).get("recipe", {}).get("size", 32))
    pipe = ProxT2IPipeline.from_pretrained(resolve_model(name_or_path))
    return pipe.autoencoder, pipe.image_size


def print_autoencoder_ceiling(ev, args) -> int:
    from ..evaluation.check import autoencoder_ceiling

    autoencoder, size = load_checked_autoencoder(args.autoencoder)
    result = autoencoder_ceiling(ev, autoencoder.eval(), size, num=args.num)
    result["model"] = args.autoencoder
    if args.json:
        print(json.dumps(result))
        return 0
    for name in ("accuracy_direct", "accuracy_autoencoder"):
        acc = result[name]
        print(f"{name:<21} " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    print("alignment ceiling     " + "  ".join(f"{k} {v:.3f}" for k, v in result["alignment_ceiling"].items()))
    return 0
