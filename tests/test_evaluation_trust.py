"""Can the shipped evaluator be trusted? On fresh renders (a seed training never saw) it must read
the prompts back and sit near the reference; with shuffled prompts alignment must collapse; blur
and noise must move the Frechet distance up monotonically. Plus the rewards' contracts."""

import pytest
import torch

from proxt2i.evaluation import alignment_reward, clip_similarity, evaluate_images, load_evaluator
from proxt2i.evaluation.check import BLUR_SIGMAS, NOISE_STDS, shuffled, trust_check
from proxt2i.evaluation.features import render, renderer_fingerprint


def test_shipped_evaluator_matches_the_current_renderer():
    """Fails when SynthFaces rendering changed since the evaluator was built: rebuild it
    (docs/evaluation.md) so that its reference and accuracies describe today's renders."""
    assert load_evaluator().config["reference"]["fingerprint"] == renderer_fingerprint()


@pytest.fixture(scope="module")
def trust():
    return trust_check(load_evaluator(), num=192)


def test_fresh_renders_align_and_sit_near_the_reference(trust):
    assert trust["fresh"]["alignment"] >= 0.95
    assert trust["fresh"]["fd"] < 0.25 * trust["blur_fd"][str(BLUR_SIGMAS[-1])]
    assert trust["fresh"]["fd"] < 0.25 * trust["noise_fd"][str(NOISE_STDS[-1])]


def test_shuffled_prompts_collapse_alignment_and_clip_score(trust):
    assert trust["shuffled_prompts"]["alignment"] < 0.6
    assert trust["shuffled_prompts"]["alignment"] < trust["fresh"]["alignment"] - 0.3
    assert trust["shuffled_prompts"]["clip_score"] < trust["fresh"]["clip_score"]


@pytest.mark.parametrize("corruption", ["blur_fd", "noise_fd"])
def test_fd_rises_monotonically_with_corruption(trust, corruption):
    fds = [trust["fresh"]["fd"]] + list(trust[corruption].values())
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_rewards_are_differentiable_and_prefer_matched_prompts():
    ev = load_evaluator()
    images, _, captions = render(16, 5, 64)
    x = ev.prepare(images).requires_grad_(True)
    r = alignment_reward(x, captions, ev)
    assert r.shape == (16,) and (r <= 0).all()
    r.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert r.mean() > alignment_reward(x.detach(), shuffled(captions), ev).mean()
    with torch.no_grad():
        assert clip_similarity(x, captions, ev).mean() > clip_similarity(x, shuffled(captions), ev).mean()


def test_text_encoder_shapes():
    ev = load_evaluator()
    tokens, mask, pooled = ev.encode_text(["a smiling person with glasses", ""])
    assert tokens.shape[:2] == mask.shape and tokens.shape[0] == 2 and pooled.shape == (2, tokens.shape[2])
    assert mask[1].sum() == 1  # <bos> only


def test_evaluate_images_accepts_uint8_and_other_sizes():
    images, _, captions = render(8, 6, 32)
    out = evaluate_images(images, captions)
    assert out["n"] == 8 and set(out["alignment_per_family"]) == set(load_evaluator().families)


class _Blank(torch.nn.Module):
    """An autoencoder that forgets everything: every image decodes to mid-grey."""

    def encode(self, x, generator=None):
        return x[:, :1, ::4, ::4] * 0

    def decode(self, z):
        return torch.full((z.shape[0], 3, z.shape[2] * 4, z.shape[3] * 4), 0.5)


def test_autoencoder_ceiling_separates_lossless_from_blank():
    from proxt2i.evaluation.check import autoencoder_ceiling
    from proxt2i.models.autoencoder import IdentityAutoencoder

    ev = load_evaluator()
    lossless = autoencoder_ceiling(ev, IdentityAutoencoder(), size=32, num=48)
    blank = autoencoder_ceiling(ev, _Blank(), size=32, num=48)
    assert lossless["accuracy_autoencoder"] == lossless["accuracy_direct"]
    assert min(lossless["alignment_ceiling"].values()) >= 0.95
    assert max(blank["alignment_ceiling"].values()) < 0.6


def test_autoencoder_ceiling_cli_on_the_shipped_model(capsys):
    import json

    from proxt2i.cli import main

    assert main(["evaluator", "check", "--autoencoder", "synthfaces-prox", "--num", "32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == 32 and set(result["alignment_ceiling"]) == {"heldin", "heldout", "paraphrase"}
    assert all(0 < v <= 1 for v in result["alignment_ceiling"].values())
    assert main(["evaluator", "check", "--autoencoder", "no-such-model"]) != 0
