"""Elhage et al. toy model of superposition, trained for every student width × seed at once.

x ∈ R^F has x_i = 0 with probability α, else U[0, 1]; feature i has importance r^i. A model of
width d maps h = W x and x̂ = ReLU(Wᵀh + b) and minimises Σ_i I_i (t_i − x̂_i)², where the target
t is x itself (`direct`) or the output of a trained width-d_T teacher (`distill`).

All widths and seeds of one configuration train as one tensor program: the weights of every
model live in a single [seeds, widths, d_max, F] tensor whose rows beyond each model's width are
masked to zero, so a model's gradients and Adam state never touch another's. Each seed owns its
data stream and every (seed, width) its initialisation, so a model's numbers do not depend on
which other widths or seeds share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from interplab import theory
from interplab.io import stable_seed

DATA_CHUNK = 50  # steps of data drawn per generator call


@dataclass(frozen=True)
class ToyConfig:
    n_features: int
    alpha: float
    student_widths: tuple[int, ...]
    seeds: tuple[int, ...]
    teacher_width: int | None = None  # None: students reconstruct x directly
    importance_decay: float = 0.9
    steps: int = 3000
    teacher_steps: int = 3000
    batch_size: int = 1024
    lr: float = 3e-3
    eval_samples: int = 32768
    final_fraction: float = 0.1
    curve_points: int = 60
    device: str = "cpu"

    @property
    def mode(self) -> str:
        return "direct" if self.teacher_width is None else "distill"


@dataclass
class TrainedModels:
    """Weights of a batch of toy models: W [S, M, d_max, F], b [S, M, F], per-step losses [steps, S, M]."""

    weight: torch.Tensor
    bias: torch.Tensor
    widths: tuple[int, ...]
    step_losses: torch.Tensor = field(repr=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [S, B, F] → reconstructions [S, M, B, F]."""
        return _forward(self.weight, self.bias, x)


def importance(n_features: int, decay: float, device: str = "cpu") -> torch.Tensor:
    """I_i = r^i, most important feature first."""
    return decay ** torch.arange(n_features, dtype=torch.float32, device=device)


def sample_features(gens: list[torch.Generator], batch: int, n_features: int, alpha: float, device: str,
                    chunk: int = 1) -> torch.Tensor:
    """`chunk` batches per seed, [chunk, S, B, F]: each feature is 0 with probability α, else U[0, 1].

    One uniform draw v per entry suffices: ReLU(v − α)/(1 − α) is 0 with probability α and,
    given v ≥ α, uniform on [0, 1].
    """
    out = torch.empty(chunk, len(gens), batch, n_features, device=device)
    for s, gen in enumerate(gens):
        torch.rand(chunk, batch, n_features, generator=gen, device=device, out=out[:, s])
    return torch.relu_(out.sub_(alpha)).div_(1.0 - alpha)


def _fast_adam(device: str) -> dict:
    """The fused Adam kernel where this torch has it for the device (same maths, fewer kernels)."""
    return {"fused": True} if device == "cpu" or device.startswith("cuda") else {}


