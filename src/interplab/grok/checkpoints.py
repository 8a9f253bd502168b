"""The run directory: checkpoint schedule, checkpoint files, the manifest, and loading a model back.

Layout of `results/grok/runs/{run}/`:

    manifest.json                     written last: the run's spec, checkpoint epochs + sha256, provenance
    history.csv (+ .provenance.json)  one row per evaluated epoch: train/id/ood loss and accuracy, norm_* per group
    checkpoints/epoch_{EEEEE}.safetensors   model state_dict (BN running stats included) after EEEEE epochs
    resume.pt                         only while training: model, optimizer, Grokfast state, history so far

`manifest.json` is the Snakemake output that marks a finished run; `resume.pt` and the checkpoints
are not declared outputs, so Snakemake does not delete them when it reruns a killed job, and the
job resumes from the last checkpoint. Epoch 0 is the initial model (after init scaling). For the
modular-addition control an "epoch" is one full-batch step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from interplab.io import atomic_path, load_tensors, read_json, sha256_file

MANIFEST = "manifest.json"
HISTORY = "history.csv"
RESUME = "resume.pt"
CHECKPOINT_DIR = "checkpoints"


def checkpoint_schedule(epochs: int, log_points: int, every: int) -> tuple[int, ...]:
    """Epoch 0, `log_points` log-spaced epochs up to `epochs`, every `every`-th epoch, and the last.

    Log spacing resolves the fast early change (memorisation, an early OOD peak); the regular
    tail catches a late transition.
    """
    log_spaced = np.unique(np.round(np.geomspace(1, epochs, log_points)).astype(int)) if log_points else []
    regular = range(every, epochs + 1, every) if every else []
    return tuple(sorted({0, epochs, *map(int, log_spaced), *regular}))


def checkpoint_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{epoch:05d}.safetensors"


def save_checkpoint(model: torch.nn.Module, run_dir: str | Path, epoch: int) -> Path:
    path = checkpoint_path(run_dir, epoch)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path


def manifest(run_dir: str | Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the run has not finished (build it with snakemake {path})")
    return read_json(path)


def checkpoint_epochs(run_dir: str | Path) -> list[int]:
    """The epochs a finished run has checkpoints for, ascending."""
    return sorted(int(entry["epoch"]) for entry in manifest(run_dir)["checkpoints"])


def checkpoint_entries(run_dir: str | Path, epochs) -> list[dict]:
    """Manifest entries (epoch, relative file, sha256) for checkpoints already on disk."""
    out = []
    for epoch in epochs:
        path = checkpoint_path(run_dir, epoch)
        out.append({"epoch": int(epoch), "file": str(path.relative_to(run_dir)), "sha256": sha256_file(path)})
    return out


def load_model(run_dir: str | Path, epoch: int, device: str = "cpu") -> torch.nn.Module:
    """Rebuild a finished run's model and load the weights it had after `epoch` epochs (eval mode)."""
    from interplab.grok.models import build_model
    from interplab.grok.runs import spec_from_dict

    record = manifest(run_dir)
    entries = {int(entry["epoch"]): entry for entry in record["checkpoints"]}
    if epoch not in entries:
        raise ValueError(f"{run_dir} has no checkpoint at epoch {epoch}; available: {sorted(entries)}")
    model = build_model(spec_from_dict(record["spec"]))
    rebuild = (f"retrain the run (snakemake --forcerun grok_train {Path(run_dir) / MANIFEST}) or fetch a good "
               "copy with dvc pull")
    model.load_state_dict(load_tensors(Path(run_dir) / entries[epoch]["file"], entries[epoch]["sha256"], rebuild))
    return model.to(device).eval()
