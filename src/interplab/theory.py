"""KD minimum-width theory (arXiv 2604.04037): capacity, critical width and loss floors.

Pure numpy so that the toy stage, the SAE measurements and the tests share one definition.
α is the probability that a feature is inactive; a student of width d_S holds at most
d_S·g(α) of the teacher's F features, and whatever does not fit sets a loss floor.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

ArrayLike = float | Sequence[float] | np.ndarray


def _check_alpha(alpha: np.ndarray) -> None:
    if np.any((alpha <= 0) | (alpha >= 1)):
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")


def capacity_g(alpha: ArrayLike) -> np.ndarray | float:
    """g(α) = 1 / ((1−α)·ln(1/(1−α))): features one dimension can hold at sparsity α."""
    a = np.asarray(alpha, dtype=float)
    _check_alpha(a)
    density = 1.0 - a
    g = 1.0 / (density * np.log(1.0 / density))
    return float(g) if g.ndim == 0 else g


def capacity(d_student: ArrayLike, alpha: float) -> np.ndarray | float:
    """Most features a width-d_S bottleneck can carry: d_S·g(α)."""
    return np.asarray(d_student, dtype=float) * capacity_g(alpha)


def critical_width(n_features: float, alpha: float) -> float:
    """d*_S = F / g(α): the smallest width with no guaranteed loss floor."""
    return float(n_features) / capacity_g(alpha)


def features_kept(d_student: ArrayLike, alpha: float, n_features: int, per_dimension: float | None = None) -> np.ndarray:
    """⌊d_S·c⌋ clipped to [0, F]: how many of the most important features survive.

    c = g(α), the theorem's capacity per dimension, unless a measured `per_dimension` is given.
    """
    c = capacity_g(alpha) if per_dimension is None else per_dimension
    kept = np.floor(np.asarray(d_student, dtype=float) * c + 1e-9)
    return np.clip(kept, 0, n_features).astype(int)


def naive_floor(d_student: ArrayLike, alpha: float, n_features: int, eps_inf: float) -> np.ndarray:
    """Uniform-importance floor: ε∞ · max(0, 1 − d_S·g(α)/F)."""
    frac_lost = 1.0 - np.asarray(capacity(d_student, alpha), dtype=float) / n_features
    return eps_inf * np.clip(frac_lost, 0.0, None)


def refined_floor(d_student: ArrayLike, alpha: float, feature_mass: Sequence[float],
                  per_dimension: float | None = None) -> np.ndarray:
    """Importance-weighted floor: the mass of every feature beyond the top ⌊d_S·c⌋ (c = g(α) by default).

    `feature_mass` holds the loss a dropped feature costs: I_i·Var(x_i) for a model with an output
    bias (the toy model; the bias emits the mean), I_i·E[x_i²] without one (for an SAE, E[z_i²]).
    The most massive features are the ones kept, which is the theorem's best case for the student.
    """
    mass = np.sort(np.asarray(feature_mass, dtype=float))[::-1]
    tail = np.concatenate([np.cumsum(mass[::-1])[::-1], [0.0]])  # tail[k] = Σ_{i≥k} mass_i
    return tail[features_kept(d_student, alpha, len(mass), per_dimension)]


def measured_critical_width(widths: Sequence[float], losses: Sequence[float], tolerance: float = 0.05) -> float:
    """Smallest width whose loss lies within `tolerance`·(curve range) of the curve's floor.

    The floor is the lowest loss on the curve; the range is max − min. A flat curve (range 0)
    is already at its floor at the smallest width.
    """
    w = np.asarray(widths, dtype=float)
    loss = np.asarray(losses, dtype=float)
    if w.shape != loss.shape or w.size == 0:
        raise ValueError("widths and losses must be non-empty and of equal length")
    order = np.argsort(w)
    w, loss = w[order], loss[order]
    floor, span = loss.min(), loss.max() - loss.min()
    within = loss <= floor + tolerance * span
    return float(w[np.argmax(within)])


def prediction_accuracy(measured: ArrayLike, predicted: ArrayLike) -> np.ndarray | float:
    """1 − |measured − predicted| / predicted, clipped to [0, 1]; NaN where predicted is 0."""
    m = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(p > 0, np.clip(1.0 - np.abs(m - p) / p, 0.0, 1.0), np.nan)
    return float(acc) if acc.ndim == 0 else acc


def accuracy_readings(measured: ArrayLike, predicted: ArrayLike, eps_inf: ArrayLike) -> dict[str, np.ndarray]:
    """Accuracy of predicted losses under three readings, each 1 − |error|/scale clipped to [0, 1].

    relative_to_prediction: scale = the prediction (the paper's "prediction accuracy"; NaN where it is 0).
    relative_to_measured: scale = the measured loss (NaN where it is 0); predicting 0 scores 0.
    absolute: scale = ε∞, the loss of a width-0 model; predicting 0 scores 1 − measured/ε∞, which
    is near 1 wherever the loss is small, so this reading needs the zero-predictor baseline beside it.
    """
    m = np.asarray(measured, dtype=float)
    p = np.asarray(predicted, dtype=float)
    error = np.abs(m - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "relative_to_prediction": np.asarray(prediction_accuracy(m, p), dtype=float),
            "relative_to_measured": np.where(m > 0, np.clip(1.0 - error / m, 0.0, 1.0), np.nan),
            "absolute": np.clip(1.0 - error / np.asarray(eps_inf, dtype=float), 0.0, 1.0),
        }


def curve_accuracy(measured: Sequence[float], predicted: Sequence[float]) -> float:
    """Median per-width accuracy of a predicted floor curve, over widths with a nonzero prediction.

    The paper reports median accuracy; widths where the theory predicts no floor at all carry no
    relative error to take, so they are left out (NaN when the theory predicts zero everywhere).
    """
    acc = np.asarray(prediction_accuracy(measured, predicted), dtype=float)
    acc = acc[~np.isnan(acc)]
    return float(np.median(acc)) if acc.size else math.nan
