"""Test support: jagged layouts of given lengths with synthetic, increasing timestamps."""

from __future__ import annotations

import torch

from .model import Jagged


def random_layout(lengths, targets, generator: torch.Generator, device="cpu") -> Jagged:
    """Sequences of ``lengths`` events (the last ``targets[i]`` of sequence i candidates), timestamps a random
    walk of up to 5000 s per event from 1.7e9, drawn from ``generator``."""
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    steps = torch.randint(0, 5000, (int(offsets[-1]),), generator=generator)
    ts = torch.zeros_like(steps)
    for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        ts[s:e] = 1_700_000_000 + steps[s:e].cumsum(0)
    return Jagged(offsets=offsets.to(device), timestamps=ts.to(device), num_targets=torch.tensor(targets).to(device))
