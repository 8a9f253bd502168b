"""Device choice, thread count and seeding: the few process-wide settings every stage needs.

torch is imported inside the functions that need it, so a figure job that only imports this
module (through interplab.workflow) never pays for loading torch.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def resolve_device(requested: str = "auto") -> str:
    """`auto` picks CUDA when present, else CPU; an explicit `cuda` without a GPU is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but no CUDA device is visible; set device: auto or cpu")
    return requested


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int | None) -> None:
    """Match torch's and the BLAS libraries' threads to the cores the scheduler gave this job.

    The environment variables cover libraries loaded later in the job; torch, if already loaded,
    is told directly.
    """
    if not n or n < 1:
        return
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(int(n))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(n))
