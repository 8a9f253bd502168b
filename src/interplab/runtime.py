"""Device choice, thread count and seeding: the few process-wide settings every stage needs."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(requested: str = "auto") -> str:
    """`auto` picks CUDA when present, else CPU; an explicit `cuda` without a GPU is an error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but no CUDA device is visible; set device: auto or cpu")
    return requested


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int | None) -> None:
    """Match torch's intra-op threads to the cores the scheduler gave this job."""
    if n and n > 0:
        torch.set_num_threads(int(n))
