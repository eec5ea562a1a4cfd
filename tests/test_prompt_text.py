"""What the text path says about prompts: one warning line per prompt with unseen words, prompt files
with their line numbers, the paraphrase set on the command line, and fine-tuning onto a new vocabulary."""

import json
import warnings

import torch
from safetensors.torch import load_file

from proxt2i.cli import main
from proxt2i.errors import UnseenWordsWarning
from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.training.presets import resolve_config


def test_pipeline_warns_once_per_prompt_naming_unseen_words_and_still_generates(model_dir):
    pipe = ProxT2IPipeline.from_pretrained(model_dir)
    assert pipe.net.text_encoder.tokenizer_kind == "pieces"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = pipe(["a smiling astronaut", "a smiling astronaut", "a redhaired man", "a smiling man", "zorp blick"],
                      num_steps=1, output_type="tensor")
    assert images.shape[0] == 5 and torch.isfinite(images).all()
    messages = [str(w.message) for w in caught if issubclass(w.category, UnseenWordsWarning)]
    assert len(messages) == 3, messages  # one per distinct prompt that has unseen words
    assert messages[0].endswith(": astronaut") and "redhaired (read as red haired)" in messages[1]
    assert messages[2].endswith(": zorp, blick")  # only unknown words: still generated


def test_generate_prints_exactly_one_warning_line_per_prompt(model_dir, tmp_path, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_bytes("\ufeffa smiling person\r\n\r\na smiling astronaut on mars\r\n  \r\na gloomy guy".encode())
    out = tmp_path / "out"
    assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--num", "2", "--steps", "1", "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert err == ["proxt2i: warning: prompt 'a smiling astronaut on mars' has words the model never saw in training, "
                   "generating anyway: astronaut, mars"]
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["a smiling person"] * 2 + ["a smiling astronaut on mars"] * 2 + ["a gloomy guy"] * 2


def test_a_prompt_file_line_past_the_limit_is_refused_with_its_number(model_dir, tmp_path, capsys):
    prompts = tmp_path / "long.txt"
    prompts.write_text("a smiling person\n\n" + "a" * 2001 + "\n")
    assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 3: prompt of 2001 characters is too long" in err[0]
    assert not (tmp_path / "o").exists()


def test_data_prompts_paraphrase(capsys):
    assert main(["data", "prompts", "paraphrase"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 256 and len(set(lines)) == 256
    assert main(["data", "prompts", "paraphrases"]) == 2


def test_evaluate_still_refuses_words_its_parser_cannot_read(model_dir, tmp_path, capsys):
    out = tmp_path / "gen"
    prompts = tmp_path / "p.txt"
    prompts.write_text("a smiling astronaut\n")
    assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--num", "1", "--steps", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "astronaut" in err[0]


def test_init_onto_a_new_vocabulary_carries_every_shared_word_over(model_dir, tmp_path):
    """A model with another vocabulary (here: an older word-level folder) initialises a run word by word."""
    from proxt2i.models.io import load_model_folder
    from proxt2i.training.factories import build_network, init_from_model, remapped_text_weights

    old = load_model_folder(model_dir)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = cfg["text_encoder"]["vocab"]
    cfg["text_encoder"]["vocab"] = [w for w in vocab if w != "haired"] + ["red-haired", "long-haired"]
    del cfg["text_encoder"]["tokenizer"]
    (legacy / "config.json").write_text(json.dumps(cfg))
    for f in model_dir.iterdir():
        if f.name not in ("config.json", "text_encoder.safetensors"):
            (legacy / f.name).write_bytes(f.read_bytes())
    text = load_file(model_dir / "text_encoder.safetensors")
    keep = [0, 1] + [i + 2 for i, w in enumerate(vocab) if w != "haired"]
    rows = torch.randn(2, text["embed.weight"].shape[1], dtype=text["embed.weight"].dtype)
    text["embed.weight"] = torch.cat([text["embed.weight"][keep], rows])
    from safetensors.torch import save_file

    save_file(text, legacy / "text_encoder.safetensors")

    source = load_model_folder(legacy).net.text_encoder
    assert source.tokenizer_kind == "words"
    net = build_network(resolve_config("test-tiny", []), old.autoencoder.latent_channels, cfg["uvit"]["image_size"], vocab)
    state, counts = remapped_text_weights(net.text_encoder, source)
    assert counts == {"kept": len(vocab) - 1, "from_synonyms": 0, "from_parts": 1, "new": 0}
    hair = state["embed.weight"][net.text_encoder.index["haired"]]
    parts = rows.float()
    assert torch.allclose(torch.nn.functional.normalize(hair, dim=0), torch.nn.functional.normalize(parts.mean(0), dim=0), atol=1e-6)
    assert torch.isclose(hair.norm(), parts.norm(dim=1).mean())  # red-haired and long-haired's direction, at their length
    a = net.text_encoder.index["a"]
    assert torch.equal(state["embed.weight"][a], source.embed.weight[source.index["a"]].float())
    recipe = init_from_model(net, str(legacy))
    assert recipe["text_vocabulary_remap"]["from_tokenizer"] == "words" and recipe["text_vocabulary_remap"]["from_parts"] == 1


def _without_words(model_dir, tmp_path, dropped):
    """A copy of model_dir whose text vocabulary lacks `dropped` (their rows removed)."""
    src = tmp_path / "without"
    src.mkdir()
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab = cfg["text_encoder"]["vocab"]
    cfg["text_encoder"]["vocab"] = [w for w in vocab if w not in dropped]
    (src / "config.json").write_text(json.dumps(cfg))
    for f in model_dir.iterdir():
        if f.name not in ("config.json", "text_encoder.safetensors"):
            (src / f.name).write_bytes(f.read_bytes())
    text = load_file(model_dir / "text_encoder.safetensors")
    text["embed.weight"] = text["embed.weight"][[0, 1] + [i + 2 for i, w in enumerate(vocab) if w not in dropped]]
    from safetensors.torch import save_file

    save_file(text, src / "text_encoder.safetensors")
    return src, vocab


def test_a_new_word_starts_as_the_words_that_say_the_same_thing(model_dir, tmp_path):
    """Carried onto a vocabulary with new words, "hairband" starts as "headband" and "toque" as "beanie",
    not as one shared mean row (the stage-5 defect: docs/models.md, "Stage 8")."""
    from proxt2i.data.captions import same_meaning_words
    from proxt2i.models.io import load_model_folder
    from proxt2i.training.factories import build_network, remapped_text_weights

    src, vocab = _without_words(model_dir, tmp_path, ("hairband", "toque", "the"))
    source = load_model_folder(src).net.text_encoder
    net = build_network(resolve_config("test-tiny", []), 4, 8, vocab)
    state, counts = remapped_text_weights(net.text_encoder, source, same_meaning_words)
    assert counts == {"kept": len(vocab) - 3, "from_synonyms": 2, "from_parts": 0, "new": 1}  # "the" is glue: no synonyms
    rows, index = state["embed.weight"], net.text_encoder.index
    old = source.embed.weight.float()
    assert torch.allclose(rows[index["hairband"]], old[source.index["headband"]])
    assert torch.allclose(rows[index["toque"]], old[source.index["beanie"]])
    assert not torch.allclose(rows[index["toque"]], rows[index["the"]])
    word_norms = old[2:].norm(dim=1)
    assert 0.5 * word_norms.mean() < rows[index["the"]].norm() < 2 * word_norms.mean()  # its own row at the old scale, not a short mean
    again, _ = remapped_text_weights(net.text_encoder, source, same_meaning_words)
    assert torch.equal(again["embed.weight"], rows)  # seeded by the word: the same carry-over twice


def test_reanchor_remakes_only_the_rows_that_never_grew(model_dir, tmp_path):
    """text_reanchor=true: rows far below the median norm (the carried-over mean) start again from grown
    same-meaning words; every other row, and a small row without such words, is left as it was."""
    from proxt2i.data.captions import same_meaning_words
    from proxt2i.models.io import load_model_folder
    from proxt2i.training.factories import reanchored_text_rows

    enc = load_model_folder(model_dir).net.text_encoder.float()
    weight, index = enc.embed.weight, enc.index
    with torch.no_grad():
        shared = weight[2:].mean(0)  # norm far below the random rows'
        for w in ("toque", "hairband", "the"):
            weight[index[w]] = shared
    before = weight.detach().clone()
    assert reanchored_text_rows(enc, same_meaning_words) == ["hairband", "toque"]
    assert torch.allclose(weight[index["toque"]], before[index["beanie"]])
    assert torch.allclose(weight[index["hairband"]], before[index["headband"]])
    changed = (weight != before).any(1).nonzero().flatten().tolist()
    assert sorted(changed) == sorted([index["toque"], index["hairband"]])


def test_text_reanchor_needs_an_init_model():
    import pytest

    from proxt2i.errors import UsageError

    with pytest.raises(UsageError, match="set init=MODEL"):
        resolve_config("test-tiny", ["text_reanchor=true"])
