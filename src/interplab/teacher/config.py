"""The local teacher's settings, its checkpoint schedule and checkpoint directory names.

Pure Python on purpose: the Snakefile imports this to build the DAG (which checkpoints exist,
where they live), and must not pay for importing torch or transformers to do so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TeacherConfig:
    """Architecture and optimisation of the local teacher (config: model.teacher)."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_mlp: int = 512
    vocab_size: int = 4096
    context_length: int = 128
    rotary_pct: float = 0.25
    steps: int = 300
    batch_size: int = 16
    lr: float = 0.003
    warmup_steps: int = 20
    weight_decay: float = 0.01
    checkpoint_factor: int = 2
    eval_rows: int = 64
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, min(self.d_model, 64) + 1) if self.d_model % h == 0]
            raise ValueError(f"model.teacher.n_heads {self.n_heads} does not divide model.teacher.d_model "
                             f"{self.d_model}. Allowed: a divisor of d_model, e.g. {divisors}")


def checkpoint_steps(steps: int, factor: int = 2) -> list[int]:
    """Exponential schedule 0, 1, f, f², … below `steps`, then `steps` itself (the final model)."""
    if factor < 2:
        raise ValueError(f"checkpoint_factor must be at least 2, got {factor}")
    schedule, step = [0], 1
    while step < steps:
        schedule.append(step)
        step *= factor
    return schedule + [steps]


def checkpoint_label(step: int, steps: int) -> str:
    """The revision name of a checkpoint: `final` for the last one, else `step{N}` (as Pythia)."""
    return "final" if step == steps else f"step{step}"


def revision_step(revision: str, final_step: int | None) -> int | None:
    """The training step a revision name stands for: `step{N}` → N (local or Pythia's hub branches),
    `final` → `final_step`; None for a name without one (e.g. a hub branch `main`)."""
    if revision == "final":
        return final_step
    match = re.fullmatch(r"step(\d+)", revision)
    return int(match.group(1)) if match else None


def local_checkpoint_dir(teacher_dir: str | Path, revision: str) -> Path:
    """The local teacher's HF directory for a revision label: `final` or `step{N}` -> ckpt-{N}."""
    if revision == "final":
        return Path(teacher_dir) / "final"
    match = re.fullmatch(r"step(\d+)", revision)
    if not match:
        raise ValueError(f"local revision {revision!r} is neither 'final' nor 'step<N>' (e.g. step8)")
    return Path(teacher_dir) / f"ckpt-{int(match.group(1))}"
