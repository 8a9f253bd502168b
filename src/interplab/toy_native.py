"""The toy step through a sparse-input C kernel (toy_kernel.c): the CPU engine of interplab.toy.

Same model, loss and Adam update as toy.FusedStep, written in A = WᵀW: the pre-activation is
z = s ⊙ (A x + b) and ∂L/∂W = W(∂L/∂A + ∂L/∂Aᵀ). The batch work (z, the residual, ∂L/∂A = Σ_b g_b x_bᵀ)
then touches only the nonzeros of x, in registers, in one pass per group of models; what is left
for torch is F × F per model, independent of the batch. The input comes as the 32-bit random
words that toy.FeatureStream would turn into the same x, so both engines train on identical data.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from interplab import native

LANES = 16  # floats per vector in the kernel; F is padded to a multiple


def padded_features(n_features: int) -> int:
    """The kernel's column count for F features: F rounded up to whole vectors."""
    return -(-n_features // LANES) * LANES


def _kernel():
    fn = native.load("toy_kernel.c").toy_sparse_grad
    pointer, integer, real = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    fn.argtypes = [pointer, ctypes.c_long, real, real] + [pointer] * 5 + [integer] * 6 + [pointer] * 3
    fn.restype = integer
    return fn


def unavailable_reason() -> str | None:
    """None when the kernel builds and loads here, else why not."""
    try:
        _kernel()
    except native.NativeUnavailable as err:
        return str(err)
    return None


def _ptr(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


class NativeStep:
    """One Adam step of a [S, M, d, F] CPU model stack on a batch given as random words, every width in one stack.

    `teacher` (weight [S, d_T, F], bias [S, F]) makes the target the teacher's output, else x itself.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor, batch: int,
                 imp: torch.Tensor, lr: float, alpha: float,
                 teacher: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if weight.device.type != "cpu":
            raise ValueError(f"the native toy engine runs on the CPU, not {weight.device}; use toy.engine: torch")
        self.kernel = _kernel()
        n_seeds, n_models, _, n_features = weight.shape
        padded = padded_features(n_features)
        self.weight, self.bias, self.mask, self.batch = weight, bias, mask, batch
        self.alpha = float(np.float32(alpha))
        self.keep_share = float(np.float32(1.0 - alpha))  # as FeatureStream divides: (1 − α) rounded to float32
        self.scale = imp.sqrt()
        self.grad_scale = self.scale * (2.0 / batch)
        self.scale_padded = torch.zeros(padded)
        self.scale_padded[:n_features] = self.scale
        self.gram = torch.empty(n_seeds, n_models, n_features, n_features)
        self.decoder = torch.zeros(n_seeds, n_models, n_features, padded)  # A·diag(s); padding stays 0
        self.bias_scaled = torch.zeros(n_seeds, n_models, padded)
        self.outer = torch.empty(n_seeds, n_models, n_features, padded)
        self.grad_sum = torch.empty(n_seeds, n_models, padded)
        self.loss = torch.empty(n_seeds, n_models)
        self.outer_grad = torch.empty(n_seeds, n_models, n_features, n_features)
        self.gram_grad = torch.empty(n_seeds, n_models, n_features, n_features)
        self.teacher_decoder = self.teacher_bias = None
        if teacher is not None:
            teacher_weight, teacher_bias = teacher
            self.teacher_decoder = torch.zeros(n_seeds, n_features, padded)
            self.teacher_decoder[..., :n_features] = teacher_weight.transpose(1, 2) @ teacher_weight * self.scale
            self.teacher_bias = torch.zeros(n_seeds, padded)
            self.teacher_bias[:, :n_features] = teacher_bias * self.scale
        weight.grad, bias.grad = torch.zeros_like(weight), torch.zeros_like(bias)
        self.optimizer = torch.optim.Adam([weight, bias], lr=lr, fused=True)

    @torch.no_grad()
    def __call__(self, words: np.ndarray, measure: bool) -> torch.Tensor | None:
        """One step on the batch drawn from words [S, ≥ B·F] (uint32); the batch loss [S, M] when `measure`."""
        n_seeds, n_models, _, n_features = self.weight.shape
        words = np.ascontiguousarray(words, dtype=np.uint32)
        if words.shape[0] != n_seeds or words.shape[1] < self.batch * n_features:
            raise ValueError(f"words {words.shape} do not hold {n_seeds} batches of {self.batch}×{n_features}")
        torch.matmul(self.weight.transpose(2, 3), self.weight, out=self.gram)
        torch.mul(self.gram, self.scale, out=self.decoder[..., :n_features])
        torch.mul(self.bias, self.scale, out=self.bias_scaled[..., :n_features])
        status = self.kernel(
            words.ctypes.data, words.shape[1], self.alpha, self.keep_share, _ptr(self.teacher_decoder),
            _ptr(self.teacher_bias), _ptr(self.scale_padded), _ptr(self.decoder), _ptr(self.bias_scaled),
            n_seeds, n_models, self.batch, n_features, self.decoder.shape[-1], int(measure),
            _ptr(self.outer), _ptr(self.grad_sum), _ptr(self.loss),
        )
        if status != 0:
            raise MemoryError("toy kernel: out of memory for its scratch buffers")
        torch.mul(self.outer[..., :n_features], self.grad_scale, out=self.outer_grad)  # ∂L/∂A, transposed
        torch.add(self.outer_grad, self.outer_grad.transpose(2, 3), out=self.gram_grad)
        torch.matmul(self.weight, self.gram_grad, out=self.weight.grad).mul_(self.mask)
        torch.mul(self.grad_sum[..., :n_features], self.grad_scale, out=self.bias.grad)
        self.optimizer.step()
        return self.loss.clone() if measure else None
