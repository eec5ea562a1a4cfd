"""Text encoders behind one interface: encode(prompts) -> TextEncoding(tokens [B, L, D], mask [B, L], pooled [B, D]).

- "embedded": a tokenizer over the words of the training captions and a small transformer, trained
  jointly with the generator (the default for SynthFaces; its weights are saved with the model).
  Tokenizer "pieces": text_split.prompt_words, and a word never seen in training is read as the known
  words inside it ("redhaired" -> red, haired; the rest -> one unknown token); "words" (models saved
  before it): text_split.embedded_words, an unseen word is one unknown token;
- "clip": a Hugging Face CLIP / MetaCLIP text model from a local directory (pooled = text_embeds or pooler_output);
- "t5": a Hugging Face T5 encoder from a local directory (pooled = masked mean of the states);
- "concat": two encoders (the paper's MetaCLIP + T5): token sequences concatenated along the sequence
  axis, feature axes zero-padded to the wider one; pooled from the first (CLIP-style) encoder.
- "contrastive": the SynthFaces contrastive model's text tower (shipped with the evaluator), frozen:
  a pretrained text-image aligned encoder, the embedded stand-in for the paper's MetaCLIP. Its weights
  are copied into the model folder, so the model does not depend on the evaluator at run time.

Hugging Face models load with local_files_only=True: nothing is downloaded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import check_ranges, config_from_section
from ..errors import UsageError
from ..extras import require
from ..text_split import caption_words, embedded_words, known_pieces, prompt_words
from .hf import HF_WEIGHTS, TEXT_ENCODER_FOLDER, require_model_dir
from .tokenizer import Tokenizer
from .towers import TextTower

PAD, UNK = "[pad]", "[unk]"


@dataclass
class TextEncoding:
    tokens: torch.Tensor  # [B, L, D]
    mask: torch.Tensor  # [B, L] bool, True for real tokens
    pooled: torch.Tensor  # [B, D]


def warn_truncated(prompt: str, limit: int) -> None:
    warnings.warn(f"prompt longer than the text encoder's {limit} tokens was truncated: {prompt[:60]!r}...", stacklevel=3)


TOKENIZERS = {"pieces": prompt_words, "words": embedded_words}  # embedded tokenizer -> its word splitter


def unseen_words(text_encoder, prompt: str) -> list[str]:
    """The words of `prompt` the text encoder never saw in training (its vocabulary lacks them), in order,
    once each; [] for encoders with an open vocabulary (Hugging Face tokenizers)."""
    fn = getattr(text_encoder, "unseen_words", None)
    return fn(prompt) if fn is not None else []


class EmbeddedTextEncoder(nn.Module):
    """Tokenizer over the training words + small transformer. vocab: list of words (ids 2.. ; 0 pad, 1 unknown)."""

    def __init__(self, vocab: list[str], dim: int = 128, depth: int = 2, heads: int = 4, max_length: int = 32,
                 tokenizer: str = "pieces"):
        super().__init__()
        if tokenizer not in TOKENIZERS:
            raise UsageError(f"unknown embedded tokenizer {tokenizer!r}; choose one of: {', '.join(TOKENIZERS)}")
        self.vocab = list(vocab)
        self.index = {w: i + 2 for i, w in enumerate(self.vocab)}
        self.tokenizer_kind = tokenizer
        self.words = TOKENIZERS[tokenizer]
        self.dim, self.max_length = dim, max_length
        self.embed = nn.Embedding(len(self.vocab) + 2, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def config(self) -> dict:
        return {"type": "embedded", "vocab": self.vocab, "dim": self.dim, "depth": len(self.encoder.layers),
                "heads": self.encoder.layers[0].self_attn.num_heads, "max_length": self.max_length,
                "tokenizer": self.tokenizer_kind}

    def pieces(self, word: str) -> list[str | None]:
        """How `word` is read: itself if known, else the known words inside it (None: an unknown token)."""
        if self.tokenizer_kind == "words":
            return [word if word in self.index else None]
        return known_pieces(word, self.index)

    def unseen_words(self, prompt: str) -> list[str]:
        return list(dict.fromkeys(w for w in self.words(prompt) if w not in self.index))

    def tokens(self, prompt: str) -> list[int]:
        """Token ids of one prompt, untruncated (1: unknown)."""
        return [1 if p is None else self.index[p] for w in self.words(prompt) for p in self.pieces(w)]

    def token_ids(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.long)
        for i, p in enumerate(prompts):
            toks = self.tokens(p)
            if len(toks) > self.max_length:
                warn_truncated(p, self.max_length)
                toks = toks[: self.max_length]
            ids[i, : len(toks)] = torch.tensor(toks, dtype=torch.long)
        return ids, ids != 0

    def encode(self, prompts: list[str]) -> TextEncoding:
        device = self.embed.weight.device
        ids, mask = (v.to(device) for v in self.token_ids(prompts))
        x = self.embed(ids) + self.pos
        # an empty prompt (the unconditional input) has no real tokens: keep one pad slot visible to attention
        attn_keep = mask.clone()
        attn_keep[:, 0] = True
        x = self.norm(self.encoder(x, src_key_padding_mask=~attn_keep))
        m = mask[..., None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return TextEncoding(tokens=x * m, mask=mask, pooled=pooled)

    forward = encode


class HFTextEncoder(nn.Module):
    """A frozen Hugging Face text encoder (CLIP / MetaCLIP text or T5 encoder) from a local directory."""

    def __init__(self, kind: str, path: str | Path, max_length: int | None = None, dtype: torch.dtype | None = None):
        """dtype: the weights' dtype, loaded as such (None: float32); a frozen T5-XL is 4.9 GB in float32."""
        super().__init__()
        transformers = require("transformers", "hf", "a Hugging Face text encoder")
        AutoTokenizer = transformers.AutoTokenizer

        self.kind, self.path = kind, str(path)
        p = require_model_dir(str(Path(path)), ["config.json", HF_WEIGHTS], TEXT_ENCODER_FOLDER,
                              expected="config.json, model weights (*.safetensors) and tokenizer files")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
            if kind == "clip":
                CLIPTextModel = transformers.CLIPTextModel

                self.model = CLIPTextModel.from_pretrained(p, local_files_only=True, use_safetensors=True, dtype=dtype or torch.float32)
            elif kind == "t5":
                T5EncoderModel = transformers.T5EncoderModel

                self.model = T5EncoderModel.from_pretrained(p, local_files_only=True, use_safetensors=True, dtype=dtype or torch.float32)
            else:
                raise UsageError(f"unknown Hugging Face text encoder kind {kind!r}; use 'clip' or 't5'")
        except OSError as err:
            raise UsageError(f"could not load a {kind} text encoder from {str(p)!r}: {str(err).splitlines()[0]}") from None
        self.model.requires_grad_(False).eval()
        self.dim = self.model.config.hidden_size
        limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        self.max_length = min(max_length or limit, limit)

    def config(self) -> dict:
        return {"type": self.kind, "path": self.path, "max_length": self.max_length}

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> TextEncoding:
        full = self.tokenizer(list(prompts), padding=False, truncation=False)["input_ids"]
        for p, ids in zip(prompts, full):
            if len(ids) > self.max_length:
                warn_truncated(p, self.max_length)
        batch = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt")
        device = next(self.model.parameters()).device
        out = self.model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        states = out.last_hidden_state
        mask = batch["attention_mask"].to(device).bool()
        if self.kind == "clip" and getattr(out, "pooler_output", None) is not None:
            pooled = out.pooler_output
        else:
            m = mask[..., None].to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp_min(1.0)
        return TextEncoding(tokens=states, mask=mask, pooled=pooled)

    forward = encode


