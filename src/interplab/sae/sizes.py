"""Seed 003's replication: SAEs of several dictionary sizes on one layer, compared with each other.

Sharkey et al. (and Riggs & Cunningham's replication on a small transformer) judge whether sparse
coding finds *the* features by training dictionaries of several sizes with one L1 coefficient (the
L1 summed over latents, not divided by the size: dividing made the "diagonal lines" of their first
sweeps) and asking, for each feature of a dictionary, how close the next larger dictionary comes to
it: its max cosine similarity (MCS). The mean over the features is MMCS-with-larger. Features
found at every size give MCS near 1; the rest sit where random directions would (≈ 0.25–0.4 at
d = 128), so a dictionary that found a stable set shows a bimodal MCS histogram.

Their second question is whether features are sparse in the neuron basis: the effective number of
basis directions a feature uses, the Simpson diversity of its weights' shares |w_i| / ‖w‖₁, which is
(‖w‖₁ / ‖w‖₂)². A random direction scores 1 + (d−1)·2/π on average (81.9 at d = 128), a basis vector 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from interplab.io import stable_seed

MCS_MATCH = 0.9  # an MCS above this counts as the same feature found again (the seed's threshold)
BIMODAL = 5 / 9  # Sarle's coefficient of a uniform distribution: above it, a sample suggests two modes


@dataclass(frozen=True)
class SizeStudy:
    """The `sizes` config section: which layer, which dictionary sizes, which λ."""

    layer: int
    expansions: tuple[int, ...]  # dictionary size = expansion × d_in, ascending
    l1_coefficient: float  # one λ for every size, L1 summed over latents
    training_tokens: int
    seed: int  # the random-direction baselines

    def __post_init__(self) -> None:
        if len(self.expansions) < 2 or list(self.expansions) != sorted(set(self.expansions)):
            raise ValueError(f"sizes.expansions must list at least two distinct sizes in ascending order, "
                             f"got {list(self.expansions)}")

    def name(self, expansion: int) -> str:
        """The dictionary's name in paths and tables: x{expansion}."""
        return f"x{expansion}"

    def trials(self) -> dict[str, dict[str, Any]]:
        """Every size as an SAE trial of the `sae` section's shape: fixed λ, summed L1."""
        return {self.name(e): {"l1_form": "sum", "l1_coefficient": self.l1_coefficient, "adaptive": None}
                for e in self.expansions}


def size_study(config: Mapping[str, Any]) -> SizeStudy:
    section = config["sizes"]
    return SizeStudy(layer=section["layer"], expansions=tuple(section["expansions"]),
                     l1_coefficient=section["l1_coefficient"], training_tokens=section["training_tokens"],
                     seed=section["seed"])


def _unit(rows: torch.Tensor) -> torch.Tensor:
    rows = rows.detach().double().cpu()
    return rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True).clamp_min(1e-12)


def max_cosine(rows: torch.Tensor, against: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For each row of `rows` [n, d], its largest cosine similarity with any row of `against` [m, d]."""
    targets = _unit(against)
    return torch.cat([(_unit(rows[i:i + chunk]) @ targets.T).amax(1) for i in range(0, rows.shape[0], chunk)])


def effective_dimensions(directions: torch.Tensor) -> torch.Tensor:
    """(‖w‖₁ / ‖w‖₂)² per row: the Simpson diversity (inverse sum of squared shares) of |w_i|/‖w‖₁."""
    w = directions.detach().double().cpu()
    return (w.abs().sum(1) / torch.linalg.vector_norm(w, dim=1).clamp_min(1e-12)) ** 2


def random_expectation(d: int) -> float:
    """E[(‖w‖₁/‖w‖₂)²] for an isotropic random direction: with w = r·u, E[(Σ|u_i|)²] = d·E[u_1²] +
    d(d−1)·E[|u_1||u_2|] = 1 + (d−1)·2/π, since E[|w_1||w_2|] = 2/π and r is independent of u."""
    return 1 + (d - 1) * 2 / math.pi


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    """n isotropic random directions in d dimensions (standard normal rows), from a fixed seed."""
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def bimodality_coefficient(values: np.ndarray) -> float:
    """Sarle's bimodality coefficient (g² + 1) / (k + 3(n−1)²/((n−2)(n−3))), with g the sample skewness and
    k the excess kurtosis (both bias-corrected). Above 5/9 (a uniform distribution's value) the sample
    suggests two modes; a normal sample gives 1/3. NaN below 4 values or when they (nearly) coincide."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 4 or np.ptp(x) <= 1e-9 * max(1.0, np.abs(x).max()):
        return math.nan
    from scipy.stats import kurtosis, skew

    g, k = skew(x, bias=False), kurtosis(x, bias=False)
    return float((g ** 2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def compare_sizes(directions: Mapping[int, torch.Tensor], alive: Mapping[int, torch.Tensor],
                  seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per dictionary (keyed by size, ascending) its MMCS-with-larger and neuron-basis sparsity.

    `directions[F]` is the [F, d] decoder of the size-F dictionary, `alive[F]` its latents that fired on
    held-out tokens. Returns (one row per size, one row per feature): learned features (`kind`
    learned) and, per size, as many random directions (`kind` random) scored the same way against the
    same larger dictionary, the baseline the seed compares with.
    """
    sizes = sorted(directions)
    d = directions[sizes[0]].shape[1]
    rows, features = [], []
    for i, size in enumerate(sizes):
        larger = directions[sizes[i + 1]] if i + 1 < len(sizes) else None
        baseline = random_directions(size, d, stable_seed("sizes-baseline", seed, size))
        for kind, vectors, is_alive in (("learned", directions[size], alive[size]),
                                        ("random", baseline, torch.ones(size, dtype=torch.bool))):
            mcs = max_cosine(vectors, larger).numpy() if larger is not None else np.full(size, np.nan)
            features.append(pd.DataFrame({
                "kind": kind, "size": size, "latent": np.arange(size), "alive": is_alive.numpy(),
                "mcs_with_larger": mcs, "effective_dims": effective_dimensions(vectors).numpy()}))
        learned, random = features[-2], features[-1]
        live = learned[learned["alive"]]
        has_larger = larger is not None and len(live) > 0
        rows.append({
            "size": size, "d_in": d, "larger_size": sizes[i + 1] if larger is not None else None,
            "n_alive": int(live.shape[0]),
            "mmcs_with_larger": float(learned["mcs_with_larger"].mean()) if larger is not None else math.nan,
            "mmcs_alive": float(live["mcs_with_larger"].mean()) if has_larger else math.nan,
            "share_matched": float((live["mcs_with_larger"] > MCS_MATCH).mean()) if has_larger else math.nan,
            "n_matched": int((live["mcs_with_larger"] > MCS_MATCH).sum()) if larger is not None else 0,
            "bimodality": (bimodality := bimodality_coefficient(live["mcs_with_larger"].to_numpy())
                           if has_larger else math.nan),
            "bimodal": bool(bimodality > BIMODAL),
            "random_mmcs": float(random["mcs_with_larger"].mean()) if larger is not None else math.nan,
            "effective_dims": float(live["effective_dims"].mean()) if len(live) else math.nan,
            "random_effective_dims": float(random["effective_dims"].mean()),
        })
    return pd.DataFrame(rows), pd.concat(features, ignore_index=True)
