"""SAE training: one fused forward/backward per batch, token snapshots, exact resume.

Why a hand-written backward: the SAE's gradients are four matmuls and two reductions; autograd
would add a fifth matmul (∂L/∂x for b_pre, which only needs a matrix-vector product after summing
over the batch), allocate fresh [batch, d_sae] temporaries every step (page faults cost ~20% on
CPU) and keep graph bookkeeping. Here every [batch, ·] tensor lives in a buffer allocated once,
ReLU and its backward run in place, and nothing reads a value back to the host except on logging
steps. Per step: MSE (mean over elements) + λ·L1 → grads → decoder-parallel component removed →
global grad-norm clip → Adam → decoder rows renormalised.

Every trial reads the same activation order (the stream depends on `data_seed`, never on the
trial) and starts from the same initialisation (`init_seed`), so trials differ by L1 policy alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import pandas as pd
import torch
from safetensors import safe_open

from interplab.io import check_finite, sha256_json
from interplab.sae.checkpoint import FINAL, WEIGHT_NAMES, WorkDir, snapshot_schedule
from interplab.sae.l1 import L1Policy, LambdaController
from interplab.sae.model import BPreInit, SparseAutoencoder, initial_b_pre

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "tokens", "mse", "l1", "l1_penalty", "loss", "l0", "lambda", "frac_alive"]
NEVER_FIRED = -(2**62)


class ActivationSource(Protocol):
    """What the trainer reads: the activation cache's reader, or an in-memory synthetic source."""

    d_model: int
    fingerprint: str  # identifies the data: a resume on different data must start afresh

    def batches(self, batch_size: int, seed: int, epoch: int = 0) -> Iterator[torch.Tensor]: ...


@dataclass(frozen=True)
class TrainConfig:
    d_in: int
    d_sae: int
    l1: L1Policy
    training_tokens: int
    snapshot_tokens: tuple[int, ...] = ()
    batch_size: int = 4096
    lr: float = 3e-4
    grad_clip: float = 1.0
    b_pre_init: BPreInit = "geometric_median"
    b_pre_init_tokens: int = 16384
    log_every: int = 10
    alive_window_tokens: int = 1_000_000
    init_seed: int = 0
    data_seed: int = 0
    compile: bool = False
    device: str = "cpu"

    @property
    def n_steps(self) -> int:
        return self.training_tokens // self.batch_size

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError(f"sae.training_tokens ({self.training_tokens}) is below one batch ({self.batch_size})")

    def schedule(self) -> dict[str, int]:
        return snapshot_schedule(self.snapshot_tokens, self.batch_size, self.n_steps)

    def fingerprint(self, data: str) -> str:
        """Identifies a training run for resume: the config (the device does not change the numbers'
        meaning) and the data it reads (`data`: the source's fingerprint)."""
        return sha256_json({**{k: v for k, v in asdict(self).items() if k not in ("device", "compile")}, "data": data})


@dataclass(frozen=True)
class Snapshot:
    name: str
    step: int
    tokens: int
    l1_coefficient: float


@dataclass
class TrainingRun:
    snapshots: list[Snapshot]
    log: pd.DataFrame
    resumed_from_step: int


def token_stream(source: ActivationSource, batch_size: int, seed: int, start_step: int = 0) -> Iterator[torch.Tensor]:
    """Full batches, epoch after epoch, from batch number `start_step` on (a partial tail batch is dropped)."""
    seen, epoch = 0, 0
    while True:
        yielded = 0
        for batch in source.batches(batch_size, seed, epoch):
            if batch.shape[0] != batch_size:
                continue
            yielded += 1
            if seen >= start_step:
                yield batch
            seen += 1
        if yielded == 0:
            raise ValueError(f"the activation source yields no full batch of {batch_size} tokens; "
                             "lower sae.batch_size or cache more tokens")
        epoch += 1


