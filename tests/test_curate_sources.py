"""Curation (issue 22) in one process: every source layout, bad input counted and never fatal, deduplication,
the accounting (every input record once), and the resume rules of the work folder."""

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from proxt2i.cli import main
from proxt2i.curate import CurateConfig, curate
from proxt2i.curate.dedup import NearDuplicateIndex, decide
from proxt2i.data.readers import read_records
from proxt2i.data.synthfaces import render_item

CFG = dict(min_side=16)


def face(i, size=96, fmt="PNG", quality=90, image=None):
    """A SynthFaces render (smooth, face-like images: what perceptual hashes are made for) as file bytes."""
    if image is None:
        image = Image.fromarray(render_item(0, "train", i, size)[0])
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_tar(path, members, cut=None):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if cut == "boundary":  # a whole number of members, no end-of-archive marker
        with tarfile.open(path) as tar:
            last = tar.getmembers()[-1]
        data = path.read_bytes()[: last.offset_data + ((last.size + 511) // 512) * 512]
        path.write_bytes(data)
    elif cut == "mid":
        with tarfile.open(path) as tar:
            last = tar.getmembers()[-1]
        path.write_bytes(path.read_bytes()[: last.offset_data + 10])


def sample(key, image=None, text=b"a face", ext="png", meta=None):
    out = [] if image is False else [(f"{key}.{ext}", image if image is not None else face(int(key[-3:])))]
    if text is not None:
        out.append((f"{key}.txt", text))
    if meta is not None:
        out.append((f"{key}.json", meta))
    return out


def accounted(report):
    return report["input"] == report["kept"] + sum(report["dropped"].values())


def test_bad_input_is_counted_with_examples_and_never_fatal(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = sample("s0_000") + sample("s0_001")
    bad = (sample("s0_002", image=b"this is not an image", ext="jpg")  # not_image
           + sample("s0_003", image=face(3, fmt="JPEG")[:300], ext="jpg")  # corrupt_image: a cut download
           + sample("s0_004", text=None)  # missing_text
           + sample("s0_005", image=False)  # missing_image
           + sample("s0_006", meta=b"{bad json")  # bad_metadata
           + sample("s0_007", text=b"\xff\xfe")  # bad_text
           + sample("s0_000"))  # the first key again, later in the shard: duplicate_key
    write_tar(src / "a.tar", good + bad)
    write_tar(src / "b.tar", sample("s1_010") + sample("s1_011") + sample("s1_012"), cut="boundary")  # all samples there, no end marker
    write_tar(src / "c.tar", sample("s2_020") + sample("s2_021"), cut="mid")  # cut inside the last member: s2_021 is lost
    (src / "d.tar").write_bytes(b"not a tar file at all" * 40)
    report = curate(src, tmp_path / "out", CurateConfig(**CFG), progress=False)
    dropped = {k: v for k, v in report["dropped"].items() if v}
    assert dropped == {"not_image": 1, "corrupt_image": 1, "missing_text": 1, "missing_image": 1, "bad_metadata": 1,
                       "bad_text": 1, "duplicate_key": 1}
    assert report["shards"] == {"truncated_shard": 2, "unreadable_shard": 1}
    assert report["kept"] == 2 + 3 + 1 and accounted(report)
    assert report["examples"]["corrupt_image"][0]["source"] == "a.tar/s0_003"
    assert report["examples"]["truncated_shard"][0]["source"] in ("b.tar", "c.tar")
    assert {e["source"] for e in report["examples"]["unreadable_shard"]} == {"d.tar"}
    rows = list(read_records(tmp_path / "out", decode=False))
    assert sorted(r["source"] for r in rows) == ["a.tar/s0_000", "a.tar/s0_001", "b.tar/s1_010", "b.tar/s1_011", "b.tar/s1_012",
                                                 "c.tar/s2_020"]
    assert len({r["key"] for r in rows}) == len(rows)


def test_imagefolder_bad_rows_are_counted(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "0.png").write_bytes(face(0))
    (tmp_path / "outside.png").write_bytes(face(1))
    lines = [json.dumps({"file_name": "0.png", "text": "a face"}), "[1, 2]", "{broken",
             json.dumps({"file_name": "../outside.png", "text": "x"}), json.dumps({"file_name": "/etc/hostname", "text": "x"}),
             json.dumps({"file_name": "gone.png", "text": "x"}), json.dumps({"file_name": "0.png"}), json.dumps({"text": "x"}),
             json.dumps({"file_name": "", "text": "x"}), json.dumps({"file_name": 3, "text": "x"}),
             json.dumps({"file_name": "link.png", "text": "x"}), json.dumps({"file_name": "sub/../../outside.png", "text": "x"})]
    (src / "link.png").symlink_to(tmp_path / "outside.png")
    (src / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    report = curate(src, tmp_path / "out", CurateConfig(**CFG, format="imagefolder"), progress=False)
    assert {k: v for k, v in report["dropped"].items() if v} == {"bad_metadata": 2, "unsafe_path": 4, "missing_image": 4,
                                                                 "missing_text": 1}
    assert len(report["examples"]["unsafe_path"]) == 4 and all("folder" in e["detail"] for e in report["examples"]["unsafe_path"])
    assert report["kept"] == 1 and accounted(report)
    assert (tmp_path / "out" / "000000_000000.png").read_bytes() == face(0)


def test_exact_and_near_duplicates_are_dropped_after_the_first(tmp_path):
    base = Image.open(io.BytesIO(face(7, size=256)))
    variants = [face(7, size=256),  # the original
                face(7, size=256),  # the same bytes under another key: exact
                face(0, image=base.resize((128, 128)), fmt="JPEG", quality=75),  # smaller and re-encoded: near
                face(0, image=ImageEnhance.Brightness(base).enhance(1.1)),  # brighter: near
                face(8, size=256), face(9, size=256)]  # other faces
    src = tmp_path / "src"
    src.mkdir()
    write_tar(src / "a.tar", [m for i, v in enumerate(variants) for m in sample(f"k{i:03d}", image=v, ext="png")])
    report = curate(src, tmp_path / "out", CurateConfig(**CFG), progress=False)
    assert report["dropped"]["exact_duplicate"] == 1 and report["dropped"]["near_duplicate"] == 2
    assert report["examples"]["exact_duplicate"] == [{"source": "a.tar/k001", "duplicate_of": "a.tar/k000"}]
    assert [e["duplicate_of"] for e in report["examples"]["near_duplicate"]] == ["a.tar/k000", "a.tar/k000"]
    assert all(0 < e["distance"] <= 12 for e in report["examples"]["near_duplicate"])
    assert sorted(r["source"] for r in read_records(tmp_path / "out", decode=False)) == ["a.tar/k000", "a.tar/k004", "a.tar/k005"]
    off = curate(src, tmp_path / "off", CurateConfig(**CFG, exact_dedup=False, near_duplicate_distance=None), progress=False)
    assert off["kept"] == len(variants)


def test_near_duplicate_index_matches_brute_force():
    rng = np.random.default_rng(0)
    bits, distance = 256, 12
    base = [int(rng.integers(0, 2**62)) << 194 | int(rng.integers(0, 2**62)) for _ in range(40)]
    hashes = []
    for h in base:  # each base hash and a few copies with 0..20 flipped bits
        hashes.append(h)
        for flips in rng.integers(0, 21, 3):
            hashes.append(h ^ sum(1 << int(b) for b in rng.choice(bits, int(flips), replace=False)))
    scans = [(0, [{"row": i, "source": f"s{i}", "sha256": str(i), "phash": f"{h:064x}"} for i, h in enumerate(hashes)])]
    drops, counts, _ = decide(scans, exact=True, near_distance=distance, bits=bits)
    kept, expected = [], set()
    for i, h in enumerate(hashes):
        if any((h ^ k).bit_count() <= distance for k in kept):
            expected.add(i)
        else:
            kept.append(h)
    assert set(drops.get(0, {})) == expected and counts["near_duplicate"] == len(expected) > 0
    index = NearDuplicateIndex(distance, bits)
    index.add(hashes[0], "a")
    assert index.find(hashes[0]) == ("a", 0) and index.find(hashes[0] ^ ((1 << 13) - 1)) is None


def test_parquet_and_img2dataset_files_layouts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = [face(i) for i in range(5)]
    table = pa.table({"key": [f"{i:09d}" for i in range(5)], "caption": ["a face", None, "a face", "a face", "a face"],
                      "jpg": [images[0], images[1], None, images[3], images[4]], "status": ["success"] * 5,
                      "url": [f"http://example/{i}" for i in range(5)]})
    (tmp_path / "pq").mkdir()
    pq.write_table(table, tmp_path / "pq" / "00000.parquet")
    report = curate(tmp_path / "pq", tmp_path / "out", CurateConfig(**CFG, shard_size=2), progress=False)
    assert report["parts"] == 3 and report["kept"] == 3 and report["dropped"]["missing_text"] == 1
    assert report["dropped"]["missing_image"] == 1 and accounted(report)
    rows = list(read_records(tmp_path / "out", decode=False))
    assert [r["source_meta"]["url"] for r in rows] == ["http://example/0", "http://example/3", "http://example/4"]
    files = tmp_path / "files" / "00000"
    files.mkdir(parents=True)
    for i in range(3):
        (files / f"{i:09d}.jpg").write_bytes(face(i, fmt="JPEG"))
        (files / f"{i:09d}.txt").write_text(f"caption {i}")
        (files / f"{i:09d}.json").write_text(json.dumps({"url": f"u{i}"}))
    (files / "000000009.json").write_text(json.dumps({"status": "failed_to_download"}))  # no image ever: not a record
    report = curate(tmp_path / "files", tmp_path / "out2", CurateConfig(**CFG), progress=False)
    assert report["input"] == report["kept"] == 3
    assert [r["text"] for r in read_records(tmp_path / "out2", decode=False)] == ["caption 0", "caption 1", "caption 2"]


def _source(tmp_path, n=12, shard=4):
    src = tmp_path / "src"
    src.mkdir()
    for s in range(n // shard):
        write_tar(src / f"{s:05d}.tar", [m for i in range(s * shard, (s + 1) * shard) for m in sample(f"k{i:03d}")])
    return src


def test_an_unfinished_run_resumes_and_other_settings_are_refused(tmp_path, capsys):
    src = _source(tmp_path)
    out = tmp_path / "out"
    work = tmp_path / ".out.curate-work"
    reference = curate(src, tmp_path / "ref", CurateConfig(**CFG), progress=False)
    # a run that stopped after scanning two parts and writing one: what a kill leaves
    from proxt2i.atomic import atomic_write_json
    from proxt2i.curate import run as curate_run

    parts = curate_run.list_parts(src, 1000)
    curate_run._open_work(out, curate_run._fingerprint(src, parts, CurateConfig(**CFG)), restart=False)
    from proxt2i.curate.stages import load_kept, scan_part, write_part

    scans = [scan_part({"part": part}, CurateConfig(**CFG)) for part in parts[:2]]
    for part, scan in zip(parts, scans):
        atomic_write_json(work / "scan" / f"part-{part['index']:06d}.json", scan)
    keep = {r["row"]: (r["width"], r["height"]) for r in scans[0]["records"]}
    manifest = write_part(load_kept({"part": parts[0], "keep": keep}), str(work / "out"), CurateConfig(**CFG))
    atomic_write_json(work / "done" / "part-000000.json", manifest)
    written = (work / "out" / "shard-000000.tar").stat().st_mtime_ns
    (work / "out" / ".shard-000001.tar.abc.tmp.tar").write_bytes(b"half")  # a killed writer's temporary
    assert main(["data", "curate", str(src), "--out", str(out), "--min-side", "16", "--min-aspect", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--restart" in err[0]
    report = curate(src, out, CurateConfig(**CFG), progress=False)
    assert report["resumed_parts"] == {"scan": 2, "write": 1}
    assert (out / "shard-000000.tar").stat().st_mtime_ns == written  # a completed shard is not rewritten
    assert not work.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    for name in ("shard-000000.tar", "shard-000001.tar", "shard-000002.tar"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert {k: report[k] for k in ("input", "kept", "dropped")} == {k: reference[k] for k in ("input", "kept", "dropped")}


def test_restart_discards_an_unfinished_run(tmp_path):
    src = _source(tmp_path)
    from proxt2i.curate import run as curate_run

    parts = curate_run.list_parts(src, 1000)
    curate_run._open_work(tmp_path / "out", curate_run._fingerprint(src, parts, CurateConfig(min_side=8)), restart=False)
    with pytest.raises(Exception, match="--restart"):
        curate(src, tmp_path / "out", CurateConfig(**CFG), progress=False)
    report = curate(src, tmp_path / "out", CurateConfig(**CFG), progress=False, restart=True)
    assert report["kept"] == 12 and report["resumed_parts"] == {"scan": 0, "write": 0}


def test_engine_options_are_checked(tmp_path, capsys):
    src = _source(tmp_path)
    for args, word in ((["--workers", "2"], "--engine ray"), (["--engine", "spark"], "engine"),
                       (["--near-duplicate-distance", "99"], "near-duplicate-distance"),
                       (["--engine", "ray", "--workers", "0"], "--workers"), (["--engine", "ray", "--num-gpus", "-1"], "--num-gpus")):
        assert main(["data", "curate", str(src), "--out", str(tmp_path / "o"), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0], (args, err)
        assert not (tmp_path / "o").exists() and not (tmp_path / ".o.curate-work").exists()


def test_engine_ray_without_the_extra_names_it(tmp_path, capsys, monkeypatch):
    import sys

    src = _source(tmp_path)
    for module in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, module, None)  # as if ray were not installed
    assert main(["data", "curate", str(src), "--out", str(tmp_path / "o"), "--min-side", "16", "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'proxt2i[curate]'" in err[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.curate-work").exists()
