"""The L1 penalty of each trial: its form (`sum` or `mean`) and how λ is set (fixed or adaptive).

`sum`: Σ_features z·‖d‖ averaged over tokens; `mean`: also averaged over features (= sum / F), so
the same λ is F times weaker (‖d‖ is the decoder-row norm, see interplab.sae.model).

The adaptive controller steers λ so the L0 converges on a target without overshoot:
- a warm-up: λ ramps linearly from 0 over `warmup_steps` while the controller only watches, so the
  dictionary learns to reconstruct before sparsity pressure can kill latents it has not used yet;
- every `update_interval` steps it folds the batch L0 into an exponential moving average (weight
  `1 − ema` on the new value), which removes batch noise;
- then a gain in log space on the error predicted `horizon` steps ahead from the EMA's trend,
  log λ ← log λ + rate·clamp(log(L0_ema/target) + horizon·d log L0_ema/dt, −1, 1). L0 is close to
  a power law in λ, so equal relative errors above and below the target give equal moves, and λ
  can neither go negative nor jump by the factor of ~F/(2·target) L0 starts at. L0 lags λ (the
  weights must move first): a controller that acts on the present error keeps raising λ while L0
  is already falling toward the target, and overshoots; the trend term stops raising λ once the
  present fall will reach the target within the horizon.
Start λ below its equilibrium: λ too high early kills latents (a dead ReLU latent gets no gradient
and never returns), while approached from below λ rises monotonically onto its target.
λ lives on the training device so the update never forces a host sync.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

L1Form = Literal["sum", "mean"]


@dataclass(frozen=True)
class AdaptiveL1:
    target_l0: float
    rate: float = 0.05
    update_interval: int = 10
    ema: float = 0.5
    horizon: float = 100.0  # steps
    warmup_steps: int = 0
    bounds: tuple[float, float] = (1e-8, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not 0 < lo < hi:
            raise ValueError(f"adaptive L1 bounds must satisfy 0 < min < max, got {self.bounds}")
        if not 0 < self.rate <= 1:
            raise ValueError(f"adaptive L1 rate (log-λ gain) must be in (0, 1], got {self.rate}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"adaptive L1 ema must be in [0, 1), got {self.ema}")
        if self.target_l0 <= 0 or self.update_interval < 1 or self.warmup_steps < 0 or self.horizon < 0:
            raise ValueError("adaptive L1 needs target_l0 > 0, update_interval >= 1, warmup_steps >= 0 and horizon >= 0")


@dataclass(frozen=True)
class L1Policy:
    form: L1Form
    coefficient: float  # the fixed λ, or the controller's starting λ (reached at the end of the warm-up)
    adaptive: AdaptiveL1 | None = None

    def __post_init__(self) -> None:
        if self.form not in ("sum", "mean"):
            raise ValueError(f"unknown L1 form {self.form!r}: use sum or mean")
        if self.coefficient < 0:
            raise ValueError(f"L1 coefficient must be >= 0, got {self.coefficient}")

    def per_feature_weight(self, d_sae: int) -> float:
        """What one token's Σ_f z·‖d_f‖ is multiplied by in the L1 term (before λ and the 1/batch mean)."""
        return 1.0 if self.form == "sum" else 1.0 / d_sae


class LambdaController:
    """λ as a device tensor: constant for a fixed trial, steered toward a target L0 otherwise."""

    def __init__(self, policy: L1Policy, device: str | torch.device = "cpu") -> None:
        self.policy = policy
        self.value = torch.tensor(float(policy.coefficient), dtype=torch.float32, device=device)
        self.l0_ema = torch.tensor(math.nan, dtype=torch.float32, device=device)
        self.slope = torch.tensor(0.0, dtype=torch.float32, device=device)  # Δ log L0_ema per update

    def wants_l0(self, step: int) -> bool:
        adaptive = self.policy.adaptive
        return adaptive is not None and step % adaptive.update_interval == 0

    def coefficient(self, step: int) -> torch.Tensor:
        """The λ that applies at `step` (the warm-up ramp times the controller's λ)."""
        adaptive = self.policy.adaptive
        if adaptive is None or step >= adaptive.warmup_steps:
            return self.value
        return self.value * (step / adaptive.warmup_steps)

    def update(self, step: int, l0: torch.Tensor) -> None:
        """Feed the batch L0 measured at `step` (only when `wants_l0(step)`)."""
        if not self.wants_l0(step):
            return
        adaptive = self.policy.adaptive
        previous = torch.where(self.l0_ema.isnan(), l0, self.l0_ema).clamp_min(1e-6)
        ema = (previous * adaptive.ema + l0 * (1.0 - adaptive.ema)).clamp_min(1e-6)
        self.slope.copy_(torch.log(ema / previous))
        self.l0_ema.copy_(ema)
        if step < adaptive.warmup_steps:
            return
        predicted = torch.log(ema / adaptive.target_l0) + self.slope * (adaptive.horizon / adaptive.update_interval)
        lo, hi = adaptive.bounds
        self.value.mul_(torch.exp(predicted.clamp_(-1.0, 1.0).mul_(adaptive.rate))).clamp_(lo, hi)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).detach().cpu().clone() for name in ("value", "l0_ema", "slope")}

    def load_state_dict(self, state: dict) -> None:
        for name in ("value", "l0_ema", "slope"):
            getattr(self, name).copy_(state[name])
