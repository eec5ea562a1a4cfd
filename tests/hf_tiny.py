"""Tiny random-weight Hugging Face parts shared by the tests that load real-model folders (rewards,
data curation): a word-level tokenizer, a preprocessor config, a reward MLP head, and a BLIP captioner."""

import json

import torch

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "person", "with", "red", "hair", "smiling", "cap", "wearing"]
TINY = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)


def word_tokenizer(words=WORDS, bert_specials: bool = False):
    """A word-level tokenizer; bert_specials: encodings are [CLS] ... [SEP], as BERT's (BLIP's) are."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if bert_specials:
        tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", bos_token="[CLS]", eos_token="[SEP]")


def save_tokenizer(path):
    word_tokenizer().save_pretrained(path)


def save_preprocessor(path, resize=40, crop=32):
    (path / "preprocessor_config.json").write_text(json.dumps({
        "size": {"shortest_edge": resize}, "crop_size": {"height": crop, "width": crop}, "do_center_crop": True,
        "image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3]}))


def save_mlp(file, in_dim):
    from safetensors.torch import save_file

    from proxt2i.rewards import RewardMLP

    torch.manual_seed(1)
    save_file({k: v.contiguous() for k, v in RewardMLP(in_dim).state_dict().items()}, file)


def save_aesthetic(path):
    """The LAION aesthetic predictor's layout: CLIPVisionModelWithProjection + aesthetic_mlp.safetensors."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY, image_size=32, patch_size=8, projection_dim=8)).save_pretrained(path, safe_serialization=True)
    save_preprocessor(path)
    save_mlp(path / "aesthetic_mlp.safetensors", 8)
    return path


def save_blip_captioner(path):
    """A BlipForConditionalGeneration with its BlipProcessor, as AutoModelForImageTextToText loads them."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    torch.manual_seed(0)
    BlipForConditionalGeneration(BlipConfig(
        text_config=dict(TINY, vocab_size=len(WORDS), max_position_embeddings=40, encoder_hidden_size=16, pad_token_id=0,
                         bos_token_id=2, eos_token_id=3, sep_token_id=3),
        vision_config=dict(TINY, image_size=32, patch_size=8), projection_dim=8, image_text_hidden_size=8)).save_pretrained(path, safe_serialization=True)
    BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=word_tokenizer(bert_specials=True)).save_pretrained(path)
    return path
