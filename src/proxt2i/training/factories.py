"""Component factories of a training run: the autoencoder, the text-conditioned network and its
vocabulary, and weights copied from a trained model (fine-tuning)."""

from __future__ import annotations

import math

from ..errors import UsageError
from .data import BatchSource
from .presets import TrainConfig


def build_autoencoder(spec: str, dtype=None):
    """'identity', 'shipped' (the embedded SynthFaces VAE), 'diffusers:DIR' (its weights loaded in `dtype`;
    None: float32) or a VAE folder."""
    from ..models.autoencoder import DiffusersKL, IdentityAutoencoder
    from .vae import load_autoencoder_dir

    if spec == "identity":
        return IdentityAutoencoder()
    if spec == "shipped":
        from ..shipped import shipped_vae_dir

        return load_autoencoder_dir(shipped_vae_dir())
    if spec.startswith("diffusers:"):
        return DiffusersKL(spec.split(":", 1)[1], dtype)
    return load_autoencoder_dir(spec)


def training_vocabulary(source: BatchSource) -> list[str]:
    """The embedded text encoder's words: SynthFaces' vocabulary, or every word of the dataset's captions."""
    from ..text_split import prompt_words
    from .text import synthfaces_vocabulary

    return synthfaces_vocabulary() if source.records is None else sorted({w for t in source.captions_for_vocabulary() for w in prompt_words(t)})


def build_network(cfg: TrainConfig, latent_channels: int, latent_size: int, vocab: list[str]):
    """The TextConditionedUViT of cfg for latents [latent_channels, latent_size, latent_size]."""
    from ..models.conditional import TextConditionedUViT
    from ..models.text import EmbeddedTextEncoder
    from ..models.uvit import UVIT_PRESETS, UViT, UViTConfig
    from .text import load_text_encoder

    if cfg.model not in UVIT_PRESETS:
        raise UsageError(f"unknown model preset {cfg.model!r}; choose one of: {', '.join(UVIT_PRESETS)}")
    if cfg.text_encoder == "embedded":
        text = EmbeddedTextEncoder(vocab, dim=cfg.text_dim, depth=cfg.text_depth, heads=4 if cfg.text_dim % 4 == 0 else 1, max_length=48)
    else:  # frozen Hugging Face encoder(s) from local folders (the paper: MetaCLIP + T5, concatenated)
        import torch

        text = load_text_encoder(cfg.text_encoder, cfg.text_max_length, getattr(torch, cfg.frozen_dtype))
    base = UVIT_PRESETS[cfg.model].to_dict()
    base.update(in_channels=latent_channels, image_size=latent_size, text_dim=text.dim, max_text_len=text.max_length,
                use_lam=cfg.objective == "prox", precondition=cfg.precondition and cfg.objective == "prox")
    for key in ("width", "depth", "patch_size", "heads"):
        if getattr(cfg, key) is not None:
            base[key] = getattr(cfg, key)
    if base["width"] % base["heads"]:  # an error, not a silent change of heads: the user sees the net they asked for
        raise UsageError(f"width={base['width']} is not a multiple of heads={base['heads']} (the {cfg.model!r} preset's unless set); "
                         f"set heads={math.gcd(base['width'], base['heads'])} or another divisor of {base['width']}")
    return TextConditionedUViT(UViT(UViTConfig.from_dict(base)), text)


def _rows_like(rows):
    """The mean direction of `rows` [K, D] at their mean norm (a plain mean of K rows is about 1/sqrt(K) as long)."""
    mean = rows.mean(0)
    return mean * (rows.norm(dim=1).mean() / mean.norm().clamp_min(1e-8))


def _random_row(word: str, dim: int, scale):
    """A [dim] row drawn N(0, scale^2), the same for the same word (seeded by its CRC-32)."""
    import zlib

    import torch

    generator = torch.Generator().manual_seed(zlib.crc32(word.encode()))
    return torch.randn(dim, generator=generator) * scale


