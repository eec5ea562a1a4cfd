"""Shipped models, addressable by name: a plain dict from name to what it is and how it is rebuilt.

The weights live in the package (src/proxt2i/assets/models/<name>/), so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError

ASSETS = Path(__file__).parent / "assets" / "models"

# Both are trained in three runs (5000 steps; 7000 more from those weights with a fresh warm-up and seed; then
# 9000 more with the learning rate decayed linearly to 0): each run was added once the previous one had been
# measured; `proxt2i models` lists the three stages.
SHIPPED: dict[str, dict] = {
    "synthfaces-prox": {
        "about": "conditional proximal U-ViT (tiny) on SynthFaces, 32 px through the embedded VAE; the default",
        "rebuild": "proxt2i train synthfaces-prox && proxt2i train synthfaces-prox init=runs/synthfaces-prox/final steps=7000 "
                   "lr_warmup=100 seed=1 out=runs/synthfaces-prox-more && proxt2i train synthfaces-prox init=runs/synthfaces-prox-more/final "
                   "steps=9000 lr_warmup=100 lr_decay=linear seed=2 out=runs/synthfaces-prox-cool "
                   "&& cp -r runs/synthfaces-prox-cool/final src/proxt2i/assets/models/synthfaces-prox",
    },
    "synthfaces-score": {
        "about": "score baseline: the same U-ViT, data and budget, trained with denoising score matching",
        "rebuild": "proxt2i train synthfaces-score && proxt2i train synthfaces-score init=runs/synthfaces-score/final steps=7000 "
                   "lr_warmup=100 seed=1 out=runs/synthfaces-score-more && proxt2i train synthfaces-score init=runs/synthfaces-score-more/final "
                   "steps=9000 lr_warmup=100 lr_decay=linear seed=2 out=runs/synthfaces-score-cool "
                   "&& cp -r runs/synthfaces-score-cool/final src/proxt2i/assets/models/synthfaces-score",
    },
}
DEFAULT_MODEL = "synthfaces-prox"
VAE_NAME = "synthfaces-vae"
VAE_REBUILD = ("proxt2i train-vae --out runs/vae --steps 3000 --size 32 --batch 32 --seed 0 && proxt2i train-vae --init runs/vae "
               "--decoder-only --steps 10000 --lr 5e-4 --seed 1 --out {path}")


def resolve_model(name_or_path: str) -> Path:
    """A shipped name -> its folder in the package; anything else is taken as a folder path."""
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
