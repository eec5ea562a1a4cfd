"""Evaluator building blocks on random tensors: closed-form Frechet distances, precision / recall,
tokenizer, network shapes, preprocessing, InfoNCE."""

import numpy as np
import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.evaluation.contrastive import ContrastiveConfig, ContrastiveModel, info_nce_loss
from proxt2i.evaluation.preprocess import to_model_input
from proxt2i.evaluation.recogniser import Recogniser, RecogniserConfig
from proxt2i.evaluation.stats import GaussianStats, frechet_distance, gaussian_stats, precision_recall
from proxt2i.models.tokenizer import Tokenizer, build_vocab
from proxt2i.text_split import caption_words


def test_frechet_identical_stats_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    s = gaussian_stats(x)
    assert frechet_distance(s, s) == pytest.approx(0.0, abs=1e-8)


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(GaussianStats(m1, np.diag(v1), 2), GaussianStats(m2, np.diag(v2), 2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_is_symmetric_for_full_covariances():
    rng = np.random.default_rng(2)
    a, b = gaussian_stats(rng.normal(size=(300, 6))), gaussian_stats(rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)))
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


def test_precision_recall_identical_and_disjoint_sets():
    x = torch.randn(64, 8)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    p, r = precision_recall(x, x + 100.0)
    assert p == 0.0 and r == 0.0


def test_within_prompt_diversity_groups_by_prompt():
    from proxt2i.evaluation.metrics import within_prompt_diversity

    f = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    # "a": one pair 5 apart; "b": identical images (collapsed); "c": a single image, left out
    assert within_prompt_diversity(f, ["a", "a", "b", "b", "c"]) == pytest.approx((5.0 + 0.0) / 2)
    three = torch.tensor([[0.0], [1.0], [3.0]])  # pairwise 1, 3, 2 -> mean 2
    assert within_prompt_diversity(three, ["x"] * 3) == pytest.approx(2.0)
    assert within_prompt_diversity(f, list("vwxyz")) is None


def test_tokenizer_words_unknown_and_padding():
    vocab = build_vocab(["A smiling man, with glasses.", "a sad woman"])
    tok = Tokenizer(vocab, max_len=6)
    assert caption_words("A smiling, bald man.") == ["a", "smiling", "bald", "man"]
    ids, mask = tok(["a smiling zebra", ""])
    assert ids.shape == (2, 6) and mask.dtype == torch.bool
    assert ids[0, :4].tolist() == [2, vocab.index("a"), vocab.index("smiling"), 1]  # <bos> ... <unk>
    assert mask.sum(1).tolist() == [4, 1]
    assert tok.unknown_words("a smiling zebra") == ["zebra"]


def test_recogniser_and_contrastive_shapes():
    fams = (("hair", ("black", "blond", "red")), ("eyes", ("blue", "green")))
    rec = Recogniser(RecogniserConfig(families=fams, widths=(8, 16), feature_dim=32))
    x = torch.rand(3, 3, 64, 64)
    feats, logits = rec(x)
    assert feats.shape == (3, 16)  # stage means, widths[1:]
    assert rec.penultimate(x).shape == (3, 32)
    assert logits["hair"].shape == (3, 3) and logits["eyes"].shape == (3, 2)
    cfg = ContrastiveConfig(vocab=build_vocab(["a b c"]), max_len=8, widths=(8, 16), image_dim=32, text_dim=16, text_heads=2, embed_dim=8)
    model = ContrastiveModel(cfg)
    ids, mask = cfg.tokenizer()(["a b", "c"])
    tokens, pooled = model.encode_text(ids, mask)
    assert tokens.shape == (2, 8, 16) and pooled.shape == (2, 16)
    assert torch.all(tokens[~mask] == 0)
    img = model.embed_images(torch.rand(2, 3, 64, 64))
    assert torch.allclose(img.norm(dim=-1), torch.ones(2))
    loss = info_nce_loss(img, model.embed_text(ids, mask), model.logit_scale)
    assert loss.shape == (2,) and torch.isfinite(loss).all()


def test_info_nce_prefers_matched_pairs():
    e = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(np.log(10.0))
    assert info_nce_loss(e, e, scale).mean() < info_nce_loss(e, e.roll(1, 0), scale).mean()


def test_preprocess_accepts_uint8_and_float_and_rejects_bad_sizes():
    u8 = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    x = to_model_input(u8, 64)
    assert x.shape == (2, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert to_model_input(torch.rand(2, 3, 128, 128), 64).shape == (2, 3, 64, 64)
    with pytest.raises(UsageError):
        to_model_input(torch.rand(2, 3, 16, 16), 64)
    with pytest.raises(UsageError):
        to_model_input(torch.rand(2, 3, 64, 48), 64)
