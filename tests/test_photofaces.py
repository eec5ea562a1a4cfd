"""PhotoFaces: the MobileStyleGAN generator, its resumable export, the photo caption grammar, and the
real face readers on generated and bundled photos (the `photo` extra; `.ci/run` installs random-face)."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from proxt2i.data import photofaces_export
from proxt2i.data.photo_captions import parse_photo_prompt, photo_caption, photo_prompts
from proxt2i.data.photofaces import PhotoFaceGenerator, draw_item, generator_files
from proxt2i.data.photofaces_export import MANIFEST, export_photofaces
from proxt2i.errors import UsageError
from proxt2i.faces import PHOTO_ATTRIBUTES, FaceReader, mirrored, read_face
from proxt2i.faces.attributes import read_attributes


@pytest.fixture(scope="module")
def generator():
    return PhotoFaceGenerator(threads=1)


@pytest.fixture(scope="module")
def reader():
    return FaceReader()


@pytest.fixture(scope="module")
def faces(generator):
    """Six generated faces at 256 px (seed 0, items 0-5)."""
    return [generator.image(draw_item(0, i), 256) for i in range(6)]


def grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def test_items_are_pure_functions_of_seed_and_index(generator):
    a, b, c = draw_item(3, 7), draw_item(3, 7), draw_item(3, 8)
    assert np.array_equal(a.z, b.z) and a.crop == b.crop and not np.array_equal(a.z, c.z)
    x0, y0, side = a.crop
    assert 0 <= x0 and 0 <= y0 and x0 + side <= 1024 and y0 + side <= 1024
    im1, im2 = generator.image(a, 64), generator.image(b, 64)
    assert im1.shape == (64, 64, 3) and im1.dtype == np.uint8 and np.array_equal(im1, im2)
    assert 30 < im1.mean() < 225 and im1.std() > 20  # a picture, not a constant


def test_generated_faces_are_found_by_the_real_detector(faces, reader):
    readings = [read_face(reader, im) for im in faces]
    assert all(len(r.faces) == 1 for r in readings)
    assert all(set(r.attributes) == set(PHOTO_ATTRIBUTES) for r in readings)
    assert all(r.measurements["face_fraction"] > 0.4 for r in readings)


def test_a_bundled_photo_is_read_and_described(reader):
    reading = read_face(reader, grace_hopper(), descriptor=True)
    assert len(reading.faces) == 1 and reading.face.landmarks.shape == (68, 2)
    assert reading.descriptor.shape == (128,) and 0.5 < float(np.linalg.norm(reading.descriptor)) < 2
    assert reading.attributes["pose"] in ("frontal", None)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert read_face(reader, noise).face is None


def test_the_mirror_image_swaps_pose_and_keeps_the_rest(faces, reader):
    for im in faces:
        a = read_face(reader, im).measurements
        b = read_face(reader, np.ascontiguousarray(im[:, ::-1])).measurements
        assert abs(a["yaw"] + b["yaw"]) < 0.05  # the nose's offset changes sign
    assert mirrored({"pose": "left", "framing": "wide"}) == {"pose": "right", "framing": "wide"}
    m = {"yaw": 0.3, "face_fraction": 0.8, "mouth_open": 0.2, "background_lab": [80, 0, 0], "bridge_edge": 0.0,
         "moustache_dark": 0.0}
    assert read_attributes(m) == {"pose": "right", "framing": "close-up", "expression": "smiling", "background": "light",
                                  "eyewear": None, "facial_hair": "none"}  # eyewear: not read on a turned face


def test_photo_captions_name_exactly_the_chosen_families():
    rng = np.random.default_rng(0)
    families = list(PHOTO_ATTRIBUTES)
    for _ in range(4000):
        attrs = {f: str(rng.choice(v)) for f, v in PHOTO_ATTRIBUTES.items()}
        named = [f for f in families if rng.random() < 0.5] or [families[int(rng.integers(len(families)))]]
        text = photo_caption(attrs, rng, named)
        assert parse_photo_prompt(text) == {f: attrs[f] for f in named}, text


def test_photo_prompts_refuse_what_the_readers_cannot_read():
    assert parse_photo_prompt("a smiling man with glasses, facing left") == {"expression": "smiling", "eyewear": "glasses", "pose": "left"}
    for bad in ("a woman with blue hair", "a man in a beanie", "an astronaut riding a horse"):
        with pytest.raises(UsageError):
            parse_photo_prompt(bad)
    prompts = photo_prompts(64)
    assert len(set(prompts)) == 64 and prompts == photo_prompts(64)
    assert all(parse_photo_prompt(p) for p in prompts)


class FakeGenerator:
    """Stands in for the OpenVINO networks in the export's bookkeeping tests (the real one is tested above)."""
    made = 0

    def __init__(self, threads=None):
        pass

    def image(self, item, size, psi):
        FakeGenerator.made += 1
        return np.full((size, size, 3), item.index % 256, np.uint8)


