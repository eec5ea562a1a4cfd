"""SynthFaces export (imagefolder, webdataset), readers and the `proxt2i data` CLI. Tiny and fast."""

import io
import json
import tarfile

import numpy as np
import pytest

from proxt2i.cli import main
from proxt2i.data import export as export_mod
from proxt2i.data.export import export_imagefolder, export_webdataset
from proxt2i.data.readers import read_imagefolder, read_imagefolder_records, read_pairs, read_webdataset, read_webdataset_records
from proxt2i.data.synthfaces import render_batch
from proxt2i.errors import UsageError


def _no_temp_files(folder):
    return not [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


def test_imagefolder_round_trip(tmp_path):
    meta = export_imagefolder(tmp_path / "if", num=4, size=32, seed=5, split="heldout")
    images, attrs, captions = render_batch(5, 0, 4, 32, "heldout")
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert [r["text"] for r in rows] == captions and [r["attributes"] for r in rows] == attrs
    pairs = list(read_pairs(tmp_path / "if"))
    assert [t for _, t in pairs] == captions
    assert all(np.array_equal(a, b) for (a, _), b in zip(pairs, images))
    assert next(iter(read_imagefolder_records(tmp_path / "if")))["attributes"] == attrs[0]
    assert _no_temp_files(tmp_path / "if")


def test_webdataset_round_trip(tmp_path):
    shards = export_webdataset(tmp_path / "wds", num=5, size=32, seed=1, shard_size=2)
    assert [p.name for p in shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(shards[0]) as tar:
        assert tar.getnames() == ["00000000.png", "00000000.txt", "00000000.json", "00000001.png", "00000001.txt", "00000001.json"]
    images, attrs, captions = render_batch(1, 0, 5, 32)
    pairs = list(read_pairs(tmp_path / "wds"))
    assert [t for _, t in pairs] == captions
    assert all(np.array_equal(a, b) for (a, _), b in zip(pairs, images))
    records = list(read_webdataset_records(shards[1]))
    assert [r["attributes"] for r in records] == attrs[2:4] and records[0]["labels"]["skin"] >= 0
    assert _no_temp_files(tmp_path / "wds")


def test_killed_export_leaves_no_partial_shard(tmp_path, monkeypatch):
    real, calls = export_mod.render_item, []

    def dying(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(export_mod, "render_item", dying)
    with pytest.raises(KeyboardInterrupt):
        export_webdataset(tmp_path, num=6, size=32, shard_size=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000000.tar"]
    assert len(list(read_webdataset(tmp_path))) == 3


def test_reader_errors(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        read_imagefolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="folder is empty"):
        read_imagefolder(tmp_path / "empty")
    with pytest.raises(UsageError, match="folder is empty"):
        read_webdataset(tmp_path / "empty")

    export_imagefolder(tmp_path / "if", num=2, size=32)
    meta = tmp_path / "if" / "metadata.jsonl"
    lines = meta.read_text().splitlines()
    meta.write_text(lines[0] + "\n" + json.dumps({"file_name": "00001.png"}) + "\n")
    with pytest.raises(UsageError, match=r"metadata.jsonl:2: line has no \"text\""):
        list(read_imagefolder(tmp_path / "if"))

    meta.write_text("\n".join(lines) + "\n")
    (tmp_path / "if" / "00001.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match=r"00001.png: unreadable image"):
        list(read_imagefolder(tmp_path / "if"))

    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        info = tarfile.TarInfo("k.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(UsageError, match="sample k has no .txt caption"):
        list(read_webdataset(tmp_path / "bad.tar"))


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("proxt2i: error: ")
    return err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "synthfaces", "--num", "0", "--out", "X"], "--num must be >= 1"),
        (["data", "synthfaces", "--num", "2", "--size", "300", "--out", "X"], "--size must be in 32..256"),
        (["data", "synthfaces", "--num", "2", "--size", "31", "--out", "X"], "--size must be in 32..256"),
        (["data", "synthfaces", "--num", "2", "--split", "valid", "--out", "X"], "unknown split 'valid'"),
        (["data", "parse", "a wizard in a cape"], "wizard, cape"),
        (["data", "prompts", "heldover"], "unknown prompt set"),
        (["data", "prompts", "heldin", "--num", "0"], "--num must be in 1..256"),
    ],
)
def test_cli_bad_input(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "out") if a == "X" else a for a in argv]
    assert main(argv) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_cli_export_prompts_and_parse(tmp_path, capsys):
    assert main(["data", "synthfaces", "--num", "3", "--size", "32", "--format", "webdataset", "--out", str(tmp_path / "w")]) == 0
    assert len(list(read_webdataset(tmp_path / "w"))) == 3
    capsys.readouterr()
    assert main(["data", "prompts", "heldout", "--num", "4", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["data", "prompts", "heldin"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 256
    assert main(["data", "parse", "a smiling person with blue hair"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expression": "smiling", "hair_color": "blue"}
