"""Devices and dtypes: the names the commands take, refusals in one line, and the pipeline on them."""

import json

import pytest
import torch

from proxt2i import devices
from proxt2i.cli import main
from proxt2i.devices import resolve_device, resolve_dtype
from proxt2i.errors import UsageError
from proxt2i.pipeline import ProxT2IPipeline


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_device_names(no_cuda):
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu") and resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad, says in (("cuda", "no CUDA GPU"), ("cuda:1", "no CUDA GPU"), ("tpu", "unknown device"), ("gpu0", "unknown device"),
                      ("meta", "unsupported device")):
        with pytest.raises(UsageError, match=says):
            resolve_device(bad)


def test_dtype_names_and_a_dtype_the_device_cannot_run(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) is torch.float32
    assert resolve_dtype("bf16", cpu) is torch.bfloat16 and resolve_dtype("float16", cpu) is torch.float16
    assert resolve_dtype(torch.bfloat16, cpu) is torch.bfloat16
    for bad in ("int8", "float64", torch.int32):
        with pytest.raises(UsageError, match="dtype"):
            resolve_dtype(bad, cpu)
    # the probe's verdict is what decides: a device that fails it is refused with its reason
    monkeypatch.setattr(devices, "_cannot_run", lambda device, dtype: "no kernel" if "float16" in dtype else None)
    with pytest.raises(UsageError, match=r"float16 cannot run on cpu here \(no kernel\)"):
        resolve_dtype("float16", cpu)


def test_float32_on_the_cpu_is_bit_for_bit_and_bfloat16_close(model_dir):
    prompts = ["a smiling person with red hair", "a person with glasses"]
    ref = ProxT2IPipeline.from_pretrained(model_dir)(prompts, num_steps=3, output_type="tensor")
    same = ProxT2IPipeline.from_pretrained(model_dir, device="cpu", torch_dtype="float32")(prompts, num_steps=3, output_type="tensor")
    moved = ProxT2IPipeline.from_pretrained(model_dir).to("cpu", torch.float32)(prompts, num_steps=3, output_type="tensor")
    assert torch.equal(ref, same) and torch.equal(ref, moved)
    half = ProxT2IPipeline.from_pretrained(model_dir, torch_dtype="bfloat16")
    assert half.dtype is torch.bfloat16 and all(p.dtype is torch.bfloat16 for p in half.net.parameters())
    out = half(prompts, num_steps=3, output_type="tensor")
    assert out.dtype is torch.float32 and out.shape == ref.shape and not torch.equal(out, ref)
    assert (out - ref).abs().mean() < 0.05  # the same images up to bfloat16's precision
    back = half.to(dtype="float32")(prompts, num_steps=3, output_type="tensor")  # weights cast back: bf16-rounded, close
    assert back.dtype is torch.float32 and (back - ref).abs().mean() < 0.05


def test_compiled_network_gives_the_same_images(model_dir):
    prompts = ["a smiling person"]
    ref = ProxT2IPipeline.from_pretrained(model_dir)(prompts, num_steps=2, output_type="tensor")
    pipe = ProxT2IPipeline.from_pretrained(model_dir, compile=True)
    assert pipe.compiled
    assert torch.allclose(pipe(prompts, num_steps=2, output_type="tensor"), ref, atol=1e-4)


def test_commands_refuse_a_missing_device_or_bad_dtype_in_one_line(no_cuda, model_dir, tmp_path, capsys):
    out = tmp_path / "x"
    for argv in (["generate", "a smiling person", "--model", str(model_dir), "--device", "cuda", "--out", str(out)],
                 ["generate", "a smiling person", "--model", str(model_dir), "--dtype", "int4", "--out", str(out)],
                 ["evaluate", str(tmp_path), "--device", "cuda:0"],
                 ["bench", "--quick", "--device", "cuda", "--out", str(tmp_path / "b")],
                 ["finetune", "grpo", "--model", str(model_dir), "--device", "cuda", "--steps", "1", "--out", str(tmp_path / "f")],
                 ["finetune", "grpo", "--model", str(model_dir), "--dtype", "float64", "--steps", "1", "--out", str(tmp_path / "f")],
                 ["serve", "--model", str(model_dir), "--device", "cuda"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("proxt2i: error:") and ("device" in err[0] or "dtype" in err[0]), (argv, err)
    assert not out.exists() and not any(tmp_path.glob("x_*")) and not (tmp_path / "f").exists()


def test_generate_and_evaluate_in_bfloat16(model_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a smiling person\na person with glasses\n")
    for name, dtype in (("f32", "float32"), ("bf16", "bfloat16")):
        assert main(["generate", "--prompts", str(prompts), "--model", str(model_dir), "--num", "2", "--steps", "2",
                     "--device", "cpu", "--dtype", dtype, "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    scores = {}
    for name, dtype in (("f32", "float32"), ("bf16", "bfloat16")):
        assert main(["evaluate", str(tmp_path / name), "--json", "--reference-num", "16", "--dtype", dtype]) == 0
        scores[name] = json.loads(capsys.readouterr().out)
    assert scores["bf16"]["n"] == scores["f32"]["n"] == 4
    assert abs(scores["bf16"]["fd"] - scores["f32"]["fd"]) < 0.5 * scores["f32"]["fd"] + 0.1
