"""proxt2i: text-to-image generation with learned proximal operators (ProxT2I)."""

__version__ = "0.1.0"
