"""proxt2i: text-to-image generation with learned proximal operators (ProxT2I)."""

__version__ = "0.1.0"

__all__ = ["ProxT2IPipeline", "__version__"]


def __getattr__(name):  # lazy, so that `import proxt2i` (and `proxt2i --help`) stays fast
    if name == "ProxT2IPipeline":
        from .pipeline import ProxT2IPipeline

        return ProxT2IPipeline
    raise AttributeError(f"module 'proxt2i' has no attribute {name!r}")
