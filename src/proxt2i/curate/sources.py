"""The sources curation reads, split into parts (the unit of work, of resume and of output), read tolerantly.

A source is webdataset shards (a .tar, a folder of them, a glob or a {00000..00099} range; img2dataset's
webdataset output is this too), an imagefolder (metadata.jsonl), img2dataset's "files" layout (numbered
folders of KEY.jpg + KEY.txt [+ KEY.json]) or parquet files (img2dataset's parquet output: jpg and caption
columns; or Hugging Face style: image {bytes} and text). A part is one input shard, one files folder, or
`shard_size` rows of a metadata.jsonl or a parquet file.

Reading never raises on bad data: a record (sample) that cannot be used comes back with its `reason` set
(missing_image, missing_text, bad_metadata, bad_text, unsafe_path), and a shard that is cut short or not a
tar at all is named in the part's `problems` (its readable samples before the cut still come back). A
source that is missing, empty or of no known layout is a UsageError at listing time, before any work.
"""

from __future__ import annotations

import glob
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..data.readers import (IMAGE_EXTS, WDS_IMAGE_EXTS, confined_path, expand_braces, grouped_samples, shard_paths,
                             tar_end_problem)
from ..errors import UsageError
from ..extras import require

PARQUET_IMAGE_COLUMNS = ("jpg", "png", "webp", "image", "image_bytes")
PARQUET_TEXT_COLUMNS = ("caption", "text")


@dataclass
class Record:
    """One input record. `source`: its identity in the input (shard/key, or file name); `reason`: why it cannot
    be used, or None; `image`: the image file's bytes (None when missing)."""

    source: str
    text: str | None = None
    image: bytes | None = None
    ext: str = ""
    meta: dict = field(default_factory=dict)
    reason: str | None = None
    detail: str = ""


def _part(index: int, kind: str, path, start: int = 0, stop: int | None = None) -> dict:
    return {"index": index, "kind": kind, "path": str(path), "start": start, "stop": stop}


def list_parts(source, shard_size: int) -> list[dict]:
    """The parts of `source`, in order (see the module docstring). Raises UsageError when there is nothing to read."""
    spec = str(source)
    path = Path(source)
    if spec.endswith(".parquet") or (("*" in spec or "{" in spec) and ".parquet" in spec):
        files = [Path(n) for part in expand_braces(spec) for n in (sorted(glob.glob(part)) if "*" in part else [part])]
        if not files or not all(f.is_file() for f in files):
            raise UsageError(f"{spec}: no parquet file matches" if not files else f"{spec}: {next(f for f in files if not f.is_file())} does not exist")
        return _parquet_parts(files, shard_size)
    if path.is_dir() and not any(path.glob("*.tar")):
        return _folder_parts(path, shard_size)
    return [_part(i, "tar", p) for i, p in enumerate(shard_paths(source))]


def _folder_parts(path: Path, shard_size: int) -> list[dict]:
    """A folder without .tar shards: an imagefolder, parquet files or img2dataset's files layout."""
    if (path / "metadata.jsonl").is_file():
        return _imagefolder_parts(path, shard_size)
    if any(path.glob("*.parquet")):
        return _parquet_parts(sorted(path.glob("*.parquet")), shard_size)
    folders = sorted(p for p in path.iterdir() if p.is_dir() and any(q.suffix.lower() in IMAGE_EXTS for q in p.iterdir()))
    if folders:
        return [_part(i, "files", f) for i, f in enumerate(folders)]
    if not any(path.iterdir()):
        raise UsageError(f"{path}: folder is empty")
    raise UsageError(f"{path}: no .tar shards, metadata.jsonl, parquet files or img2dataset folders of images")


def _imagefolder_parts(root: Path, shard_size: int) -> list[dict]:
    with open(root / "metadata.jsonl", "rb") as fh:
        rows = sum(1 for line in fh if line.strip())
    if rows == 0:
        raise UsageError(f"{root / 'metadata.jsonl'}: no rows, the dataset is empty")
    return [_part(i, "imagefolder", root, start, min(start + shard_size, rows)) for i, start in enumerate(range(0, rows, shard_size))]


