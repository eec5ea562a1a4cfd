"""Rewards: the spec parser, the weighted sum, the embedded rewards, and every real reward loaded from
a folder holding a tiny random-weight model of the real class (saved with save_pretrained)."""

import json

import pytest
import torch

from hf_tiny import TINY, WORDS, save_aesthetic, save_mlp, save_preprocessor, save_tokenizer
from proxt2i.errors import UsageError
from proxt2i.rewards import REWARDS, combine_rewards, image_preprocessing, parse_reward_spec, to_model_pixels

PROMPTS = ["a smiling person with red hair", "a person wearing a cap"]


def _images(n=2, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    from transformers import BlipConfig, BlipForImageTextRetrieval, CLIPConfig, CLIPModel

    root = tmp_path_factory.mktemp("rewards")
    torch.manual_seed(0)
    clip_dir = root / "clip"
    CLIPModel(CLIPConfig(text_config=dict(TINY, vocab_size=len(WORDS), max_position_embeddings=16, pad_token_id=0, bos_token_id=2, eos_token_id=3),
                         vision_config=dict(TINY, image_size=32, patch_size=8), projection_dim=8)).save_pretrained(clip_dir)
    save_tokenizer(clip_dir)
    save_preprocessor(clip_dir)
    aes_dir = save_aesthetic(root / "aesthetic")
    ir_dir = root / "imagereward"
    BlipForImageTextRetrieval(BlipConfig(
        text_config=dict(TINY, vocab_size=len(WORDS), max_position_embeddings=40, encoder_hidden_size=16, pad_token_id=0),
        vision_config=dict(TINY, image_size=32, patch_size=8), projection_dim=8, image_text_hidden_size=8)).save_pretrained(ir_dir)
    save_tokenizer(ir_dir)
    save_preprocessor(ir_dir, resize=32, crop=32)
    save_mlp(ir_dir / "imagereward_mlp.safetensors", 16)
    return {"clip": clip_dir, "aesthetic": aes_dir, "imagereward": ir_dir}


# ---------------------------------------------------------------------------------------------- spec
def test_parse_reward_spec():
    assert parse_reward_spec("alignment=1.0,clip=0.5") == {"alignment": 1.0, "clip": 0.5}
    assert parse_reward_spec("brightness") == {"brightness": 1.0}
    assert parse_reward_spec("pickscore:/m/ps=2, aesthetic:/m/aes") == {"pickscore:/m/ps": 2.0, "aesthetic:/m/aes": 1.0}
    for bad, msg in [("nonsense", "unknown reward 'nonsense'"), ("clip=x", "bad weight"), ("", "empty reward"),
                     ("clip,clip", "given twice"), ("=1", "bad reward item"), ("clip=inf", "finite"),
                     ("clip=-0.5", "must be >= 0")]:
        with pytest.raises(UsageError, match=msg):
            parse_reward_spec(bad)


def test_embedded_rewards_and_weighted_sum():
    images = _images()
    combined = combine_rewards("brightness=2,alignment=0.5,alignment-acc,alignment-prob,clip")
    terms = combined.terms(images, PROMPTS)
    assert set(terms) == {"brightness", "alignment", "alignment-acc", "alignment-prob", "clip"}
    assert all(v.shape == (2,) for v in terms.values())
    assert torch.allclose(terms["brightness"], images.mean((1, 2, 3)))
    assert float(terms["alignment"].max()) <= 0 and 0 <= float(terms["alignment-acc"].min()) <= float(terms["alignment-acc"].max()) <= 1
    assert float(terms["clip"].abs().max()) <= 1
    assert 0 <= float(terms["alignment-prob"].min()) <= float(terms["alignment-prob"].max()) <= 1
    assert (terms["alignment-prob"] >= terms["alignment"].exp() - 1e-6).all()  # AM-GM: mean p >= exp(mean log p)
    expected = (2 * terms["brightness"] + 0.5 * terms["alignment"] + terms["alignment-acc"] + terms["alignment-prob"]
                + terms["clip"])
    assert torch.allclose(combined(images, PROMPTS), expected, atol=1e-6)
    # the soft alignment is differentiable in the images
    x = images.clone().requires_grad_(True)
    REWARDS["alignment"](None)(x, PROMPTS).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_reward_input_checks():
    with pytest.raises(UsageError, match="2 images but 3 prompts"):
        combine_rewards("brightness")(_images(), PROMPTS + ["x"])
    with pytest.raises(UsageError, match=r"float images \[B, 3, H, W\]"):
        combine_rewards("brightness")(torch.zeros(2, 32, 32, 3, dtype=torch.uint8), PROMPTS)
    with pytest.raises(UsageError, match="takes no folder"):
        combine_rewards("clip:/some/dir")


# ---------------------------------------------------------------------------------------------- preprocessing
def test_preprocessing_follows_the_processor_config(model_dirs):
    prep = image_preprocessing(model_dirs["clip"], 224)
    assert prep["resize"] == 40 and prep["crop"] == 32 and prep["mean"] == (0.5, 0.4, 0.3)
    x = to_model_pixels(torch.full((1, 3, 20, 20), 0.5), prep)
    assert x.shape == (1, 3, 32, 32)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([0.0, 0.4, 2 / 3]), atol=1e-5)
    fallback = image_preprocessing(model_dirs["clip"] / "nowhere", 224)  # no preprocessor_config.json
    assert fallback["resize"] == fallback["crop"] == 224


