"""Experiment 3's comparison: the students' measured loss floors against the floors the teacher's
SAE predicts for each width (docs/science.md §5).

Measured floors are KL in nats; predicted floors are activation energy Σ_dropped E[z²] of the
teacher's SAE. The units differ, so the paper fits L_obs ≈ a·L_geo + b over the widths and reports
R². With 2 parameters on 5 points R² says little, so the table adds each width's leave-one-out
prediction error, and Spearman's ρ says whether the ordering alone holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from interplab import theory


@dataclass(frozen=True)
class AffineFit:
    a: float
    b: float
    r2: float
    loo_rmse: float  # root mean square of each point's error when the fit leaves it out
    loo_errors: tuple[float, ...]


def affine_fit(predicted: Sequence[float], measured: Sequence[float]) -> AffineFit:
    """Least-squares measured ≈ a·predicted + b, its R², and leave-one-out prediction errors.

    R² is NaN when the measured floors do not vary; a and b are NaN when the predictions do not
    (a constant predictor cannot be scaled onto anything)."""
    x, y = np.asarray(predicted, float), np.asarray(measured, float)
    if len(x) < 2 or np.ptp(x) == 0:
        nan = math.nan
        return AffineFit(nan, nan, nan, nan, tuple([nan] * len(x)))
    a, b = np.polyfit(x, y, 1)
    residual, spread = float(((y - (a * x + b)) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - residual / spread if spread > 0 else math.nan
    errors = []
    for left_out in range(len(x)):
        keep = np.arange(len(x)) != left_out
        if len(x) < 3 or np.ptp(x[keep]) == 0:
            errors.append(math.nan)
            continue
        a_i, b_i = np.polyfit(x[keep], y[keep], 1)
        errors.append(float(y[left_out] - (a_i * x[left_out] + b_i)))
    loo = np.asarray(errors)
    return AffineFit(float(a), float(b), r2, float(np.sqrt(np.nanmean(loo**2))) if np.isfinite(loo).any() else math.nan,
                     tuple(errors))


def predicted_floors(record: Mapping, widths: Sequence[int]) -> pd.DataFrame:
    """Naive and refined floors for each width from one KD record (the teacher's SAE snapshot)."""
    alpha, spectrum = record["alpha"], np.asarray(record["spectrum"], float)
    return pd.DataFrame({
        "width": list(widths),
        "features_kept": theory.features_kept(widths, alpha, len(spectrum)),
        "floor_refined": theory.refined_floor(widths, alpha, spectrum),
        "floor_naive": theory.naive_floor(widths, alpha, len(spectrum), eps_inf=float(spectrum.sum())),
    })


def floors_table(measured: pd.DataFrame, record: Mapping) -> pd.DataFrame:
    """Per width: the seeds' measured floor (mean, half-range), the predicted floors, the affine fit
    of measured on refined with its leave-one-out error, Spearman's ρ and whether the measured
    floors fall monotonically with width. `measured` has columns width, seed, floor."""
    per_width = measured.groupby("width")["floor"].agg(floor_mean="mean", floor_min="min", floor_max="max",
                                                      n_seeds="count").reset_index()
    per_width["floor_spread"] = (per_width.pop("floor_max") - per_width.pop("floor_min")) / 2
    table = per_width.merge(predicted_floors(record, per_width["width"].tolist()), on="width")
    fit = affine_fit(table["floor_refined"], table["floor_mean"])
    table["fitted"] = fit.a * table["floor_refined"] + fit.b
    table["loo_error"] = fit.loo_errors
    rho = spearmanr(table["floor_refined"], table["floor_mean"]).statistic if table["floor_refined"].nunique() > 1 \
        else math.nan
    summary = {"fit_a": fit.a, "fit_b": fit.b, "fit_r2": fit.r2, "loo_rmse": fit.loo_rmse, "spearman_rho": float(rho),
               "monotonic": bool(np.all(np.diff(table.sort_values("width")["floor_mean"]) < 0)),
               "sae_alpha": record["alpha"], "sae_f_alive": record["f_alive"], "sae_dstar": record["dstar"]}
    return table.assign(**summary)
