"""Random access to the (image, text) pairs of an imagefolder or of webdataset shards, for training on
datasets larger than memory.

The index holds, per sample, where its image bytes are (file, byte offset, length) and its caption;
images are read with one seek and decoded only when a batch asks for them. Webdataset shards must be
plain (uncompressed) .tar files, as webdataset writes them, so that members can be reached by offset.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .readers import WDS_IMAGE_EXTS, check_tar_end, decode_caption, decode_image, imagefolder_rows, shard_paths


def _tar_samples(shard: Path):
    """(key, {ext: TarInfo}, caption) per sample of an uncompressed shard, reading only headers and captions."""
    check_tar_end(shard)  # a cut shard would silently lose its last samples
    try:
        tar = tarfile.open(shard, "r:")
    except tarfile.TarError as err:
        raise UsageError(f"{shard}: not a readable uncompressed tar file ({err}); training reads plain .tar shards") from None
    with tar:
        groups: dict[str, dict[str, tarfile.TarInfo]] = {}
        for member in tar:
            if member.isfile():
                directory, _, name = member.name.rpartition("/")
                stem, _, ext = name.partition(".")
                groups.setdefault(f"{directory}/{stem}" if directory else stem, {})[ext.lower()] = member
        for key, members in groups.items():
            if "txt" not in members:
                raise UsageError(f"{shard}: sample {key} has no .txt caption")
            yield key, members, decode_caption(tar.extractfile(members["txt"]).read(), f"{shard}: sample {key}.txt")


class IndexedPairs(Sequence):
    """pairs[i] -> (image uint8 [H, W, 3], text), read from disk on access; pairs.texts: every caption."""

    def __init__(self, path, kind: str):
        self.files: list[Path] = []
        self.where: list[tuple[int, int, int]] = []  # (file index, byte offset, length); length -1 = whole file
        self.texts: list[str] = []
        if kind == "imagefolder":
            for row in imagefolder_rows(path):
                self.files.append(row["image_path"])
                self.where.append((len(self.files) - 1, 0, -1))
                self.texts.append(row["text"])
        elif kind == "webdataset":
            for shard in shard_paths(path):
                self.files.append(shard)
                for key, members, text in _tar_samples(shard):
                    ext = next((e for e in WDS_IMAGE_EXTS if e in members), None)
                    if ext is None:
                        raise UsageError(f"{shard}: sample {key} has no image ({'/'.join('.' + e for e in WDS_IMAGE_EXTS)})")
                    self.where.append((len(self.files) - 1, members[ext].offset_data, members[ext].size))
                    self.texts.append(text)
        else:
            raise UsageError(f"unknown dataset kind {kind!r}; choose imagefolder or webdataset")
        if not self.texts:
            raise UsageError(f"no training examples found in {str(path)!r}")

    def __len__(self) -> int:
        return len(self.texts)

    def image(self, i: int) -> np.ndarray:
        f, offset, length = self.where[i]
        path = self.files[f]
        if length < 0:
            return decode_image(path, str(path))
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        return decode_image(io.BytesIO(data), f"{path}: sample {i}")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.image(i), self.texts[i]