def _forward(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    hidden = x.unsqueeze(1) @ weight.transpose(-1, -2)  # [S, M, B, d]
    return torch.relu(hidden @ weight + bias.unsqueeze(2))  # [S, M, B, F]


def _weighted_loss(recon: torch.Tensor, target: torch.Tensor, imp: torch.Tensor) -> torch.Tensor:
    """Σ_i I_i (t_i − x̂_i)², averaged over the batch: [S, M]."""
    return ((target.unsqueeze(1) - recon) ** 2 * imp).sum(-1).mean(-1)


def _init_models(widths: tuple[int, ...], seeds: tuple[int, ...], n_features: int, tag: str, device: str):
    d_max = max(widths)
    weight = torch.zeros(len(seeds), len(widths), d_max, n_features)
    for s, seed in enumerate(seeds):
        for m, width in enumerate(widths):
            gen = torch.Generator().manual_seed(stable_seed("toy-init", tag, seed, width))
            std = (2.0 / (width + n_features)) ** 0.5  # Xavier-normal for a width×F matrix
            weight[s, m, :width] = torch.randn(width, n_features, generator=gen) * std
    mask = (torch.arange(d_max)[None, :] < torch.tensor(widths)[:, None]).float()  # [M, d_max]
    return weight.to(device), torch.zeros(len(seeds), len(widths), n_features, device=device), mask[None, :, :, None].to(device)


def train_models(
    cfg: ToyConfig,
    widths: tuple[int, ...],
    steps: int,
    tag: str,
    teacher: TrainedModels | None = None,
) -> TrainedModels:
    """Train one model per (seed, width) with Adam on fresh batches; the target is x or the teacher's output."""
    device = cfg.device
    imp = importance(cfg.n_features, cfg.importance_decay, device)
    weight, bias, mask = _init_models(widths, cfg.seeds, cfg.n_features, tag, device)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    opt = torch.optim.Adam([weight, bias], lr=cfg.lr, **_fast_adam(device))
    gens = [torch.Generator(device=device).manual_seed(stable_seed("toy-data", tag, seed)) for seed in cfg.seeds]
    losses = torch.empty(steps, len(cfg.seeds), len(widths), device=device)
    for step in range(steps):
        if step % DATA_CHUNK == 0:
            data = sample_features(gens, cfg.batch_size, cfg.n_features, cfg.alpha, device, DATA_CHUNK)
        x = data[step % DATA_CHUNK]
        target = x if teacher is None else _teacher_target(teacher, x)
        loss = _weighted_loss(_forward(weight * mask, bias, x), target, imp)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # models share no parameters, so the sum trains each independently
        opt.step()
        losses[step] = loss.detach()
    return TrainedModels((weight * mask).detach(), bias.detach(), widths, losses.cpu())


@torch.no_grad()
def _teacher_target(teacher: TrainedModels, x: torch.Tensor) -> torch.Tensor:
    return teacher.forward(x)[:, 0]  # a teacher batch holds one width: [S, B, F]


def _curve_steps(steps: int, points: int) -> np.ndarray:
    """Log-spaced step indices, so the early drop and the late plateau are both resolved."""
    return np.unique(np.geomspace(1, steps, points).astype(int)) - 1


def width_groups(widths: tuple[int, ...], ratio: float = 8.0) -> list[tuple[int, ...]]:
    """Split sorted widths into groups whose largest is at most `ratio` × their smallest.

    A group pads every model to its largest width, so grouping keeps the padding waste bounded
    while still training many models per tensor program.
    """
    groups: list[list[int]] = []
    for width in sorted(widths):
        if groups and width <= ratio * groups[-1][0]:
            groups[-1].append(width)
        else:
            groups.append([width])
    return [tuple(g) for g in groups]


@torch.no_grad()
def run_config(cfg: ToyConfig) -> pd.DataFrame:
    """Train students (and the teacher in distill mode) for one configuration; one row per (seed, width).

    Each row carries the measured final loss (mean of the last `final_fraction` of steps), the
    held-out loss on fresh samples, a log-spaced loss curve, and the theory's naive and refined
    floors computed from the target's measured per-feature mass I_i·E[t_i²].
    """
    tag = f"F{cfg.n_features}_a{cfg.alpha}_dT{cfg.teacher_width}"
    teacher = None
    if cfg.teacher_width is not None:
        with torch.enable_grad():
            teacher = train_models(cfg, (cfg.teacher_width,), cfg.teacher_steps, tag + "-teacher")
    with torch.enable_grad():
        groups = [train_models(cfg, g, cfg.steps, tag + "-student", teacher) for g in width_groups(cfg.student_widths)]

    imp = importance(cfg.n_features, cfg.importance_decay, cfg.device)
    eval_gens = [torch.Generator(device=cfg.device).manual_seed(stable_seed("toy-eval", tag, s)) for s in cfg.seeds]
    x = sample_features(eval_gens, cfg.eval_samples, cfg.n_features, cfg.alpha, cfg.device)[0]
    target = x if teacher is None else _teacher_target(teacher, x)
    eval_loss = torch.cat([_weighted_loss(g.forward(x), target, imp) for g in groups], 1).cpu().numpy()  # [S, M]
    feature_mass = (imp * (target**2).mean(1)).cpu().numpy()  # [S, F]

    n_final = max(1, int(round(cfg.steps * cfg.final_fraction)))
    step_losses = torch.cat([g.step_losses for g in groups], 2)  # [steps, S, M]
    final_loss = step_losses[-n_final:].mean(0).numpy()  # [S, M]
    curve_idx = _curve_steps(cfg.steps, cfg.curve_points)
    curves = step_losses[curve_idx].numpy()  # [P, S, M]

    rows = []
    widths = np.asarray(sorted(cfg.student_widths))
    for s, seed in enumerate(cfg.seeds):
        mass = feature_mass[s]
        refined = theory.refined_floor(widths, cfg.alpha, mass)
        naive = theory.naive_floor(widths, cfg.alpha, cfg.n_features, eps_inf=float(mass.sum()))
        for m, width in enumerate(widths):
            rows.append(
                {
                    "mode": cfg.mode,
                    "n_features": cfg.n_features,
                    "alpha": cfg.alpha,
                    "teacher_width": cfg.teacher_width if cfg.teacher_width is not None else -1,
                    "seed": seed,
                    "student_width": int(width),
                    "final_loss": float(final_loss[s, m]),
                    "eval_loss": float(eval_loss[s, m]),
                    "pred_floor_refined": float(refined[m]),
                    "pred_floor_naive": float(naive[m]),
                    "target_mass": float(mass.sum()),
                    "curve_steps": (curve_idx + 1).tolist(),
                    "curve_loss": curves[:, s, m].tolist(),
                }
            )
    return pd.DataFrame(rows)


def auto_widths(max_width: int, n_widths: int) -> tuple[int, ...]:
    """About `n_widths` log-spaced integer widths from 1 to `max_width` inclusive."""
    return tuple(int(w) for w in np.unique(np.round(np.geomspace(1, max_width, n_widths)).astype(int)))


def run_name(n_features: int, alpha: float, teacher_width: int | None) -> str:
    """File stem of one configuration: F{F}_a{alpha}_dT{d_T}, or F{F}_a{alpha}_direct.

    α is written as its shortest round-trip repr, so two different sparsities never share a name."""
    teacher = "direct" if teacher_width is None else f"dT{teacher_width}"
    return f"F{n_features}_a{float(alpha)!r}_{teacher}"


def grid(section: dict, device: str = "cpu") -> dict[str, ToyConfig]:
    """Every configuration of the config's `toy` section, keyed by its run name."""
    teachers = [None] if section["mode"] == "direct" else list(section["teacher_widths"])
    configs = {}
    for n_features in section["n_features"]:
        for alpha in section["alphas"]:
            for teacher in teachers:
                if section["student_widths"] == "auto":
                    widths = auto_widths(n_features if teacher is None else teacher, section["n_widths"])
                else:
                    widths = tuple(sorted(set(section["student_widths"])))
                configs[run_name(n_features, alpha, teacher)] = ToyConfig(
                    n_features=n_features,
                    alpha=float(alpha),
                    student_widths=widths,
                    seeds=tuple(range(section["n_seeds"])),
                    teacher_width=teacher,
                    importance_decay=section["importance_decay"],
                    steps=section["steps"],
                    teacher_steps=section["teacher_steps"],
                    batch_size=section["batch_size"],
                    lr=section["lr"],
                    eval_samples=section["eval_samples"],
                    final_fraction=section["final_fraction"],
                    device=device,
                )
    return configs
