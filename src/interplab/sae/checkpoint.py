"""Token-snapshot schedule and the training work directory that makes a killed job resumable.

Snakemake deletes a failed job's declared outputs, so the state a restart needs lives in a work
directory beside them (never declared): `snapshots/{name}.safetensors` (the SAE at each snapshot
reached) and `state.pt` (everything else at the last snapshot: step, optimizer, λ, alive tracker,
log rows, and the fingerprint of the config that wrote it). A restart with the same fingerprint
continues from `state.pt`; a different fingerprint starts afresh.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from interplab.io import atomic_path

log = logging.getLogger(__name__)
FINAL = "final"
WEIGHT_NAMES = ("W_enc", "b_enc", "W_dec", "b_pre")


def snapshot_name(tokens: int) -> str:
    """50_000_000 → '50M', 250_000 → '250k', 1_234 → '1234' (the published SNAPSHOT names)."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if tokens % size == 0:
            return f"{tokens // size}{unit}"
    return str(tokens)


def snapshot_schedule(snapshot_tokens: tuple[int, ...], batch_size: int, n_steps: int) -> dict[str, int]:
    """Snapshot name → the step after which it is taken (the first step with ≥ that many tokens seen).

    The last entry is always `final` at `n_steps`; token counts must rise and fall before it.
    """
    schedule: dict[str, int] = {}
    previous = 0
    for tokens in snapshot_tokens:
        step = math.ceil(tokens / batch_size)
        if tokens <= previous or step >= n_steps:
            raise ValueError(
                f"snapshot at {tokens} tokens must be above the previous one ({previous}) and below the "
                f"training length ({n_steps * batch_size} tokens); fix sae.snapshots or sae.training_tokens")
        schedule[snapshot_name(tokens)] = step
        previous = tokens
    schedule[FINAL] = n_steps
    return schedule


class WorkDir:
    """Resume state and per-snapshot weights of one training job."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def state_path(self) -> Path:
        return self.path / "state.pt"

    def snapshot_path(self, name: str) -> Path:
        return self.path / "snapshots" / f"{name}.safetensors"

    def save_snapshot(self, name: str, weights: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
        path = self.snapshot_path(name)
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp), metadata=meta)
        return path

    def load_snapshot(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(self.snapshot_path(name)))

    def save_state(self, state: dict) -> None:
        with atomic_path(self.state_path) as tmp:
            torch.save(state, tmp)

    def load_state(self, fingerprint: str) -> dict | None:
        """The saved state if it was written by the same config on the same data, else None.

        weights_only: the state is tensors, numbers and lists, and a work directory can arrive from a
        shared remote, so nothing in it may run code when unpickled."""
        if not self.state_path.exists():
            return None
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != fingerprint:
            log.info("not resuming from %s: it was written for a different config or different input data; "
                     "training starts afresh", self.state_path)
            return None
        return state

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
