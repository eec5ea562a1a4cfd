"""Read (image, text) pairs back from an imagefolder or from webdataset shards.

Images come back as uint8 [H, W, 3] RGB numpy arrays, texts as str. Problems with the data raise
UsageError with one line naming the file (and line or sample) at fault.
"""

from __future__ import annotations

import glob
import io
import json
import re
import tarfile
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import UsageError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
WDS_IMAGE_EXTS = tuple(e.lstrip(".") for e in IMAGE_EXTS)  # webdataset member extensions, in order of preference


def check_image_size(width: int, height: int, where: str) -> None:
    """Refuse an image larger than PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS) before decoding
    it: a few kB of PNG can claim gigabytes of pixels."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise UsageError(f"{where}: image of {width}x{height} = {width * height} pixels is over the limit of {limit} "
                         f"pixels; shrink it (PIL.Image.MAX_IMAGE_PIXELS sets the limit)")


def decode_image(data_or_path, where: str) -> np.ndarray:
    """An image file (path or file object) -> uint8 [H, W, 3] RGB; an unreadable one, or one too large to
    decode safely, is a UsageError naming `where`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked here, in one line
            with Image.open(data_or_path) as im:
                check_image_size(*im.size, where)
                return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise UsageError(f"{where}: unreadable image ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def decode_caption(data: bytes, where: str) -> str:
    """A caption file's bytes -> text; bytes that are not UTF-8 are a UsageError naming `where`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{where}: caption is not UTF-8 text ({err.reason} at byte {err.start})") from None


def _existing_dir(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such directory")
    if not path.is_dir():
        raise UsageError(f"{path}: not a directory")
    return path


def imagefolder_rows(path) -> Iterator[dict]:
    """Rows of DIR/metadata.jsonl, checked, with "image_path" (the image is not opened).
    A missing folder or metadata.jsonl raises at once; bad rows raise when reached."""
    root = _existing_dir(path)
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        if not any(root.iterdir()):
            raise UsageError(f"{root}: folder is empty")
        raise UsageError(f"{root}: no metadata.jsonl (an imagefolder needs one line per image with file_name and text)")
    return _imagefolder_rows(root, meta)


def _imagefolder_rows(root: Path, meta: Path) -> Iterator[dict]:
    rows = 0
    with open(meta) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(f"{meta}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise UsageError(f"{meta}:{lineno}: line has no \"text\" string")
            if not isinstance(row.get("file_name"), str):
                raise UsageError(f"{meta}:{lineno}: line has no \"file_name\" string")
            image_path = confined_path(root, row["file_name"], f"{meta}:{lineno}")
            if not image_path.is_file():
                raise UsageError(f"{image_path}: image named on {meta.name} line {lineno} does not exist")
            rows += 1
            yield {**row, "image_path": image_path}
    if rows == 0:
        raise UsageError(f"{meta}: no rows, the dataset is empty")


def confined_path(root: Path, name: str, where: str) -> Path:
    """root / name, refused unless it stays inside root: no absolute path, no "..", and no symlink that
    leads outside (a dataset's metadata must not make a reader open the user's other files)."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise UsageError(f"{where}: file_name {name!r} must be a path inside the folder (no absolute path, no ..)")
    path = root / name
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:  # a symlink loop
        inside = False
    if not inside:
        raise UsageError(f"{where}: file_name {name!r} leads outside the folder {str(root)!r} (a symlink); copy the file in")
    return path


def read_imagefolder_records(path, decode: bool = True) -> Iterator[dict]:
    """Rows of DIR/metadata.jsonl with the image loaded: {"image", "text", "file_name", ...}; with
    decode=False the file's bytes instead: {"image_bytes", "image_ext", ...} (not decoded or checked).
    A missing folder or metadata.jsonl raises at once; bad rows raise when reached."""
    rows = imagefolder_rows(path)
    if decode:
        return ({**row, "image": decode_image(row["image_path"], str(row["image_path"]))} for row in rows)
    return ({**row, "image_bytes": row["image_path"].read_bytes(), "image_ext": row["image_path"].suffix.lower().lstrip(".")}
            for row in rows)


def read_imagefolder(path) -> Iterator[tuple[np.ndarray, str]]:
    """(image uint8 [H, W, 3], text) for each row of DIR/metadata.jsonl, in file order."""
    return ((row["image"], row["text"]) for row in read_imagefolder_records(path))


def expand_braces(spec: str) -> list[str]:
    """webdataset's shard notation: "shards/{00000..00099}.tar" -> 100 names (zero padding kept);
    several ranges expand as a product, in order."""
    m = re.search(r"\{(\d+)\.\.(\d+)\}", spec)
    if not m:
        return [spec]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    head, tail = spec[: m.start()], spec[m.end():]
    return [name for i in range(int(lo), int(hi) + 1) for name in expand_braces(f"{head}{i:0{width}d}{tail}")]


def shard_paths(path) -> list[Path]:
    """A .tar file, the sorted *.tar files of a directory, a glob ("shards/*.tar") or webdataset's brace
    notation ("shards/{00000..00099}.tar"): every shard named must exist."""
    spec = str(path)
    if "{" in spec or any(c in spec for c in "*?["):
        names = [n for part in expand_braces(spec) for n in (sorted(glob.glob(part)) if any(c in part for c in "*?[") else [part])]
        missing = [n for n in names if not Path(n).is_file()]
        if not names or missing:
            raise UsageError(f"{spec}: {'no shard matches' if not names else f'shard {missing[0]} does not exist'}")
        return [Path(n) for n in names]
    path = Path(path)
    if path.is_file():
        return [path]
    root = _existing_dir(path)
    shards = sorted(root.glob("*.tar"))
    if not shards:
        raise UsageError(f"{root}: folder is empty" if not any(root.iterdir()) else f"{root}: no .tar shards")
    return shards


def _samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample, grouping consecutive members by key (webdataset rule:
    key = member path up to the first dot of its file name). A shard cut short is an error: mid-member
    (tarfile's own) or on a member boundary (no end-of-archive blocks), where the samples after the cut
    would otherwise silently be missing."""
    check_tar_end(shard)
    try:
        with tarfile.open(shard, "r|*") as tar:
            yield from grouped_samples(tar)
    except tarfile.TarError as err:
        raise UsageError(f"{shard}: not a readable tar file ({err})") from None


def grouped_samples(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of an open (streamed) tar, by webdataset's key rule."""
    key, sample = None, {}
    for member in tar:
        if not member.isfile():
            continue
        directory, _, name = member.name.rpartition("/")
        stem, _, ext = name.partition(".")
        k = f"{directory}/{stem}" if directory else stem
        if k != key and sample:
            yield key, sample
            sample = {}
        key = k
        sample[ext.lower()] = tar.extractfile(member).read()
    if sample:
        yield key, sample


COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz


def check_tar_end(shard: Path) -> None:
    """Refuse a plain tar whose last member is not followed by the end-of-archive marker (tar_end_problem)."""
    problem = tar_end_problem(shard)
    if problem:
        raise UsageError(problem)


def tar_end_problem(shard: Path) -> str | None:
    """Why a plain tar looks cut (every tar writer adds two zero blocks after the last member, so their absence
    means a copy or a download stopped), as one line naming the shard; None when it ends properly."""
    with open(shard, "rb") as fh:
        if fh.read(6).startswith(COMPRESSED_MAGIC):
            return None  # a compressed shard: the decompressor notices a cut stream
    try:
        with tarfile.open(shard, "r:") as tar:
            members = tar.getmembers()
            end = tar.offset  # where the end-of-archive marker should start: after the last member's (padded) data
    except (tarfile.TarError, EOFError) as err:
        return f"{shard}: not a readable tar file, truncated or corrupt ({err})"
    with open(shard, "rb") as fh:
        fh.seek(end)
        tail = fh.read(1024)
    if len(tail) < 1024 or tail.strip(b"\0"):
        last = members[-1].name if members else "the start"
        return f"{shard}: truncated (ends after {last} without the tar end-of-archive marker); the samples after it are missing"
    return None


def read_webdataset_records(path, decode: bool = True) -> Iterator[dict]:
    """Samples of the shards as {"image", "text", "key", "shard", plus the .json fields if any}; with
    decode=False the image's bytes instead: {"image_bytes", "image_ext", ...}.
    A missing path or a folder without shards raises at once; bad samples raise when reached."""
    return _webdataset_rows(shard_paths(path), decode)


def _webdataset_rows(shards: list[Path], decode: bool) -> Iterator[dict]:
    for shard in shards:
        count = 0
        for key, sample in _samples(shard):
            count += 1
            image_ext = next((e for e in WDS_IMAGE_EXTS if e in sample), None)
            if image_ext is None:
                raise UsageError(f"{shard}: sample {key} has no image (.png/.jpg/.webp)")
            if "txt" not in sample:
                raise UsageError(f"{shard}: sample {key} has no .txt caption")
            extra = {}
            if "json" in sample:
                extra = sample_json(sample["json"], f"{shard}: sample {key}.json")
            common = {**extra, "text": decode_caption(sample["txt"], f"{shard}: sample {key}.txt"), "key": key, "shard": str(shard)}
            if decode:
                yield {**common, "image": decode_image(io.BytesIO(sample[image_ext]), f"{shard}: sample {key}.{image_ext}")}
            else:
                yield {**common, "image_bytes": sample[image_ext], "image_ext": image_ext}
        if count == 0:
            raise UsageError(f"{shard}: no samples (an empty shard); remove it or re-export it")


def sample_json(data: bytes, where: str) -> dict:
    """A sample's .json member: one JSON object (its fields join the record); anything else is a UsageError."""
    try:
        extra = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{where} is not valid JSON ({getattr(err, 'msg', err)})") from None
    if not isinstance(extra, dict):
        raise UsageError(f"{where} must hold a JSON object {{...}}, not a JSON {type(extra).__name__}")
    return extra


def read_webdataset(path) -> Iterator[tuple[np.ndarray, str]]:
    """(image uint8 [H, W, 3], text) for each sample of a shard or a folder of shards, in order."""
    return ((row["image"], row["text"]) for row in read_webdataset_records(path))


def is_imagefolder(path) -> bool:
    """A folder without .tar shards is read as an imagefolder; anything else as webdataset shards."""
    path = Path(path)
    return path.is_dir() and not any(path.glob("*.tar"))


def read_records(path, decode: bool = True) -> Iterator[dict]:
    """Records of either format (read_imagefolder_records / read_webdataset_records)."""
    return read_imagefolder_records(path, decode) if is_imagefolder(path) else read_webdataset_records(path, decode)


def read_pairs(path) -> Iterator[tuple[np.ndarray, str]]:
    """Either format: a folder with metadata.jsonl is an imagefolder, otherwise webdataset shards."""
    return ((row["image"], row["text"]) for row in read_records(path))
