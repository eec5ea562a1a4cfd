"""Per-step random generators: every random draw of step s on rank r comes from one generator seeded
with (seed, rank, s), so a resumed run draws exactly what an uninterrupted one would."""

from __future__ import annotations

import torch


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """A CPU generator seeded with a fixed mix of (seed, rank, step), reduced modulo 2**63."""
    return torch.Generator().manual_seed((seed * 1_000_003 + rank * 10_007 + step) % (2**63))
