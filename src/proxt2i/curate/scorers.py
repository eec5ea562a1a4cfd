"""The curation models, loaded from local folders: the LAION aesthetic scorer and a recaptioner."""

from __future__ import annotations

from typing import Callable, Sequence

from PIL import Image

from ..errors import UsageError
from ..extras import require
from .config import DEFAULT_CAPTION_PROMPT


def check_model_folder(folder: str, name: str) -> None:
    """Refuse, before any work, a model folder without config.json and weights, with a weights file whose
    safetensors header does not parse, or (the captioner) whose processor does not load: on Ray the models
    load in the actors, after the scan, and their errors would come late."""
    from safetensors import safe_open

    from ..models.hf import HF_WEIGHTS, hf_call, require_model_dir

    path = require_model_dir(folder, ["config.json", HF_WEIGHTS], name=name)
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), "pt"):
                pass
        except Exception as err:  # safetensors raises its own SafetensorError for a bad header
            raise UsageError(f"{name} weights {weights} are not a readable safetensors file ({str(err).splitlines()[0]})") from None
    if name == "captioner":
        transformers = require("transformers", "hf", "recaptioning")
        hf_call(f"captioner processor from {path}", lambda: transformers.AutoProcessor.from_pretrained(path, local_files_only=True))


def load_aesthetic_scorer(folder: str, device: str = "cpu") -> Callable[[Sequence[Image.Image]], list[float]]:
    """PIL images of any sizes -> LAION aesthetic scores (about 1-10). The model's own resize and centre
    crop are applied per image first, so that one batch holds images of different shapes."""
    import numpy as np
    import torch

    from ..imaging import resize_and_centre_crop, to_float_images
    from ..rewards import AestheticReward

    model = AestheticReward(folder, device)
    resize, crop = model.prep["resize"], model.prep["crop"]

    def square(im: Image.Image) -> "torch.Tensor":
        return to_float_images(np.asarray(resize_and_centre_crop(im, resize, crop)))

    @torch.no_grad()
    def score(images):
        batch = torch.stack([square(im) for im in images])
        return model(batch, [""] * len(images)).float().cpu().tolist()

    return score


def load_captioner(folder: str, prompt: str = DEFAULT_CAPTION_PROMPT, max_new_tokens: int = 77,
                   device: str = "cpu") -> Callable[[Sequence[Image.Image]], list[str]]:
    """PIL images -> one caption each, from a local transformers image-text-to-text model (greedy, so
    deterministic). Chat models (a processor with a chat template, e.g. Qwen2.5-VL) get `prompt` as a user
    turn; others (BLIP) get it as the text the caption continues, and it is stripped from the output."""
    import torch
    transformers = require("transformers", "hf", "recaptioning")
    AutoModelForImageTextToText, AutoProcessor = transformers.AutoModelForImageTextToText, transformers.AutoProcessor

    from ..models.hf import HF_WEIGHTS, hf_call, require_model_dir

    path = require_model_dir(folder, ["config.json", HF_WEIGHTS], name="captioner")
    processor = hf_call(f"captioner processor from {path}", lambda: AutoProcessor.from_pretrained(path, local_files_only=True))
    model = hf_call(f"captioner model from {path}",
                     lambda: AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, use_safetensors=True))
    model = model.to(device).eval()
    tokenizer = getattr(processor, "tokenizer", processor)
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        strip = ""
    else:
        text, strip = prompt, prompt
    if getattr(tokenizer, "padding_side", None) is not None:
        tokenizer.padding_side = "left"  # decoder-only models continue the last token

    @torch.no_grad()
    def caption(images):
        inputs = processor(images=list(images), text=[text] * len(images), return_tensors="pt", padding=True).to(device)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        ids = inputs["input_ids"]
        if out.shape[1] >= ids.shape[1] and torch.equal(out[:, : ids.shape[1]], ids):
            out = out[:, ids.shape[1]:]  # decoder-only models return the prompt too
        texts = [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
        return [t[len(strip):].strip() if strip and (t.lower() + " ").startswith(strip.lower() + " ") else t for t in texts]

    return caption
