"""Device choice, thread count, seeding and quiet libraries: the few process-wide settings every stage needs.

torch is imported inside the functions that need it, so a figure job that only imports this
module (through interplab.workflow) never pays for loading torch.
"""

from __future__ import annotations

import os
import random
import sys
import warnings

import numpy as np

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PROGRESS_BAR_VARIABLES = ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")
# Library warnings every job of a stage would repeat and nobody can act on, matched by category and
# message so that any other warning still reaches the log.
HARMLESS_WARNINGS = (
    # wilds wraps its read-only metadata column in a tensor that nothing writes to
    (UserWarning, r"The given NumPy array is not writable"),
    # a library, not this project, calls torch.jit.script at import
    (FutureWarning, r"`torch\.jit\.script` is deprecated"),
)


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


def quiet_libraries() -> None:
    """Keep a job's log to what the job says: no tqdm bars (transformers' "Writing model shards" and
    "Loading weights" write redrawn frames into the file, and the job logs its own progress) and
    none of the known harmless warnings.

    The variables cover libraries loaded later in the job; transformers and huggingface_hub, if
    already loaded, read theirs at import, so they are told directly.
    """
    for variable in PROGRESS_BAR_VARIABLES:
        os.environ[variable] = "1"
    # Through sys.modules, never an import: a job without these libraries must not load them.
    hub_utils = sys.modules.get("huggingface_hub.utils")
    if hub_utils is not None:
        hub_utils.disable_progress_bars()
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None:
        transformers_logging.disable_progress_bar()
    for category, message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