# ---------------------------------------------------------------------------------------------- real rewards
def test_clip_family_rewards_load_and_score(model_dirs):
    from transformers import AutoTokenizer, CLIPModel

    d = model_dirs["clip"]
    images = _images()
    pick = combine_rewards({f"pickscore:{d}": 1.0})(images, PROMPTS)
    cos = combine_rewards(f"hpsv2:{d}")(images, PROMPTS)
    clipscore = combine_rewards(f"clipscore:{d}")(images, PROMPTS)
    assert pick.shape == cos.shape == clipscore.shape == (2,)
    model = CLIPModel.from_pretrained(d).eval()
    assert torch.allclose(pick, model.logit_scale.exp() * cos, atol=1e-5)
    assert torch.allclose(clipscore, 100 * cos.clamp_min(0), atol=1e-4)
    tok = AutoTokenizer.from_pretrained(d)(PROMPTS, padding=True, return_tensors="pt")
    with torch.no_grad():  # PickScore = the diagonal of CLIP's image-text logits
        logits = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                       pixel_values=to_model_pixels(images, image_preprocessing(d, 32))).logits_per_image
    assert torch.allclose(pick, logits.diagonal(), atol=1e-4)


def test_aesthetic_reward_loads_and_scores(model_dirs):
    from transformers import CLIPVisionModelWithProjection

    d = model_dirs["aesthetic"]
    images = _images(seed=3)
    score = combine_rewards(f"aesthetic:{d}")(images, PROMPTS)
    vision = CLIPVisionModelWithProjection.from_pretrained(d).eval()
    from proxt2i.rewards import load_reward_mlp

    mlp = load_reward_mlp(d / "aesthetic_mlp.safetensors")
    with torch.no_grad():
        emb = vision(pixel_values=to_model_pixels(images, image_preprocessing(d, 32))).image_embeds
        expected = mlp(torch.nn.functional.normalize(emb, dim=-1))[:, 0]
    assert score.shape == (2,) and torch.allclose(score, expected, atol=1e-5)
    assert not torch.equal(score[0], score[1])


def test_imagereward_loads_scores_and_standardises(model_dirs, tmp_path):
    import shutil

    d = model_dirs["imagereward"]
    images = _images(seed=4)
    score = combine_rewards(f"imagereward:{d}")(images, PROMPTS)
    assert score.shape == (2,) and torch.isfinite(score).all()
    raw_dir = tmp_path / "ir"
    shutil.copytree(d, raw_dir)
    (raw_dir / "imagereward.json").write_text(json.dumps({"mean": 0.0, "std": 1.0}))
    raw = combine_rewards(f"imagereward:{raw_dir}")(images, PROMPTS)
    assert torch.allclose(score, (raw - 0.16717362830052426) / 1.0333394966054072, atol=1e-5)
    other = combine_rewards(f"imagereward:{d}")(images, ["a person", "a person"])
    assert not torch.allclose(other, score)  # the prompt matters


def test_missing_or_incomplete_model_folders_give_clear_errors(model_dirs, tmp_path):
    with pytest.raises(UsageError, match=r"folder .*nope.* not found; expected pickscore:DIR with config.json"):
        combine_rewards(f"pickscore:{tmp_path / 'nope'}")
    with pytest.raises(UsageError, match="needs a local model folder"):
        combine_rewards("hpsv2")
    incomplete = tmp_path / "aes"
    incomplete.mkdir()
    for f in model_dirs["aesthetic"].iterdir():
        if f.name != "aesthetic_mlp.safetensors":
            (incomplete / f.name).write_bytes(f.read_bytes())
    with pytest.raises(UsageError, match="lacks aesthetic_mlp.safetensors"):
        combine_rewards(f"aesthetic:{incomplete}")
    (incomplete / "aesthetic_mlp.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UsageError, match="not a reward MLP head"):
        combine_rewards(f"aesthetic:{incomplete}")
    with pytest.raises(UsageError, match="lacks .*imagereward_mlp.safetensors"):
        combine_rewards(f"imagereward:{model_dirs['clip']}")