class ConcatTextEncoder(nn.Module):
    """Two encoders combined (ProxT2I's MetaCLIP + T5): token sequences concatenated along the sequence
    axis, features zero-padded to the wider of the two; pooled = the first encoder's pooled vector, padded."""

    def __init__(self, first: nn.Module, second: nn.Module):
        super().__init__()
        self.first, self.second = first, second
        self.dim = max(first.dim, second.dim)
        self.max_length = first.max_length + second.max_length

    def config(self) -> dict:
        return {"type": "concat", "first": self.first.config(), "second": self.second.config()}

    def unseen_words(self, prompt: str) -> list[str]:
        """Words neither encoder knows."""
        second = set(unseen_words(self.second, prompt))
        return [w for w in unseen_words(self.first, prompt) if w in second]

    def encode(self, prompts: list[str]) -> TextEncoding:
        a, b = self.first.encode(prompts), self.second.encode(prompts)
        pad = lambda x: F.pad(x, (0, self.dim - x.shape[-1]))
        return TextEncoding(
            tokens=torch.cat([pad(a.tokens), pad(b.tokens)], 1), mask=torch.cat([a.mask, b.mask], 1), pooled=pad(a.pooled)
        )

    forward = encode


class ContrastiveTextEncoder(nn.Module):
    """The contrastive model's text tower, frozen (spec 'synthfaces-contrastive'). encode() as above;
    the empty prompt is the <bos> token alone."""

    def __init__(self, vocab: list[str], dim: int = 128, depth: int = 2, heads: int = 4, max_length: int = 50):
        super().__init__()
        self.vocab, self.dim, self.depth, self.heads, self.max_length = list(vocab), dim, depth, heads, max_length
        self.tokenizer = Tokenizer(tuple(vocab), max_length)
        self.tower = TextTower(len(vocab), dim, depth, heads, max_length)
        self.requires_grad_(False)

    def config(self) -> dict:
        return {"type": "contrastive", "vocab": self.vocab, "dim": self.dim, "depth": self.depth, "heads": self.heads,
                "max_length": self.max_length}

    def train(self, mode: bool = True):  # frozen: always in eval mode
        return super().train(False)

    def unseen_words(self, prompt: str) -> list[str]:
        return list(dict.fromkeys(self.tokenizer.unknown_words(prompt)))

    def encode(self, prompts: list[str]) -> TextEncoding:
        ids, mask = self.tokenizer(list(prompts))
        for p, used in zip(prompts, mask.sum(1).tolist()):
            if used == self.max_length and len(caption_words(p)) + 1 > self.max_length:  # <bos> + the tokenizer's words did not fit
                warn_truncated(p, self.max_length)
        dev = self.tower.pos.device
        with torch.no_grad():
            tokens, pooled = self.tower(ids.to(dev), mask.to(dev))
        return TextEncoding(tokens=tokens, mask=mask.to(dev), pooled=pooled)


