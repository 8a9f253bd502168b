"""Elhage et al. toy model of superposition, trained for every student width × seed at once.

x ∈ R^F has x_i = 0 with probability α, else U[0, 1]; feature i has importance r^i. A model of
width d maps h = W x and x̂ = ReLU(Wᵀh + b) and minimises Σ_i I_i (t_i − x̂_i)², where the target
t is x itself (`direct`) or the output of a trained width-d_T teacher (`distill`).

All widths of one seed train as one tensor program: the weights live in a [seeds, widths, d_max, F]
tensor whose rows beyond each model's width stay zero (their gradients are masked), so a model's
numbers do not depend on which other widths or seeds share the batch. Each seed owns its data
stream and every (seed, width) its initialisation.

Why a hand-written backward (as the SAE step): with d ≤ 10 the step is memory-bound, a handful of
passes over [seeds, widths, batch, F] tensors, and autograd makes about three times as many
(temporaries for the bias add, ReLU, difference, square, weighting and each backward). The step
works in importance-scaled coordinates: with s_i = √I_i, ReLU commutes with the positive scale, so
s⊙x̂ = ReLU(Wᵀh·s + b·s) and the loss is the plain squared error ‖s⊙x̂ − s⊙t‖². The bias rides in
the decoder matmul as a row of ones under h, ReLU's backward runs in place, and the loss itself is
computed only on the steps that record it.

On a CPU the native engine (toy_native, a C kernel) does the same step in A = WᵀW, touching only
the nonzeros of the sparse input: 1.6–7× faster per step than this torch step on the paper grid. Both engines
draw the same data and agree to float rounding; `resolve_engine` picks one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from interplab import theory
from interplab.io import stable_seed
from interplab.progress import Progress
from interplab.toy_native import NativeStep, unavailable_reason

PROGRESS_EVERY = 50  # steps between progress checks
SETTLED_SHARE = 0.01  # see LossRecord
REPRESENTED_NORM = 0.5  # a feature counts as represented when its column of W has at least this norm


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
    convergence_tolerance: float = 0.0  # 0: train every step; else stop when window means settle
    curve_points: int = 60
    device: str = "cpu"
    engine: str = "auto"  # native (CPU kernel), torch, or auto: native where it builds on a CPU, else torch

    @property
    def mode(self) -> str:
        return "direct" if self.teacher_width is None else "distill"


@dataclass
class TrainedModels:
    """A batch of toy models, one [S, M_g, d_g, F] weight stack per width group, and their recorded losses.

    final_loss [S, M] is the mean loss over the last window of `final_fraction` of the steps run;
    curve_loss [P, S, M] the loss at the log-spaced `curve_steps` (1-based) reached before stopping.
    Model order (M) is the groups' widths in order, i.e. `widths` sorted.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    widths: tuple[int, ...]
    final_loss: np.ndarray
    curve_steps: np.ndarray
    curve_loss: np.ndarray
    steps_run: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [S, B, F] → reconstructions [S, M, B, F]."""
        outputs = []
        for weight, bias in zip(self.weights, self.biases):
            hidden = x.unsqueeze(1) @ weight.transpose(-1, -2)  # [S, M_g, B, d_g]
            outputs.append(torch.relu(hidden @ weight + bias.unsqueeze(2)))
        return torch.cat(outputs, 1)

    def features_represented(self) -> np.ndarray:
        """Features per model whose column of W has norm ≥ REPRESENTED_NORM: [S, M]."""
        return torch.cat([(torch.linalg.vector_norm(w, dim=2) >= REPRESENTED_NORM).sum(-1) for w in self.weights],
                         1).cpu().numpy()


def importance(n_features: int, decay: float, device: str = "cpu") -> torch.Tensor:
    """I_i = r^i, most important feature first."""
    return decay ** torch.arange(n_features, dtype=torch.float32, device=device)


class FeatureStream:
    """Fresh feature batches [S, B, F], one seeded stream per seed: each feature is 0 with probability α, else U[0, 1].

    One uniform draw v per entry suffices: ReLU(v − α)/(1 − α) is 0 with probability α and, given
    v ≥ α, uniform on [0, 1]. Each batch is drawn into one reused [S, B, F] buffer, which stays in
    cache (drawing many steps at once, then transposing them, took twice as long), so on the CPU
    a returned batch is valid until the next call. The streams are numpy's PCG64, which draws
    float32 about 1.6× faster than torch's CPU generator.

    `next_words` gives the same batches as the 32-bit words numpy makes its float32 uniforms from
    (v = (w >> 8)·2⁻²⁴), for the native engine, which draws x from them itself: half the time of
    `next`. A stream serves one of the two; with B·F even they yield the same sequence of x. Like
    `next`, it reuses one buffer: the returned words are valid until the next call.
    """

    def __init__(self, tag: str, seeds: tuple[int, ...], batch: int, n_features: int, alpha: float, device: str) -> None:
        self.generators = [np.random.Generator(np.random.PCG64(stable_seed(tag, seed))) for seed in seeds]
        self.shape = (len(seeds), batch, n_features)
        self.draws: np.ndarray | None = None  # allocated by the first call of next / next_words
        self.words: np.ndarray | None = None
        self.alpha, self.device = alpha, device

    def next(self) -> torch.Tensor:
        if self.draws is None:
            self.draws = np.empty(self.shape, dtype=np.float32)
        for generator, out in zip(self.generators, self.draws):
            generator.random(out=out, dtype=np.float32)
        x = torch.from_numpy(self.draws).to(self.device)
        return torch.relu_(x.sub_(self.alpha)).div_(1.0 - self.alpha)

    def next_words(self) -> np.ndarray:
        """[S, 2·⌈B·F/2⌉] uint32: each seed's batch, row-major, as numpy's random words (little-endian halves)."""
        if self.words is None:
            self.words = np.empty((self.shape[0], (self.shape[1] * self.shape[2] + 1) // 2), dtype=np.uint64)
        np.stack([generator.bit_generator.random_raw(self.words.shape[1]) for generator in self.generators],
                 out=self.words)
        return self.words.view(np.uint32)


ENGINES = ("auto", "native", "torch")


def resolve_engine(engine: str, device: str) -> str:
    """The engine a run uses: `auto` is native on a CPU where the kernel compiles, else torch."""
    if engine not in ENGINES:
        raise ValueError(f"toy engine {engine!r} is not one of {ENGINES}")
    if engine == "torch" or (engine == "auto" and device != "cpu"):
        return "torch"
    if device != "cpu":
        raise ValueError(f"toy.engine: native runs on the CPU, but the device is {device}; use auto or torch")
    reason = unavailable_reason()
    if reason is None:
        return "native"
    if engine == "native":
        raise RuntimeError(f"toy.engine: native, but the toy kernel cannot be built here: {reason}")
    logging.getLogger(__name__).warning("toy kernel unavailable, training with the torch engine: %s", reason)
    return "torch"


def _fast_adam(device: str) -> dict:
    """The fused Adam kernel where this torch has it for the device (same maths, fewer kernels)."""
    return {"fused": True} if device == "cpu" or device.startswith("cuda") else {}


def _weighted_loss(recon: torch.Tensor, target: torch.Tensor, imp: torch.Tensor) -> torch.Tensor:
    """Σ_i I_i (t_i − x̂_i)², averaged over the batch: [S, M]."""
    return ((target.unsqueeze(1) - recon) ** 2 * imp).sum(-1).mean(-1)


def _held_out_loss(models: TrainedModels, x: torch.Tensor, target: torch.Tensor, imp: torch.Tensor,
                   chunk: int = 256) -> torch.Tensor:
    """The weighted loss over all samples of x [S, N, F], in chunks small enough that the [S, M, chunk, F]
    temporaries stay in cache (on the paper grid, chunks of 4,096 samples took 5× as long as 256)."""
    total = sum(_weighted_loss(models.forward(x[:, i:i + chunk]), target[:, i:i + chunk], imp) * x[:, i:i + chunk].shape[1]
                for i in range(0, x.shape[1], chunk))
    return total / x.shape[1]


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


class FusedStep:
    """Forward, hand-written backward and Adam update of a [S, M, d, F] model stack, into buffers allocated once.

    In scaled coordinates z' = s⊙(Wᵀh + b) and L = ‖ReLU(z') − s⊙t‖²/B, so ∂L/∂z' = 2·r/B with
    r = (z' − s⊙t) masked where z' ≤ 0. Then ∂L/∂b = s⊙Σ_batch ∂L/∂z', ∂L/∂W (decoder use) =
    h·(∂L/∂z')ᵀ scaled by s, and ∂L/∂W (encoder use) = (W⊙s)·(∂L/∂z')ᵀ·x.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor, batch: int,
                 imp: torch.Tensor, lr: float) -> None:
        n_seeds, n_models, d_max, n_features = weight.shape
        stack, device = n_seeds * n_models, weight.device
        self.weight, self.bias, self.batch = weight, bias, batch
        self.scale = imp.sqrt()
        self.grad_mask = mask * (2.0 / batch)
        self.encoded = torch.empty(n_seeds, n_models * d_max, batch, device=device)
        self.hidden = torch.ones(stack, d_max + 1, batch, device=device)  # [hᵀ; 1]: the bias row stays 1
        self.decoder = torch.empty(stack, d_max + 1, n_features, device=device)  # [W⊙s; b⊙s]
        self.z = torch.empty(stack, batch, n_features, device=device)
        self.residual = torch.empty(stack, batch, n_features, device=device)
        self.decoder_grad = torch.empty(stack, d_max + 1, n_features, device=device)
        self.hidden_grad = torch.empty(stack, d_max, batch, device=device)
        self.encoder_grad = torch.empty(n_seeds, n_models * d_max, n_features, device=device)
        weight.grad, bias.grad = torch.zeros_like(weight), torch.zeros_like(bias)
        self.optimizer = torch.optim.Adam([weight, bias], lr=lr, **_fast_adam(str(device)))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, scaled_target: torch.Tensor, measure: bool) -> torch.Tensor | None:
        """One Adam step on x [S, B, F] towards s⊙t [S, B, F]; the batch loss [S, M] when `measure`."""
        n_seeds, n_models, d_max, n_features = self.weight.shape
        stack = n_seeds * n_models
        torch.bmm(self.weight.view(n_seeds, n_models * d_max, n_features), x.transpose(1, 2), out=self.encoded)
        self.hidden[:, :d_max].copy_(self.encoded.view(stack, d_max, self.batch))
        torch.mul(self.weight.view(stack, d_max, n_features), self.scale, out=self.decoder[:, :d_max])
        torch.mul(self.bias.view(stack, 1, n_features), self.scale, out=self.decoder[:, d_max:])
        z = torch.bmm(self.hidden.transpose(1, 2), self.decoder, out=self.z)
        residual = self.residual.view(n_seeds, n_models, self.batch, n_features)
        torch.sub(z.view_as(residual), scaled_target.unsqueeze(1), out=residual)
        grad_z = torch.ops.aten.threshold_backward.grad_input(self.residual, z, 0.0, grad_input=self.residual)
        torch.bmm(self.hidden, grad_z, out=self.decoder_grad)
        torch.bmm(self.decoder[:, :d_max], grad_z.transpose(1, 2), out=self.hidden_grad)
        torch.bmm(self.hidden_grad.view(n_seeds, n_models * d_max, self.batch), x, out=self.encoder_grad)
        decoder_grad = self.decoder_grad.view(n_seeds, n_models, d_max + 1, n_features)
        torch.addcmul(self.encoder_grad.view_as(self.weight), decoder_grad[:, :, :d_max], self.scale,
                      out=self.weight.grad).mul_(self.grad_mask)
        torch.mul(decoder_grad[:, :, d_max], self.scale * (2.0 / self.batch), out=self.bias.grad)
        self.optimizer.step()
        if not measure:
            return None
        error = torch.sub(z.relu_().view_as(residual), scaled_target.unsqueeze(1), out=residual)  # z is free now
        return torch.linalg.vector_norm(error, dim=(2, 3)).square_().div_(self.batch)


