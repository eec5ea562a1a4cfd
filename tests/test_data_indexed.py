"""Training data larger than memory: the random-access index over imagefolders and webdataset shards,
shard specs (folders, globs, brace ranges), and the aspect-preserving resize of training images."""

import numpy as np
import pytest

from proxt2i.data.export import export_imagefolder, export_webdataset
from proxt2i.data.indexed import IndexedPairs
from proxt2i.data.readers import read_pairs, shard_paths
from proxt2i.errors import UsageError
from proxt2i.training.presets import resolve_config
from proxt2i.imaging import resize_and_centre_crop
from proxt2i.training.data import BatchSource


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("indexed")
    export_imagefolder(root / "if", num=7, size=32, seed=2)
    export_webdataset(root / "wds", num=7, size=32, seed=2, shard_size=3)
    return root


@pytest.mark.parametrize("kind", ["imagefolder", "webdataset"])
def test_index_reads_the_same_pairs_as_the_readers(datasets, kind):
    folder = datasets / ("if" if kind == "imagefolder" else "wds")
    pairs = IndexedPairs(folder, kind)
    expected = list(read_pairs(folder))
    assert len(pairs) == len(expected) == 7
    for i in (6, 0, 3):  # any order: each access is a seek
        img, text = pairs[i]
        assert text == expected[i][1] and np.array_equal(img, expected[i][0])
    assert [t for _, t in pairs[1:3]] == [t for _, t in expected[1:3]]


def test_images_are_read_only_when_asked_for(tmp_path):
    export_imagefolder(tmp_path / "d", num=4, size=32, seed=0)
    (tmp_path / "d" / "00002.png").write_bytes(b"broken")
    pairs = IndexedPairs(tmp_path / "d", "imagefolder")  # indexing does not open images
    assert pairs[1][0].shape == (32, 32, 3)
    with pytest.raises(UsageError, match="00002.png"):
        pairs[2]


def test_shard_specs(datasets):
    shards = sorted((datasets / "wds").glob("*.tar"))
    assert len(shards) == 3
    assert shard_paths(datasets / "wds") == shards
    assert shard_paths(str(datasets / "wds" / "shard-{000000..000002}.tar")) == shards
    assert shard_paths(str(datasets / "wds" / "shard-{000001..000002}.tar")) == shards[1:]
    assert shard_paths(str(datasets / "wds" / "*.tar")) == shards
    with pytest.raises(UsageError, match="shard-000003.tar does not exist"):
        shard_paths(str(datasets / "wds" / "shard-{000000..000003}.tar"))
    with pytest.raises(UsageError, match="no shard matches"):
        shard_paths(str(datasets / "wds" / "*.tgz"))


def test_batch_source_on_shards_with_a_brace_spec(datasets):
    cfg = resolve_config("test-tiny", [f"data=webdataset:{datasets / 'wds'}/shard-{{000000..000002}}.tar", "batch=4"])
    source = BatchSource(cfg)
    images, captions = source.batch(1, 0, 1)  # records 4, 5, 6, 0
    expected = list(read_pairs(datasets / "wds"))
    assert images.shape == (4, 3, cfg.image_size, cfg.image_size)
    assert captions == [expected[i][1] for i in (4, 5, 6, 0)] == source.captions(1, 0, 1)


def test_resize_keeps_proportions():
    img = np.zeros((32, 64, 3), np.uint8)  # wide: blue left and right quarters, a red middle
    img[:, :16, 2] = img[:, 48:, 2] = 255
    img[:, 16:48, 0] = 255
    out = resize_and_centre_crop(img, 16)
    assert out.shape == (16, 16, 3)
    assert out[..., 0].min() > 200 and out[..., 2].max() < 60  # the centre crop: red, no blue (bicubic edges aside)
    square = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    from PIL import Image

    assert np.array_equal(resize_and_centre_crop(square, 32), np.asarray(Image.fromarray(square).resize((32, 32), Image.BICUBIC)))


def test_prefetching_workers_give_the_same_batches(datasets):
    cfg = resolve_config("test-tiny", [f"data=imagefolder:{datasets / 'if'}", "batch=3"])
    source = BatchSource(cfg)
    steps = range(2, 9)
    plain = list(source.batches(steps, 0, 1, workers=0))
    ahead = list(source.batches(steps, 0, 1, workers=2))
    assert len(plain) == len(ahead) == len(steps)
    for (a, ca), (b, cb), s in zip(plain, ahead, steps):
        expected, captions = source.batch(s, 0, 1)
        assert ca == cb == captions and np.array_equal(a, b) and np.array_equal(a, expected)
    with pytest.raises(UsageError, match="data_workers"):
        resolve_config("test-tiny", ["data_workers=-1"])
