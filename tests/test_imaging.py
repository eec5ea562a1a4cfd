"""imaging.py: each shared conversion gives exactly what the copies it replaced gave."""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from proxt2i.imaging import resize_and_centre_crop, resize_and_centre_crop_tensor, save_grid, to_float_images, to_pil


def test_uint8_to_float_is_x_over_255_for_batches_and_single_images():
    a = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    ref = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0
    assert torch.equal(to_float_images(a), ref) and torch.equal(to_float_images(torch.from_numpy(a)), ref)
    assert torch.equal(to_float_images(a[0]), torch.from_numpy(np.asarray(a[0], dtype=np.float32) / 255.0).permute(2, 0, 1))
    a.flags.writeable = False
    assert torch.equal(to_float_images(a[:, ::-1]), torch.from_numpy(a[:, ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0)


def test_resize_and_centre_crop_keeps_proportions_and_matches_pil():
    img = np.random.default_rng(1).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    out = resize_and_centre_crop(img, 16)
    # short side 40 -> 16: 64 -> round(25.6) = 26 wide, then the centre 16 columns (offset 5)
    ref = np.asarray(Image.fromarray(img).resize((26, 16), Image.BICUBIC).crop((5, 0, 21, 16)))
    assert np.array_equal(out, ref)
    pil = resize_and_centre_crop(Image.fromarray(img), 20, 16)
    assert pil.size == (16, 16)
    square = np.ascontiguousarray(img[:32, :32])
    assert resize_and_centre_crop(square, 32) is square  # already the size: returned as it is


def test_tensor_resize_of_a_square_is_a_plain_interpolation():
    x = torch.rand(2, 3, 48, 48)
    assert resize_and_centre_crop_tensor(x, 48) is x
    ref = F.interpolate(x, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(resize_and_centre_crop_tensor(x, 32), ref)


def test_image_output(tmp_path):
    x = torch.rand(3, 3, 8, 8)
    ims = to_pil(x)
    assert len(ims) == 3 and np.array_equal(np.asarray(ims[1]), (x[1].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    save_grid(x, tmp_path / "grid.png", cols=2, pad=2)
    assert Image.open(tmp_path / "grid.png").size == (2 * 10 + 2, 2 * 10 + 2)
