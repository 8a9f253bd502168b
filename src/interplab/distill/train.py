"""Train one student from the teacher's logits, resumable, with a held-out loss curve.

Every step draws its batch of training sequences from a generator seeded by (seed, step), so the
data order needs no state and a resumed run ends with the same numbers as an uninterrupted one.
The held-out split is never trained on (by the teacher, an SAE or a student); its distillation loss
is logged every `eval_every` steps, and the floor is the mean of the last `floor_fraction` of those.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd
import torch
from transformers import GPTNeoXForCausalLM

from interplab.distill.student import build_student, kd_loss
from interplab.io import atomic_path, check_finite, sha256_json, stable_seed
from interplab.progress import Progress
from interplab.teacher.train import warmup_cosine

log = logging.getLogger(__name__)
STATE = "state.pt"


@dataclass(frozen=True)
class DistillConfig:
    width: int
    seed: int
    steps: int
    batch_size: int  # sequences per step
    lr: float
    betas: tuple[float, float]
    weight_decay: float
    warmup_steps: int
    grad_clip: float
    temperature: float
    eval_every: int
    eval_rows: int
    floor_fraction: float


@dataclass
class DistillRun:
    student: GPTNeoXForCausalLM
    history: pd.DataFrame
    resumed_from_step: int


def measured_floor(history: pd.DataFrame, fraction: float) -> float:
    """Mean held-out loss over the last `fraction` of the evaluations (at least one)."""
    losses = history["heldout_loss"].dropna().to_numpy()
    return float(losses[-max(1, int(round(fraction * len(losses)))):].mean())


@torch.no_grad()
def heldout_loss(student: GPTNeoXForCausalLM, teacher: GPTNeoXForCausalLM, rows: torch.Tensor, batch_size: int,
                 temperature: float) -> float:
    student.eval()
    total = sum(kd_loss(student(input_ids=chunk).logits, teacher(input_ids=chunk).logits, temperature).item()
                * chunk.shape[0] for chunk in rows.split(batch_size))
    student.train()
    return total / rows.shape[0]


def train_student(cfg: DistillConfig, teacher: GPTNeoXForCausalLM, streams: Mapping[str, torch.Tensor],
                  work_dir: str | Path, device: str, data_fingerprint: str) -> DistillRun:
    """Distil `teacher` into a width-`cfg.width` student; resumes from `work_dir` when the same config
    and data wrote it (`data_fingerprint`: hashes of the teacher weights and token streams)."""
    work, fingerprint = Path(work_dir), sha256_json({"config": asdict(cfg), "data": data_fingerprint})
    teacher = teacher.to(device).eval()
    student = build_student(teacher.config, cfg.width, stable_seed("student-init", cfg.width, cfg.seed)).to(device)
    decay = [p for p in student.parameters() if p.ndim >= 2]
    no_decay = [p for p in student.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas)
    train, heldout = streams["train"], streams["heldout"][: cfg.eval_rows].to(device)
    start, history = 0, []
    state = _load_state(work / STATE, fingerprint)
    if state is not None:
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), list(state["history"])
        log.info("resuming width %d seed %d after step %d", cfg.width, cfg.seed, start)
    else:
        history.append(_evaluate(0, student, teacher, heldout, cfg, train.shape[1]))
    tokens_per_step = cfg.batch_size * train.shape[1]
    progress = Progress(f"width {cfg.width} seed {cfg.seed}", cfg.steps * tokens_per_step, "tokens",
                        done=start * tokens_per_step)
    student.train()
    for step in range(start, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        generator = torch.Generator().manual_seed(stable_seed("distill-batch", cfg.seed, step))
        batch = train[torch.randint(0, train.shape[0], (cfg.batch_size,), generator=generator)].to(device)
        with torch.no_grad():
            target = teacher(input_ids=batch).logits
        loss = kd_loss(student(input_ids=batch).logits, target, cfg.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            check_finite(loss.detach(), f"distillation loss of width {cfg.width} at step {done}",
                         "lower distill.lr or check the teacher's logits")
            row = _evaluate(done, student, teacher, heldout, cfg, train.shape[1], train_loss=loss.item())
            history.append(row)
            progress.update(done * tokens_per_step, f"step {done}/{cfg.steps}, train {row['train_loss']:.4f}, "
                            f"held-out {row['heldout_loss']:.4f}", force=True)
            _save_state(work / STATE, {"fingerprint": fingerprint, "step": done, "history": history,
                                       "student": student.state_dict(), "optimizer": optimizer.state_dict()})
        else:
            progress.update(done * tokens_per_step)
    progress.finish()
    return DistillRun(student.eval(), pd.DataFrame(history), resumed_from_step=start)


def _evaluate(step: int, student, teacher, heldout: torch.Tensor, cfg: DistillConfig, context: int,
              train_loss: float = float("nan")) -> dict:
    return {"step": step, "tokens": step * cfg.batch_size * context, "train_loss": train_loss,
            "heldout_loss": heldout_loss(student, teacher, heldout, cfg.batch_size, cfg.temperature)}


def _load_state(path: Path, fingerprint: str) -> dict | None:
    """The resume state if the same config and data wrote it (weights_only: tensors and numbers only)."""
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        log.info("not resuming from %s: written for a different config or different data; starting afresh", path)
        return None
    return state


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
