"""Training checkpoints: safetensors for every tensor (model, EMA, optimizer state), JSON for the rest.

Layout: OUT/checkpoints/step-XXXXXXXX/{model,ema,optimizer}.safetensors + state.json, written into a
temporary folder and renamed into place, so a killed run leaves only complete checkpoints.
Resume = rerun the same command: the newest complete checkpoint is loaded. A rerun whose settings differ
from the checkpoint's (check_resume_config) is refused: the run's recipe would claim settings no step used.
Only settings that do not change what a step computes may differ (RESUME_FREE), and `steps`, so that a
finished run can be extended (its learning-rate and loss schedules then stretch over the new total).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UsageError
from .ema import frozen_children


def trained_state(module, frozen: set[str]) -> dict:
    """module's state dict without the entries of its `frozen` children (frozen_children of the trained model)."""
    return {k: v.detach().contiguous() for k, v in module.state_dict().items() if k.split(".", 1)[0] not in frozen}


def load_trained_state(module, tensors: dict, frozen: set[str]) -> None:
    """Load a checkpoint's tensors; only entries of `frozen` children may be absent (older checkpoints hold them too)."""
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k.split(".", 1)[0] not in frozen]
    if missing or unexpected:
        raise RuntimeError(f"missing keys {missing[:3]}, unexpected keys {unexpected[:3]}")


def _flatten_optimizer(state: dict) -> tuple[dict, dict]:
    tensors, meta = {}, {"param_groups": state["param_groups"], "scalars": {}}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().contiguous()
            else:
                meta["scalars"][f"{idx}.{key}"] = value
    return tensors, meta


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(out: Path, step: int, model, ema, optimizer, extra: dict, keep: int = 2) -> Path:
    frozen = frozen_children(model)  # frozen encoders come from their own folders: not 2 copies per checkpoint
    return write_checkpoint(out, step, trained_state(model, frozen), trained_state(ema, frozen), optimizer.state_dict(), extra, keep)


def write_checkpoint(out: Path, step: int, model_state, ema_state, optimizer_state, extra: dict, keep: int = 2) -> Path:
    """OUT/checkpoints/step-XXXXXXXX from state dicts (whole tensors), renamed into place; keeps the newest `keep`.
    Each state may be a function that makes it: it is then made, written and released before the next
    (a sharded run gathers one of the three at a time)."""
    made = lambda state: state() if callable(state) else state
    if keep < 1:  # [:-keep] would delete every checkpoint (keep -1) or none (keep 0)
        raise ValueError(f"keep must be >= 1, got {keep}")
    root = Path(out) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        save_file(made(model_state), tmp / "model.safetensors")
        save_file(made(ema_state), tmp / "ema.safetensors")
        opt_tensors, opt_meta = _flatten_optimizer(made(optimizer_state))
        save_file(opt_tensors, tmp / "optimizer.safetensors")
        del opt_tensors
        (tmp / "state.json").write_text(json.dumps({"step": step, "optimizer": opt_meta, **extra}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    root = Path(out) / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if (p / "state.json").exists()) if root.exists() else []
    return done[-1] if done else None


def load_checkpoint(path: Path, model, ema, optimizer) -> dict:
    """Restore model, EMA and optimizer in place; returns state.json (step, config, ...)."""
    try:
        state = json.loads((path / "state.json").read_text())
        frozen = frozen_children(model)
        load_trained_state(model, load_file(path / "model.safetensors"), frozen)
        load_trained_state(ema, load_file(path / "ema.safetensors"), frozen)
        optimizer.load_state_dict(_unflatten_optimizer(load_file(path / "optimizer.safetensors"), state["optimizer"]))
    except Exception as err:  # safetensors raises its own SafetensorError for truncated files
        raise UsageError(f"checkpoint {path} is corrupt or incompatible ({str(err).splitlines()[0]}); "
                         f"delete it to resume from the previous one, or start a new run with another out=") from None
    return state


# Settings a resumed run may change: where and how often it writes, how it evaluates, its threads; and steps
# (extending a finished run is a legitimate use). Everything else changes what a step computes.
RESUME_FREE = frozenset({"steps", "out", "threads", "data_workers", "log_every", "sample_every", "checkpoint_every",
                         "keep_checkpoints", "device", "fsdp", "eval_every", "eval_prompts", "eval_num", "diversity_threshold", "stop_on_collapse"})


def check_resume_config(checkpoint: Path, saved: dict, new: dict, free=RESUME_FREE) -> None:
    """Refuse to resume `checkpoint` (made with settings `saved`) with settings `new` that differ in a field
    outside `free`. Fields the checkpoint does not record (added to the code later) are not compared."""
    new = json.loads(json.dumps(new))  # tuples as lists, as state.json holds them
    changed = [k for k in saved if k not in free and new.get(k) != saved[k]]
    if changed:
        key, more = changed[0], f" (and {len(changed) - 1} more setting(s))" if len(changed) > 1 else ""
        run = Path(checkpoint).parent.parent
        raise UsageError(f"run {run} was started with {key}={saved[key]!r}, not {new.get(key)!r}{more}; pass the run's own "
                         f"settings to resume it (see {run}/config.json), or choose another out= for a new run")
