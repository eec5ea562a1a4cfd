"""Shipped models, addressable by name: a plain dict from name to what it is and how it is rebuilt.

The weights live in the package (src/proxt2i/assets/models/<name>/), so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError

ASSETS = Path(__file__).parent / "assets" / "models"

# Both are trained in eight runs (5000 steps; 7000 more from those weights with a fresh warm-up and seed; 9000
# more with the learning rate decayed linearly to 0; 11000 more, warmed up again and decayed to 0; 2000 more on
# the six-form captions with the word-piece tokenizer, the vocabulary carried over word by word; 3000 more on
# the same captions, warmed up and decayed again; 3000 more the same way, seed 7; 3000 more, seed 8, the new
# words' rows first re-made from same-meaning words) and carry the shipped VAE's fine-tuned decoder (proxt2i
# export --autoencoder); `proxt2i models` lists the stages. The first four ran on the classic captions only (the
# code at commit 4e80758), and stage 5 gave its new words one shared mean row (the code before commit 9e7d276):
# rerun today, they would see the six forms and every word from the start, which leaves stage 8's re-making
# nothing to do.
# (steps, seed, options, run suffix) of each run after the first, each initialised from the one before
_BASE_STAGES = ((7000, 1, (), "more"), (9000, 2, ("lr_decay=linear",), "cool"), (11000, 4, ("lr_decay=linear",), "stage4"),
                (2000, 5, ("lr_decay=linear",), "para"), (3000, 6, ("lr_decay=linear",), "stage6"),
                (3000, 7, ("lr_decay=linear",), "stage7"), (3000, 8, ("lr_decay=linear", "text_reanchor=true"), "stage8"))


def _rebuild(kind: str) -> str:
    runs = f"runs/synthfaces-{kind}"
    commands = [VAE_REBUILD.format(path="src/proxt2i/assets/models/" + VAE_NAME), f"proxt2i train synthfaces-{kind}"]
    previous = runs
    for steps, seed, options, suffix in _BASE_STAGES:
        args = [f"init={previous}/final", f"steps={steps}", "lr_warmup=100", *options, f"seed={seed}", f"out={runs}-{suffix}"]
        commands.append(f"proxt2i train synthfaces-{kind} " + " ".join(args))
        previous = f"{runs}-{suffix}"
    commands.append(f"proxt2i export {previous}/final --autoencoder {VAE_NAME} --overwrite "
                    f"--out src/proxt2i/assets/models/synthfaces-{kind}")
    return " && ".join(commands)


VAE_NAME = "synthfaces-vae"
VAE_REBUILD = ("proxt2i train-vae --out runs/vae --steps 3000 --size 32 --batch 32 --seed 0 && proxt2i train-vae --init runs/vae "
               "--decoder-only --steps 10000 --lr 5e-4 --seed 1 --out {path}")
# 50 GRPO iterations (8 prompts x 8 images) from the shipped prox model: 937 s of iteration time with one torch
# thread, beside another job on the 2 CPU cores (docs/finetune.md); the default before stage 5 had 150 iterations
# on the stage-4 model
GRPO_REBUILD = ("proxt2i finetune grpo --model synthfaces-prox --reward alignment-prob --prompts synthfaces-heldout --steps 50 "
                "--lr 5e-5 --kl 0.03 --prompts-per-step 8 --inner-epochs 2 --eval-every 50 --eval-num 256 --threads 1 "
                "--out runs/synthfaces-prox-grpo && proxt2i export runs/synthfaces-prox-grpo/final "
                "--overwrite --out src/proxt2i/assets/models/synthfaces-prox-grpo")
# 300 iterations of the forward-process route (8 prompts x 8 images; rl/nft.py) from the shipped prox model: 1723 s of
# iteration time (29 min with its evaluations) with one torch thread beside another job (docs/models.md, "Stage 8");
# 300 was chosen at stage 7 from a 400-iteration run ("Stage 7 rerun"): the learning rate is constant, so
# --steps 300 gives the same weights as that run's iteration 300
NFT_REBUILD = ("proxt2i finetune nft --model synthfaces-prox --reward alignment-prob --prompts synthfaces-heldout --steps 300 "
               "--lr 2e-5 --eval-every 50 --eval-num 256 --threads 1 --out runs/synthfaces-prox-nft && proxt2i export "
               "runs/synthfaces-prox-nft/final --overwrite --out src/proxt2i/assets/models/synthfaces-prox-nft")
# 600 steps of guidance distillation (train distill_guidance=4) from the default, 527 s: its guided output in one pass
# per step, sampled with guidance 1 by default (docs/benchmark.md, "Guidance distilled into the prox network")
DISTILLED_REBUILD = ("proxt2i train synthfaces-prox init=synthfaces-prox-nft distill_guidance=4 steps=600 lr=1e-4 lr_warmup=50 "
                     "lr_decay=linear ema=0.995 candidate_grids=uniform,quadratic threads=1 sample_every=0 "
                     "out=runs/synthfaces-prox-nft-distilled && proxt2i export runs/synthfaces-prox-nft-distilled/final "
                     "--overwrite --out src/proxt2i/assets/models/synthfaces-prox-nft-distilled")
# 600 steps of LCM-style consistency distillation from the shipped score model (594 s), its CFG 4 baked in: the few-step
# competitor a user would distil instead of training a prox model (docs/benchmark.md, "Few-step competitors")
LCM_REBUILD = ("proxt2i train synthfaces-lcm threads=1 out=runs/synthfaces-lcm && proxt2i export runs/synthfaces-lcm/final "
               "--overwrite --out src/proxt2i/assets/models/synthfaces-lcm")
SHIPPED: dict[str, dict] = {
    "synthfaces-prox": {
        "about": "conditional proximal U-ViT (tiny) on SynthFaces, 32 px through the embedded VAE; the pretrained base",
        "rebuild": _rebuild("prox"),
    },
    "synthfaces-prox-grpo": {
        "about": "synthfaces-prox after GRPO on the embedded alignment reward (4-step PDA-hybrid chain, KL 0.03 to the "
                 "pretrained model); the default before synthfaces-prox-nft",
        "rebuild": GRPO_REBUILD,
    },
    "synthfaces-prox-nft": {
        "about": "synthfaces-prox after the forward-process route (reward-weighted proximal matching on its own 4-step "
                 "samples, embedded alignment reward); the default of proxt2i generate",
        "rebuild": NFT_REBUILD,
    },
    "synthfaces-prox-nft-distilled": {
        "about": "synthfaces-prox-nft with its guidance (CFG 4) distilled into the network: one pass per step, "
                 "sampled unguided by default, about half the time per image",
        "rebuild": DISTILLED_REBUILD,
    },
    "synthfaces-score": {
        "about": "score baseline: the same U-ViT, data and budget, trained with denoising score matching",
        "rebuild": _rebuild("score"),
    },
    "synthfaces-lcm": {
        "about": "few-step competitor: synthfaces-score consistency-distilled (LCM-style, CFG 4 baked in), sampled with "
                 "the consistency sampler, one pass per step",
        "rebuild": LCM_REBUILD,
    },
}
DEFAULT_MODEL = "synthfaces-prox-nft"


# Models addressable by name that are never shipped: their weights derive from non-commercial ones (the PhotoFaces
# generator), so each user builds them (docs/photofaces.md) into the local models folder, LOCAL_MODELS_ENV or
# ~/.local/share/proxt2i/models, as NAME/.
LOCAL_MODELS_ENV = "PROXT2I_MODELS"
_PHOTO_DATA = ("proxt2i data photofaces --num 3000 --size 256 --shard-size 250 --out data/photofaces-raw && proxt2i data curate "
               "data/photofaces-raw --out data/photofaces-curated face_filter=true face_captions=true && proxt2i train-vae --out "
               "runs/photofaces-vae steps=1200 size=64 batch=16 data=webdataset:data/photofaces-raw/shard-{000000..000005}.tar")
LOCAL: dict[str, dict] = {
    f"photofaces-{kind}": {
        "about": f"{'conditional proximal U-ViT' if kind == 'prox' else 'score baseline'} on PhotoFaces, 64 px through its own "
                 "VAE (non-commercial: derived from StyleGAN2-FFHQ; the [photo] extra)",
        "rebuild": f"{_PHOTO_DATA} && proxt2i train photofaces-{kind} && proxt2i train photofaces-{kind}-stage2 && "
                   f"proxt2i train photofaces-{kind}-stage3 && "
                   f"proxt2i export runs/photofaces-{kind}-stage3/final --out MODELS/photofaces-{kind}",
    } for kind in ("prox", "score")
}


def local_models_dir() -> Path:
    import os

    return Path(os.environ.get(LOCAL_MODELS_ENV) or Path.home() / ".local" / "share" / "proxt2i" / "models")


def resolve_model(name_or_path: str) -> Path:
    """A shipped name -> its folder in the package; a local name (LOCAL) -> its folder in local_models_dir();
    anything else is taken as a folder path."""
    if name_or_path in LOCAL:
        path = local_models_dir() / name_or_path
        if not (path / "config.json").exists():
            raise UsageError(f"model {name_or_path!r} is not built on this machine (looked in {path}; set {LOCAL_MODELS_ENV} "
                             f"to look elsewhere); build it with: {LOCAL[name_or_path]['rebuild'].replace('MODELS', str(local_models_dir()))}")
        return path
    if name_or_path in SHIPPED:
        path = ASSETS / name_or_path
        if not (path / "config.json").exists():
            raise UsageError(f"shipped model {name_or_path!r} is not built in this checkout; build it with: {SHIPPED[name_or_path]['rebuild']}")
        return path
    path = Path(name_or_path)
    if not path.exists() and "/" not in name_or_path and not name_or_path.startswith("."):
        raise UsageError(f"unknown model {name_or_path!r}: not a shipped name ({', '.join(SHIPPED)}) nor an existing folder")
    return path


def shipped_vae_dir() -> Path:
    """The embedded small VAE (rebuilt by VAE_REBUILD: a VAE, then its decoder alone trained further)."""
    path = ASSETS / VAE_NAME
    if not (path / "autoencoder.safetensors").exists():
        raise UsageError(f"the embedded VAE is missing from {path}; rebuild it with: {VAE_REBUILD.format(path=path)}")
    return path
