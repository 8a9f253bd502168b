"""From per-(seed, width) toy runs to the per-width curves and per-configuration summary.

The summary compares what the toy models measured with what the KD theorem predicts: the
critical width (where the loss stops falling) and the floor curve (loss at every width).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interplab import theory

CONFIG_KEYS = ["mode", "n_features", "alpha", "teacher_width"]


def predicted_critical_width(n_features: int, alpha: float, teacher_width: int) -> float:
    """d*_S = F/g(α); a distilled student never needs more than its teacher's width d_T.

    A width-d_T teacher itself carries at most d_T·g(α) features, so a student needs
    min(F, d_T·g)/g = min(F/g, d_T) dimensions (teacher_width < 0 means no teacher).
    """
    dstar = theory.critical_width(n_features, alpha)
    return dstar if teacher_width < 0 else min(dstar, float(teacher_width))


def width_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (configuration, student width): measured loss over seeds and predicted floors."""
    grouped = runs.groupby(CONFIG_KEYS + ["student_width"], sort=True)
    curves = grouped.agg(
        loss_mean=("final_loss", "mean"),
        loss_std=("final_loss", "std"),
        loss_min=("final_loss", "min"),
        loss_max=("final_loss", "max"),
        eval_loss_mean=("eval_loss", "mean"),
        pred_floor_refined=("pred_floor_refined", "mean"),
        pred_floor_naive=("pred_floor_naive", "mean"),
        target_mass=("target_mass", "mean"),
        n_seeds=("seed", "nunique"),
    ).reset_index()
    curves["loss_std"] = curves["loss_std"].fillna(0.0)
    return curves


def seed_critical_widths(runs: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Measured critical width of every seed's own curve (the points of fig8)."""
    rows = []
    for key, grp in runs.groupby(CONFIG_KEYS + ["seed"], sort=True):
        rows.append({**dict(zip(CONFIG_KEYS + ["seed"], key)),
                     "measured_critical_width": theory.measured_critical_width(grp["student_width"], grp["final_loss"], tolerance)})
    out = pd.DataFrame(rows)
    out["predicted_critical_width"] = [
        predicted_critical_width(f, a, t) for f, a, t in zip(out["n_features"], out["alpha"], out["teacher_width"])
    ]
    return out


def summarize(runs: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """One row per configuration: predicted vs measured critical width and floor-curve accuracy."""
    curves = width_curves(runs)
    per_seed = seed_critical_widths(runs, tolerance)
    rows = []
    for key, curve in curves.groupby(CONFIG_KEYS, sort=True):
        mode, n_features, alpha, teacher_width = key
        seeds = per_seed[(per_seed[CONFIG_KEYS] == pd.Series(dict(zip(CONFIG_KEYS, key)))).all(axis=1)]
        predicted = predicted_critical_width(n_features, alpha, teacher_width)
        measured = theory.measured_critical_width(curve["student_width"], curve["loss_mean"], tolerance)
        rows.append({
            "mode": mode,
            "n_features": n_features,
            "alpha": alpha,
            "teacher_width": teacher_width,
            "n_seeds": int(curve["n_seeds"].max()),
            "g_alpha": theory.capacity_g(alpha),
            "dstar_theory": theory.critical_width(n_features, alpha),
            "predicted_critical_width": predicted,
            "measured_critical_width": measured,
            "measured_critical_width_seed_mean": float(seeds["measured_critical_width"].mean()),
            "measured_critical_width_seed_std": float(seeds["measured_critical_width"].std(ddof=1)) if len(seeds) > 1 else 0.0,
            "critical_width_accuracy": theory.prediction_accuracy(measured, predicted),
            "measured_floor": float(curve["loss_mean"].min()),
            "loss_at_smallest_width": float(curve["loss_mean"].iloc[0]),
            "floor_accuracy_refined": theory.curve_accuracy(curve["loss_mean"], curve["pred_floor_refined"]),
            "floor_accuracy_naive": theory.curve_accuracy(curve["loss_mean"], curve["pred_floor_naive"]),
            "floor_mae_refined_rel": float(np.mean(np.abs(curve["loss_mean"] - curve["pred_floor_refined"]))
                                           / curve["target_mass"].mean()),
            "widths": " ".join(str(int(w)) for w in curve["student_width"]),
        })
    return pd.DataFrame(rows)
