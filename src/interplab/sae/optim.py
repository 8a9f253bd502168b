"""Adam that leaves alone the latents a batch did not touch (TensorFlow Addons' LazyAdam, per latent).

Why: a ReLU latent that stops firing gets exactly zero gradient, yet Adam's momentum keeps moving
its encoder for ~1/(1 − β1) more steps in the direction that silenced it, and its shrinking second
moment makes its next update large. Under a rising L1 (trial C's λ ramp) the latents at the edge of
firing are carried past the edge and never return: on the default, 44–107 of 1,024 latents per
layer were dead when C reached its target with plain Adam, 0–11 with the encoder updated lazily
(`sae.lazy_encoder`; off by default, see config.yaml for the price).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class LazyAdam(torch.optim.Optimizer):
    """Adam (torch's formula and bias correction), except that a parameter group with a `lazy_dim`
    is updated only along the slices of that dimension whose gradient is non-zero this step: their
    moments decay and they move; the other slices keep their moments and values. Bias correction
    uses the global step, as LazyAdam does. Groups with `lazy_dim` None are plain Adam, updated
    with torch's multi-tensor (foreach) ops: the SAE step is short, so per-op overhead counts."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, lazy_dim=None))

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for param in params:
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros(())
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
            step = self.state[params[0]]["step"].item()  # the group's params are stepped together
            beta1, beta2 = group["betas"]
            step_size = group["lr"] / (1 - beta1**step)
            bias2_sqrt = math.sqrt(1 - beta2**step)
            if group["lazy_dim"] is None:
                self._dense(params, beta1, beta2, step_size, bias2_sqrt, group["eps"])
            else:
                for param in params:
                    self._lazy(param, group["lazy_dim"], beta1, beta2, step_size, bias2_sqrt, group["eps"])

    def _dense(self, params: list[torch.Tensor], beta1: float, beta2: float, step_size: float,
               bias2_sqrt: float, eps: float) -> None:
        grads = [p.grad for p in params]
        exp_avgs = [self.state[p]["exp_avg"] for p in params]
        exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denoms, bias2_sqrt)
        torch._foreach_add_(denoms, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denoms, -step_size)

    def _lazy(self, param: torch.Tensor, lazy_dim: int, beta1: float, beta2: float, step_size: float,
              bias2_sqrt: float, eps: float) -> None:
        grad, state = param.grad, self.state[param]
        others = [d for d in range(grad.dim()) if d != lazy_dim % grad.dim()]
        touched = grad.ne(0).any(dim=others, keepdim=True) if others else grad.ne(0)
        # The untouched slices have grad 0, so only their decay needs masking.
        state["exp_avg"].mul_(torch.where(touched, beta1, 1.0)).add_(grad, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(torch.where(touched, beta2, 1.0)).addcmul_(grad, grad, value=1 - beta2)
        denom = state["exp_avg_sq"].sqrt().div_(bias2_sqrt).add_(eps).masked_fill_(~touched, math.inf)
        param.addcdiv_(state["exp_avg"], denom, value=-step_size)  # m/∞ = 0: untouched slices stay
