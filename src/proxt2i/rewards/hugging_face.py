"""Real preference models, loaded only from a local folder (local_files_only; nothing is downloaded).

  pickscore:DIR    transformers CLIPModel + tokenizer + preprocessor_config.json in DIR (PickScore_v1 with the
                   CLIP-ViT-H-14 processor files copied in); score = logit_scale.exp() * cos(image, text) (~20-23)
  clipscore:DIR    the same classes (e.g. openai/clip-vit-large-patch14); score = 100 * max(cos, 0)
  hpsv2:DIR        HPSv2.1 as a transformers CLIPModel: HPSv2.1 is a fine-tuned OpenCLIP ViT-H-14 and its
                   weights convert to transformers' CLIP layout like any OpenCLIP ViT-H (convert once, offline;
                   open_clip_torch is not a dependency: installing it pulls another torch build). score = cos,
                   as hpsv2.score returns it (papers report it x100)
  aesthetic:DIR    LAION improved aesthetic predictor: transformers CLIPVisionModelWithProjection (ViT-L/14) in
                   DIR plus DIR/aesthetic_mlp.safetensors, the MLP head on the L2-normalised image embedding:
                   Linear(768, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1),
                   Linear(64, 16), Linear(16, 1) -- no activations, keys layers.{0,2,4,6,7}.{weight,bias}, i.e. the
                   state dict of sac+logos+ava1-l14-linearMSE.pth saved as safetensors (score ~ 1-10)
  imagereward:DIR  ImageReward-v1.0's architecture on transformers: BlipForImageTextRetrieval (BLIP ViT-L
                   vision tower + BERT text encoder with cross-attention) in DIR with its tokenizer and
                   preprocessor; the [CLS] state of the text encoder over the image goes through the same
                   MLP layout (DIR/imagereward_mlp.safetensors, keys layers.*; ImageReward's `mlp.` prefix
                   stripped), then (r - mean) / std with ImageReward's constants (override in
                   DIR/imagereward.json {"mean": .., "std": ..}). The `image-reward` package is not used
                   (it fails to import on transformers >= 5 and fetches a tokenizer at start-up). The
                   weights must be converted from ImageReward.pt to this layout once; that conversion is
                   not shipped, and scores have not been compared against the official package.

Images are resized (bicubic, antialiased) and centre-cropped to the model's processor size and
normalised with its mean / std in torch, so rewards stay differentiable in the images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UsageError, read_json
from ..extras import require
from ..imaging import resize_and_centre_crop_tensor
from ..models.hf import HF_TOKENIZER, HF_WEIGHTS, hf_call, require_model_dir
from .protocol import check_images

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGEREWARD_MEAN, IMAGEREWARD_STD = 0.16717362830052426, 1.0333394966054072  # ImageReward-v1.0's constants


def image_preprocessing(path: Path, default_size: int, mean=CLIP_MEAN, std=CLIP_STD) -> dict:
    """Resize / crop size and normalisation from DIR/preprocessor_config.json (the Hugging Face image
    processor's fields), falling back to the model's image size and CLIP's statistics."""
    cfg = {}
    f = path / "preprocessor_config.json"
    if f.exists():
        cfg = read_json(f, "preprocessor config")

    def side(v, fallback):
        if isinstance(v, dict):
            return int(v.get("shortest_edge") or v.get("height") or fallback)
        return int(v) if v else fallback

    resize = side(cfg.get("size"), default_size)
    crop = side(cfg.get("crop_size"), resize) if cfg.get("do_center_crop", "crop_size" in cfg) else resize
    return {"resize": resize, "crop": crop, "mean": tuple(cfg.get("image_mean", mean)), "std": tuple(cfg.get("image_std", std))}


def to_model_pixels(images: torch.Tensor, prep: dict) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> normalised [B, 3, crop, crop]: shortest side to `resize` (bicubic,
    antialiased), centre crop, (x - mean) / std. Differentiable."""
    x = resize_and_centre_crop_tensor(images.float(), prep["resize"], prep["crop"], mode="bicubic").clamp(0, 1)
    mean = torch.tensor(prep["mean"], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(prep["std"], device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _features(out) -> torch.Tensor:
    """CLIP feature methods return a tensor (transformers < 5) or an output object (>= 5): unwrap."""
    if torch.is_tensor(out):
        return out
    for key in ("image_embeds", "text_embeds", "pooler_output"):
        v = getattr(out, key, None)
        if v is not None:
            return v
    raise TypeError(f"cannot read features from {type(out).__name__}")


class CLIPReward(nn.Module):
    """Image-text reward from a transformers CLIPModel in a folder. kind: 'pickscore' (logit_scale.exp()
    * cos), 'clipscore' (100 * max(cos, 0)) or 'hpsv2' (cos)."""

    def __init__(self, path, kind: str, device="cpu"):
        super().__init__()
        transformers = require("transformers", "hf", "the clip reward")
        AutoTokenizer, CLIPModel = transformers.AutoTokenizer, transformers.CLIPModel

        path = require_model_dir(path, ["config.json", HF_WEIGHTS, HF_TOKENIZER], name=kind)
        self.kind = kind
        self.model = hf_call(f"{kind} model from {path}", lambda: CLIPModel.from_pretrained(path, local_files_only=True, use_safetensors=True))
        self.model = self.model.to(device).eval().requires_grad_(False)
        self.tokenizer = hf_call(f"{kind} tokenizer from {path}", lambda: AutoTokenizer.from_pretrained(path, local_files_only=True))
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.prep = image_preprocessing(path, int(self.model.config.vision_config.image_size))

    def forward(self, images, prompts):
        check_images(images, prompts)
        dev = self.model.logit_scale.device
        tok = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        img = _features(self.model.get_image_features(pixel_values=to_model_pixels(images.to(dev), self.prep)))
        txt = _features(self.model.get_text_features(input_ids=tok["input_ids"].to(dev), attention_mask=tok["attention_mask"].to(dev)))
        cos = (F.normalize(img, dim=-1) * F.normalize(txt, dim=-1)).sum(-1)
        if self.kind == "pickscore":
            return self.model.logit_scale.exp() * cos
        if self.kind == "clipscore":
            return 100.0 * cos.clamp_min(0)
        return cos


class RewardMLP(nn.Module):
    """The LAION improved-aesthetic-predictor head (also ImageReward's): no activations between the
    linear layers, dropout only in training. in_dim 768 for CLIP ViT-L/14 and BLIP's BERT."""

    def __init__(self, in_dim: int = 768):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.layers(x)


def load_reward_mlp(file: Path) -> RewardMLP:
    from safetensors.torch import load_file

    try:
        state = load_file(file)
        state = {k.removeprefix("mlp."): v for k, v in state.items()}
        mlp = RewardMLP(int(state["layers.0.weight"].shape[1]))
        mlp.load_state_dict(state)
    except Exception as err:  # safetensors / missing keys / shape mismatch
        raise UsageError(f"{file} is not a reward MLP head with keys layers.{{0,2,4,6,7}}.{{weight,bias}} ({str(err).splitlines()[0]})") from None
    return mlp.eval().requires_grad_(False)


class AestheticReward(nn.Module):
    """LAION aesthetic score: MLP(normalised CLIP image embedding); prompts are ignored."""

    def __init__(self, path, device="cpu"):
        super().__init__()
        CLIPVisionModelWithProjection = require("transformers", "hf", "the aesthetic predictor").CLIPVisionModelWithProjection

        path = require_model_dir(path, ["config.json", HF_WEIGHTS, "aesthetic_mlp.safetensors"], name="aesthetic")
        self.model = hf_call(f"aesthetic CLIP vision model from {path}",
                              lambda: CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True, use_safetensors=True))
        self.model = self.model.to(device).eval().requires_grad_(False)
        self.mlp = load_reward_mlp(path / "aesthetic_mlp.safetensors").to(device)
        self.prep = image_preprocessing(path, int(self.model.config.image_size))

    def forward(self, images, prompts):
        check_images(images, prompts)
        dev = next(self.mlp.parameters()).device
        emb = _features(self.model(pixel_values=to_model_pixels(images.to(dev), self.prep)))
        return self.mlp(F.normalize(emb, dim=-1))[:, 0]


class ImageRewardModel(nn.Module):
    """ImageReward on transformers' BLIP: text encoder over the image tokens, [CLS] -> MLP -> standardised."""

    def __init__(self, path, device="cpu"):
        super().__init__()
        transformers = require("transformers", "hf", "the imagereward reward")
        AutoTokenizer, BlipForImageTextRetrieval = transformers.AutoTokenizer, transformers.BlipForImageTextRetrieval

        path = require_model_dir(path, ["config.json", HF_WEIGHTS, HF_TOKENIZER, "imagereward_mlp.safetensors"], name="imagereward")
        blip = hf_call(f"imagereward BLIP model from {path}", lambda: BlipForImageTextRetrieval.from_pretrained(path, local_files_only=True, use_safetensors=True))
        self.vision, self.text = blip.vision_model.to(device).eval(), blip.text_encoder.to(device).eval()
        self.requires_grad_(False)
        self.tokenizer = hf_call(f"imagereward tokenizer from {path}", lambda: AutoTokenizer.from_pretrained(path, local_files_only=True))
        self.mlp = load_reward_mlp(path / "imagereward_mlp.safetensors").to(device)
        consts = read_json(path / "imagereward.json", "ImageReward constants") if (path / "imagereward.json").exists() else {}
        self.mean, self.std = float(consts.get("mean", IMAGEREWARD_MEAN)), float(consts.get("std", IMAGEREWARD_STD))
        self.prep = image_preprocessing(path, int(blip.config.vision_config.image_size))
        self.max_length = 35  # ImageReward's tokenizer length

    def forward(self, images, prompts):
        check_images(images, prompts)
        dev = next(self.mlp.parameters()).device
        image_embeds = self.vision(pixel_values=to_model_pixels(images.to(dev), self.prep)).last_hidden_state
        tok = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt")
        out = self.text(input_ids=tok["input_ids"].to(dev), attention_mask=tok["attention_mask"].to(dev),
                        encoder_hidden_states=image_embeds,
                        encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=dev))
        return (self.mlp(out.last_hidden_state[:, 0].float())[:, 0] - self.mean) / self.std
