"""The curation settings (CurateConfig, the paper's thresholds as defaults) and the per-image checks."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..errors import UsageError

FORMATS = ("webdataset", "imagefolder")
ENGINES = ("local", "ray")
MAX_NEAR_DISTANCE = 64  # of 256 hash bits: unrelated images differ in about 128
DEFAULT_CAPTION_PROMPT = ("Describe this person's face in one detailed sentence: apparent age, skin tone, face shape, "
                          "hair colour and style, eye colour, expression, facial hair, eyewear, headwear, earrings, background.")
REPORT = "curation.json"


@dataclass(frozen=True)
class CurateConfig:
    """`proxt2i data curate`: the stages' thresholds and models, the output layout (the paper's thresholds by default)."""

    min_side: int = option(256, "minimum short edge in px")
    min_aspect: float = option(9 / 16, "minimum width / height (--aspect MIN MAX sets both ends)")
    max_aspect: float = option(16 / 9, "maximum width / height")
    aesthetic: str | None = option(None, "folder of the LAION aesthetic predictor (CLIPVisionModelWithProjection + aesthetic_mlp.safetensors); "
                                         "none = no aesthetic filter", legacy="", metavar="DIR")
    min_aesthetic: float = option(4.5, "minimum aesthetic score with --aesthetic")
    captioner: str | None = option(None, "folder of a transformers image-text-to-text model and its processor; none = keep the "
                                         "source captions", legacy="", metavar="DIR")
    caption_prompt: str = option(DEFAULT_CAPTION_PROMPT, "instruction given to the captioner")
    max_caption_tokens: int = option(77, "new tokens per caption")
    face_filter: bool = option(False, "keep images with exactly one face (dlib's detector), large and sure enough; colour only "
                                      "(pip install 'proxt2i[photo]')")
    min_face_fraction: float = option(0.3, "--face-filter: the face's jaw width as a fraction of the image width, at least")
    min_face_score: float = option(0.5, "--face-filter: the detector's score, at least (dlib's own threshold is 0)")
    face_captions: bool = option(False, "recaption from the real face readers: the PhotoFaces attributes they are sure of, in "
                                        "the SynthFaces caption grammar (needs --face-filter)")
    exact_dedup: bool = option(True, "drop exact duplicates (same bytes, sha256) after the first")
    near_duplicate_distance: int | None = option(12, "drop an image whose 256-bit perceptual hash (imagehash.phash, hash_size 16) is "
                                                      "within this many bits of an earlier kept one; none = no near-duplicate check")
    format: str = option("webdataset", "output layout: webdataset (one shard per input part) or imagefolder")
    shard_size: int = option(1000, "records per part (the unit of work, resume and output) for imagefolder and parquet "
                                   "sources; webdataset sources keep their shards as parts")
    batch_size: int = option(16, "images per model batch")
    limit: int | None = option(None, "read at most N source records; none = all", legacy=0)
    device: str = option("cpu", "where the models run: cpu, cuda, cuda:N, mps or auto (docs/scale.md)")
    engine: str = option("local", "local (this process) or ray (Ray Data: parallel stages, pip install 'proxt2i[curate]'; "
                                  "docs/curation.md)")
    address: str | None = option(None, "--engine ray: the cluster to join (auto, or ray://HOST:10001); none = start a Ray "
                                       "on this machine", metavar="ADDR")
    workers: int | None = option(None, "--engine ray: parallel CPU tasks (read, decode, check, hash, write); none = every "
                                       "CPU Ray sees, less the model actors")
    model_workers: int = option(1, "--engine ray: actors per model stage (aesthetic, captioner)")
    num_gpus: float = option(0.0, "--engine ray: GPUs per model actor (e.g. 1 on a GPU cluster; 0 = CPU)")

    def __post_init__(self):
        self.check()

    def check(self) -> "CurateConfig":
        if self.min_side < 1:
            raise UsageError(f"--min-side must be >= 1, got {self.min_side}")
        if not 0 < self.min_aspect <= self.max_aspect:
            raise UsageError(f"--aspect needs 0 < MIN <= MAX, got {self.min_aspect:g} {self.max_aspect:g}")
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose from {', '.join(FORMATS)}")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose from {', '.join(ENGINES)}")
        if self.engine == "local" and (self.address or self.workers not in (None, 1) or self.num_gpus):
            raise UsageError("--address, --workers and --num-gpus need --engine ray")
        if self.near_duplicate_distance is not None and not 0 <= self.near_duplicate_distance <= MAX_NEAR_DISTANCE:
            raise UsageError(f"--near-duplicate-distance must be in 0..{MAX_NEAR_DISTANCE} (or none), got {self.near_duplicate_distance}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be >= 1 (or none: every CPU), got {self.workers}")
        if not (self.num_gpus >= 0 and self.num_gpus == self.num_gpus):
            raise UsageError(f"--num-gpus must be >= 0, got {self.num_gpus}")
        for name in ("shard_size", "batch_size", "max_caption_tokens", "model_workers"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1 (or none: all), got {self.limit}")
        if self.face_captions and not self.face_filter:
            raise UsageError("--face-captions needs --face-filter (a caption describes the one face the filter keeps)")
        if self.face_captions and self.captioner:
            raise UsageError("--face-captions and --captioner both write the caption; choose one")
        if not 0 <= self.min_face_fraction <= 1:
            raise UsageError(f"--min-face-fraction must be in 0..1, got {self.min_face_fraction}")
        for name in ("aesthetic", "captioner"):
            if getattr(self, name) == "":
                raise UsageError(f"--{name} must name a folder (or be none)")
        from ..devices import resolve_device

        resolve_device(self.device)  # a device that is not there: one line, before any model loads
        return self