def test_export_is_sharded_resumable_and_refuses_other_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(photofaces_export, "PhotoFaceGenerator", FakeGenerator)
    out = tmp_path / "pf"
    real_write = photofaces_export._write_shard
    calls = []

    def dying_write(gen, work, fmt, shard, items, settings, progress):
        if shard == 1:
            raise KeyboardInterrupt  # killed while writing the second shard
        calls.append(shard)
        real_write(gen, work, fmt, shard, items, settings, progress)

    monkeypatch.setattr(photofaces_export, "_write_shard", dying_write)
    with pytest.raises(KeyboardInterrupt):
        export_photofaces(out, 5, size=16, shard_size=2)
    assert not out.exists() and calls == [0]
    with pytest.raises(UsageError, match="other settings"):
        export_photofaces(out, 5, size=32, shard_size=2)
    monkeypatch.setattr(photofaces_export, "_write_shard", real_write)
    FakeGenerator.made = 0
    manifest = export_photofaces(out, 5, size=16, shard_size=2)
    assert manifest["resumed_shards"] == 1 and manifest["generated"] == 3 and FakeGenerator.made == 3
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(out / "shard-000002.tar") as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("00000004.json").read())
    assert names == ["00000004.png", "00000004.txt", "00000004.json"] and meta["index"] == 4 and meta["crop"] == list(draw_item(0, 4).crop)
    with pytest.raises(UsageError, match="--overwrite"):
        export_photofaces(out, 5, size=16, shard_size=2)
    export_photofaces(out, 3, size=16, fmt="imagefolder", shard_size=2, overwrite=True)
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["00000000.png", "00000001.png", "00000002.png"] and not (out / "shard-000000.tar").exists()


def test_a_missing_generator_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "random_face" else real(name, *a))
    with pytest.raises(UsageError, match=r"proxt2i\[photo\]"):
        generator_files()


def test_train_vae_reads_a_dataset_and_holds_out_its_tail(tmp_path, capsys):
    from proxt2i.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        lines.append(json.dumps({"file_name": f"{i}.png", "text": "a photo of a person"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "vae"
    assert main(["train-vae", "--out", str(out), "steps=2", "size=16", "batch=2", "width=8", f"data=imagefolder:{folder}"]) == 0
    recipe = json.loads((out / "config.json").read_text())["recipe"]
    assert recipe["data"] == f"imagefolder:{folder}" and f"--data imagefolder:{folder}" in recipe["command"]
    assert recipe["heldout_psnr_db"] > 0
    capsys.readouterr()
    assert main(["train-vae", "--out", str(tmp_path / "v2"), "steps=1", "data=parquet:x"]) == 2
    assert "data must be" in capsys.readouterr().err


def test_photofaces_models_are_addressable_by_name_once_built(tmp_path, monkeypatch):
    from proxt2i.shipped import LOCAL_MODELS_ENV, resolve_model

    monkeypatch.setenv(LOCAL_MODELS_ENV, str(tmp_path))
    with pytest.raises(UsageError, match="not built on this machine.*proxt2i train photofaces-prox"):
        resolve_model("photofaces-prox")
    (tmp_path / "photofaces-prox").mkdir()
    (tmp_path / "photofaces-prox" / "config.json").write_text("{}")
    assert resolve_model("photofaces-prox") == tmp_path / "photofaces-prox"


def test_photofaces_prompt_sources_for_fine_tuning_keep_the_evaluation_set_out():
    """`--prompts photofaces-train` (fresh prompts of the PhotoFaces grammar) holds none of the 256 `photofaces`
    evaluation prompts, and every prompt of both names exactly what parse_photo_prompt reads back."""
    from proxt2i.data.photo_captions import parse_photo_prompt, photo_prompts
    from proxt2i.rl.prompts import load_prompt_source

    evaluation, train = load_prompt_source("photofaces"), load_prompt_source("photofaces-train")
    assert evaluation == photo_prompts(256)
    assert len(train) > 1500 and not {p.lower() for p in train} & {p.lower() for p in evaluation}
    assert all(parse_photo_prompt(p) for p in evaluation + train[:500])


def test_local_rebuild_commands_chain_presets_that_exist():
    """Each local model's rebuild trains presets in order, every stage starting where the one before it wrote,
    and exports the last stage."""
    import re

    from proxt2i.shipped import LOCAL
    from proxt2i.training.presets import PRESETS

    for name, entry in LOCAL.items():
        stages = re.findall(r"proxt2i train (\S+)", entry["rebuild"])
        assert len(stages) == 3 and all(s in PRESETS for s in stages), (name, stages)
        for before, after in zip(stages, stages[1:]):
            assert PRESETS[after].init == f"{PRESETS[before].out}/final"
        assert f"proxt2i export {PRESETS[stages[-1]].out}/final --out MODELS/{name}" in entry["rebuild"]