def _parquet_parts(files: list[Path], shard_size: int) -> list[dict]:
    pq = require("pyarrow.parquet", "curate", "reading parquet")
    parts = []
    for f in files:
        try:
            rows = pq.ParquetFile(f).metadata.num_rows
        except Exception as err:  # pyarrow raises its own ArrowInvalid for a file that is not parquet
            raise UsageError(f"{f}: not a readable parquet file ({type(err).__name__}: {str(err).splitlines()[0]})") from None
        parts += [_part(len(parts) + j, "parquet", f, start, min(start + shard_size, rows))
                  for j, start in enumerate(range(0, rows, shard_size))]
    if not parts:
        raise UsageError(f"{files[0]}: no rows, the dataset is empty")
    return parts


def read_part(part: dict) -> tuple[list[Record], list[dict]]:
    """(records, problems) of one part; problems: [{"problem": truncated_shard | unreadable_shard, "path", "detail"}]."""
    readers = {"tar": _tar_records, "imagefolder": _imagefolder_records, "files": _files_records, "parquet": _parquet_records}
    records, problems = [], []
    try:
        for rec in readers[part["kind"]](part):
            records.append(rec)
    except _ShardProblem as err:
        problems.append({"problem": err.problem, "path": part["path"], "detail": err.detail})
    stop = part.get("limit_stop")
    return (records[:stop] if stop is not None else records), problems


class _ShardProblem(Exception):
    def __init__(self, problem: str, detail: str):
        super().__init__(detail)
        self.problem, self.detail = problem, detail


