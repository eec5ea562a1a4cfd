import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests run many small ops: one thread is faster on a 2-core machine and keeps timings stable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny prox model trained for 2 steps on SynthFaces (word-piece tokenizer): its exported folder."""
    from proxt2i.training.presets import resolve_config
    from proxt2i.training.run import train

    out = tmp_path_factory.mktemp("model") / "run"
    train(resolve_config("test-tiny", [f"out={out}", "steps=2"]), progress=False)
    return out / "final"