class LossRecord:
    """Which steps measure the loss, the log-spaced curve, window means and the optional convergence stop.

    Windows of `final_fraction` of the steps are aligned to end at the last step, so without a stop
    the final loss is the mean over exactly the last `final_fraction` of the steps. With a tolerance,
    every step is measured and training stops once every model's window mean moved by less than
    `tolerance` × the previous window's mean since then. A loss that has fallen below SETTLED_SHARE of
    its first window's mean measures its change against that share instead: near zero, its relative
    change is noise that cannot move a floor.
    """

    def __init__(self, steps: int, final_fraction: float, curve_points: int, tolerance: float) -> None:
        self.steps, self.tolerance = steps, tolerance
        self.window = max(1, int(round(steps * final_fraction)))
        self.first_window_start = steps % self.window
        self.curve_at = set(_curve_steps(steps, curve_points).tolist())
        self.curve: list[tuple[int, np.ndarray]] = []
        self.window_sum: torch.Tensor | float = 0.0
        self.window_means: list[torch.Tensor] = []

    def in_windows(self, step: int) -> bool:
        return step >= (self.first_window_start if self.tolerance > 0 else self.steps - self.window)

    def measures(self, step: int) -> bool:
        return self.in_windows(step) or step in self.curve_at

    def add(self, step: int, loss: torch.Tensor) -> bool:
        """Record the loss of `step` (0-based); True when training should stop here."""
        if step in self.curve_at:
            self.curve.append((step + 1, loss.cpu().numpy()))
        if not self.in_windows(step):
            return False
        self.window_sum = self.window_sum + loss.double()
        if (step + 1 - self.first_window_start) % self.window:
            return False
        self.window_means.append(self.window_sum / self.window)
        self.window_sum = 0.0
        if self.tolerance <= 0 or len(self.window_means) < 2:
            return False
        previous, latest = self.window_means[-2], self.window_means[-1]
        scale = torch.maximum(previous, SETTLED_SHARE * self.window_means[0])
        return bool(((latest - previous).abs() <= self.tolerance * scale).all())

    @property
    def final_loss(self) -> np.ndarray:
        return self.window_means[-1].cpu().numpy()


