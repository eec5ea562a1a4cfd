"""Dataset curation (LAION-Face-T2I style): shape and aesthetic filters, recaptioning with a local
image-text-to-text model, both input and output formats, and bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from hf_tiny import save_aesthetic, save_blip_captioner
from proxt2i.cli import main
from proxt2i.curate import CurateConfig, curate, load_aesthetic_scorer, load_captioner, shape_reason
from proxt2i.data.readers import read_records
from proxt2i.errors import UsageError

# (width, height) and whether the paper's shape rule (short edge >= 256, 9:16 <= w/h <= 16:9) keeps it
SHAPES = [((300, 260), True), ((256, 256), True), ((455, 256), True), ((255, 400), False),
          ((600, 300), False), ((256, 460), False), ((320, 560), True)]


def _image_bytes(w, h, seed, fmt="JPEG"):
    import io

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture()
def source(tmp_path):
    """An imagefolder of JPEGs of the SHAPES, plus one corrupt file."""
    root = tmp_path / "src"
    root.mkdir()
    lines = []
    for i, ((w, h), _) in enumerate(SHAPES):
        (root / f"{i}.jpg").write_bytes(_image_bytes(w, h, i))
        lines.append(json.dumps({"file_name": f"{i}.jpg", "text": f"caption {i}"}))
    (root / "bad.jpg").write_bytes(b"not a jpeg")
    lines.append(json.dumps({"file_name": "bad.jpg", "text": "broken"}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("curate-models")
    return {"aesthetic": save_aesthetic(root / "aesthetic"), "captioner": save_blip_captioner(root / "blip")}


def test_shape_rule_matches_the_paper():
    cfg = CurateConfig()
    for (w, h), kept in SHAPES:
        assert (shape_reason(w, h, cfg) is None) == kept, (w, h)
    assert shape_reason(200, 300, cfg) == "short_side" and shape_reason(600, 300, cfg) == "aspect"


@pytest.mark.parametrize("fmt", ["webdataset", "imagefolder"])
def test_shape_filter_keeps_bytes_and_counts_drops(source, tmp_path, fmt):
    report = curate(source, tmp_path / "out", CurateConfig(format=fmt, shard_size=2), progress=False)
    kept = [i for i, (_, ok) in enumerate(SHAPES) if ok]
    assert report["input"] == len(SHAPES) + 1 and report["kept"] == len(kept)
    assert {k: v for k, v in report["dropped"].items() if v} == {"not_image": 1, "short_side": 1, "aspect": 2}
    assert report["input"] == report["kept"] + sum(report["dropped"].values())
    rows = list(read_records(tmp_path / "out", decode=False))
    assert [r["source"] for r in rows] == [f"{i}.jpg" for i in kept]
    for row, i in zip(rows, kept):
        assert row["image_bytes"] == (source / f"{i}.jpg").read_bytes()  # no re-encoding
        assert row["text"] == row["original_text"] == f"caption {i}"
        assert (row["width"], row["height"]) == SHAPES[i][0]
    assert json.loads((tmp_path / "out" / "curation.json").read_text())["kept"] == len(kept)
    if fmt == "webdataset":  # parts of 2 rows: (0, 1) (2, 3) (4, 5) (6, bad); part 2 keeps nothing and writes no shard
        assert sorted(p.name for p in (tmp_path / "out").glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar", "shard-000003.tar"]


def test_webdataset_source_and_limit(source, tmp_path):
    curate(source, tmp_path / "wds", CurateConfig(min_side=1, max_aspect=10, min_aspect=0.1), progress=False)
    report = curate(tmp_path / "wds", tmp_path / "again", CurateConfig(limit=4), progress=False)
    assert report["input"] == 4 and report["kept"] == 3  # the first four shapes: three kept, 255x400 dropped
    report = curate(tmp_path / "wds", tmp_path / "all", CurateConfig(), progress=False)
    assert report["kept"] == sum(ok for _, ok in SHAPES)


def test_aesthetic_threshold_uses_the_predictor(source, tmp_path, models):
    score = load_aesthetic_scorer(str(models["aesthetic"]))
    kept_shapes = [i for i, (_, ok) in enumerate(SHAPES) if ok]
    images = [Image.open(source / f"{i}.jpg").convert("RGB") for i in kept_shapes]
    scores = score(images)
    assert len(set(round(s, 6) for s in scores)) == len(scores)  # different images, different scores
    threshold = float(np.median(scores))
    report = curate(source, tmp_path / "out", CurateConfig(aesthetic=str(models["aesthetic"]), min_aesthetic=threshold), progress=False)
    expected = [i for i, s in zip(kept_shapes, scores) if s >= threshold]
    rows = list(read_records(tmp_path / "out", decode=False))
    assert [r["source"] for r in rows] == [f"{i}.jpg" for i in expected]
    assert report["dropped"]["aesthetic"] == len(kept_shapes) - len(expected) > 0
    assert [r["aesthetic"] for r in rows] == pytest.approx([s for s in scores if s >= threshold], abs=1e-4)


def test_recaption_with_a_local_model(source, tmp_path, models):
    caption = load_captioner(str(models["captioner"]), prompt="a", max_new_tokens=6)
    kept = [i for i, (_, ok) in enumerate(SHAPES) if ok]
    images = [Image.open(source / f"{i}.jpg").convert("RGB") for i in kept]
    expected = caption(images)
    assert all(isinstance(c, str) and c for c in expected)
    report = curate(source, tmp_path / "out", CurateConfig(captioner=str(models["captioner"]), caption_prompt="a",
                                                          max_caption_tokens=6, batch_size=3), progress=False)
    rows = list(read_records(tmp_path / "out", decode=False))
    assert report["recaptioned"] and [r["text"] for r in rows] == expected  # batching does not change captions
    assert [r["original_text"] for r in rows] == [f"caption {i}" for i in kept]


def test_bad_input_is_one_line_and_writes_nothing(source, tmp_path, capsys):
    assert main(["data", "curate", str(tmp_path / "missing"), "--out", str(tmp_path / "o1")]) == 2
    assert "no such directory" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    assert main(["data", "curate", str(source), "--out", str(tmp_path / "o2"), "--captioner", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "captioner" in err and "config.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists()
    assert main(["data", "curate", str(source), "--out", str(tmp_path / "o3"), "--aspect", "2", "1"]) == 2
    assert "--aspect" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert main(["data", "curate", str(source), "--out", str(tmp_path / "full")]) == 2
    assert "exists" in capsys.readouterr().err and (tmp_path / "full" / "x").read_text() == "keep me"


def test_cli_report(source, tmp_path, capsys):
    assert main(["data", "curate", str(source), "--out", str(tmp_path / "o"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept"] == 4 and report["config"]["min_side"] == 256
    with pytest.raises(UsageError):
        CurateConfig(shard_size=0).check()
