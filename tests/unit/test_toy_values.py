"""Hand-computed values of the toy summary (toy_analysis) on small made-up runs and its independence of
the order in which the run tables are read.

The runs below are not trained: every loss, floor and feature count is chosen so that each table
value can be worked out by hand (the comments show the arithmetic). Unless a comment says otherwise,
the tolerance is pytest.approx's default (relative 1e-6): float64 rounding of a few terms is far
smaller, and the hand values of g(α) carry seven digits.
"""
import math

import numpy as np
import pandas as pd
import pytest

from interplab.toy_analysis import (accuracy_by_alpha, add_predictions, capacity_by_width, fitted_capacity,
                                    point_accuracies, seed_critical_widths, summarize, width_curves)

G08, G09 = 3.106674, 4.342945  # g(0.8) = 1/(0.2·ln 5), g(0.9) = 1/(0.1·ln 10)
CAPACITY = pd.DataFrame({"alpha": [0.8, 0.9], "capacity_fitted": [1.0, 1.0]})  # c = 1: width d keeps d features


def _rows(alpha, seed, widths, final_loss, refined, naive, represented, n_features=4):
    mass = [0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0][:n_features]  # Σ = 2.0 = target_mass
    return [{"mode": "direct", "n_features": n_features, "alpha": alpha, "teacher_width": -1, "seed": seed,
             "student_width": w, "final_loss": loss, "eval_loss": loss, "pred_floor_refined": r, "pred_floor_naive": n,
             "features_represented": k, "features_available": n_features, "target_mass": 2.0, "feature_mass": mass}
            for w, loss, r, n, k in zip(widths, final_loss, refined, naive, represented)]


def runs_ab() -> pd.DataFrame:
    """Configuration A (α = 0.8, seeds 0 and 1) and B (α = 0.9, seed 0 alone), widths 1, 2, 4, F = 4."""
    return pd.DataFrame(
        _rows(0.8, 0, (1, 2, 4), (0.5, 0.11, 0.1), (0.5, 0.1, 0.0), (0.4, 0.2, 0.0), (3, 4, 4))
        + _rows(0.8, 1, (1, 2, 4), (0.7, 0.2, 0.1), (0.5, 0.1, 0.0), (0.4, 0.2, 0.0), (2, 4, 4))
        + _rows(0.9, 0, (1, 2, 4), (0.4, 0.1, 0.1), (0.3, 0.0, 0.0), (0.3, 0.1, 0.0), (4, 4, 4)))


def test_summary_rows_hand_computed():
    runs = add_predictions(runs_ab(), CAPACITY)
    summary = summarize(runs, point_accuracies(runs), tolerance=0.05).set_index("alpha")
    a, b = summary.loc[0.8], summary.loc[0.9]
    # A's mean curve over the two seeds: 0.6, 0.155, 0.1 → floor 0.1, range 0.5, threshold 0.125 → width 4.
    assert a["measured_critical_width"] == 4 and a["predicted_critical_width"] == pytest.approx(4 / G08, rel=1e-6)
    assert a["measured_floor"] == pytest.approx(0.1) and a["loss_at_smallest_width"] == pytest.approx(0.6)
    # Seed curves: seed 0 (range 0.4, threshold 0.12) → width 2; seed 1 (range 0.6, threshold 0.13) → width 4.
    assert a["measured_critical_width_seed_mean"] == 3.0
    assert a["measured_critical_width_seed_std"] == pytest.approx(math.sqrt(2))  # √((1² + 1²)/(2 − 1))
    assert a["n_seeds"] == 2 and a["widths"] == "1 2 4"
    # Refined floor 0.5, 0.1, 0 against losses 0.5, 0.11 | 0.7, 0.2 (width 4 has no prediction):
    # 1, 0.9 | 0.6, 0 → median 0.75 over 4 points.
    assert a["floor_accuracy_refined"] == pytest.approx(0.75) and a["floor_accuracy_refined_n"] == 4
    # Naive floor 0.4, 0.2: 1 − 0.1/0.4, 1 − 0.09/0.2 | 1 − 0.3/0.4, 1 → 0.75, 0.55 | 0.25, 1 → median 0.65.
    assert a["floor_accuracy_naive"] == pytest.approx(0.65) and a["floor_accuracy_naive_n"] == 4
    # c = 1 keeps 1, 2 features of masses 0.8, 0.6, 0.4, 0.2 → floors 1.2, 0.6: 1 − 0.7/1.2, 1 − 0.49/0.6 |
    # 1 − 0.5/1.2, 1 − 0.4/0.6 → 0.4167, 0.1833 | 0.5833, 0.3333 → median 0.375.
    assert a["floor_accuracy_measured_capacity"] == pytest.approx(0.375)
    # |0.6 − 0.5|, |0.155 − 0.1|, |0.1 − 0| → mean 0.085, over the target mass 2.0.
    assert a["floor_mae_refined_rel"] == pytest.approx(0.0425)
    # B alone: curve 0.4, 0.1, 0.1 → threshold 0.115 → width 2; one seed, so its spread is 0, not NaN.
    assert b["measured_critical_width"] == 2 and b["predicted_critical_width"] == pytest.approx(4 / G09, rel=1e-6)
    assert b["measured_critical_width_seed_mean"] == 2.0 and b["measured_critical_width_seed_std"] == 0.0
    assert b["n_seeds"] == 1 and b["loss_at_smallest_width"] == pytest.approx(0.4)


