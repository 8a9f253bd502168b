"""SAE training: one fused forward/backward per batch, token snapshots, exact resume.

Why a hand-written backward: the SAE's gradients are four matmuls and two reductions; autograd
would add a fifth matmul (∂L/∂x for b_pre, which only needs a matrix-vector product after summing
over the batch), allocate fresh [batch, d_sae] temporaries every step (page faults cost ~20% on
CPU) and keep graph bookkeeping. Here every [batch, ·] tensor lives in a buffer allocated once,
ReLU and its backward run in place, and nothing reads a value back to the host except on logging
steps. Per step: MSE (mean over elements) + λ·Σ_f z_f·‖d_f‖ → grads → global grad-norm clip → Adam.

Before the first step the trainer estimates the input scale c (mean ‖c·x‖ = √d_in) and b_pre from
the first tokens of the stream, and trains on c·x; exports fold c back (interplab.sae.model.folded),
so the training log's MSE and L1 are in normalised units and every exported file in raw units.

Every trial reads the same activation stream (a mixing buffer seeded by `data_seed`, never by the
trial) and starts from the same initialisation (`init_seed`), so trials differ by L1 policy alone.
`GroupTrainer` makes that structural: every trial × layer SAE of a layer group trains from one
pass over one stream (each SAE reads its layer's columns), and `SAETrainer` is a group of one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Mapping

import pandas as pd
import torch
from safetensors import safe_open

from interplab.io import GrowingCsv, check_finite, sha256_json, stable_seed
from interplab.progress import Progress
from interplab.sae.buffer import ActivationSource, mixed_batches
from interplab.sae.checkpoint import FINAL, WEIGHT_NAMES, WorkDir, snapshot_schedule
from interplab.sae.l1 import L1Policy, LambdaController
from interplab.sae.model import BPreInit, SparseAutoencoder, initial_b_pre, normalization_scale
from interplab.sae.optim import LazyAdam

log = logging.getLogger(__name__)

LOG_COLUMNS = ["step", "tokens", "mse", "l1", "l1_penalty", "loss", "l0", "lambda", "frac_alive"]
NEVER_FIRED = -(2**62)
GHOST_REFRESH_STEPS = 8  # steps between re-reads of the dead set (a host sync each)
Normalization = Literal["expected_average_only_in", "none"]


@dataclass(frozen=True)
class TrainConfig:
    d_in: int
    d_sae: int
    l1: L1Policy
    training_tokens: int
    snapshot_tokens: tuple[int, ...] = ()
    batch_size: int = 4096
    lr: float = 3e-4
    lr_decay_fraction: float = 0.0
    grad_clip: float = 1.0
    decoder_init_norm: float = 0.1
    b_pre_init: BPreInit = "geometric_median"
    b_pre_init_tokens: int = 16384
    normalize_activations: Normalization = "expected_average_only_in"
    normalize_tokens: int = 16384
    buffer_tokens: int = 65536
    log_every: int = 10
    alive_window_tokens: int = 1_000_000
    resample_every_tokens: int = 0
    resample_until: float = 0.75
    ghost_window_tokens: int = 0
    lazy_encoder: bool = False
    init_seed: int = 0
    data_seed: int = 0
    compile: bool = False
    matmul_precision: Literal["highest", "high"] = "highest"  # high: TF32 on CUDA
    device: str = "cpu"

    @property
    def n_steps(self) -> int:
        return self.training_tokens // self.batch_size

    @property
    def resample_steps(self) -> int:
        """Steps between dead-latent resamplings (0: never); also the window a latent must stay
        silent for to count as dead."""
        return self.resample_every_tokens // self.batch_size

    @property
    def ghost_window_steps(self) -> int:
        """Steps a latent must stay silent for to get ghost gradients (0: ghost grads off)."""
        return self.ghost_window_tokens // self.batch_size

    def resamples_at(self, step: int) -> bool:
        every = self.resample_steps
        return every > 0 and step % every == 0 and step <= self.resample_until * self.n_steps

    def lr_at(self, step: int) -> float:
        """Constant, then linear decay to 0 over the last `lr_decay_fraction` of the steps (as SAELens):
        the dictionary settles, so the final snapshot is not caught mid-move and the adaptive λ,
        which drifts down while the dictionary still improves, ends near its peak."""
        decay_steps = self.lr_decay_fraction * self.n_steps
        return self.lr * min(1.0, (self.n_steps - step + 1) / decay_steps) if decay_steps >= 1 else self.lr

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError(f"sae.training_tokens ({self.training_tokens}) is below one batch ({self.batch_size})")
        if 0 < self.resample_every_tokens < self.batch_size:
            raise ValueError(f"sae.resample.every_tokens ({self.resample_every_tokens}) is below one batch "
                             f"({self.batch_size}): use 0 to turn resampling off, or at least one batch")
        if 0 < self.ghost_window_tokens < self.batch_size:
            raise ValueError(f"sae.ghost_grads.window_tokens ({self.ghost_window_tokens}) is below one batch "
                             f"({self.batch_size}): use 0 to turn ghost grads off, or at least one batch")

    def recipe(self) -> dict:
        """How the weights were initialised and the inputs normalised, for the export's metadata."""
        return {
            "init": {"W_dec": f"random rows at norm {self.decoder_init_norm}", "W_enc": "W_dec transposed",
                     "b_enc": "zeros", "b_pre": f"{self.b_pre_init} of the first {self.b_pre_init_tokens} tokens (scaled)"},
            "input_normalization": {"method": self.normalize_activations, "tokens": self.normalize_tokens,
                                    "folded": "exports take raw activations; metadata.input_scale is c"},
            "decoder": "rows free in training, L1 weighted by row norm; exported folded to unit-norm rows",
            "buffer_tokens": self.buffer_tokens,
            "optimizer": ("Adam; a latent's encoder column moves only on batches where it fires (lazy)"
                          if self.lazy_encoder else "Adam"),
            "resampling": (f"latents silent for {self.resample_every_tokens} tokens re-aimed at high-loss inputs "
                           f"every {self.resample_every_tokens} tokens, until {self.resample_until:.0%} of training"
                           if self.resample_steps else "none"),
            "ghost_grads": (f"latents silent for {self.ghost_window_tokens} tokens get the gradient of "
                            "exp(pre-activation) reconstructing the residual at half its norm, weighted like the MSE"
                            if self.ghost_window_steps else "none"),
        }

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
    input_scale: float  # c: the SAE trained on c·x