def remapped_text_weights(target, source, equivalents=lambda word: ()) -> tuple[dict, dict]:
    """`source`'s embedded text-encoder weights for `target`'s vocabulary, and counts of how each row was
    made: a word both know keeps its row ("kept"); a new word with same-meaning words the source knows
    (equivalents(word), e.g. data.captions.same_meaning_words) starts as them ("from_synonyms",
    "hairband" -> "headband"); one that is a part of old hyphenated words gets their mean ("red-haired",
    "long-haired" -> "haired": "from_parts"); any other word a random row of its own at the old rows' scale
    ("new", seeded by the word; a shared mean row would leave such words indistinguishable, and training
    barely moves a row: docs/models.md, "Stage 8"). Means are rescaled to their rows' mean norm. Pad and unknown rows, positions and the transformer are copied."""
    import torch

    state = {k: v.float() for k, v in source.state_dict().items()}
    old = state["embed.weight"]
    old_index = source.index
    scale = old[2:].std()
    rows, counts = [old[0], old[1]], {"kept": 0, "from_synonyms": 0, "from_parts": 0, "new": 0}
    for word in target.vocab:
        if word in old_index:
            rows.append(old[old_index[word]])
            counts["kept"] += 1
            continue
        same = [old_index[w] for w in equivalents(word) if w in old_index]
        parts = [] if same else [i for w, i in old_index.items() if "-" in w and word in w.split("-")]
        picked, kind = (same, "from_synonyms") if same else (parts, "from_parts") if parts else (None, "new")
        rows.append(_random_row(word, old.shape[1], scale) if picked is None else _rows_like(old[picked]))
        counts[kind] += 1
    state["embed.weight"] = torch.stack(rows)
    return state, counts


def reanchored_text_rows(encoder, equivalents) -> list[str]:
    """Re-make, in place, the embedded encoder's rows that never grew: norm under a third of the median
    word row's, the shared mean a vocabulary carry-over gave every new word before same-meaning words
    were used (docs/models.md, "Stage 8"). Each such word with grown same-meaning words starts as them
    (as in remapped_text_weights); the others keep their rows. Returns the words re-made."""
    import torch

    with torch.no_grad():
        weight = encoder.embed.weight
        norms = weight[2:].norm(dim=1)
        grown = norms >= norms.median() / 3
        index = encoder.index
        redone = []
        for word in encoder.vocab:
            if grown[index[word] - 2]:
                continue
            same = [index[w] for w in equivalents(word) if w in index and grown[index[w] - 2]]
            if same:
                weight[index[word]] = _rows_like(weight[same])
                redone.append(word)
    return redone


def init_from_model(net, name_or_path: str, equivalents=lambda word: (), reanchor: bool = False) -> dict | None:
    """Copy a trained model's U-ViT and embedded text-encoder weights into `net` (fine-tuning); returns
    that model's recipe. Architecture and objective must match; a mismatch is one clear error. An
    embedded encoder with another vocabulary or tokenizer is carried over word by word
    (remapped_text_weights, new words from `equivalents`), and the recipe records how. reanchor: then
    re-make the rows that never grew (reanchored_text_rows), recorded too."""
    from ..models.io import load_model_folder
    from ..models.text import EmbeddedTextEncoder
    from ..shipped import resolve_model

    model = load_model_folder(resolve_model(name_or_path))
    cfg, src = model.config, model.net
    recipe = cfg.get("recipe") or None
    if cfg.get("objective") != ("prox" if net.uvit.lam_embed is not None else "score"):
        raise UsageError(f"init={name_or_path!r} is a {cfg.get('objective')} model; initialise from a model with this config's objective")
    text_state = {k: v.float() for k, v in src.text_encoder.state_dict().items()}
    target, source = net.text_encoder, src.text_encoder
    if isinstance(target, EmbeddedTextEncoder) and isinstance(source, EmbeddedTextEncoder) and (
            target.vocab != source.vocab or target.tokenizer_kind != source.tokenizer_kind):
        text_state, counts = remapped_text_weights(target, source, equivalents)
        recipe = {**(recipe or {}), "text_vocabulary_remap": {"from_words": len(source.vocab), "from_tokenizer": source.tokenizer_kind,
                                                             "to_words": len(target.vocab), "to_tokenizer": target.tokenizer_kind, **counts}}
    elif getattr(target, "vocab", None) not in (None, getattr(source, "vocab", None)):
        raise UsageError(f"init={name_or_path!r} has a different text vocabulary from this config's data")
    try:
        net.uvit.load_state_dict({k: v.float() for k, v in src.uvit.state_dict().items()})
        if list(net.text_encoder.state_dict()):
            net.text_encoder.load_state_dict(text_state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise UsageError(f"init={name_or_path!r} does not match this config's network ({first}); "
                         "use a model trained with the same width, depth, patch size, text encoder and objective") from None
    if reanchor:
        if not isinstance(target, EmbeddedTextEncoder):
            raise UsageError("text_reanchor=true re-makes rows of the embedded text encoder; this config's text encoder is frozen")
        recipe = {**(recipe or {}), "text_rows_reanchored": reanchored_text_rows(target, equivalents)}
    return recipe