class FusedStep:
    """Forward, hand-written backward and optimizer update of one batch, into preallocated buffers."""

    def __init__(self, sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, controller: LambdaController,
                 cfg: TrainConfig) -> None:
        self.sae, self.optimizer, self.controller, self.cfg = sae, optimizer, controller, cfg
        device, batch = sae.W_enc.device, cfg.batch_size
        self.x_centered = torch.empty(batch, cfg.d_in, device=device)
        self.error = torch.empty(batch, cfg.d_in, device=device)
        self.z = torch.empty(batch, cfg.d_sae, device=device)
        self.grad_z = torch.empty(batch, cfg.d_sae, device=device)
        self.l1_grad = torch.empty(cfg.d_sae, device=device)
        self.batch_max = torch.empty(cfg.d_sae, device=device)
        self.last_fired = torch.full((cfg.d_sae,), NEVER_FIRED, dtype=torch.int64, device=device)
        self.l1_weight = cfg.l1.per_feature_weight(cfg.d_sae)
        for p in sae.parameters():
            p.grad = torch.zeros_like(p)
        self.params = list(sae.parameters())
        self.forward_backward = torch.compile(self._forward_backward) if cfg.compile else self._forward_backward

    @torch.no_grad()
    def _forward_backward(self, x: torch.Tensor, step: int, measure: bool) -> torch.Tensor | None:
        sae, batch, d_in = self.sae, self.cfg.batch_size, self.cfg.d_in
        x_centered = torch.sub(x, sae.b_pre, out=self.x_centered)
        z = torch.addmm(sae.b_enc, x_centered, sae.W_enc, out=self.z).relu_()
        error = torch.addmm(sae.b_pre, z, sae.W_dec, out=self.error).sub_(x)  # x̂ − x
        stats = self._stats(error, z) if measure else None
        if self.controller.wants_l0(step):
            self.controller.update(step, torch.count_nonzero(z).float().div_(batch))
        # Backward. ∂L/∂x̂ = 2(x̂ − x)/(B·d); ∂L/∂z = ∂L/∂x̂·W_decᵀ + λ·w/B, masked by ReLU.
        grad_out = error.mul_(2.0 / (batch * d_in))
        torch.mm(z.T, grad_out, out=sae.W_dec.grad)
        torch.sum(grad_out, 0, out=sae.b_pre.grad)
        self.l1_grad.fill_(self.controller.value * (self.l1_weight / batch))
        grad_z = torch.addmm(self.l1_grad, grad_out, sae.W_dec.T, out=self.grad_z)
        grad_pre = torch.ops.aten.threshold_backward.grad_input(grad_z, z, 0.0, grad_input=grad_z)
        torch.sum(grad_pre, 0, out=sae.b_enc.grad)
        torch.mm(x_centered.T, grad_pre, out=sae.W_enc.grad)
        sae.b_pre.grad.addmv_(sae.W_enc, sae.b_enc.grad, alpha=-1.0)  # b_pre also enters through the encoder
        torch.amax(z, 0, out=self.batch_max)
        self.last_fired.masked_fill_(self.batch_max > 0, step)
        return stats

    def _stats(self, error: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """[mse, l1, l1_penalty, loss, l0, λ] of the batch, as one device tensor (no host sync)."""
        batch = self.cfg.batch_size
        flat = error.view(-1)
        mse = torch.dot(flat, flat) / flat.numel()
        l1 = z.sum() * (self.l1_weight / batch)
        penalty = self.controller.value * l1
        l0 = torch.count_nonzero(z).float() / batch
        return torch.stack([mse, l1, penalty, mse + penalty, l0, self.controller.value.clone()])

    def __call__(self, x: torch.Tensor, step: int, measure: bool) -> torch.Tensor | None:
        stats = self.forward_backward(x, step, measure)
        self.sae.remove_parallel_decoder_grad_()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
        self.optimizer.step()
        self.sae.normalize_decoder_()
        return stats

    def fraction_alive(self, step: int) -> torch.Tensor:
        """Fraction of features that fired within the last `alive_window_tokens` tokens."""
        window_steps = max(1, self.cfg.alive_window_tokens // self.cfg.batch_size)
        return (self.last_fired > step - window_steps).float().mean()


class SAETrainer:
    """Trains one SAE from an activation source, snapshotting into (and resuming from) a work dir."""

    def __init__(self, cfg: TrainConfig, source: ActivationSource, work_dir: str | Path) -> None:
        if source.d_model != cfg.d_in:
            raise ValueError(f"activation source has d_model={source.d_model} but the SAE expects d_in={cfg.d_in}")
        self.cfg, self.source, self.work = cfg, source, WorkDir(work_dir)
        self.sae = SparseAutoencoder(cfg.d_in, cfg.d_sae).to(cfg.device)
        self.optimizer = torch.optim.Adam(self.sae.parameters(), lr=cfg.lr, foreach=True)
        self.controller = LambdaController(cfg.l1, cfg.device)
        self.step_fn = FusedStep(self.sae, self.optimizer, self.controller, cfg)
        self.rows: list[list[float]] = []
        self.pending: list[tuple[int, torch.Tensor]] = []

    def train(self, on_snapshot: Callable[[Snapshot, SparseAutoencoder], None] | None = None) -> TrainingRun:
        cfg, schedule = self.cfg, self.cfg.schedule()
        start = self._resume_or_initialize()
        snapshots = [self._snapshot_record(name, step) for name, step in schedule.items() if step <= start]
        stream = token_stream(self.source, cfg.batch_size, cfg.data_seed, start_step=start)
        by_step = {step: name for name, step in schedule.items()}
        for step in range(start + 1, cfg.n_steps + 1):
            x = next(stream).to(cfg.device, non_blocking=True)
            measure = step % cfg.log_every == 0 or step in by_step or step == 1
            stats = self.step_fn(x, step, measure)
            if stats is not None:
                self.pending.append((step, torch.cat([stats, self.step_fn.fraction_alive(step)[None]])))
            if step in by_step:
                record = self._take_snapshot(by_step[step], step)
                snapshots.append(record)
                if on_snapshot is not None:
                    on_snapshot(record, self.sae)
        self._flush_log()
        return TrainingRun(snapshots, pd.DataFrame(self.rows, columns=LOG_COLUMNS), resumed_from_step=start)

    def _resume_or_initialize(self) -> int:
        cfg = self.cfg
        state = self.work.load_state(cfg.fingerprint(self.source.fingerprint))
        if state is None:
            self.work.clear()
            init_batches = math.ceil(cfg.b_pre_init_tokens / cfg.batch_size)
            stream = token_stream(self.source, cfg.batch_size, cfg.data_seed)
            samples = torch.cat([next(stream).cpu() for _ in range(init_batches)])
            generator = torch.Generator().manual_seed(cfg.init_seed)
            init = SparseAutoencoder(cfg.d_in, cfg.d_sae).initialize(generator, initial_b_pre(samples, cfg.b_pre_init))
            self.sae.load_state_dict(init.state_dict())
            return 0
        self.sae.load_state_dict(state["sae"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.step_fn.last_fired.copy_(state["last_fired"])
        self.rows = state["rows"]
        log.info("resuming from step %d (%d tokens)", state["step"], state["step"] * cfg.batch_size)
        return int(state["step"])

    def _take_snapshot(self, name: str, step: int) -> Snapshot:
        self._flush_log()
        for key in WEIGHT_NAMES:
            check_finite(getattr(self.sae, key), f"SAE weight {key} at step {step}", "check sae.lr and the input data")
        record = self._snapshot_record(name, step, self.controller.value.item())
        self.work.save_snapshot(name, {k: getattr(self.sae, k) for k in WEIGHT_NAMES},
                                {"step": str(step), "tokens": str(record.tokens), "l1_coefficient": repr(record.l1_coefficient)})
        if name != FINAL:
            self.work.save_state({
                "fingerprint": self.cfg.fingerprint(self.source.fingerprint), "step": step, "sae": self.sae.state_dict(),
                "optimizer": self.optimizer.state_dict(), "controller": self.controller.state_dict(),
                "last_fired": self.step_fn.last_fired.cpu(), "rows": self.rows,
            })
        row = self.rows[-1]
        log.info("snapshot %s: %d tokens, mse %.4g, L0 %.1f, λ %.3g, alive %.3f",
                 name, record.tokens, row[2], row[6], row[7], row[8])
        return record

    def _snapshot_record(self, name: str, step: int, l1_coefficient: float | None = None) -> Snapshot:
        if l1_coefficient is None:  # a snapshot taken before a restart: its λ is in its metadata
            with safe_open(str(self.work.snapshot_path(name)), framework="pt") as handle:
                l1_coefficient = float(handle.metadata()["l1_coefficient"])
        return Snapshot(name, step, step * self.cfg.batch_size, l1_coefficient)

    def _flush_log(self) -> None:
        """Move the logged device tensors to host rows (the only host syncs of the loop), and stop the
        run if training went non-finite: NaN weights must never reach a snapshot."""
        for step, stats in self.pending:
            check_finite(stats, f"SAE training statistics at step {step} (MSE, L1, loss, L0, λ)",
                         "the activations or the optimiser diverged; check the input cache and sae.lr")
            self.rows.append([step, step * self.cfg.batch_size, *stats.tolist()])
        self.pending.clear()
