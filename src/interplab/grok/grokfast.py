"""Grokfast-EMA gradient filter (Lee et al. 2024, arXiv 2405.20233).

Treat each parameter's gradient sequence as a signal and amplify its slow component:
μ ← α·μ + (1−α)·g (μ starts at the first gradient seen), then g ← g + λ·μ. It runs between
`backward()` and `optimizer.step()`. α and λ always come from config: the reference code and its
README disagree on the defaults (0.98/2.0 vs 0.99/5.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class GrokfastEMA:
    alpha: float
    lamb: float
    _ema: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"Grokfast alpha must be in [0, 1), got {self.alpha}")

    @torch.no_grad()
    def filter_(self, model: torch.nn.Module) -> None:
        """Replace every parameter's .grad by g + λ·μ in place, updating the running mean μ."""
        for name, p in model.named_parameters():
            if not p.requires_grad or p.grad is None:
                continue
            ema = self._ema.get(name)
            if ema is None:
                self._ema[name] = ema = p.grad.detach().clone()
            else:
                ema.mul_(self.alpha).add_(p.grad, alpha=1.0 - self.alpha)
            p.grad.add_(ema, alpha=self.lamb)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._ema)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._ema = dict(state)
