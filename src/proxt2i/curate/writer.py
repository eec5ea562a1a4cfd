"""Writing one part's kept records: a webdataset shard (shard-PPPPPP.tar) or image files of an imagefolder,
each file written atomically. Keys are PPPPPP_RRRRRR (part, row within the part): the same record gets the
same key and the same bytes whichever engine or worker writes it, and a rewritten part replaces itself only."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ..atomic import atomic_path
from ..data.export import add_tar_member


def output_key(part: int, row: int) -> str:
    return f"{part:06d}_{row:06d}"


def shard_name(part: int) -> str:
    return f"shard-{part:06d}.tar"


def record_json(item: dict) -> dict:
    meta = {"original_text": item["original_text"], "width": item["width"], "height": item["height"], "source": item["source"]}
    for key in ("aesthetic", "face", "face_attributes", "face_named"):
        if key in item:
            meta[key] = item[key]
    if item.get("meta"):
        meta["source_meta"] = item["meta"]
    return meta


def write_part_output(out: Path, fmt: str, part: int, items: list[dict]) -> list[str]:
    """Write `items` (dicts with row, image, ext, text and the record_json fields); returns the imagefolder's
    metadata.jsonl lines for them (empty for webdataset). A part with nothing kept writes no shard."""
    if not items:
        return []
    if fmt == "imagefolder":
        lines = []
        for item in items:
            name = f"{output_key(part, item['row'])}.{item['ext']}"
            with atomic_path(out / name) as tmp:
                Path(tmp).write_bytes(item["image"])
            lines.append(json.dumps({"file_name": name, "text": item["text"], **record_json(item)}))
        return lines
    with atomic_path(out / shard_name(part)) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for item in items:
            key = output_key(part, item["row"])
            add_tar_member(tar, f"{key}.{item['ext']}", item["image"])
            add_tar_member(tar, f"{key}.txt", item["text"].encode())
            add_tar_member(tar, f"{key}.json", json.dumps(record_json(item)).encode())
    return []
