"""The accelerate.Accelerator of a training or fine-tuning run."""

from __future__ import annotations


def make_accelerator(mixed_precision: str = "no", cpu: bool = False):
    """accelerate.Accelerator(mixed_precision=, cpu=). accelerate keeps one state per process and refuses a
    second Accelerator with another mixed precision; in a single process (a notebook, a test, the scale
    check running float32 then bfloat16) that state is reset first. Under `accelerate launch` it is never reset."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    try:
        return Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    except ValueError as err:
        if "already been initialized" not in str(err) or PartialState().num_processes != 1:
            raise
        AcceleratorState._reset_state(reset_partial_state=True)
        return Accelerator(mixed_precision=mixed_precision, cpu=cpu)
