"""Rendering speed of SynthFaces on one core: `python -m proxt2i.data.bench` prints JSON.

Measures render_batch end to end (attribute sampling, drawing, lighting, captions) in this
process. The renderer is single-threaded, so `images_per_cpu_s` (images per second of this
process's CPU time) is the one-core rate even on a busy machine; `images_per_s` is wall-clock.
"""

from __future__ import annotations

import json
import platform
import time

from .synthfaces import render_batch


def bench(sizes=(32, 64, 128, 256), seconds: float = 1.0, seed: int = 0) -> dict:
    """Render batches of 50 per size for about `seconds` each; rates per size (keys are str(size))."""
    wall, cpu = {}, {}
    for size in sizes:
        render_batch(seed, 0, 5, size)  # warm-up
        done, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            render_batch(seed, done, 50, size)
            done += 50
        wall[str(size)] = round(done / (time.perf_counter() - t0), 1)
        cpu[str(size)] = round(done / (time.process_time() - c0), 1)
    return {"images_per_s": wall, "images_per_cpu_s": cpu, "seconds_per_size": seconds,
            "python": platform.python_version(), "machine": platform.machine()}


if __name__ == "__main__":
    print(json.dumps(bench()))