def train_models(
    cfg: ToyConfig,
    widths: tuple[int, ...],
    steps: int,
    tag: str,
    teacher: TrainedModels | None = None,
) -> TrainedModels:
    """Train one model per (seed, width) with Adam on fresh batches; the target is x or the teacher's output.

    The native engine trains every width as one stack (its cost does not grow with the padded
    width); the torch engine trains widths in groups (`width_groups`) that all read the same batch,
    drawn once per seed and step.
    """
    device = cfg.device
    imp = importance(cfg.n_features, cfg.importance_decay, device)
    stream = FeatureStream("toy-data-" + tag, cfg.seeds, cfg.batch_size, cfg.n_features, cfg.alpha, device)
    if resolve_engine(cfg.engine, device) == "native":
        groups = [tuple(sorted(widths))]
        fixed = None if teacher is None else (teacher.weights[0][:, 0], teacher.biases[0][:, 0])
        steppers = [NativeStep(*_init_models(groups[0], cfg.seeds, cfg.n_features, tag, device), cfg.batch_size,
                               imp, cfg.lr, cfg.alpha, fixed)]

        def draw() -> tuple:
            return (stream.next_words(),)
    else:
        groups = width_groups(widths)
        steppers = [FusedStep(*_init_models(g, cfg.seeds, cfg.n_features, tag, device), cfg.batch_size, imp, cfg.lr)
                    for g in groups]
        scale = steppers[0].scale
        scaled_teacher = None if teacher is None else ScaledTeacher(teacher, scale)

        def draw() -> tuple:
            x = stream.next()
            return x, torch.mul(x, scale) if scaled_teacher is None else scaled_teacher(x)
    record = LossRecord(steps, cfg.final_fraction, cfg.curve_points, cfg.convergence_tolerance)
    steps_run = steps
    progress = Progress(f"{tag} ({len(cfg.seeds)} seeds × {len(widths)} widths)", steps, "steps")
    for step in range(steps):
        if step % PROGRESS_EVERY == 0:
            progress.update(step)
        batch = draw()
        measure = record.measures(step)
        losses = [stepper(*batch, measure) for stepper in steppers]
        if measure and record.add(step, torch.cat(losses, 1)):
            steps_run = step + 1
            break
    progress.finish("converged early" if steps_run < steps else "", done=steps_run)
    curve_steps = np.array([s for s, _ in record.curve], dtype=int)
    curve_loss = np.stack([c for _, c in record.curve])
    return TrainedModels([st.weight.detach() for st in steppers], [st.bias.detach() for st in steppers],
                         tuple(w for g in groups for w in g), record.final_loss, curve_steps, curve_loss, steps_run)


