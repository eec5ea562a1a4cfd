"""The paper stack's components at their real sizes, as configurations written here, built with random
weights and saved as the local folders a user's downloaded weights would be:

    MODELS/sd3.5-vae/      config.json + diffusion_pytorch_model.safetensors   (diffusers AutoencoderKL)
    MODELS/metaclip-h14/   config.json + model.safetensors + tokenizer.json    (transformers CLIPTextModel)
    MODELS/t5-xl/          config.json + model.safetensors + tokenizer.json    (transformers T5EncoderModel)

The configurations are those of the public checkpoints (SD3.5's VAE: 16 latent channels, scaling 1.5305,
shift 0.0609; MetaCLIP ViT-H/14's text tower; T5 v1.1 encoders). The tokenizers are stand-ins, a word-level
vocabulary of the SynthFaces captions: real weights bring their own. "shrunk" keeps every class and code
path at a few thousand parameters, for tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..extras import require

SD35_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 16, "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2,
            "norm_num_groups": 32, "act_fn": "silu", "sample_size": 1024, "scaling_factor": 1.5305, "shift_factor": 0.0609,
            "use_quant_conv": False, "use_post_quant_conv": False, "mid_block_add_attention": True, "force_upcast": True}
METACLIP_H14_TEXT = {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                     "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 1024}
T5_V1_1 = {  # encoder sizes of google/t5-v1_1-*: d_model, d_ff, layers, heads (d_kv 64, gated GELU, vocabulary 32128)
    "small": (512, 1024, 8, 6), "base": (768, 2048, 12, 12), "large": (1024, 2816, 24, 16),
    "xl": (2048, 5120, 24, 32), "xxl": (4096, 10240, 24, 64),
}
SHRUNK_VAE = {**SD35_VAE, "block_out_channels": [8, 16], "down_block_types": ["DownEncoderBlock2D"] * 2,
              "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1, "norm_num_groups": 4}
SHRUNK_CLIP = {**METACLIP_H14_TEXT, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "projection_dim": 32}
SHRUNK_T5 = (24, 48, 2, 3)
SPECIALS = {"[PAD]": 0, "</s>": 1, "[UNK]": 2, "[BOS]": 3}


@dataclass(frozen=True)
class Component:
    """One local weights folder of the stack: its name under MODELS/, the class and its configuration."""

    name: str
    kind: str  # "vae", "clip" or "t5"
    config: dict

    def build(self, device="meta"):
        """The module with this configuration; on "meta" (default) no memory is allocated (for counting)."""
        import torch

        with torch.device(device):
            if self.kind == "vae":
                return require("diffusers", "hf", "the scale check").AutoencoderKL(**self.config)
            transformers = require("transformers", "hf", "the scale check")
            if self.kind == "clip":
                return transformers.CLIPTextModel(transformers.CLIPTextConfig(**self.config))
            return transformers.T5EncoderModel(transformers.T5Config(**self.config))


def t5_config(size: str, vocab_size: int = 32128) -> dict:
    if size == "shrunk":
        d_model, d_ff, layers, heads = SHRUNK_T5
        d_kv = 8
    elif size in T5_V1_1:
        (d_model, d_ff, layers, heads), d_kv = T5_V1_1[size], 64
    else:
        raise UsageError(f"unknown T5 size {size!r}; choose one of: {', '.join(T5_V1_1)}")
    return {"vocab_size": vocab_size, "d_model": d_model, "d_ff": d_ff, "num_layers": layers, "num_heads": heads, "d_kv": d_kv,
            "feed_forward_proj": "gated-gelu", "dropout_rate": 0.0, "pad_token_id": SPECIALS["[PAD]"],
            "eos_token_id": SPECIALS["</s>"], "decoder_start_token_id": SPECIALS["[PAD]"]}


def stack(t5: str = "xl", shrunk: bool = False) -> list[Component]:
    """The three frozen components of the paper preset (laion-face-prox-256), at true size or shrunk."""
    clip = {**(SHRUNK_CLIP if shrunk else METACLIP_H14_TEXT), "pad_token_id": SPECIALS["[PAD]"], "bos_token_id": SPECIALS["[BOS]"],
            "eos_token_id": SPECIALS["</s>"]}
    return [Component("sd3.5-vae", "vae", SHRUNK_VAE if shrunk else SD35_VAE),
            Component("metaclip-h14", "clip", clip),
            Component(f"t5-{t5}", "t5", t5_config("shrunk" if shrunk else t5))]


def parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_folder_matches(component: Component, folder: Path) -> None:
    """A folder already at MODELS/NAME must hold this component's configuration: one that does not (another
    T5 size, another VAE) is a UsageError naming the first differing key, before anything is loaded."""
    saved = json.loads((folder / "config.json").read_text())
    for key, value in component.config.items():
        if key in saved and saved[key] != value:
            raise UsageError(f"{folder}/config.json has {key}={saved[key]!r} where the {component.name} configuration has {value!r}; "
                             f"remove the folder or give another models= folder")


def save_component(component: Component, folder: Path, words: list[str], seed: int = 0) -> None:
    """Random weights (seeded) saved as a local folder in the layout from_pretrained reads, written beside
    the target and renamed into place (a killed build leaves no half folder)."""
    import shutil
    import tempfile

    import torch

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        torch.manual_seed(seed)
        module = component.build(device="cpu")
        module.save_pretrained(tmp, safe_serialization=True)
        del module
        if component.kind != "vae":
            save_word_tokenizer(tmp, words, bos=component.kind == "clip")
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_word_tokenizer(folder: Path, words: list[str], bos: bool) -> None:
    """A word-level tokenizer over `words` ([BOS] first for CLIP, </s> last for both), saved as tokenizer.json."""
    tokenizers = require("tokenizers", "hf", "the scale check")
    transformers = require("transformers", "hf", "the scale check")

    vocab = {**SPECIALS, **{w: i + len(SPECIALS) for i, w in enumerate(words)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    single = ("[BOS] $A </s>" if bos else "$A </s>")
    tok.post_processor = tokenizers.processors.TemplateProcessing(single=single, special_tokens=[("[BOS]", SPECIALS["[BOS]"]),
                                                                                                  ("</s>", SPECIALS["</s>"])])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="</s>",
                                                **({"bos_token": "[BOS]"} if bos else {}))
    fast.save_pretrained(folder)
