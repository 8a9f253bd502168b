"""KD measurement of a trained SAE on held-out activations (docs/science.md §1, §3).

One streaming pass accumulates, per latent, how often it fires and its second moment E[z²], and
overall the reconstruction error and the data variance. From those: F alive (firing frequency
above a threshold), dead count, L0, α = 1 − L0/F, g(α), d*_S = F/g(α), MSE, the fraction of
variance unexplained, the sorted E[z²] spectrum, and the predicted loss floor at every student
width. F unique counts alive latents once per direction: an SAE often learns a feature twice,
which F alive double-counts (2.0× the truth on planted data, against 1.04× for F unique), so α and
d*_S are also reported with it. Works with any module that has `encode(x) → z` and `decode(z) → x̂`
(with a linear decoder, since its directions are read as decode(e_f) − decode(0)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Hashable, Iterable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import torch

from interplab import theory

# SAEBench's feature-density convention: a latent firing on more than 10% of tokens is "dense"
# (a near-constant direction rather than a feature).
DENSE_THRESHOLD = 0.1


class Autoencoder(Protocol):
    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@dataclass
class KDMetrics:
    n_latents: int
    n_tokens: int
    alive_threshold: float
    f_alive: int
    f_unique: int
    dead: int
    l0: float
    alpha: float
    g_alpha: float
    dstar: float
    alpha_unique: float
    dstar_unique: float
    mse: float
    fvu: float
    explained_variance: float  # 1 − FVU = 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖² (SAELens / SAEBench's name)
    dense: int  # latents firing on more than DENSE_THRESHOLD of the tokens
    total_mass: float
    spectrum: list[float] = field(repr=False)  # E[z²] of the alive latents, descending
    # Per latent, the fraction of the measured tokens it fired on: the density histogram's input, and
    # SAELens's sparsity.safetensors (interplab.sae.export.write_sparsity) beside the record.
    firing_frequency: list[float] = field(repr=False)
    floor_widths: list[int] = field(repr=False)
    floor_refined: list[float] = field(repr=False)
    floor_naive: list[float] = field(repr=False)

    def alive(self) -> np.ndarray:
        """Per latent, whether it counts in F_alive (alive_latents on the measured firing frequency)."""
        return alive_latents(np.asarray(self.firing_frequency), self.alive_threshold)

    def scalars(self) -> dict:
        """The one-number metrics, for tables."""
        return {k: v for k, v in asdict(self).items() if not isinstance(v, list)}


# Rows per float32 partial sum in StatisticsAccumulator.update: cache-sized blocks, each added into
# float64 totals (exact for counts below 2²⁴, ≈ 1e-7 relative for squares). About 4× faster on CPU
# than casting the whole [tokens, latents] block to float64 first.
STAT_ROWS = 256


class StatisticsAccumulator:
    """Running per-latent fire counts and Σz², plus Σ squared error and per-dim Σx, Σx² of one SAE."""

    def __init__(self, sae: Autoencoder, device: str = "cpu") -> None:
        self.sae, self.device = sae, device
        self.n_tokens = 0
        self.fires = self.sq = self.sse = self.sum_x = self.sum_x2 = self.directions = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.to(device=self.device, dtype=torch.float32)
        z = self.sae.encode(x)
        err = self.sae.decode(z) - x
        if self.fires is None:
            self.fires = torch.zeros(z.shape[1], dtype=torch.float64, device=self.device)
            self.sq = torch.zeros_like(self.fires)
            self.sse = torch.zeros((), dtype=torch.float64, device=self.device)
            self.sum_x = torch.zeros(x.shape[1], dtype=torch.float64, device=self.device)
            self.sum_x2 = torch.zeros_like(self.sum_x)
            self.directions = decoder_directions(self.sae, z.shape[1], x.shape[1], self.device)
        for zc, ec, xc in zip(z.split(STAT_ROWS), err.split(STAT_ROWS), x.split(STAT_ROWS)):
            self.fires += (zc > 0).float().sum(0)
            self.sq += (zc * zc).sum(0)
            self.sse += (ec * ec).sum()
            self.sum_x += xc.sum(0)
            self.sum_x2 += (xc * xc).sum(0)
        self.n_tokens += x.shape[0]

    def statistics(self) -> dict:
        if self.n_tokens == 0:
            raise ValueError("no measurement tokens: the held-out activation stream is empty")
        return {"fires": self.fires.cpu(), "sq": self.sq.cpu(), "sse": float(self.sse), "sum_x": self.sum_x.cpu(),
                "sum_x2": self.sum_x2.cpu(), "n_tokens": self.n_tokens, "directions": self.directions.cpu()}


@torch.no_grad()
def decoder_directions(sae: Autoencoder, n_latents: int, d_in: int, device: str = "cpu", chunk: int = 1024) -> torch.Tensor:
    """[n_latents, d_in] decoder direction of every latent, decode(e_f) − decode(0), in chunks."""
    origin = sae.decode(torch.zeros(1, n_latents, device=device))
    out = torch.empty(n_latents, d_in)
    for start in range(0, n_latents, chunk):
        rows = min(chunk, n_latents - start)
        basis = torch.zeros(rows, n_latents, device=device)
        basis[:, start:start + rows].fill_diagonal_(1.0)
        out[start:start + rows] = (sae.decode(basis) - origin).cpu()
    return out


def unique_latents(directions: torch.Tensor, importance: torch.Tensor, alive: torch.Tensor,
                   threshold: float = 0.9, chunk: int = 1024) -> int:
    """Alive latents left after merging decoder directions with cosine > `threshold`, greedily by
    importance: a latent is kept unless a kept latent of higher E[z²] points within the threshold."""
    order = torch.argsort(importance[alive], descending=True, stable=True)
    units = directions[alive][order].double()
    units = units / torch.linalg.vector_norm(units, dim=1, keepdim=True).clamp_min(1e-12)
    kept = torch.empty(0, units.shape[1], dtype=units.dtype)
    for start in range(0, units.shape[0], chunk):
        block = units[start:start + chunk]
        candidates = (block @ kept.T).amax(1) <= threshold if kept.shape[0] else torch.ones(block.shape[0], dtype=torch.bool)
        gram = block @ block.T
        keep = torch.zeros(block.shape[0], dtype=torch.bool)
        for i in torch.nonzero(candidates).flatten().tolist():
            keep[i] = not bool((gram[i, :i][keep[:i]] > threshold).any())
        kept = torch.cat([kept, block[keep]])
    return int(kept.shape[0])


def alpha_and_dstar(l0: float, n_latents: int) -> tuple[float, float, float]:
    """α = 1 − L0/F, g(α) and d*_S = F/g(α) for F = `n_latents` (NaN where undefined)."""
    alpha = 1.0 - l0 / n_latents if n_latents else math.nan
    g = theory.capacity_g(alpha) if 0 < alpha < 1 else math.nan
    return alpha, g, (n_latents / g if g == g else math.nan)


def student_widths(d_model: int, n: int = 24) -> list[int]:
    """Log-spaced student widths from 1 to `d_model`."""
    return sorted({int(w) for w in np.round(np.geomspace(1, d_model, n))})


def alive_latents(frequency: np.ndarray, alive_threshold: float) -> np.ndarray:
    """A latent is alive when it fires on more than `alive_threshold` of the measured tokens."""
    return frequency > alive_threshold


def from_statistics(stats: dict, alive_threshold: float = 1e-5, widths: Sequence[int] | None = None) -> KDMetrics:
    """Turn accumulated statistics into the KD metrics of docs/science.md §1."""
    n_tokens = int(stats["n_tokens"])
    fires = stats["fires"].numpy()
    freq = fires / n_tokens
    alive = alive_latents(freq, alive_threshold)
    f_alive = int(alive.sum())
    l0 = float(fires.sum() / n_tokens)
    alpha, g, dstar = alpha_and_dstar(l0, f_alive)
    f_unique = unique_latents(stats["directions"], stats["sq"], torch.from_numpy(alive))
    alpha_unique, _, dstar_unique = alpha_and_dstar(l0, f_unique)
    d_in = stats["sum_x"].numel()
    mean = stats["sum_x"].numpy() / n_tokens
    total_var = float(stats["sum_x2"].numpy().sum() - n_tokens * (mean**2).sum())
    spectrum = np.sort(stats["sq"].numpy()[alive] / n_tokens)[::-1]
    fvu = stats["sse"] / total_var if total_var > 0 else math.nan
    if widths is None:  # up to the teacher's width, and past d*_S so the curve reaches its end
        widths = student_widths(max(d_in, math.ceil(1.25 * dstar)) if dstar == dstar else d_in)
    widths = list(widths)
    if g == g:
        refined = theory.refined_floor(widths, alpha, spectrum).tolist()
        naive = theory.naive_floor(widths, alpha, f_alive, eps_inf=float(spectrum.sum())).tolist()
    else:
        refined = naive = [math.nan] * len(widths)
    return KDMetrics(
        n_latents=int(fires.size),
        n_tokens=n_tokens,
        alive_threshold=alive_threshold,
        f_alive=f_alive,
        f_unique=f_unique,
        dead=int(fires.size - f_alive),
        l0=l0,
        alpha=alpha,
        g_alpha=g,
        dstar=dstar,
        alpha_unique=alpha_unique,
        dstar_unique=dstar_unique,
        mse=stats["sse"] / (n_tokens * d_in),
        fvu=fvu,
        explained_variance=1.0 - fvu,
        dense=int((freq > DENSE_THRESHOLD).sum()),
        total_mass=float(spectrum.sum()),
        spectrum=spectrum.tolist(),
        firing_frequency=freq.tolist(),
        floor_widths=[int(w) for w in widths],
        floor_refined=refined,
        floor_naive=naive,
    )


def measure(sae: Autoencoder, batches: Iterable[torch.Tensor], alive_threshold: float = 1e-5,
            widths: Sequence[int] | None = None, device: str = "cpu") -> KDMetrics:
    """KD metrics of `sae` on the held-out `batches` (one pass)."""
    return measure_many({"sae": sae}, batches, alive_threshold, widths, device)["sae"]


def measure_many(saes: Mapping[Hashable, Autoencoder], batches: Iterable[torch.Tensor], alive_threshold: float = 1e-5,
                 widths: Sequence[int] | None = None, device: str = "cpu") -> dict[Hashable, KDMetrics]:
    """KD metrics of several SAEs (e.g. every trial's snapshots at one layer) in a single pass over the data."""
    accumulators = {name: StatisticsAccumulator(sae, device) for name, sae in saes.items()}
    for x in batches:
        x = x.to(device)
        for acc in accumulators.values():
            acc.update(x)
    return {name: from_statistics(acc.statistics(), alive_threshold, widths) for name, acc in accumulators.items()}


# --------------------------------------------------------------------------- tables for the DAG
IDENTITY = ["trial", "model", "ckpt", "layer", "snapshot", "tokens"]


def record(metrics: KDMetrics, **identity) -> dict:
    """The JSON written per (trial, model, ckpt, layer, snapshot): identity keys plus every metric."""
    return {**identity, **asdict(metrics)}


def metrics_table(records: Iterable[Mapping]) -> pd.DataFrame:
    """One row per snapshot record: identity columns, then the scalar metrics (plus any ground truth)."""
    rows = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in records]
    frame = pd.DataFrame(rows)
    first = [c for c in IDENTITY if c in frame]
    return frame[first + [c for c in frame.columns if c not in first]].sort_values(first).reset_index(drop=True)