def test_width_curves_hand_computed():
    curves = width_curves(add_predictions(runs_ab(), CAPACITY)).set_index(["alpha", "student_width"])
    np.testing.assert_allclose(curves.loc[0.8, "loss_mean"], [0.6, 0.155, 0.1])
    # Sample std (ddof 1) of two seeds: |a − b|/√2.
    np.testing.assert_allclose(curves.loc[0.8, "loss_std"], [0.2 / math.sqrt(2), 0.09 / math.sqrt(2), 0.0], atol=1e-12)
    np.testing.assert_allclose(curves.loc[0.8, "loss_min"], [0.5, 0.11, 0.1])
    np.testing.assert_allclose(curves.loc[0.8, "pred_floor_capacity"], [1.2, 0.6, 0.0])
    # One seed: no spread to measure, reported as 0 (pandas gives NaN).
    assert list(curves.loc[0.9, "loss_std"]) == [0.0, 0.0, 0.0]
    assert list(curves.loc[0.8, "n_seeds"]) == [2, 2, 2] and list(curves.loc[0.9, "n_seeds"]) == [1, 1, 1]


def test_seed_critical_widths_hand_computed():
    seeds = seed_critical_widths(runs_ab(), tolerance=0.05)
    assert list(zip(seeds["alpha"], seeds["seed"], seeds["measured_critical_width"])) == [(0.8, 0, 2), (0.8, 1, 4),
                                                                                          (0.9, 0, 2)]
    np.testing.assert_allclose(seeds["predicted_critical_width"], [4 / G08, 4 / G08, 4 / G09], rtol=1e-6)


def test_capacity_tables_hand_computed():
    runs = runs_ab()
    fit = fitted_capacity(runs).set_index("alpha")
    # A: only the width-1 models (3 and 2 features of 4) are unsaturated → per dimension 3, 2 → median 2.5.
    assert fit.loc[0.8, "capacity_fitted"] == 2.5 and fit.loc[0.8, "n_saturated_excluded"] == 4
    assert (fit.loc[0.8, "represented_at_width_1_min"], fit.loc[0.8, "represented_at_width_1_max"]) == (2.0, 3.0)
    # B: every model saturated, so all of them count: 4/1, 4/2, 4/4 → median 2.
    assert fit.loc[0.9, "capacity_fitted"] == 2.0 and fit.loc[0.9, "n_models"] == 3
    by_width = capacity_by_width(runs).set_index(["alpha", "student_width"])
    assert list(by_width.loc[0.8, "represented_median"]) == [2.5, 4.0, 4.0]
    assert list(by_width.loc[0.8, "represented_min"]) == [2, 4, 4] and list(by_width.loc[0.8, "represented_max"]) == [3, 4, 4]
    np.testing.assert_allclose(by_width.loc[0.8, "represented_per_dimension"], [2.5, 2.0, 1.0])
    np.testing.assert_allclose(by_width["g_alpha"], [G08] * 3 + [G09] * 3, rtol=1e-6)


def test_accuracy_point_counts_hand_computed():
    table = accuracy_by_alpha(point_accuracies(add_predictions(runs_ab(), CAPACITY))).set_index(
        ["alpha", "predictor", "reading"])
    # Refined at α = 0.8: defined at widths 1 and 2 of both seeds → 4 points on 2 (configuration, width) pairs.
    assert table.loc[(0.8, "refined", "relative_to_prediction"), ["n_points", "n_widths"]].tolist() == [4, 2]
    # The zero predictor is never defined relative to itself: 0 points on 0 widths.
    assert table.loc[(0.8, "zero", "relative_to_prediction"), ["n_points", "n_widths"]].tolist() == [0, 0]
    assert math.isnan(table.loc[(0.8, "zero", "relative_to_prediction"), "median_accuracy"])


def test_a_one_width_run_and_a_seed_missing_a_width():
    # Configuration C: seed 0 ran widths 1 and 2, seed 1 only width 1 (a one-width run).
    runs = pd.DataFrame(_rows(0.8, 0, (1, 2), (0.5, 0.3), (0.6, 0.0), (0.5, 0.1), (2, 3))
                        + _rows(0.8, 1, (1,), (0.6,), (0.6,), (0.5,), (2,)))
    runs = add_predictions(runs, CAPACITY)
    # c = 1, masses 0.8, 0.6, 0.4, 0.2: width 1 keeps one feature → 1.2, width 2 two → 0.6, on either seed.
    np.testing.assert_allclose(runs["pred_floor_capacity"], [1.2, 0.6, 1.2])
    row = summarize(runs, point_accuracies(runs), tolerance=0.05).iloc[0]
    assert row["n_seeds"] == 2  # the configuration's seeds, though width 2 has only one
    assert row["measured_critical_width_seed_mean"] == 1.5  # seed 0: width 2; seed 1's one point: width 1


def test_summary_tables_do_not_depend_on_the_order_of_the_runs():
    """The run tables are concatenated in whatever order the workflow lists them: every summary table must
    come out the same (rows and index), up to the rounding of means summed in another order."""
    ordered = runs_ab()
    shuffled = ordered.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert list(shuffled["alpha"]) != sorted(shuffled["alpha"])  # the shuffle does move rows

    def tables(runs):
        capacity = fitted_capacity(runs)
        runs = add_predictions(runs, capacity)
        points = point_accuracies(runs)
        return {"capacity_fit": capacity, "runs": runs, "points": points, "accuracy": accuracy_by_alpha(points),
                "curves": width_curves(runs), "seeds": seed_critical_widths(runs, 0.05),
                "capacity": capacity_by_width(runs), "summary": summarize(runs, points, 0.05)}

    expected, got = tables(ordered), tables(shuffled)
    for name in expected:
        # rtol 1e-12: the same few float64 terms summed in another order.
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=False, rtol=1e-12, obj=name)