def text_encoder_from_config(cfg: dict, dtype: torch.dtype | None = None) -> nn.Module:
    """Build a text encoder from its config dict (the "text_encoder" entry of a model's config.json);
    dtype: Hugging Face encoders load their weights in it (the embedded ones are cast by their holder)."""
    kind = cfg.get("type") if isinstance(cfg, dict) else None
    if kind not in TEXT_ENCODERS:
        raise UsageError(f"unknown text encoder type {kind!r}; choose one of: {', '.join(TEXT_ENCODERS)}")
    return TEXT_ENCODERS[kind](cfg, dtype)


def load_text_encoder(spec: str, load_part: Callable[..., nn.Module] | None = None, max_length: int | None = None,
                      dtype: torch.dtype | None = None) -> nn.Module:
    """From a spec string: 'clip:/dir', 't5:/dir' or 'clip:/dir+t5:/dir' (concatenated). load_part
    (default: this function) loads each side of a '+', so that a caller can add its own names
    (training.text adds 'synthfaces-contrastive'). max_length: each Hugging Face encoder's token limit
    (None: its own; T5 has no position limit, so 512); dtype: their weights' dtype (None: float32)."""
    if "+" in spec:
        a, b = spec.split("+", 1)
        load_part = load_part or load_text_encoder
        return ConcatTextEncoder(load_part(a, max_length=max_length, dtype=dtype), load_part(b, max_length=max_length, dtype=dtype))
    kind, _, path = spec.partition(":")
    if kind not in ("clip", "t5") or not path:
        raise UsageError(f"text encoder spec {spec!r} not understood; use 'clip:DIR', 't5:DIR' or 'clip:DIR+t5:DIR'")
    return HFTextEncoder(kind, path, max_length, dtype)


@dataclass(frozen=True)
class EmbeddedTextConfig:
    """The "embedded" / "contrastive" entry of a config.json (the vocabulary and the tower's sizes)."""

    vocab: tuple[str, ...] = ("a",)
    dim: int = 128
    depth: int = 2
    heads: int = 4
    max_length: int = 32
    tokenizer: str = "words"  # embedded only; absent in folders saved before "pieces", which read as "words"

    def __post_init__(self):
        check_ranges(self, dim=(1, None), depth=(1, None), heads=(1, None), max_length=(1, None))
        if not self.vocab:
            raise UsageError("vocab must list at least one word")
        if self.dim % self.heads:
            raise UsageError(f"dim {self.dim} must be a multiple of heads {self.heads}")


@dataclass(frozen=True)
class HFTextConfig:
    """The "clip" / "t5" entry: a local Hugging Face folder and the token limit (none: the model's own)."""

    path: str = "."
    max_length: int | None = None

    def __post_init__(self):
        check_ranges(self, max_length=(1, None))


def _embedded_like(cls, section: str = "text_encoder"):
    def build(cfg: dict, dtype=None) -> nn.Module:
        c = config_from_section(EmbeddedTextConfig, cfg, section, optional=("tokenizer",))
        extra = {"tokenizer": c.tokenizer} if cls is EmbeddedTextEncoder else {}
        return cls(list(c.vocab), dim=c.dim, depth=c.depth, heads=c.heads, max_length=c.max_length, **extra)

    return build


def _hugging_face(kind: str, section: str = "text_encoder"):
    def build(cfg: dict, dtype=None) -> nn.Module:
        c = config_from_section(HFTextConfig, cfg, section, optional=("max_length",))
        return HFTextEncoder(kind, c.path, c.max_length, dtype)

    return build


def _concat(cfg: dict, dtype=None) -> nn.Module:
    unknown = sorted(set(cfg) - {"type", "first", "second"})
    if unknown or not isinstance(cfg.get("first"), dict) or not isinstance(cfg.get("second"), dict):
        raise UsageError('text_encoder of type concat needs "first" and "second" encoder objects and nothing else')
    return ConcatTextEncoder(text_encoder_from_config(cfg["first"], dtype), text_encoder_from_config(cfg["second"], dtype))


# config.json "text_encoder" type -> constructor from that config
TEXT_ENCODERS: dict[str, Callable[..., nn.Module]] = {  # (cfg, dtype) -> encoder
    "embedded": _embedded_like(EmbeddedTextEncoder),
    "clip": _hugging_face("clip"),
    "t5": _hugging_face("t5"),
    "contrastive": _embedded_like(ContrastiveTextEncoder),
    "concat": _concat,
}
SAVED_TEXT_ENCODERS = ("embedded", "contrastive")  # weights stored in the model folder (text_encoder.safetensors)