def floors_table(records: Iterable[Mapping]) -> pd.DataFrame:
    """One row per (snapshot record, student width): predicted refined and naive floors."""
    rows = [{**{k: r[k] for k in IDENTITY}, "d_student": w, "floor_refined": fr, "floor_naive": fn}
            for r in records for w, fr, fn in zip(r["floor_widths"], r["floor_refined"], r["floor_naive"])]
    return pd.DataFrame(rows)


# log10 firing-frequency bins of the density histogram: [-8, 0] in quarter decades; a latent that
# fired on fewer than 1e-8 of the tokens falls in the lowest bin, one that never fired in none.
DENSITY_EDGES = np.linspace(-8.0, 0.0, 33)


def density_table(records: Iterable[Mapping]) -> pd.DataFrame:
    """Feature-density histogram per snapshot record: one row per log10-frequency bin with its latent
    count, plus the record's never-fired, dead (below the alive threshold) and dense counts."""
    rows = []
    for r in records:
        freq = np.asarray(r["firing_frequency"], dtype=float)
        fired = freq[freq > 0]
        counts, _ = np.histogram(np.clip(np.log10(fired), DENSITY_EDGES[0], DENSITY_EDGES[-1]), DENSITY_EDGES)
        ident = {k: r[k] for k in IDENTITY}
        extra = {"never_fired": int((freq == 0).sum()), "dead": r["dead"], "dense": r["dense"]}
        rows += [{**ident, "log10_lo": lo, "log10_hi": hi, "latents": int(c), **extra}
                 for lo, hi, c in zip(DENSITY_EDGES[:-1], DENSITY_EDGES[1:], counts)]
    return pd.DataFrame(rows)
