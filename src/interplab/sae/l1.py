"""The L1 penalty of each trial: its form (`sum` or `mean`) and how λ is set (fixed or adaptive).

`sum`: Σ_features z averaged over tokens. `mean`: averaged over tokens and features (= sum / F),
so the same λ is F times weaker. The adaptive trial moves λ with a proportional controller,
λ ← clamp(λ·(1 + rate·e), λ_min, λ_max) with e = clamp((L0 − L0*)/L0*, −1, 1), every
`update_interval` steps, using the L0 of the step's batch. The error is clipped because L0 starts
near F/2, tens of times the target: unclipped, λ would jump by that factor in a few steps, kill
most features (a dead ReLU feature gets no gradient and never returns) and then fall back by at
most `rate` per update. Clipped, λ moves at most ±rate per update either way. λ lives on the
training device so the update never forces a host sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

L1Form = Literal["sum", "mean"]


@dataclass(frozen=True)
class AdaptiveL1:
    target_l0: float
    rate: float = 0.01
    update_interval: int = 1
    bounds: tuple[float, float] = (1e-8, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not 0 < lo < hi:
            raise ValueError(f"adaptive L1 bounds must satisfy 0 < min < max, got {self.bounds}")
        if not 0 < self.rate < 1:
            raise ValueError(f"adaptive L1 rate must be in (0, 1) so λ stays positive, got {self.rate}")
        if self.target_l0 <= 0 or self.update_interval < 1:
            raise ValueError("adaptive L1 needs target_l0 > 0 and update_interval >= 1")


@dataclass(frozen=True)
class L1Policy:
    form: L1Form
    coefficient: float  # the fixed λ, or the controller's starting λ
    adaptive: AdaptiveL1 | None = None

    def __post_init__(self) -> None:
        if self.form not in ("sum", "mean"):
            raise ValueError(f"unknown L1 form {self.form!r}: use sum or mean")
        if self.coefficient < 0:
            raise ValueError(f"L1 coefficient must be >= 0, got {self.coefficient}")

    def per_feature_weight(self, d_sae: int) -> float:
        """What one token's Σ_f z is multiplied by in the L1 term (before λ and the 1/batch mean)."""
        return 1.0 if self.form == "sum" else 1.0 / d_sae


class LambdaController:
    """λ as a device tensor: constant for a fixed trial, steered toward a target L0 otherwise."""

    def __init__(self, policy: L1Policy, device: str | torch.device = "cpu") -> None:
        self.policy = policy
        self.value = torch.tensor(float(policy.coefficient), dtype=torch.float32, device=device)

    def wants_l0(self, step: int) -> bool:
        adaptive = self.policy.adaptive
        return adaptive is not None and step % adaptive.update_interval == 0

    def update(self, step: int, l0: torch.Tensor) -> None:
        """Feed the batch L0 measured at `step` (only when `wants_l0(step)`)."""
        if not self.wants_l0(step):
            return
        adaptive = self.policy.adaptive
        relative_error = ((l0 - adaptive.target_l0) / adaptive.target_l0).clamp_(-1.0, 1.0)
        self.value.mul_(relative_error.mul_(adaptive.rate).add_(1.0)).clamp_(*adaptive.bounds)

    def state_dict(self) -> dict:
        return {"value": self.value.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.value.copy_(state["value"])
