"""From per-(seed, width) toy runs to curves, capacity, accuracy readings and the per-configuration summary.

The summary compares what the toy models measured with what the KD theorem predicts: the
critical width (where the loss stops falling) and the floor curve (loss at every width). Each
predicted floor is scored per (configuration, seed, width) point under every reading of
`theory.accuracy_readings`, beside a predictor that always says 0, so a high score can be told
apart from a lenient metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interplab import theory

CONFIG_KEYS = ["mode", "n_features", "alpha", "teacher_width"]
RUN_KEYS = CONFIG_KEYS + ["seed"]
# Predictors of the loss at each width: the column that holds them (the zero predictor has none).
PREDICTORS = {
    "refined": "pred_floor_refined",
    "naive": "pred_floor_naive",
    "measured_capacity": "pred_floor_capacity",
    "measured_capacity_other_F": "pred_floor_capacity_other_F",
    "affine_calibrated": "pred_affine_loo",
    "zero": None,
}
READINGS = ("relative_to_prediction", "relative_to_measured", "absolute")


def predicted_critical_width(n_features: int, alpha: float, teacher_width: int) -> float:
    """d*_S = F/g(α); a distilled student never needs more than its teacher's width d_T.

    A width-d_T teacher itself carries at most d_T·g(α) features, so a student needs
    min(F, d_T·g)/g = min(F/g, d_T) dimensions (teacher_width < 0 means no teacher).
    """
    dstar = theory.critical_width(n_features, alpha)
    return dstar if teacher_width < 0 else min(dstar, float(teacher_width))


def fitted_capacity(runs: pd.DataFrame) -> pd.DataFrame:
    """Per α: the measured capacity c(α), features represented per dimension, beside g(α).

    A feature is represented when its column of W has norm ≥ 0.5 (`toy.REPRESENTED_NORM`).
    c(α) is the median of represented/d_S over the (configuration, seed, width) models that are not
    saturated, i.e. represent fewer features than their target offers (F, or the teacher's count):
    a saturated model shows how many features there were, not how many it could hold.
    """
    rows = []
    for alpha, grp in runs.groupby("alpha", sort=True):
        unsaturated = grp[grp["features_represented"] < grp["features_available"]]
        basis = unsaturated if len(unsaturated) else grp
        per_dim = basis["features_represented"] / basis["student_width"]
        g = theory.capacity_g(alpha)
        c = float(per_dim.median())
        width_one = grp.loc[grp["student_width"] == 1, "features_represented"]
        rows.append({"alpha": alpha, "capacity_fitted": c, "g_alpha": g, "g_over_c": g / c,
                     "n_models": len(basis), "n_saturated_excluded": len(grp) - len(unsaturated),
                     "represented_at_width_1_median": float(width_one.median()) if len(width_one) else np.nan,
                     "represented_at_width_1_min": float(width_one.min()) if len(width_one) else np.nan,
                     "represented_at_width_1_max": float(width_one.max()) if len(width_one) else np.nan})
    return pd.DataFrame(rows)


def capacity_by_width(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (configuration, width): features represented (median and range over seeds) and per dimension."""
    grouped = runs.groupby(CONFIG_KEYS + ["student_width"], sort=True)
    table = grouped.agg(represented_median=("features_represented", "median"),
                        represented_min=("features_represented", "min"),
                        represented_max=("features_represented", "max"),
                        available_median=("features_available", "median")).reset_index()
    table["represented_per_dimension"] = table["represented_median"] / table["student_width"]
    table["g_alpha"] = theory.capacity_g(table["alpha"].to_numpy())
    return table


def _affine_leave_one_out(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Each width's loss from the affine fit measured ≈ a·predicted + b over the other widths (≥ 2 of them).

    The paper's Experiment 3 calibrates the floor this way; leaving the scored width out keeps the
    reading out-of-sample. Degenerate fits (all other predictions equal) take the minimum-norm
    solution; predictions are clipped at 0, a loss being non-negative.
    """
    out = np.full(len(measured), np.nan)
    if len(measured) < 3:
        return out
    for k in range(len(measured)):
        keep = np.arange(len(measured)) != k
        design = np.column_stack([predicted[keep], np.ones(keep.sum())])
        coef = np.linalg.lstsq(design, measured[keep], rcond=None)[0]
        out[k] = max(0.0, coef[0] * predicted[k] + coef[1])
    return out


def add_predictions(runs: pd.DataFrame, capacity: pd.DataFrame) -> pd.DataFrame:
    """Runs with the measured-capacity floor (c(α) in place of g(α)), the same with c(α) fitted on the
    other feature counts only (out-of-sample in F; NaN with a single F), and the affine-calibrated refined floor."""
    c_of = dict(zip(capacity["alpha"], capacity["capacity_fitted"]))
    c_without = {f: dict(zip(table["alpha"], table["capacity_fitted"]))
                 for f in runs["n_features"].unique()
                 if len(table := fitted_capacity(runs[runs["n_features"] != f]))}
    parts = []
    for key, grp in runs.groupby(RUN_KEYS, sort=True):
        grp = grp.sort_values("student_width").copy()
        n_features, alpha = key[1], key[2]
        widths = grp["student_width"].to_numpy()
        mass = np.asarray(grp["feature_mass"].iloc[0], dtype=float)
        grp["pred_floor_capacity"] = theory.refined_floor(widths, alpha, mass, per_dimension=c_of[alpha])
        other = c_without.get(n_features, {}).get(alpha)
        grp["pred_floor_capacity_other_F"] = (np.nan if other is None else
                                              theory.refined_floor(widths, alpha, mass, per_dimension=other))
        grp["pred_affine_loo"] = _affine_leave_one_out(grp["pred_floor_refined"].to_numpy(), grp["final_loss"].to_numpy())
        parts.append(grp)
    return pd.concat(parts, ignore_index=True)


def point_accuracies(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (configuration, seed, width, predictor, reading): the accuracy of that point (NaN if undefined)."""
    base = runs[CONFIG_KEYS + ["seed", "student_width"]]
    parts = []
    for predictor, column in PREDICTORS.items():
        predicted = np.zeros(len(runs)) if column is None else runs[column].to_numpy()
        readings = theory.accuracy_readings(runs["final_loss"], predicted, runs["target_mass"])
        for reading in READINGS:
            parts.append(base.assign(predictor=predictor, reading=reading, accuracy=readings[reading]))
    return pd.concat(parts, ignore_index=True)


def _median_with_count(points: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Median of the defined accuracies per `keys`, with the points and distinct (configuration, width) pairs used."""
    defined = points.dropna(subset=["accuracy"])
    table = defined.groupby(keys, sort=True)["accuracy"].agg(median_accuracy="median", n_points="size")
    width_keys = list(dict.fromkeys(keys + CONFIG_KEYS + ["student_width"]))
    table["n_widths"] = defined.drop_duplicates(width_keys).groupby(keys).size()
    full = points[keys].drop_duplicates()
    merged = full.merge(table.reset_index(), on=keys, how="left").fillna({"n_points": 0, "n_widths": 0})
    return merged.astype({"n_points": int, "n_widths": int})


def accuracy_by_alpha(points: pd.DataFrame) -> pd.DataFrame:
    """Per α, predictor and reading: median accuracy over every (configuration, seed, width) point where
    it is defined, with n_points and n_widths = distinct (configuration, width) pairs it rests on."""
    return _median_with_count(points, ["alpha", "predictor", "reading"])


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
        pred_floor_capacity=("pred_floor_capacity", "mean"),
        target_mass=("target_mass", "mean"),
        n_seeds=("seed", "nunique"),
    ).reset_index()
    curves["loss_std"] = curves["loss_std"].fillna(0.0)
    return curves


def seed_critical_widths(runs: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Measured critical width of every seed's own curve (the points of fig8)."""
    rows = []
    for key, grp in runs.groupby(RUN_KEYS, sort=True):
        rows.append({**dict(zip(RUN_KEYS, key)),
                     "measured_critical_width": theory.measured_critical_width(grp["student_width"], grp["final_loss"], tolerance)})
    out = pd.DataFrame(rows)
    out["predicted_critical_width"] = [
        predicted_critical_width(f, a, t) for f, a, t in zip(out["n_features"], out["alpha"], out["teacher_width"])
    ]
    return out


def summarize(runs: pd.DataFrame, points: pd.DataFrame, tolerance: float, tolerance_sweep=()) -> pd.DataFrame:
    """One row per configuration: predicted vs measured critical width (at `tolerance` and at each of
    `tolerance_sweep`) and the median floor accuracy (relative to the prediction) with its point count."""
    curves = width_curves(runs)
    per_seed = seed_critical_widths(runs, tolerance)
    relative = points[points["reading"] == "relative_to_prediction"]
    accuracy = _median_with_count(relative, CONFIG_KEYS + ["predictor"]).pivot(
        index=CONFIG_KEYS, columns="predictor", values=["median_accuracy", "n_points"])
    rows = []
    for key, curve in curves.groupby(CONFIG_KEYS, sort=True):
        mode, n_features, alpha, teacher_width = key
        seeds = per_seed[(per_seed[CONFIG_KEYS] == pd.Series(dict(zip(CONFIG_KEYS, key)))).all(axis=1)]
        predicted = predicted_critical_width(n_features, alpha, teacher_width)
        measured = theory.measured_critical_width(curve["student_width"], curve["loss_mean"], tolerance)
        row = {
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
        }
        for tol in tolerance_sweep:
            row[f"measured_critical_width_tol{round(100 * tol):g}pct"] = theory.measured_critical_width(
                curve["student_width"], curve["loss_mean"], tol)
        row.update({
            "measured_floor": float(curve["loss_mean"].min()),
            "loss_at_smallest_width": float(curve["loss_mean"].iloc[0]),
        })
        for predictor in ("refined", "naive", "measured_capacity"):
            row[f"floor_accuracy_{predictor}"] = float(accuracy.loc[key, ("median_accuracy", predictor)])
            row[f"floor_accuracy_{predictor}_n"] = int(accuracy.loc[key, ("n_points", predictor)])
        row.update({
            "floor_mae_refined_rel": float(np.mean(np.abs(curve["loss_mean"] - curve["pred_floor_refined"]))
                                           / curve["target_mass"].mean()),
            "widths": " ".join(str(int(w)) for w in curve["student_width"]),
        })
        rows.append(row)
    return pd.DataFrame(rows)
