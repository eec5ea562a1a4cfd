import pytest
import torch
from safetensors.torch import load_file

from proxt2i.errors import UsageError
from proxt2i.models.autoencoder import (
    DiffusersKL,
    IdentityAutoencoder,
    SmallVAE,
    autoencoder_from_config,
    cache_latents,
    calibrate_latent_scale,
    vae_loss,
)


def test_identity_round_trip():
    x = torch.rand(2, 3, 8, 8)
    ae = IdentityAutoencoder()
    assert torch.allclose(ae.decode(ae.encode(x)), x)


def test_small_vae_trains_and_calibrates():
    torch.manual_seed(0)
    vae = SmallVAE(latent_channels=4, width=16)
    x = torch.nn.functional.interpolate(torch.rand(8, 3, 4, 4), scale_factor=4)  # blocky images, learnable
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first = float(vae_loss(vae, x, generator=g).mean())
    for _ in range(40):
        loss = vae_loss(vae, x, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.6 * first
    calibrate_latent_scale(vae, x)
    z = vae.encode(x)
    assert z.shape == (8, 4, 4, 4) and float(z.std()) == pytest.approx(1.0, rel=0.05)
    rebuilt = autoencoder_from_config(vae.config())
    rebuilt.load_state_dict(vae.state_dict())
    assert torch.allclose(rebuilt.decode(z), vae.decode(z))


def test_diffusers_kl_from_local_dir(tmp_path):
    from diffusers import AutoencoderKL

    kl = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                       up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=16, norm_num_groups=8, sample_size=32,
                       scaling_factor=1.5305, shift_factor=0.0609)
    kl.save_pretrained(tmp_path / "vae")
    ae = DiffusersKL(tmp_path / "vae")
    assert (ae.scale, ae.shift, ae.latent_channels, ae.downsample) == (1.5305, 0.0609, 16, 2)
    x = torch.rand(2, 3, 16, 16)
    z = ae.encode(x)
    assert z.shape == (2, 16, 8, 8)
    raw = kl.encode(x * 2 - 1).latent_dist.mean
    assert torch.allclose(z, (raw - 0.0609) * 1.5305, atol=1e-5)
    assert ae.decode(z).shape == x.shape
    cache = cache_latents(ae, x, tmp_path / "lat.safetensors")
    assert torch.equal(load_file(tmp_path / "lat.safetensors")["latents"], cache)


def test_missing_vae_dir_names_expected_files(tmp_path):
    with pytest.raises(UsageError, match="diffusion_pytorch_model.safetensors"):
        DiffusersKL(tmp_path / "missing")
    with pytest.raises(UsageError, match="unknown autoencoder"):
        autoencoder_from_config({"type": "vqgan"})


def test_train_vae_cli_latent_channels_and_its_ceiling(tmp_path, capsys):
    import json

    from proxt2i.cli import main

    out = tmp_path / "vae8"
    assert main(["train-vae", "--out", str(out), "--steps", "2", "--size", "32", "--batch", "4", "--latent-channels", "8"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["autoencoder"]["latent_channels"] == 8 and "--latent-channels 8" in config["recipe"]["command"]
    capsys.readouterr()
    assert main(["evaluator", "check", "--autoencoder", str(out), "--num", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == 32 and set(result["alignment_ceiling"]) == {"heldin", "heldout"}
    assert main(["train-vae", "--out", str(tmp_path / "bad"), "--latent-channels", "0"]) == 2
    assert not (tmp_path / "bad").exists()
