"""Training data: deterministic batches (BatchSource) and the on-disk latent cache.

The data of step s on rank r is a pure function of (config, s, r), which makes resume exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..imaging import resize_and_centre_crop, to_float_images
from .presets import TrainConfig


class BatchSource:
    """Deterministic batches: batch(step, rank, world) -> (images [B, 3, S, S] in [0, 1], captions)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        kind, _, where = cfg.data.partition(":")
        self.kind = kind
        if kind == "synthfaces":
            self.records = None
        elif kind in ("imagefolder", "webdataset"):
            from ..data.indexed import IndexedPairs

            self.records = IndexedPairs(where, kind)  # an index: images are read when a batch needs them
        else:
            raise UsageError(f"data must be 'synthfaces', 'imagefolder:DIR' or 'webdataset:SHARDS', got {cfg.data!r}")

    def captions_for_vocabulary(self, limit: int = 50000) -> list[str]:
        return [] if self.records is None else self.records.texts[:limit]

    def same_meaning_words(self, word: str) -> tuple[str, ...]:
        """Words this data's own tables read as `word` (SynthFaces' prompt parser); none for captioned folders."""
        if self.records is not None:
            return ()
        from ..data.captions import same_meaning_words

        return same_meaning_words(word)

    def indices(self, step: int, rank: int, world: int) -> list[int]:
        """Record indices of batch `step` on process `rank` (records cycle in order)."""
        start = (step * world + rank) * self.cfg.batch
        return [(start + i) % len(self.records) for i in range(self.cfg.batch)]

    def batch(self, step: int, rank: int, world: int):
        b, size = self.cfg.batch, self.cfg.image_size
        if self.records is None:
            from ..data.synthfaces import render_batch

            images, _, captions = render_batch(self.cfg.seed, (step * world + rank) * b, b, size, split="train")
        else:
            rows = [self.records[i] for i in self.indices(step, rank, world)]
            images = np.stack([resize_and_centre_crop(img, size) for img, _ in rows])
            captions = [t for _, t in rows]
        return to_float_images(images), list(captions)

    def batches(self, steps: range, rank: int, world: int, workers: int = 0):
        """batch(step, rank, world) for each step in order; workers > 0 threads read up to 2 x workers
        batches ahead (image decoding releases the GIL), with the same result as workers = 0."""
        if workers == 0:
            yield from (self.batch(s, rank, world) for s in steps)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        pending, todo = deque(), iter(steps)
        with ThreadPoolExecutor(workers, thread_name_prefix="data") as pool:
            for s in todo:
                pending.append(pool.submit(self.batch, s, rank, world))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def captions(self, step: int, rank: int, world: int) -> list[str]:
        return [self.records.texts[i] for i in self.indices(step, rank, world)]


def latent_cache(path: Path, autoencoder, image_chunks: Callable[[], Iterable[torch.Tensor]], key: dict[str, str] | None = None,
                 device=None) -> torch.Tensor:
    """Latents [N, C, h, w] float32 on the CPU of every image that image_chunks() yields (float
    [n, 3, H, W] in [0, 1], chunk by chunk). With a `key`, a file at `path` whose metadata equals it is
    read instead of encoding; otherwise the images are encoded (without gradients) and the latents
    written atomically, with `key` as the file's metadata."""
    from safetensors import safe_open

    from ..atomic import atomic_save_safetensors

    path = Path(path)
    if key is not None and path.exists():
        try:
            with safe_open(str(path), "pt") as f:
                if f.metadata() == key:
                    return f.get_tensor("latents")
        except Exception:  # a stale or broken cache is rebuilt, never trusted
            pass
    with torch.no_grad():
        latents = torch.cat([autoencoder.encode(x.to(device)).float().cpu() for x in image_chunks()])
    atomic_save_safetensors({"latents": latents}, path, metadata=key)
    return latents


def dataset_latents(path: Path, source: BatchSource, autoencoder, cfg: TrainConfig, device, batch_size: int = 128) -> torch.Tensor:
    """latent_cache of every record of `source` (posterior means, so exact), keyed by data, image size,
    autoencoder and record count: a file built from other data is rebuilt."""
    key = {"data": cfg.data, "image_size": str(cfg.image_size), "autoencoder": cfg.autoencoder, "num": str(len(source.records))}

    def chunks():
        for i in range(0, len(source.records), batch_size):
            rows = source.records[i : i + batch_size]
            yield to_float_images(np.stack([resize_and_centre_crop(img, cfg.image_size) for img, _ in rows]))

    return latent_cache(path, autoencoder, chunks, key, device)
