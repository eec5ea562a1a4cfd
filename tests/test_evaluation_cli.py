"""`proxt2i evaluate` on a small imagefolder of renders, and its one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image

from proxt2i.cli import main
from proxt2i.data.synthfaces import render_batch


def write_folder(path, n=8, size=64, seed=11):
    images, _, captions = render_batch(seed, 0, n, size, split="test")
    path.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (im, text) in enumerate(zip(images, captions)):
        Image.fromarray(im).save(path / f"{i:05d}.png")
        lines.append(json.dumps({"file_name": f"{i:05d}.png", "text": text}))
    (path / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return path


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_evaluate_json_and_table(tmp_path, capsys):
    folder = write_folder(tmp_path / "gen")
    rc, out, _ = run(["evaluate", str(folder), "--json"], capsys)
    assert rc == 0
    result = json.loads(out)
    for key in ("n", "alignment", "alignment_per_family", "fd", "clip_score", "precision", "recall"):
        assert key in result
    assert result["n"] == 8 and 0 <= result["alignment"] <= 1
    assert result["diversity"] is None  # every render has its own caption: no within-prompt spread to measure
    rc, out, _ = run(["evaluate", str(folder)], capsys)
    assert rc == 0 and "alignment" in out and "clip_score" in out


def set_line(folder, lineno, text):
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    lines[lineno - 1] = text
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "breakage, expected",
    [
        ("missing", "no such directory"),
        ("empty", "no rows, the dataset is empty"),
        ("no_text", "metadata.jsonl:3: line has no \"text\" string"),
        ("bad_json", "metadata.jsonl:2: not valid JSON"),
        ("unknown_word", "00003.png: prompt has words outside the SynthFaces vocabulary: zebra"),
        ("wrong_size", "00001.png: image is 20x20 px"),
        ("unreadable", "00002.png: unreadable image"),
        ("missing_image", "00003.png: image named on metadata.jsonl line 4 does not exist"),
    ],
)
def test_evaluate_errors_are_one_clear_line(tmp_path, capsys, breakage, expected):
    folder = write_folder(tmp_path / "gen", n=5)
    if breakage == "missing":
        folder = tmp_path / "nope"
    elif breakage == "empty":
        (folder / "metadata.jsonl").write_text("\n")
    elif breakage == "no_text":
        set_line(folder, 3, json.dumps({"file_name": "00002.png"}))
    elif breakage == "bad_json":
        set_line(folder, 2, "{file_name: 00001.png")
    elif breakage == "unknown_word":
        set_line(folder, 4, json.dumps({"file_name": "00003.png", "text": "a zebra with glasses"}))
    elif breakage == "wrong_size":
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "00001.png")
    elif breakage == "unreadable":
        (folder / "00002.png").write_bytes(b"not a png")
    elif breakage == "missing_image":
        (folder / "00003.png").unlink()
    rc, out, err = run(["evaluate", str(folder), "--json"], capsys)
    assert rc == 2 and out == ""
    assert err.startswith("proxt2i: error: ") and err.count("\n") == 1
    assert expected in err, err
