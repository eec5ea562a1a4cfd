"""Writing the kept records: webdataset shards or an imagefolder, each file written atomically."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from ..atomic import atomic_path
from ..data.export import add_tar_member


class CuratedWriter:
    """Streams kept records to webdataset shards (each written atomically when full) or an imagefolder
    (files atomically, metadata.jsonl at close)."""

    def __init__(self, out: Path, fmt: str, shard_size: int):
        self.out, self.fmt, self.shard_size = out, fmt, shard_size
        self.count, self.pending, self.meta_lines, self.paths = 0, [], [], []

    def add(self, image_bytes: bytes, ext: str, text: str, meta: dict) -> None:
        key = f"{self.count:08d}"
        self.count += 1
        if self.fmt == "imagefolder":
            name = f"{key}.{ext}"
            with atomic_path(self.out / name) as tmp:
                Path(tmp).write_bytes(image_bytes)
            self.meta_lines.append(json.dumps({"file_name": name, "text": text, **meta}))
            return
        self.pending.append((key, ext, image_bytes, text, meta))
        if len(self.pending) == self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        path = self.out / f"shard-{len(self.paths):06d}.tar"
        with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, ext, data, text, meta in self.pending:
                add_tar_member(tar, f"{key}.{ext}", data)
                add_tar_member(tar, f"{key}.txt", text.encode())
                add_tar_member(tar, f"{key}.json", json.dumps(meta).encode())
        self.paths.append(path)
        self.pending = []

    def close(self) -> None:
        if self.fmt == "imagefolder":
            with atomic_path(self.out / "metadata.jsonl") as tmp:
                Path(tmp).write_text("".join(line + "\n" for line in self.meta_lines))
        else:
            self._flush()
