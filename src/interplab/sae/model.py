"""The ReLU sparse autoencoder of Experiment 2 (docs/science.md §3), its initialisation and its export fold.

x̂ = W_decᵀ·ReLU(W_enc·(x − b_pre) + b_enc) + b_pre. Weights use SAELens's layout so an exported
snapshot loads there unchanged: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] (one row
per feature: the "decoder column" of the math), b_pre [d_in] (SAELens's b_dec, subtracted from the
input before encoding).

Decoder convention (SAELens v6 / Anthropic April 2024): during training the decoder rows are free
and the L1 term weights each latent by its row norm, Σ_f z_f·‖d_f‖. That objective is the
unit-norm one reparametrised (z'_f = z_f·‖d_f‖, u_f = d_f/‖d_f‖ gives the same loss and the same
family of functions), but it lets the decoder start at norm 0.1: a unit-norm tied init starts with
a reconstruction ~13× the data variance and, on planted data, recovers MMCS 0.36 against 0.997.
`folded` turns trained weights into the unit-norm convention docs/science.md states (and SAEBench
expects) and undoes the input normalisation, so every export takes raw activations.
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch
from torch import nn

from interplab.io import check_finite

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
    def initialize(self, generator: torch.Generator, b_pre: torch.Tensor | None = None,
                   decoder_norm: float = 0.1) -> "SparseAutoencoder":
        """Random decoder rows at norm `decoder_norm`, W_enc = W_decᵀ (features start tied), b_enc = 0."""
        weight = torch.randn(self.d_sae, self.d_in, generator=generator, dtype=torch.float32)
        self.W_dec.copy_(weight * (decoder_norm / torch.linalg.vector_norm(weight, dim=1, keepdim=True)))
        self.W_enc.copy_(self.W_dec.T)
        self.b_enc.zero_()
        if b_pre is not None:
            self.b_pre.copy_(b_pre)
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.addmm(self.b_enc, x - self.b_pre, self.W_enc))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b_pre, z, self.W_dec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂, z) for a [batch, d_in] input."""
        z = self.encode(x)
        return self.decode(z), z


@torch.no_grad()
def folded(weights: Mapping[str, torch.Tensor], input_scale: float) -> dict[str, torch.Tensor]:
    """Weights trained on c·x (c = `input_scale`) as an SAE of raw x with unit-norm decoder rows.

    Latent f becomes z_f·‖d_f‖/c (same firing pattern, in raw units, so E[z²] and the MSE share
    units) and reconstructions become x̂/c: exactly the trained SAE's output, mapped back to raw x.
    """
    norms = torch.linalg.vector_norm(weights["W_dec"], dim=1).clamp_min(1e-12)
    return {
        "W_enc": weights["W_enc"] * norms,
        "b_enc": weights["b_enc"] * norms / input_scale,
        "W_dec": weights["W_dec"] / norms[:, None],
        "b_pre": weights["b_pre"] / input_scale,
    }


def normalization_scale(samples: torch.Tensor) -> float:
    """SAELens's `expected_average_only_in`: the scalar c with mean ‖c·x‖ = √d_in over `samples`.

    Makes one λ mean the same sparsity pressure on every layer (residual norms grow with depth).
    """
    check_finite(samples, "the first tokens that estimate the input scale", "rebuild the activation cache")
    mean_norm = torch.linalg.vector_norm(samples.float(), dim=1).mean().item()
    if not mean_norm > 0:
        raise ValueError("cannot normalise inputs: the first tokens all have zero norm")
    return samples.shape[1] ** 0.5 / mean_norm


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
