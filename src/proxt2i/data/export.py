"""Write SynthFaces items in real-dataset formats.

imagefolder (Hugging Face `datasets` "imagefolder"):
    DIR/00000.png ... and DIR/metadata.jsonl, one line per image:
    {"file_name": "00000.png", "text": caption, "attributes": {family: value}, "index": i}
webdataset: DIR/shard-000000.tar, ... each holding `shard_size` samples KEY.png, KEY.txt
    (the caption), KEY.json ({"attributes", "labels", "index", "seed", "split"}), KEY = 8-digit index.

Every file is written to a temporary name and os.replace'd, so a killed run leaves whole files
only; metadata.jsonl is written last, so a folder with it is complete. export() (the `data synthfaces`
command) builds the whole folder beside OUT and swaps it in (atomic.replace_folder): a kill leaves the
old folder or the new one, and an existing one is replaced only with overwrite.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Callable

from PIL import Image

from ..atomic import atomic_path, marked_by, replace_folder
from ..errors import UsageError
from .attributes import attributes_to_labels
from .synthfaces import check_range, render_item

FORMATS = ("imagefolder", "webdataset")


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def _check_export(num: int, size: int, seed: int, split: str) -> None:
    if num < 1:
        raise UsageError(f"--num must be >= 1, got {num}")
    check_range(seed, 0, num, size, split)


def export_imagefolder(out, num: int, size: int, seed: int = 0, split: str = "train",
                       progress: Callable[[int], None] | None = None) -> Path:
    """Render items 0..num-1 into an imagefolder at `out`. Returns the metadata.jsonl path."""
    _check_export(num, size, seed, split)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(num - 1)))
    lines = []
    for i in range(num):
        image, attrs, text = render_item(seed, split, i, size)
        name = f"{i:0{digits}d}.png"
        _write_bytes(out / name, png_bytes(image))
        lines.append(json.dumps({"file_name": name, "text": text, "attributes": attrs, "index": i}))
        if progress:
            progress(1)
    meta = out / "metadata.jsonl"
    _write_bytes(meta, ("\n".join(lines) + "\n").encode())
    return meta


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0  # fixed mtime: identical bytes per run
    tar.addfile(info, io.BytesIO(data))


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def export_webdataset(out, num: int, size: int, seed: int = 0, split: str = "train", shard_size: int = 1000,
                      progress: Callable[[int], None] | None = None) -> list[Path]:
    """Render items 0..num-1 into webdataset shards at `out`. Returns the shard paths."""
    _check_export(num, size, seed, split)
    if shard_size < 1:
        raise UsageError(f"--shard-size must be >= 1, got {shard_size}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for s, first in enumerate(range(0, num, shard_size)):
        path = out / f"shard-{s:06d}.tar"
        with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(first, min(num, first + shard_size)):
                image, attrs, text = render_item(seed, split, i, size)
                key = f"{i:08d}"
                meta = {"attributes": attrs, "labels": attributes_to_labels(attrs), "index": i, "seed": seed, "split": split}
                add_tar_member(tar, f"{key}.png", png_bytes(image))
                add_tar_member(tar, f"{key}.txt", text.encode())
                add_tar_member(tar, f"{key}.json", json.dumps(meta).encode())
                if progress:
                    progress(1)
        shards.append(path)
    return shards


def export(fmt: str, out, num: int, size: int, seed: int = 0, split: str = "train", progress=None, overwrite: bool = False,
           **kwargs) -> Path:
    """Export in fmt (one of FORMATS) into a new folder `out`, swapped in whole. An existing non-empty `out`
    is replaced only with `overwrite`, and only if it is an export (metadata.jsonl or shard-*.tar). Returns `out`."""
    writers = {"imagefolder": export_imagefolder, "webdataset": export_webdataset}
    if fmt not in writers:
        raise UsageError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    _check_export(num, size, seed, split)
    out = Path(out)
    with replace_folder(out, overwrite=overwrite, is_ours=marked_by(*EXPORT_MARKERS), what=EXPORT_FOLDER) as tmp:
        writers[fmt](tmp, num, size, seed, split, progress=progress, **kwargs)
    return out


# files that make a folder a dataset export, which `overwrite` may replace (anything else is a user's folder)
EXPORT_MARKERS = ("metadata.jsonl", "shard-*.tar")
EXPORT_FOLDER = "dataset export (metadata.jsonl or shard-*.tar)"
