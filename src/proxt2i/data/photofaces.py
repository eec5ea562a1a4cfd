"""PhotoFaces: photoreal faces from a real pretrained generator, MobileStyleGAN (distilled from StyleGAN2
on FFHQ), whose OpenVINO files ship inside the `random-face` wheel; run with `openvino` directly (the
wheel's own Python wrapper calls a removed openvino API and imports gdown, so it is never imported).

Licence: the wheel's code is Apache-2.0, but the weights derive from NVIDIA's StyleGAN2-FFHQ (NVIDIA Source
Code License-NC) and FFHQ (CC BY-NC-SA 4.0): non-commercial. They are an optional extra (`photo`), never
part of the default install, and so is everything made from them (docs/photofaces.md).

Item i of seed s is a pure function of (s, i): z ~ N(0, I_512) from rng([s, i]), w = mapping(z) pulled
toward the mean w by `psi` (truncation: cleaner faces), the 1024 px image, a crop (scale and offset drawn
from the same rng, so framing varies from head-and-shoulders to close-up) resized to `size` with a
Lanczos filter. The networks are deterministic (their noise is baked in).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UsageError
from ..extras import require

EXTRA = "photo"
LATENT_DIM = 512
NATIVE_SIZE = 1024
MEAN_W_SAMPLES = 4096  # z draws averaged into the mean w (seeded: the same mean everywhere)
MEAN_W_SEED = 20210721
DEFAULT_PSI = 0.7
CROP_SCALES = (0.72, 1.0)  # side of the crop as a fraction of the 1024 px frame (0.6 cuts off the hair)
CROP_SHIFT = 0.04  # largest offset of the crop's centre, as a fraction of the frame
MIN_SIZE, MAX_SIZE = 16, 1024
PLACEHOLDER_CAPTION = "a photo of a person"  # what `data photofaces` writes; `data curate --face-captions` replaces it
LICENCE = ("MobileStyleGAN weights from random-face 2021.7.21.1, distilled from NVIDIA StyleGAN2-FFHQ: "
           "non-commercial (NVIDIA Source Code License-NC; FFHQ CC BY-NC-SA 4.0)")


def generator_files() -> tuple[Path, Path]:
    """(mapping .xml, synthesis .xml) inside the installed random-face wheel; UsageError naming the extra when absent."""
    spec = importlib.util.find_spec("random_face")
    if spec is None or spec.origin is None:
        raise UsageError(f"photoreal faces need the MobileStyleGAN files of random-face: pip install 'proxt2i[{EXTRA}]' "
                         "&& pip install --no-deps random-face==2021.7.21.1")
    data = Path(spec.origin).parent / "data"
    files = data / "MappingNetwork.xml", data / "SynthesisNetwork.xml"
    for f in files:
        if not f.is_file() or not f.with_suffix(".bin").is_file():
            raise UsageError(f"random-face is installed but {f.name} or its .bin is missing in {data}; reinstall it")
    return files


@dataclass(frozen=True)
class PhotoItem:
    """One item's draw: the latent, the crop (x0, y0, side) in 1024 px frame pixels."""
    index: int
    z: np.ndarray
    crop: tuple[int, int, int]

    def meta(self, seed: int, psi: float) -> dict:
        return {"index": self.index, "seed": seed, "psi": psi, "crop": list(self.crop), "generator": "mobilestylegan-ffhq"}


def draw_item(seed: int, index: int) -> PhotoItem:
    rng = np.random.default_rng([seed, index])
    z = rng.standard_normal(LATENT_DIM).astype(np.float32)
    scale = rng.uniform(*CROP_SCALES)
    side = int(round(scale * NATIVE_SIZE))
    room = (NATIVE_SIZE - side) / 2
    cx, cy = (NATIVE_SIZE / 2 + rng.uniform(-1, 1) * min(room, CROP_SHIFT * NATIVE_SIZE) for _ in range(2))
    x0 = int(np.clip(round(cx - side / 2), 0, NATIVE_SIZE - side))
    y0 = int(np.clip(round(cy - side / 2), 0, NATIVE_SIZE - side))
    return PhotoItem(index, z, (x0, y0, side))


def check_photo_settings(size: int, psi: float) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"--size must be in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    if not 0.0 <= psi <= 1.0:
        raise UsageError(f"--psi must be in 0..1 (1: no truncation), got {psi}")


class PhotoFaceGenerator:
    """The two OpenVINO networks, compiled once. `threads`: inference threads (None: openvino's choice)."""

    def __init__(self, threads: int | None = None):
        ov = require("openvino", EXTRA, "photoreal faces")
        mapping_xml, synthesis_xml = generator_files()
        core = ov.Core()
        if threads:
            core.set_property("CPU", {"INFERENCE_NUM_THREADS": int(threads)})
        mapping = core.read_model(str(mapping_xml))
        mapping.reshape([MEAN_W_SAMPLES, LATENT_DIM])  # one call for the mean w
        z = np.random.default_rng(MEAN_W_SEED).standard_normal((MEAN_W_SAMPLES, LATENT_DIM)).astype(np.float32)
        self.mean_w = core.compile_model(mapping, "CPU")({0: z})[0].mean(0)
        mapping.reshape([1, LATENT_DIM])
        # batch 1, f32, latency hint: no other setting was consistently faster on CPU (docs/photofaces.md)
        self._mapping = core.compile_model(mapping, "CPU").create_infer_request()
        synthesis = core.compile_model(core.read_model(str(synthesis_xml)), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
        self._synthesis = synthesis.create_infer_request()

    def frame(self, z: np.ndarray, psi: float = DEFAULT_PSI) -> np.ndarray:
        """z [512] -> the 1024 px frame, float32 [1024, 1024, 3] in [0, 1]."""
        w = self._mapping.infer({0: z[None]})[0][0]
        w = self.mean_w + psi * (w - self.mean_w)
        img = self._synthesis.infer({0: w[None].astype(np.float32)})[0][0]
        return np.clip((img.transpose(1, 2, 0) + 1) / 2, 0, 1)

    def image(self, item: PhotoItem, size: int, psi: float = DEFAULT_PSI) -> np.ndarray:
        """The item's image, uint8 [size, size, 3] (RGB)."""
        frame = Image.fromarray((self.frame(item.z, psi) * 255 + 0.5).astype(np.uint8))
        x0, y0, side = item.crop
        return np.asarray(frame.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.LANCZOS))
