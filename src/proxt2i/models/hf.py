"""Local Hugging Face model folders: checking one before loading it, and loading without a download.

Every Hugging Face component (text encoders, reward models, captioners) reads a local folder; a folder
that is missing or lacks a file is a UsageError that says what the folder must contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

from ..errors import UsageError

# What a folder must hold, written as alternatives ("a or b"): one of them has to exist.
# safetensors only: a pickled pytorch_model.bin is never loaded (a malicious one could run code)
HF_WEIGHTS = "model.safetensors or model.safetensors.index.json"
HF_TOKENIZER = "tokenizer.json or vocab.json or vocab.txt"

T = TypeVar("T")


@dataclass(frozen=True)
class FolderMessages:
    """The three errors of require_model_dir, as str.format templates. Fields: folder (as given), missing
    (the absent entries, comma-separated), needs (every entry, comma-separated) and the caller's own fields.
    not_given None: an empty folder name is not checked separately."""

    not_found: str
    lacks: str
    not_given: Optional[str] = None


# A reward or captioner folder named on the command line as NAME:DIR (field: name).
NAMED_MODEL_FOLDER = FolderMessages(
    not_given="reward {name!r} needs a local model folder: give {name}:DIR with {needs}",
    not_found="reward {name}: folder {folder!r} not found; expected {name}:DIR with {needs}",
    lacks="reward {name}: {folder!r} lacks {missing}; expected {name}:DIR with {needs}",
)
# A text encoder folder (field: expected, the folder's contents in words).
TEXT_ENCODER_FOLDER = FolderMessages(
    not_found="text encoder directory {folder!r} not found; expected a Hugging Face folder with {expected}",
    lacks="{folder!r} has no {missing}; expected a Hugging Face folder with {expected}",
)


def require_model_dir(folder, needs: Sequence[str], messages: FolderMessages = NAMED_MODEL_FOLDER, **fields) -> Path:
    """The model folder as a Path, once it exists and holds every entry of `needs` (each "a or b or ...")."""
    fields = {"folder": folder, "needs": ", ".join(needs), **fields}
    if not folder and messages.not_given is not None:
        raise UsageError(messages.not_given.format(**fields))
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(messages.not_found.format(**fields))
    missing = [n for n in needs if not any((path / alt).exists() for alt in n.split(" or "))]
    if missing:
        raise UsageError(messages.lacks.format(missing=", ".join(missing), **fields))
    return path


def hf_call(what: str, fn: Callable[[], T]) -> T:
    """fn() (a from_pretrained call); its OSError / ValueError becomes one line: could not load `what`."""
    try:
        return fn()
    except (OSError, ValueError) as err:
        raise UsageError(f"could not load {what} ({str(err).splitlines()[0]})") from None
