"""Networks: the U-ViT backbone, text encoders (with the contrastive text tower) and autoencoders (each behind one
small interface), and the checks of local Hugging Face folders (hf.py)."""

from .autoencoder import AUTOENCODERS, DiffusersKL, IdentityAutoencoder, SmallVAE, autoencoder_from_config
from .text import TEXT_ENCODERS, EmbeddedTextEncoder, TextEncoding, load_text_encoder, text_encoder_from_config
from .uvit import UVIT_PRESETS, UViT, UViTConfig, count_parameters

__all__ = [
    "UViT", "UViTConfig", "UVIT_PRESETS", "count_parameters",
    "TextEncoding", "EmbeddedTextEncoder", "TEXT_ENCODERS", "load_text_encoder", "text_encoder_from_config",
    "IdentityAutoencoder", "SmallVAE", "DiffusersKL", "AUTOENCODERS", "autoencoder_from_config",
]