def _sample_record(source: str, sample: dict[str, bytes]) -> Record:
    """A webdataset-style sample ({extension: bytes}) as a Record, with the reason it cannot be used, if any."""
    rec = Record(source)
    ext = next((e for e in WDS_IMAGE_EXTS if e in sample), None)
    if "json" in sample:
        try:
            meta = json.loads(sample["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return Record(source, reason="bad_metadata", detail=f"{source}.json is not valid JSON ({getattr(err, 'msg', err)})")
        if not isinstance(meta, dict):
            return Record(source, reason="bad_metadata", detail=f"{source}.json is not a JSON object")
        rec.meta = meta
    if ext is None:
        rec.reason, rec.detail = "missing_image", f"{source} has no .png/.jpg/.jpeg/.webp member"
        return rec
    rec.image, rec.ext = sample[ext], ext
    if "txt" not in sample:
        rec.reason, rec.detail = "missing_text", f"{source} has no .txt caption"
        return rec
    try:
        rec.text = sample["txt"].decode("utf-8")
    except UnicodeDecodeError as err:
        rec.reason, rec.detail = "bad_text", f"{source}.txt is not UTF-8 ({err.reason} at byte {err.start})"
    return rec


def _tar_records(part: dict) -> Iterator[Record]:
    """Samples grouped by key (webdataset's rule: the member path up to the first dot of its file name)."""
    shard = Path(part["path"])
    key = None
    try:
        with tarfile.open(shard, "r|*") as tar:
            for key, sample in grouped_samples(tar):
                yield _sample_record(f"{shard.name}/{key}", sample)
    except (tarfile.TarError, EOFError, OSError) as err:  # the sample being read when the data ran out is lost with the rest
        raise _ShardProblem("truncated_shard" if key is not None else "unreadable_shard", f"{shard}: {err}") from None
    problem = tar_end_problem(shard)
    if problem:
        raise _ShardProblem("truncated_shard", problem)
    if key is None:
        raise _ShardProblem("unreadable_shard", f"{shard}: no samples")


def _imagefolder_records(part: dict) -> Iterator[Record]:
    root = Path(part["path"])
    meta = root / "metadata.jsonl"
    row = -1
    with open(meta, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row += 1
            if row < part["start"]:
                continue
            if row >= part["stop"]:
                return
            yield _imagefolder_record(root, meta, lineno, line)


def _imagefolder_record(root: Path, meta: Path, lineno: int, line: bytes) -> Record:
    where = f"{meta.name}:{lineno}"
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return Record(where, reason="bad_metadata", detail=f"{where}: not valid JSON ({getattr(err, 'msg', err)})")
    if not isinstance(row, dict):
        return Record(where, reason="bad_metadata", detail=f"{where}: not a JSON object")
    name = row.get("file_name")
    if not isinstance(name, str) or not name:
        return Record(where, reason="missing_image", detail=f"{where}: no \"file_name\" string")
    try:
        path = confined_path(root, name, where)
    except UsageError as err:
        return Record(name, reason="unsafe_path", detail=str(err))
    meta_fields = {k: v for k, v in row.items() if k not in ("file_name", "text")}
    if not path.is_file():
        return Record(name, meta=meta_fields, reason="missing_image", detail=f"{where}: {name} does not exist")
    rec = Record(name, image=path.read_bytes(), ext=path.suffix.lower().lstrip("."), meta=meta_fields)
    if not isinstance(row.get("text"), str):
        rec.reason, rec.detail = "missing_text", f"{where}: no \"text\" string"
    else:
        rec.text = row["text"]
    return rec


def _files_records(part: dict) -> Iterator[Record]:
    """img2dataset's files layout: one folder of KEY.EXT files per shard."""
    folder = Path(part["path"])
    samples: dict[str, dict[str, bytes]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
            stem, _, ext = p.name.partition(".")
            samples.setdefault(stem, {})[ext.lower()] = p.read_bytes()
    for key, sample in samples.items():
        if set(sample) <= {"json"}:  # img2dataset writes a .json for failed downloads too: no image was ever there
            continue
        yield _sample_record(f"{folder.name}/{key}", sample)


def _parquet_records(part: dict) -> Iterator[Record]:
    pq = require("pyarrow.parquet", "curate", "reading parquet")
    path = Path(part["path"])
    try:
        table = pq.read_table(path).slice(part["start"], part["stop"] - part["start"])
    except Exception as err:  # a file that changed since listing
        raise _ShardProblem("unreadable_shard", f"{path}: {type(err).__name__}: {err}") from None
    columns = table.column_names
    image_col = next((c for c in PARQUET_IMAGE_COLUMNS if c in columns), None)
    text_col = next((c for c in PARQUET_TEXT_COLUMNS if c in columns), None)
    keep = [c for c in columns if c not in (image_col, text_col)]
    for i, row in enumerate(table.to_pylist()):
        key = row.get("key") or f"{part['start'] + i}"
        source = f"{path.name}/{key}"
        meta = {k: row[k] for k in keep if k != "key" and _json_safe(row[k])}
        image = row.get(image_col) if image_col else None
        if isinstance(image, dict):  # Hugging Face datasets' Image feature: {"bytes", "path"}
            image = image.get("bytes")
        if not isinstance(image, (bytes, bytearray)) or not image:
            yield Record(source, meta=meta, reason="missing_image", detail=f"{source}: no image bytes in {image_col or 'any image column'}")
            continue
        text = row.get(text_col) if text_col else None
        ext = image_col if image_col in WDS_IMAGE_EXTS else _sniff_ext(bytes(image))
        rec = Record(source, text=text if isinstance(text, str) else None, image=bytes(image), ext=ext, meta=meta)
        if rec.text is None:
            rec.reason, rec.detail = "missing_text", f"{source}: no {text_col or 'caption/text'} string"
        yield rec


def _json_safe(value) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _sniff_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "jpg"


def part_label(part: dict) -> str:
    """A short name for messages: the shard's file name, or the file with its row range."""
    name = Path(part["path"]).name
    return name if part["kind"] in ("tar", "files") else f"{name}[{part['start']}:{part['stop']}]"


def count_records(part: dict) -> int:
    """Records in a part without decoding anything (for --limit): tar member keys, or the row range."""
    if part["kind"] in ("imagefolder", "parquet"):
        return part["stop"] - part["start"]
    return len(read_part(part)[0])