class ScaledTeacher:
    """s⊙(teacher output) = ReLU([h; 1]ᵀ[W⊙s; b⊙s]) of a one-width teacher: one matmul and an in-place ReLU per batch."""

    def __init__(self, teacher: TrainedModels, scale: torch.Tensor) -> None:
        weight, bias = teacher.weights[0][:, 0], teacher.biases[0][:, 0]  # [S, d_T, F], [S, F]
        self.weight = weight
        self.decoder = torch.cat([weight * scale, (bias * scale).unsqueeze(1)], 1)  # fixed while students train

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.bmm(x, self.weight.transpose(1, 2))  # [S, B, d_T]
        ones = torch.ones(*hidden.shape[:2], 1, device=x.device)
        return torch.bmm(torch.cat([hidden, ones], 2), self.decoder).relu_()


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

    Each row: final and held-out loss, loss curve, features represented, and the naive and refined
    floors from the target's per-feature mass I_i·Var(t_i) on fresh samples. With the convergence
    stop on, all models of the configuration stop together, when the slowest has settled.

    Var, not E[t²]: the output bias b lets any model emit the constant E[t_i], so a dropped feature
    costs only its variance (and a feature the teacher does not represent, a constant, costs 0).
    """
    tag = f"F{cfg.n_features}_a{cfg.alpha}_dT{cfg.teacher_width}"
    cfg = replace(cfg, engine=resolve_engine(cfg.engine, cfg.device))  # once: a failed build is not retried per phase
    teacher = None
    if cfg.teacher_width is not None:
        teacher = train_models(cfg, (cfg.teacher_width,), cfg.teacher_steps, tag + "-teacher")
    students = train_models(cfg, cfg.student_widths, cfg.steps, tag + "-student", teacher)

    imp = importance(cfg.n_features, cfg.importance_decay, cfg.device)
    x = FeatureStream("toy-eval-" + tag, cfg.seeds, cfg.eval_samples, cfg.n_features, cfg.alpha, cfg.device).next()
    target = x if teacher is None else _teacher_target(teacher, x)
    eval_loss = _held_out_loss(students, x, target, imp).cpu().numpy()  # [S, M]
    feature_mass = (imp * target.var(1, correction=0)).cpu().numpy()  # [S, F]
    represented = students.features_represented()  # [S, M]
    teacher_represented = teacher.features_represented()[:, 0] if teacher is not None else None

    rows = []
    widths = np.asarray(students.widths)
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
                    "final_loss": float(students.final_loss[s, m]),
                    "eval_loss": float(eval_loss[s, m]),
                    "steps_run": students.steps_run,
                    "pred_floor_refined": float(refined[m]),
                    "pred_floor_naive": float(naive[m]),
                    "target_mass": float(mass.sum()),
                    "feature_mass": mass.tolist(),
                    "features_represented": int(represented[s, m]),
                    "features_available": cfg.n_features if teacher is None else int(teacher_represented[s]),
                    "curve_steps": students.curve_steps.tolist(),
                    "curve_loss": students.curve_loss[:, s, m].tolist(),
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
                    convergence_tolerance=section["convergence_tolerance"],
                    device=device,
                    engine=section["engine"],
                )
    return configs
