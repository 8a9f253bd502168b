"""Steering along the top between-hospital discriminant, with a random-direction control.

h → h + a·σ·v, v the unit LDA-1 direction of the training hospitals and σ the standard deviation
of the features projected on v, for strengths a ∈ {−3, …, 3}. The trained head re-classifies the
steered features; a shortcut stored along v should move predictions more than a random direction
scaled the same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

Head = Callable[[np.ndarray], np.ndarray]  # features [n, d] → P(tumour) [n]


def lda_direction(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Unit vector along the first linear discriminant of the groups (shrinkage LDA: n ≈ d here)."""
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(features, groups)
    direction = lda.scalings_[:, 0]
    return direction / np.linalg.norm(direction)


def random_direction(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim)
    return v / np.linalg.norm(v)


def dose_response(head: Head, features: np.ndarray, labels: np.ndarray, direction: np.ndarray,
                  strengths: Sequence[float], scale_features: np.ndarray | None = None) -> pd.DataFrame:
    """Head accuracy, mean |ΔP(tumour)| and flip rate at every strength a (σ from `scale_features`)."""
    sigma = float(np.std((features if scale_features is None else scale_features) @ direction))
    base = head(features)
    rows = []
    for a in strengths:
        prob = head(features + a * sigma * direction)
        rows.append({"strength": float(a), "sigma": sigma,
                     "accuracy": float(np.mean((prob > 0.5) == labels)),
                     "mean_abs_shift": float(np.mean(np.abs(prob - base))),
                     "flip_rate": float(np.mean((prob > 0.5) != (base > 0.5)))})
    return pd.DataFrame(rows)


def monotone_in_magnitude(curve: pd.DataFrame, column: str = "accuracy", tolerance: float = 0.0) -> bool:
    """True when `column` never rises as |a| grows, on each side of a = 0 (the reference's criterion)."""
    for side in (curve[curve["strength"] >= 0], curve[curve["strength"] <= 0]):
        values = side.assign(mag=side["strength"].abs()).sort_values("mag")[column].to_numpy()
        if np.any(np.diff(values) > tolerance):
            return False
    return True


def shift_slope(head: Head, features: np.ndarray, direction: np.ndarray, strengths: Sequence[float],
                n_boot: int = 500, seed: int = 0, scale_features: np.ndarray | None = None) -> dict:
    """Slope of mean |ΔP(tumour)| against |a| with a bootstrap interval over images, plus Spearman ρ
    (σ from `scale_features`, as in `dose_response`)."""
    sigma = float(np.std((features if scale_features is None else scale_features) @ direction))
    base = head(features)
    mags = np.abs(np.asarray(strengths, dtype=float))
    shifts = np.stack([np.abs(head(features + a * sigma * direction) - base) for a in strengths], 1)  # [n, S]

    def slope(per_image: np.ndarray) -> float:
        return float(np.polyfit(mags, per_image.mean(0), 1)[0])

    rng = np.random.default_rng(seed)
    boots = [slope(shifts[rng.integers(0, len(shifts), len(shifts))]) for _ in range(n_boot)]
    rho = scipy_stats.spearmanr(mags, shifts.mean(0)).statistic
    return {"slope": slope(shifts), "slope_lo": float(np.percentile(boots, 2.5)),
            "slope_hi": float(np.percentile(boots, 97.5)), "spearman_rho": float(rho)}
