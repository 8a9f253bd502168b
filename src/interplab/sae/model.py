"""The ReLU sparse autoencoder of Experiment 2 (SCIENCE.md §3).

x̂ = W_decᵀ·ReLU(W_enc·(x − b_pre) + b_enc) + b_pre. Weights use SAELens's layout so an exported
snapshot loads there unchanged: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] (one row
per feature: the "decoder column" of the math, kept at unit norm), b_pre [d_in] (SAELens's b_dec,
subtracted from the input before encoding).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

BPreInit = Literal["mean", "geometric_median", "zeros"]


class SparseAutoencoder(nn.Module):
    def __init__(self, d_in: int, d_sae: int) -> None:
        super().__init__()
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"SAE shape must be positive, got d_in={d_in}, d_sae={d_sae}")
        self.d_in, self.d_sae = d_in, d_sae
        self.W_enc = nn.Parameter(torch.zeros(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.zeros(d_sae, d_in))
        self.b_pre = nn.Parameter(torch.zeros(d_in))

    @torch.no_grad()
    def initialize(self, generator: torch.Generator, b_pre: torch.Tensor | None = None) -> "SparseAutoencoder":
        """Random unit-norm decoder rows, W_enc = W_decᵀ (features start tied), b_enc = 0."""
        weight = torch.randn(self.d_sae, self.d_in, generator=generator, dtype=torch.float32)
        self.W_dec.copy_(weight)
        self.normalize_decoder_()
        self.W_enc.copy_(self.W_dec.T)
        self.b_enc.zero_()
        if b_pre is not None:
            self.b_pre.copy_(b_pre)
        return self

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every decoder row to unit norm, in place."""
        self.W_dec.div_(torch.linalg.vector_norm(self.W_dec, dim=1, keepdim=True).clamp_min_(1e-12))

    @torch.no_grad()
    def remove_parallel_decoder_grad_(self) -> None:
        """Drop the part of each decoder row's gradient along the row itself, in place.

        On the unit sphere that component only changes the norm, which renormalisation undoes;
        leaving it in would let Adam spend its step size on a direction that is thrown away.
        """
        grad, rows = self.W_dec.grad, self.W_dec
        parallel = torch.linalg.vecdot(grad, rows, dim=1).unsqueeze_(1)
        grad.sub_(rows * parallel)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.addmm(self.b_enc, x - self.b_pre, self.W_enc))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b_pre, z, self.W_dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂, z) for a [batch, d_in] input."""
        z = self.encode(x)
        return self.decode(z), z


def initial_b_pre(samples: torch.Tensor, method: BPreInit, iterations: int = 50) -> torch.Tensor:
    """b_pre from data: the mean, the geometric median (Weiszfeld's iterations), or zeros.

    The geometric median is robust to the few huge-norm tokens residual streams carry, which
    would otherwise drag the mean (and so every feature's bias) toward themselves.
    """
    samples = samples.float()
    if method == "zeros":
        return torch.zeros(samples.shape[1], device=samples.device)
    median = samples.mean(0)
    if method == "mean":
        return median
    if method != "geometric_median":
        raise ValueError(f"unknown b_pre init {method!r}: use mean, geometric_median or zeros")
    for _ in range(iterations):
        weights = 1.0 / torch.linalg.vector_norm(samples - median, dim=1).clamp_min(1e-8)
        median = (weights[:, None] * samples).sum(0) / weights.sum()
    return median