@dataclass
class TrainingRun:
    snapshots: list[Snapshot]
    log: pd.DataFrame
    resumed_from_step: int


@dataclass
class Scratch:
    """The [batch, ·] work buffers of one step. Members of a group run their steps one after another,
    so SAEs of one shape share a single set (at paper scale z and ∂L/∂z alone are 1 GB per SAE)."""

    x_centered: torch.Tensor
    error: torch.Tensor
    z: torch.Tensor
    grad_z: torch.Tensor
    l1_grad: torch.Tensor
    norms: torch.Tensor
    z_sum: torch.Tensor

    @classmethod
    def allocate(cls, batch: int, d_in: int, d_sae: int, device: str | torch.device) -> "Scratch":
        def empty(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=device)

        return cls(empty(batch, d_in), empty(batch, d_in), empty(batch, d_sae), empty(batch, d_sae), empty(d_sae),
                   empty(d_sae), empty(d_sae))


class FusedStep:
    """Forward, hand-written backward and optimizer update of one batch, into preallocated buffers."""

    def __init__(self, sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, controller: LambdaController,
                 cfg: TrainConfig, scratch: Scratch | None = None) -> None:
        self.sae, self.optimizer, self.controller, self.cfg = sae, optimizer, controller, cfg
        self.buffers = scratch or Scratch.allocate(cfg.batch_size, cfg.d_in, cfg.d_sae, sae.W_enc.device)
        self.last_fired = torch.full((cfg.d_sae,), NEVER_FIRED, dtype=torch.int64, device=sae.W_enc.device)
        self.ghost_latents = torch.zeros(0, dtype=torch.int64, device=sae.W_enc.device)  # dead at the last refresh
        self.l1_weight = cfg.l1.per_feature_weight(cfg.d_sae)
        for p in sae.parameters():
            p.grad = torch.zeros_like(p)
        self.params = list(sae.parameters())
        self.forward_backward = torch.compile(self._forward_backward) if cfg.compile else self._forward_backward

    @torch.no_grad()
    def _forward_backward(self, x: torch.Tensor, step: int, measure: bool) -> torch.Tensor | None:
        sae, buf, batch, d_in = self.sae, self.buffers, self.cfg.batch_size, self.cfg.d_in
        x_centered = torch.sub(x, sae.b_pre, out=buf.x_centered)
        z = torch.addmm(sae.b_enc, x_centered, sae.W_enc, out=buf.z).relu_()
        error = torch.addmm(sae.b_pre, z, sae.W_dec, out=buf.error).sub_(x)  # x̂ − x
        norms = torch.linalg.vector_norm(sae.W_dec, dim=1, out=buf.norms)
        z_sum = torch.sum(z, 0, out=buf.z_sum)
        lam = self.controller.coefficient(step)
        coefficient = lam * (self.l1_weight / batch)
        stats = self._stats(error, z, lam) if measure else None
        if self.controller.wants_l0(step):
            self.controller.update(step, torch.count_nonzero(z).float().div_(batch))
        # Backward of MSE + κ·Σ_b,f z·‖d_f‖ (κ = λ·w/B). ∂L/∂x̂ = 2(x̂ − x)/(B·d);
        # ∂L/∂z = ∂L/∂x̂·W_decᵀ + κ·‖d‖, masked by ReLU; ∂L/∂d_f gains κ·Σ_b z_f·d_f/‖d_f‖.
        grad_out = error.mul_(2.0 / (batch * d_in))
        torch.mm(z.T, grad_out, out=sae.W_dec.grad)
        sae.W_dec.grad.addcmul_(sae.W_dec, (z_sum / norms).mul_(coefficient).unsqueeze_(1))
        torch.sum(grad_out, 0, out=sae.b_pre.grad)
        torch.mul(norms, coefficient, out=buf.l1_grad)
        grad_z = torch.addmm(buf.l1_grad, grad_out, sae.W_dec.T, out=buf.grad_z)
        grad_pre = torch.ops.aten.threshold_backward.grad_input(grad_z, z, 0.0, grad_input=grad_z)
        torch.sum(grad_pre, 0, out=sae.b_enc.grad)
        torch.mm(x_centered.T, grad_pre, out=sae.W_enc.grad)
        sae.b_pre.grad.addmv_(sae.W_enc, sae.b_enc.grad, alpha=-1.0)  # b_pre also enters through the encoder
        self.last_fired.masked_fill_(z_sum > 0, step)
        return stats

    def _stats(self, error: torch.Tensor, z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """[mse, l1, l1_penalty, loss, l0, λ] of the batch, as one device tensor (no host sync)."""
        batch = self.cfg.batch_size
        flat = error.view(-1)
        mse = torch.dot(flat, flat) / flat.numel()
        l1 = torch.dot(self.buffers.z_sum, self.buffers.norms) * (self.l1_weight / batch)
        penalty = lam * l1
        l0 = torch.count_nonzero(z).float() / batch
        return torch.stack([mse, l1, penalty, mse + penalty, l0, lam.clone()])

    def __call__(self, x: torch.Tensor, step: int, measure: bool) -> torch.Tensor | None:
        stats = self.forward_backward(x, step, measure)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
        if self.cfg.ghost_window_steps:
            self.ghost_backward(step)
        self.optimizer.step()
        return stats

    @torch.no_grad()
    def ghost_backward(self, step: int) -> None:
        """Ghost grads (Anthropic, Feb 2024): a dead ReLU latent gets no gradient and cannot return, so
        the latents silent for `ghost_window_steps` steps get one from an auxiliary loss. Their
        exp(pre-activation) (never zero) decodes to g; g is scaled to half the residual r = x − x̂'s
        norm (a constant factor s), and ‖s·g − r‖² is weighted so it equals the batch MSE. Its
        gradient pulls the dead latents' encoders toward inputs whose residual their decoder rows
        explain. Only the dead latents' own parameters receive it:
        - not b_pre, which every latent shares: on trial B of the default, ghost gradients through
          b_pre shifted every pre-activation and killed 340–589 of 1,024 latents (0–6 without);
        - after the gradient clip: ghost gradients reach 500× the training loss's norm at times,
          and clipped together they would freeze the live latents' updates.
        The dead set is re-read every GHOST_REFRESH_STEPS steps (a host sync) and kept in the resume state."""
        if step % GHOST_REFRESH_STEPS == 0:  # silent since step 0 counts from step 0, not from never
            silent = self.last_fired.clamp_min(0) <= step - self.cfg.ghost_window_steps
            self.ghost_latents = silent.nonzero().squeeze(1)
        dead = self.ghost_latents
        if dead.numel() == 0:
            return
        sae, buf, batch, d_in = self.sae, self.buffers, self.cfg.batch_size, self.cfg.d_in
        residual = buf.error.mul(-0.5 * batch * d_in)  # the buffer holds ∂MSE/∂x̂ = 2(x̂ − x)/(B·d)
        w_enc, w_dec = sae.W_enc[:, dead], sae.W_dec[dead]
        pre = torch.addmm(sae.b_enc[dead], buf.x_centered, w_enc)
        acts = pre.sub_(pre.amax(1, keepdim=True)).exp_()  # exp(h − max_h): the scale s absorbs the shift
        ghost = acts @ w_dec
        r_norm = torch.linalg.vector_norm(residual, dim=1, keepdim=True)
        scale = r_norm / torch.linalg.vector_norm(ghost, dim=1, keepdim=True).mul_(2.0).clamp_min_(1e-12)
        diff = ghost.mul_(scale).sub_(residual)  # s·g − r
        weight = r_norm.square().sum() / diff.square().sum().clamp_min(1e-12)  # makes the ghost loss equal the MSE
        grad_ghost = diff.mul_(scale).mul_(weight * (2.0 / (batch * d_in)))  # ∂(ghost loss)/∂g
        grad_pre = (grad_ghost @ w_dec.T).mul_(acts)
        sae.W_dec.grad.index_add_(0, dead, acts.T @ grad_ghost)
        sae.W_enc.grad.index_add_(1, dead, buf.x_centered.T @ grad_pre)
        sae.b_enc.grad.index_add_(0, dead, grad_pre.sum(0))

    @torch.no_grad()
    def resample_dead(self, x: torch.Tensor, step: int) -> int:
        """Anthropic's 2023 resampling (as dictionary_learning's): latents silent for the last
        `resample_steps` steps are re-aimed at inputs of this batch drawn with probability ∝ loss²,
        at most one per row: decoder row along the centred input at the alive rows' mean norm,
        encoder column along it at 0.2× the alive columns' mean norm, b_enc 0, Adam moments zeroed.
        The draw is seeded by (init_seed, step), so a resumed run resamples identically. Returns how
        many latents were resampled (a host sync, once per resampling)."""
        sae = self.sae
        dead = self.last_fired <= step - self.cfg.resample_steps
        dead_index = dead.nonzero().squeeze(1)
        if dead_index.numel() == 0:
            return 0
        loss = (sae(x)[0] - x).square().sum(1).square().cpu()
        n = min(dead_index.numel(), int(torch.count_nonzero(loss)))
        if n == 0:
            return 0
        generator = torch.Generator().manual_seed(stable_seed("sae-resample", self.cfg.init_seed, step))
        rows = torch.multinomial(loss, n, replacement=False, generator=generator).to(x.device)
        dead_index = dead_index[:n]
        centred = x[rows] - sae.b_pre
        unit = centred / torch.linalg.vector_norm(centred, dim=1, keepdim=True).clamp_min(1e-12)
        alive = torch.ones_like(dead) if bool(dead.all()) else ~dead  # norms from the alive (or, if none, all)
        sae.W_enc[:, dead_index] = unit.T * (0.2 * torch.linalg.vector_norm(sae.W_enc[:, alive], dim=0).mean())
        sae.b_enc[dead_index] = 0.0
        sae.W_dec[dead_index] = unit * torch.linalg.vector_norm(sae.W_dec[alive], dim=1).mean()
        for param, dim in ((sae.W_enc, 1), (sae.b_enc, 0), (sae.W_dec, 0)):
            for moment in self.optimizer.state[param].values():
                if moment.dim() > 0:  # exp_avg, exp_avg_sq; not the scalar step count
                    moment.index_fill_(dim, dead_index, 0.0)
        self.last_fired[dead_index] = step
        return n

    def fraction_alive(self, step: int) -> torch.Tensor:
        """Fraction of features that fired within the last `alive_window_tokens` tokens."""
        window_steps = max(1, self.cfg.alive_window_tokens // self.cfg.batch_size)
        return (self.last_fired > step - window_steps).float().mean()


def make_optimizer(sae: SparseAutoencoder, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam over the SAE's weights; with `lazy_encoder`, a latent's encoder column moves only on the
    batches where it fires (interplab.sae.optim)."""
    if not cfg.lazy_encoder:
        return torch.optim.Adam(sae.parameters(), lr=cfg.lr, foreach=True)
    rest = [p for p in sae.parameters() if p is not sae.W_enc]
    return LazyAdam([{"params": [sae.W_enc], "lazy_dim": 1}, {"params": rest}], lr=cfg.lr)


@dataclass(frozen=True)
class Member:
    """One SAE of a group: its config, its work dir (snapshots, resume state), the columns of the
    group's rows it reads (one layer of a multi-layer source; None: all of them) and where its
    training log grows while it trains (None: kept in memory only)."""

    cfg: TrainConfig
    work_dir: str | Path
    columns: slice | None = None
    log_path: str | Path | None = None

    @property
    def column_slice(self) -> slice:
        return self.columns or slice(None)


# What every member of a group must share: they read one stream and snapshot at the same steps.
SHARED_KEYS = ("batch_size", "training_tokens", "snapshot_tokens", "buffer_tokens", "data_seed", "normalize_tokens",
               "b_pre_init_tokens", "matmul_precision", "device")


class _MemberRun:
    """The training state of one member: weights, optimizer, λ controller, step, log rows."""

    def __init__(self, member: Member, scratch: Scratch, data_fingerprint: str) -> None:
        cfg = member.cfg
        self.cfg, self.work, self.columns = cfg, WorkDir(member.work_dir), member.column_slice
        self.fingerprint = cfg.fingerprint(data_fingerprint)
        self.sae = SparseAutoencoder(cfg.d_in, cfg.d_sae).to(cfg.device)
        self.optimizer = make_optimizer(self.sae, cfg)
        self.controller = LambdaController(cfg.l1, cfg.device)
        self.step_fn = FusedStep(self.sae, self.optimizer, self.controller, cfg, scratch)
        self.input_scale = 1.0
        self.rows: list[list[float]] = []
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.start = self._resume()
        self.csv = GrowingCsv(member.log_path, LOG_COLUMNS) if member.log_path is not None else None
        if self.csv is not None:
            self.csv.rewrite(self.rows)  # a resumed run drops the rows logged after its snapshot

    def _resume(self) -> int | None:
        """The step the saved state ends at, or None when the member starts afresh."""
        state = self.work.load_state(self.fingerprint)
        if state is None:
            self.work.clear()
            return None
        self.input_scale = state["input_scale"]
        self.sae.load_state_dict(state["sae"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.step_fn.last_fired.copy_(state["last_fired"])
        self.step_fn.ghost_latents = state["ghost_latents"].to(self.cfg.device)
        self.rows = state["rows"]
        log.info("%s: resuming from step %d (%d tokens)", self.work.path, state["step"], state["step"] * self.cfg.batch_size)
        return int(state["step"])

    def initialize(self, samples: torch.Tensor) -> None:
        cfg = self.cfg
        samples = samples[:, self.columns]
        if cfg.normalize_activations == "expected_average_only_in":
            self.input_scale = normalization_scale(samples[:cfg.normalize_tokens])
        b_pre = initial_b_pre(samples[:cfg.b_pre_init_tokens] * self.input_scale, cfg.b_pre_init)
        generator = torch.Generator().manual_seed(cfg.init_seed)
        init = SparseAutoencoder(cfg.d_in, cfg.d_sae).initialize(generator, b_pre, cfg.decoder_init_norm)
        self.sae.load_state_dict(init.state_dict())
        self.start = 0
        log.info("%s: input scale c = %.5g (%s); b_pre from the %s", self.work.path, self.input_scale,
                 cfg.normalize_activations, cfg.b_pre_init)

    def step(self, rows: torch.Tensor, step: int, measure: bool) -> None:
        x = rows[:, self.columns].mul(self.input_scale)
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr_at(step)
        stats = self.step_fn(x, step, measure)
        if self.cfg.resamples_at(step):
            resampled = self.step_fn.resample_dead(x, step)
            if resampled:
                log.info("%s: step %d: %d dead latents resampled", self.work.path, step, resampled)
        if stats is not None:
            self.pending.append((step, torch.cat([stats, self.step_fn.fraction_alive(step)[None]])))

    def snapshot(self, name: str, step: int) -> Snapshot:
        self.flush_log()
        for key in WEIGHT_NAMES:
            check_finite(getattr(self.sae, key), f"SAE weight {key} at step {step}", "check sae.lr and the input data")
        record = self.snapshot_record(name, step, self.controller.value.item())
        self.work.save_snapshot(name, {k: getattr(self.sae, k) for k in WEIGHT_NAMES},
                                {"step": str(step), "tokens": str(record.tokens), "l1_coefficient": repr(record.l1_coefficient),
                                 "input_scale": repr(self.input_scale)})
        if name != FINAL:
            self.work.save_state({
                "fingerprint": self.fingerprint, "step": step, "input_scale": self.input_scale,
                "sae": self.sae.state_dict(),
                "optimizer": self.optimizer.state_dict(), "controller": self.controller.state_dict(),
                "last_fired": self.step_fn.last_fired.cpu(), "ghost_latents": self.step_fn.ghost_latents.cpu(),
                "rows": self.rows,
            })
        row = self.rows[-1]
        log.info("%s: snapshot %s: %d tokens, mse %.4g, L0 %.1f, λ %.3g, alive %.3f",
                 self.work.path, name, record.tokens, row[2], row[6], row[7], row[8])
        return record

    def snapshot_record(self, name: str, step: int, l1_coefficient: float | None = None) -> Snapshot:
        if l1_coefficient is None:  # a snapshot taken before a restart: its λ is in its metadata
            with safe_open(str(self.work.snapshot_path(name)), framework="pt") as handle:
                l1_coefficient = float(handle.metadata()["l1_coefficient"])
        return Snapshot(name, step, step * self.cfg.batch_size, l1_coefficient, self.input_scale)

    def flush_log(self) -> None:
        """Move the logged device tensors to host rows and the growing CSV (the only host syncs of the
        loop: at snapshots and progress lines), and stop the run if training went non-finite: NaN
        weights must never reach a snapshot."""
        new = []
        for step, stats in self.pending:
            check_finite(stats, f"SAE training statistics at step {step} (MSE, L1, loss, L0, λ)",
                         "the activations or the optimiser diverged; check the input cache and sae.lr")
            new.append([step, step * self.cfg.batch_size, *stats.tolist()])
        self.pending.clear()
        self.rows.extend(new)
        if self.csv is not None:
            self.csv.append(new)


class GroupTrainer:
    """Trains several SAEs from one pass over one activation stream (as sparsify trains every hookpoint
    from one forward, and dictionary_learning a list of SAEs from one buffer).

    Every member sees the byte-identical batches it would see trained alone on the same source and
    seed (its columns of each row), so a member's numbers do not depend on its group. Each member
    keeps its own optimizer, λ controller, snapshots, log and resume state; after a kill every
    member resumes from its own last snapshot and the shared stream is replayed from the earliest.
    """

    def __init__(self, members: Mapping[str, Member], source: ActivationSource) -> None:
        if not members:
            raise ValueError("a group trainer needs at least one member")
        first = next(iter(members.values())).cfg
        for key, member in members.items():
            differ = [k for k in SHARED_KEYS if getattr(member.cfg, k) != getattr(first, k)]
            if differ:
                raise ValueError(f"group member {key} differs from the first in {differ}: members share one stream")
            width = len(range(source.d_model)[member.column_slice])
            if width != member.cfg.d_in:
                raise ValueError(f"member {key} reads {width} columns of the source but its SAE expects d_in={member.cfg.d_in}")
        self.cfg, self.source = first, source
        scratch: dict[tuple[int, int], Scratch] = {}
        self.runs = {}
        for key, member in members.items():
            shape = (member.cfg.d_in, member.cfg.d_sae)
            if shape not in scratch:
                scratch[shape] = Scratch.allocate(first.batch_size, *shape, first.device)
            self.runs[key] = _MemberRun(member, scratch[shape], source.fingerprint)

    def train(self) -> dict[str, TrainingRun]:
        cfg, runs = self.cfg, self.runs
        torch.set_float32_matmul_precision(cfg.matmul_precision)
        schedule = cfg.schedule()
        fresh = [run for run in runs.values() if run.start is None]
        if fresh:
            stream = self._stream()
            init_batches = math.ceil(max(cfg.b_pre_init_tokens, cfg.normalize_tokens) / cfg.batch_size)
            samples = torch.cat([next(stream) for _ in range(init_batches)])
            for run in fresh:
                run.initialize(samples)
        starts = {key: run.start for key, run in runs.items()}
        snapshots = {key: [run.snapshot_record(name, step) for name, step in schedule.items() if step <= run.start]
                     for key, run in runs.items()}
        first_step = min(starts.values())
        stream = self._stream(start_step=first_step)
        by_step = {step: name for name, step in schedule.items()}
        progress = Progress(f"SAE training ({len(runs)} SAEs)", cfg.n_steps * cfg.batch_size, "tokens",
                            done=first_step * cfg.batch_size)
        for step in range(first_step + 1, cfg.n_steps + 1):
            rows = next(stream)
            measure = step % cfg.log_every == 0 or step in by_step or step == 1
            for key, run in runs.items():
                if step <= starts[key]:
                    continue  # this member's saved state is already past this batch
                run.step(rows, step, measure)
                if step in by_step:
                    snapshots[key].append(run.snapshot(by_step[step], step))
            if measure and progress.due(step * cfg.batch_size):  # the clock only on logging steps; the flush syncs only then
                self._report(progress, step)
        for run in runs.values():
            run.flush_log()
        progress.finish(self._latest(), done=cfg.n_steps * cfg.batch_size)
        result = {}
        for key, run in runs.items():
            result[key] = TrainingRun(snapshots[key], pd.DataFrame(run.rows, columns=LOG_COLUMNS),
                                      resumed_from_step=starts[key])
        return result

    def _report(self, progress: Progress, step: int) -> None:
        """A progress line, after moving every member's logged rows to the host and its CSV."""
        for run in self.runs.values():
            run.flush_log()
        progress.update(step * self.cfg.batch_size, self._latest())

    def _latest(self) -> str:
        """The range over members of the last logged MSE and L0: enough to see training is sane."""
        last = [run.rows[-1] for run in self.runs.values() if run.rows]
        if not last:
            return ""
        mse, l0 = [row[LOG_COLUMNS.index("mse")] for row in last], [row[LOG_COLUMNS.index("l0")] for row in last]
        return f"mse {min(mse):.4g}–{max(mse):.4g}, L0 {min(l0):.1f}–{max(l0):.1f}"

    def _stream(self, start_step: int = 0):
        cfg = self.cfg
        return mixed_batches(self.source, cfg.batch_size, cfg.buffer_tokens, cfg.data_seed, start_step, cfg.device)


class SAETrainer:
    """Trains one SAE from an activation source: a group of one."""

    def __init__(self, cfg: TrainConfig, source: ActivationSource, work_dir: str | Path) -> None:
        if source.d_model != cfg.d_in:
            raise ValueError(f"activation source has d_model={source.d_model} but the SAE expects d_in={cfg.d_in}")
        self.group = GroupTrainer({"sae": Member(cfg, work_dir)}, source)
        self.member = self.group.runs["sae"]

    @property
    def sae(self) -> SparseAutoencoder:
        return self.member.sae

    @property
    def input_scale(self) -> float:
        return self.member.input_scale

    def train(self) -> TrainingRun:
        return self.group.train()["sae"]
