import pytest
import torch
from safetensors.torch import load_file

from proxt2i.errors import UsageError
from proxt2i.models.autoencoder import (
    DiffusersKL,
    IdentityAutoencoder,
    SmallVAE,
    autoencoder_from_config,
    calibrate_latent_scale,
    vae_loss,
)
from proxt2i.training.data import latent_cache


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
    cache = latent_cache(tmp_path / "lat.safetensors", ae, lambda: [x])
    assert torch.equal(load_file(tmp_path / "lat.safetensors")["latents"], cache)
    # loaded in bfloat16: its weights are, what it returns is float32 and close
    half = DiffusersKL(tmp_path / "vae", dtype=torch.bfloat16)
    assert half.vae.dtype is torch.bfloat16
    zh = half.encode(x)
    assert zh.dtype is torch.float32 and (zh - z).abs().mean() < 0.05 * z.abs().mean() + 1e-3
    assert half.decode(zh).dtype is torch.float32


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
    assert result["size"] == 32 and set(result["alignment_ceiling"]) == {"heldin", "heldout", "paraphrase"}
    assert main(["train-vae", "--out", str(tmp_path / "bad"), "--latent-channels", "0"]) == 2
    assert not (tmp_path / "bad").exists()


def test_decoder_only_fine_tune_keeps_the_latent_space_and_goes_into_a_model(tmp_path, capsys):
    import json

    from proxt2i.cli import main
    from proxt2i.pipeline import ProxT2IPipeline
    from proxt2i.shipped import shipped_vae_dir
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import train
    from proxt2i.training.vae import load_autoencoder_dir

    dec = tmp_path / "dec"
    assert main(["train-vae", "--init", "synthfaces-vae", "--decoder-only", "--steps", "3", "--batch", "4", "--lr", "1e-2", "--out", str(dec)]) == 0
    base, tuned = load_autoencoder_dir(shipped_vae_dir()), load_autoencoder_dir(dec)
    a, b = base.state_dict(), tuned.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("decoder."))  # encoder, scale and shift untouched
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    recipe = json.loads((dec / "config.json").read_text())["recipe"]
    assert recipe["decoder_only"] and "--init synthfaces-vae --decoder-only" in recipe["command"]
    assert recipe["init_recipe"] == json.loads((shipped_vae_dir() / "config.json").read_text())["recipe"]

    # a model trained in the shipped VAE's latent space gets the new decoder; its networks are untouched
    run = train(resolve_config("test-tiny", [f"out={tmp_path / 'run'}", "steps=1", "autoencoder=shipped"]), progress=False).parent
    capsys.readouterr()
    assert main(["export", str(run), "--autoencoder", str(dec), "--out", str(tmp_path / "m")]) == 0
    m = ProxT2IPipeline.from_pretrained(tmp_path / "m")
    assert m.config["recipe"]["autoencoder"]["recipe"]["decoder_only"]
    for name in ("uvit.safetensors", "text_encoder.safetensors"):
        x, y = load_file(run / "final" / name), load_file(tmp_path / "m" / name)
        assert all(torch.equal(x[k], y[k]) for k in x)
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(m.autoencoder.decode(z), tuned.half().float().decode(z), atol=1e-5)

    # a VAE with another encoder would change what the latents mean: refused, nothing written
    assert main(["train-vae", "--out", str(tmp_path / "other"), "--steps", "1", "--batch", "2"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "m"), "--autoencoder", str(tmp_path / "other"), "--out", str(tmp_path / "bad")]) == 2
    assert "encoder or latent scale differs" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["train-vae", "--decoder-only", "--out", str(tmp_path / "x")]) == 2
    assert "needs --init" in capsys.readouterr().err
