"""Adam that leaves alone the latents a batch did not touch (TensorFlow Addons' LazyAdam, per latent).

Why: a ReLU latent that stops firing gets exactly zero gradient, yet Adam's momentum keeps moving
its encoder for ~1/(1 − β1) more steps in the direction that silenced it. Under a rising L1 (trial
C's λ ramp) the latents at the edge of firing are carried past the edge and never return: on the
default, 44–107 of 1,024 latents per layer were dead when C reached its target with plain Adam,
6–9 with the encoder updated lazily (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class LazyAdam(torch.optim.Optimizer):
    """Adam (torch's formula and bias correction), except that a parameter group with a `lazy_dim`
    is updated only along the slices of that dimension whose gradient is non-zero this step: their
    moments decay and they move; the other slices keep their moments and values. Bias correction
    uses the global step, as LazyAdam does. Groups with `lazy_dim` None are plain Adam."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, lazy_dim=None))

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad, state = param.grad, self.state[param]
                if not state:
                    state["step"] = torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = state["step"].item()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lazy_dim = group["lazy_dim"]
                if lazy_dim is None:
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                else:  # the untouched slices have grad 0, so only their decay needs masking
                    others = [d for d in range(grad.dim()) if d != lazy_dim % grad.dim()]
                    touched = grad.ne(0).any(dim=others, keepdim=True) if others else grad.ne(0)
                    exp_avg.mul_(torch.where(touched, beta1, 1.0)).add_(grad, alpha=1 - beta1)
                    exp_avg_sq.mul_(torch.where(touched, beta2, 1.0)).addcmul_(grad, grad, value=1 - beta2)
                denom = exp_avg_sq.sqrt().div_(math.sqrt(1 - beta2**step)).add_(group["eps"])
                update = exp_avg.div(denom)
                if lazy_dim is not None:
                    update.mul_(touched)
                param.add_(update, alpha=-group["lr"] / (1 - beta1**step))
