"""Export a training checkpoint as a model folder: python docs/experiments/export_checkpoint.py OUT/checkpoints/step-XXXXXXXX DIR [model.safetensors]

The third argument picks the raw weights (model.safetensors) instead of the EMA (the default), as used for
the raw-vs-EMA measurements in docs/models.md; then `proxt2i generate --model DIR ...` and `proxt2i evaluate`.
"""
import sys, json
from pathlib import Path
import torch
from safetensors.torch import load_file
from proxt2i.training.presets import _apply, TrainConfig
from proxt2i.training.run import build_autoencoder, build_network
from proxt2i.models.text import synthfaces_vocabulary
from proxt2i.pipeline import save_pipeline
ckpt, out = Path(sys.argv[1]), sys.argv[2]
state = json.loads((ckpt / "state.json").read_text())
cfg = _apply(TrainConfig(), state["config"])
ae = build_autoencoder(cfg.autoencoder).eval()
net = build_network(cfg, ae.latent_channels, cfg.image_size // ae.downsample, synthfaces_vocabulary())
net.load_state_dict(load_file(ckpt / (sys.argv[3] if len(sys.argv) > 3 else "ema.safetensors")))
save_pipeline(out, net.uvit, net.text_encoder, ae, objective=cfg.objective, image_size=cfg.image_size, recipe={"checkpoint": str(ckpt)})
print("exported", out)
