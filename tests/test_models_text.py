import json

import pytest
import torch

from proxt2i.errors import UsageError
from proxt2i.models.text import EmbeddedTextEncoder, load_text_encoder, text_encoder_from_config

WORDS = ["a", "smiling", "woman", "with", "red", "hair", "glasses", "the", "of", "photo"]


def save_word_tokenizer(path, pad="[PAD]", extra=("[BOS]", "[EOS]")):
    """A tokenizer built offline (tokenizers WordLevel) saved in the layout AutoTokenizer reads."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {pad: 0, "[UNK]": 1, **{t: i + 2 for i, t in enumerate(extra)}}
    vocab.update({w: i + len(vocab) for i, w in enumerate(WORDS)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token="[UNK]").save_pretrained(path)
    return len(vocab)


def make_clip(path):
    from transformers import CLIPTextConfig, CLIPTextModel

    n = save_word_tokenizer(path)
    cfg = CLIPTextConfig(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         max_position_embeddings=16, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    CLIPTextModel(cfg).save_pretrained(path)


def make_t5(path):
    from transformers import T5Config, T5EncoderModel

    n = save_word_tokenizer(path)
    cfg = T5Config(vocab_size=n, d_model=24, d_kv=8, d_ff=48, num_layers=2, num_heads=3, pad_token_id=0)
    T5EncoderModel(cfg).save_pretrained(path)


def test_embedded_encoder_shapes_mask_and_unknown_words():
    enc = EmbeddedTextEncoder(WORDS, dim=16, depth=1, heads=2, max_length=8)
    e = enc.encode(["a smiling woman", "", "zebra glasses"])
    assert e.tokens.shape == (3, 8, 16) and e.mask.shape == (3, 8) and e.pooled.shape == (3, 16)
    assert e.mask.sum(1).tolist() == [3, 0, 2]
    assert torch.isfinite(e.tokens).all() and torch.isfinite(e.pooled).all()
    with pytest.warns(UserWarning, match="truncated"):
        enc.encode(["a " * 20])
    rebuilt = text_encoder_from_config(enc.config())
    rebuilt.load_state_dict(enc.state_dict())
    assert torch.equal(rebuilt.encode(["red hair"]).pooled, enc.encode(["red hair"]).pooled)


def test_clip_t5_and_concat_load_from_local_dirs(tmp_path):
    make_clip(tmp_path / "clip")
    make_t5(tmp_path / "t5")
    clip = load_text_encoder(f"clip:{tmp_path / 'clip'}")
    e = clip.encode(["a smiling woman", "red hair"])
    assert e.tokens.shape[:2] == e.mask.shape and e.tokens.shape[-1] == 32 and e.pooled.shape == (2, 32)
    t5 = load_text_encoder(f"t5:{tmp_path / 't5'}")
    assert t5.encode(["photo of a woman"]).tokens.shape[-1] == 24
    both = load_text_encoder(f"clip:{tmp_path / 'clip'}+t5:{tmp_path / 't5'}")
    e2 = both.encode(["a smiling woman"])
    assert e2.tokens.shape[1] == clip.max_length + t5.max_length and e2.tokens.shape[-1] == 32
    assert text_encoder_from_config(json.loads(json.dumps(both.config()))).dim == 32
    # a token limit for every Hugging Face part, and weights loaded in the dtype asked for
    short = load_text_encoder(f"clip:{tmp_path / 'clip'}+t5:{tmp_path / 't5'}", max_length=5, dtype=torch.bfloat16)
    assert short.max_length == 10 and short.first.model.dtype is torch.bfloat16 and short.second.model.dtype is torch.bfloat16
    rebuilt = text_encoder_from_config(json.loads(json.dumps(short.config())), torch.bfloat16)
    assert rebuilt.max_length == 10 and rebuilt.second.model.dtype is torch.bfloat16
    eh = short.encode(["a smiling woman"])
    assert eh.tokens.shape[1] == 10 and torch.isfinite(eh.tokens.float()).all()


def test_missing_or_bad_dirs(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_text_encoder(f"clip:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="config.json"):
        load_text_encoder(f"t5:{tmp_path / 'empty'}")
    with pytest.raises(UsageError, match="not understood"):
        load_text_encoder("bert:/x")
