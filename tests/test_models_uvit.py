import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.models import UVIT_PRESETS, UViT, UViTConfig, count_parameters

CFG = UViTConfig(in_channels=4, image_size=8, patch_size=2, width=32, depth=3, heads=2, text_dim=16, max_text_len=6)


def inputs(b=3, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 4, 8, 8, generator=g), torch.rand(b, generator=g), torch.rand(b, generator=g) + 1e-3,
            torch.randn(b, L, 16, generator=g), torch.ones(b, L, dtype=torch.bool), torch.randn(b, 16, generator=g))


def randomise_head(model):
    torch.nn.init.normal_(model.final_conv.weight, std=0.1)


def test_zero_init_gives_identity_prox():
    y, t, lam, tok, mask, pooled = inputs()
    assert torch.equal(UViT(CFG)(y, t, lam, tok, mask, pooled), torch.zeros_like(y))


@pytest.mark.parametrize("cfg", [CFG, UViTConfig(in_channels=3, image_size=16, patch_size=4, width=32, depth=5, heads=4, text_dim=16, max_text_len=6, use_lam=False)])
def test_shapes_and_batch_independence(cfg):
    torch.manual_seed(0)
    m = UViT(cfg).eval()
    randomise_head(m)
    g = torch.Generator().manual_seed(1)
    y = torch.randn(4, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    t, lam = torch.rand(4, generator=g), torch.rand(4, generator=g) + 0.01
    tok, mask, pooled = torch.randn(4, 6, 16, generator=g), torch.ones(4, 6, dtype=torch.bool), torch.randn(4, 16, generator=g)
    out = m(y, t, lam, tok, mask, pooled)
    assert out.shape == y.shape
    one = m(y[1:2], t[1:2], lam[1:2], tok[1:2], mask[1:2], pooled[1:2])
    assert torch.allclose(out[1:2], one, atol=1e-5)


def test_preconditioning_scales_input_and_output():
    """ProxPrecond: the backbone sees y / sqrt(1 + lam) and eps = sqrt(lam / (1 - alpha_t + lam)) * backbone,
    on the schedule it is given."""
    from proxt2i.models.precond import ProxPrecond, prox_output_scale
    from proxt2i.schedule import VPSchedule

    y, t, lam, tok, mask, pooled = inputs()
    plain = UViT(CFG)
    torch.nn.init.constant_(plain.final_conv.bias, 1.0)
    precond = ProxPrecond(VPSchedule())
    scale = prox_output_scale(t, lam, VPSchedule())
    alpha = VPSchedule().alpha(t.double())
    assert torch.allclose(scale.double(), torch.sqrt(lam.double() / (1 - alpha + lam.double())), atol=1e-6)
    assert torch.allclose(precond(plain, y, t, lam, tok, mask, pooled), scale.view(-1, 1, 1, 1).expand_as(y), atol=1e-6)
    randomise_head(plain)
    y_scaled = y / torch.sqrt(1 + lam).view(-1, 1, 1, 1)
    expected = plain(y_scaled, t, lam, tok, mask, pooled) * scale.view(-1, 1, 1, 1)
    assert torch.allclose(precond(plain, y, t, lam, tok, mask, pooled), expected, atol=1e-5)
    assert torch.allclose(prox_output_scale(torch.zeros(1), torch.tensor([0.3]), VPSchedule()), torch.ones(1))  # t = 0: y's noise is all prox noise
    other = ProxPrecond(VPSchedule(beta_max=10.0))  # the schedule is the wrapper's, not a default inside the backbone
    assert not torch.allclose(other(plain, y, t, lam, tok, mask, pooled), expected)


def test_padded_text_tokens_are_ignored_and_real_ones_matter():
    torch.manual_seed(0)
    m = UViT(CFG).eval()
    randomise_head(m)
    y, t, lam, tok, mask, pooled = inputs()
    mask[:, 3:] = False
    tok2 = tok.clone()
    tok2[:, 3:] = 100.0  # garbage in padded slots
    a, b = m(y, t, lam, tok, mask, pooled), m(y, t, lam, tok2, mask, pooled)
    assert torch.allclose(a, b, atol=1e-5)
    tok3 = tok.clone()
    tok3[:, 0] += 1.0
    assert not torch.allclose(a, m(y, t, lam, tok3, mask, pooled), atol=1e-4)
    assert not torch.allclose(a, m(y, t, lam * 10, tok, mask, pooled), atol=1e-4)  # lam is seen


def test_score_mode_has_no_lam_token():
    cfg = UViTConfig(**{**CFG.to_dict(), "use_lam": False})
    m = UViT(cfg)
    assert m.lam_embed is None and count_parameters(m) < count_parameters(UViT(CFG))


def test_config_validation_and_presets():
    with pytest.raises(UsageError, match=r"unknown config keys \['uvit.wdth'\] for uvit"):
        UViTConfig.from_dict({"width": 8, "wdth": 3})
    with pytest.raises(UsageError, match="odd"):
        UViTConfig(depth=4)
    with pytest.raises(UsageError, match="shape"):
        UViT(CFG)(torch.zeros(1, 4, 6, 6), *inputs(1)[1:])
    with torch.device("meta"):
        assert 450e6 < count_parameters(UViT(UVIT_PRESETS["paper"])) < 560e6
        assert count_parameters(UViT(UVIT_PRESETS["tiny"])) < 5e6


def test_info_cli(capsys):
    import json

    from proxt2i.cli import main

    assert main(["info", "--json"]) == 0
    rows = {r["preset"]: r["parameters"] for r in json.loads(capsys.readouterr().out)["uvit_presets"]}
    assert set(rows) >= {"tiny", "paper"} and rows["tiny"] < rows["paper"]
