"""Resumable, checkpointed training of one grokking run (either task, either regime).

Per epoch: shuffled batches → cross-entropy → backward → Grokfast filter (if the regime uses it)
→ AdamW step. Every `eval_every` epochs and at every checkpoint epoch, every split is scored in
eval mode and the per-group weight norms are recorded. At each checkpoint epoch the model is
saved and so is `resume.pt` (model, optimizer, Grokfast state, history), keyed by a hash of the
run spec: a killed run restarts from its last checkpoint and, because the batch order depends
only on (seed, epoch), ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch
import torch.nn.functional as F

from interplab.grok import checkpoints as ckpt
from interplab.grok.grokfast import GrokfastEMA
from interplab.grok.models import group_norms, init_model
from interplab.grok.runs import RunSpec, spec_to_dict
from interplab.grok.tasks import Task
from interplab.io import atomic_path, check_finite, provenance, sha256_file, sha256_json, write_json, write_table
from interplab.progress import Progress

log = logging.getLogger(__name__)


def make_optimizer(model: torch.nn.Module, spec: RunSpec, device: str) -> torch.optim.Optimizer:
    fused = {"fused": True} if device == "cpu" or device.startswith("cuda") else {}
    r = spec.regime
    return torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay, betas=r.betas, **fused)


def train_epoch(model: torch.nn.Module, task: Task, optimizer: torch.optim.Optimizer,
                grokfast: GrokfastEMA | None, epoch: int) -> None:
    """One pass over the epoch's batches: cross-entropy, backward, Grokfast filter (if any), step.
    A non-finite loss stops the run (checked once per epoch, to keep host syncs off the batch loop)."""
    losses = []
    for x, y in task.train_batches(epoch):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grokfast is not None:
            grokfast.filter_(model)
        optimizer.step()
    if losses:
        check_finite(torch.stack(losses), f"training loss of epoch {epoch}",
                     "check the input images and the regime's lr / init_scale")


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, epoch: int) -> dict[str, float]:
    """Loss and accuracy on every split (eval mode) and the weight norm of every parameter group."""
    model.eval()
    row: dict[str, float] = {"epoch": epoch}
    for split in task.splits:
        loss_sum, correct, count = 0.0, 0, 0
        for x, y in task.eval_batches(split):
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += len(y)
        row[f"{split}_loss"] = loss_sum / count
        row[f"{split}_acc"] = correct / count
    row.update({f"norm_{group}": value for group, value in group_norms(model).items()})
    model.train()
    return row


def _load_resume(run_dir: Path, fingerprint: str, device: str) -> dict | None:
    """The resume state if the same spec on the same data wrote it (weights_only: tensors and numbers
    only, so a resume file from a shared remote cannot run code)."""
    path = run_dir / ckpt.RESUME
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("fingerprint") != fingerprint:
        log.info("not resuming from %s: it was written for a different run spec or different input data; "
                 "training starts afresh", path)
        return None
    return state


def _save_resume(run_dir: Path, state: Mapping[str, Any]) -> None:
    with atomic_path(run_dir / ckpt.RESUME) as tmp:
        torch.save(dict(state), tmp)


def train_run(spec: RunSpec, task: Task, run_dir: str | Path, device: str = "cpu",
              inputs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Train (or resume) one run into `run_dir`; writes checkpoints, history.csv and manifest.json last."""
    run_dir = Path(run_dir)
    spec_dict = spec_to_dict(spec)
    fingerprint = sha256_json({"spec": spec_dict, "inputs": {k: sha256_file(p) for k, p in (inputs or {}).items()}})
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    model = init_model(spec).to(device)
    optimizer = make_optimizer(model, spec, device)
    grokfast = GrokfastEMA(spec.grokfast_alpha, spec.grokfast_lamb) if spec.regime.grokfast else None

    state = _load_resume(run_dir, fingerprint, device)
    if state is None:
        shutil.rmtree(run_dir / ckpt.CHECKPOINT_DIR, ignore_errors=True)
        start, history = 0, [evaluate(model, task, 0)]
        ckpt.save_checkpoint(model, run_dir, 0)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if grokfast is not None:
            grokfast.load_state_dict(state["grokfast"])
        start, history = state["epoch"], state["history"]
        log.info("%s: resuming after epoch %d", spec.name, start)

    model.train()
    progress = Progress(spec.name, spec.epochs, "epochs", done=start)
    for epoch in range(start + 1, spec.epochs + 1):
        train_epoch(model, task, optimizer, grokfast, epoch)
        is_checkpoint = epoch in spec.checkpoints
        if is_checkpoint or epoch % spec.eval_every == 0:
            history.append(evaluate(model, task, epoch))
        if is_checkpoint:
            ckpt.save_checkpoint(model, run_dir, epoch)
            _save_resume(run_dir, {"fingerprint": fingerprint, "epoch": epoch, "history": history,
                                   "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "grokfast": grokfast.state_dict() if grokfast is not None else None})
        last = history[-1]  # the latest evaluation, from this epoch or an earlier one
        accuracies = "  ".join(f"{s} acc {last[f'{s}_acc']:.3f}" for s in task.splits)
        progress.update(epoch, f"at epoch {last['epoch']}: {accuracies}", force=is_checkpoint)
    progress.finish()

    frame = pd.DataFrame(history)
    prov = provenance(spec_dict, inputs=inputs, seed=spec.seed, device=device)
    write_table(run_dir / ckpt.HISTORY, frame, prov)
    write_json(run_dir / ckpt.MANIFEST, {
        "run": spec.name, "spec": spec_dict, "history": ckpt.HISTORY,
        "checkpoints": ckpt.checkpoint_entries(run_dir, spec.checkpoints), "provenance": prov,
    })
    (run_dir / ckpt.RESUME).unlink(missing_ok=True)
    return frame
