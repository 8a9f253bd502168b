"""Hand-computed values of the toy summary (toy_analysis) on small made-up runs and its independence of
the order in which the run tables are read; then toy.py's pieces re-derived by hand or in numpy: the
importance, the forward pass and held-out loss, the initialisation, the loss record's windows, curve
and convergence stop, and the feature mass.

The runs below are not trained: every loss, floor and feature count is chosen so that each table
value can be worked out by hand (the comments show the arithmetic). Unless a comment says otherwise,
the tolerance is pytest.approx's default (relative 1e-6): float64 rounding of a few terms is far
smaller, and the hand values of g(α) carry seven digits.
"""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from interplab import toy
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
    assert list(by_width.loc[0.8, "represented_min"]) == [2, 4, 4]
    assert list(by_width.loc[0.8, "represented_max"]) == [3, 4, 4]
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


def test_per_width_tables_do_not_depend_on_the_order_of_the_runs_they_get():
    """toy_summary passes them add_predictions' output, which comes sorted; the functions themselves must not
    need that: the curves, seed widths, capacity table and summary (its loss at the smallest width, its
    widths list) come out the same from the same runs in another order."""
    runs = add_predictions(runs_ab(), CAPACITY)
    shuffled = runs.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert list(shuffled["student_width"]) != sorted(shuffled["student_width"])
    for table in (width_curves, lambda r: seed_critical_widths(r, 0.05), capacity_by_width,
                  lambda r: summarize(r, point_accuracies(r), 0.05)):
        # rtol 1e-12: the same few float64 terms summed in another order.
        pd.testing.assert_frame_equal(table(shuffled), table(runs), check_exact=False, rtol=1e-12)


# ---------------------------------------------------------------- toy.py: the model, its data and its loss record

def test_importance_is_a_geometric_decay():
    assert toy.importance(4, 0.5).tolist() == [1.0, 0.5, 0.25, 0.125]  # r^i, exact in binary


def test_a_feature_whose_column_has_exactly_the_threshold_norm_is_represented():
    # Columns of W (d = 2, F = 3): (0.5, 0) has norm exactly REPRESENTED_NORM = 0.5, (0.25, 0.25) 0.354, (1, 0) 1.
    weight = torch.tensor([[0.5, 0.25, 1.0], [0.0, 0.25, 0.0]]).reshape(1, 1, 2, 3)
    models = toy.TrainedModels([weight], [torch.zeros(1, 1, 3)], (2,), np.zeros((1, 1)), np.zeros(0), np.zeros(0), 0)
    assert toy.REPRESENTED_NORM == 0.5 and models.features_represented().tolist() == [[2]]


def _two_group_models(n_features=5):
    """Hand-set models of widths 1 and 16 (two width groups, as width_groups splits them) for 2 seeds."""
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(2, 1, 1, n_features, generator=gen), 0.3 * torch.randn(2, 1, 16, n_features, generator=gen)]
    biases = [0.1 * torch.randn(2, 1, n_features, generator=gen) for _ in weights]
    return toy.TrainedModels(weights, biases, (1, 16), np.zeros((2, 2)), np.zeros(0), np.zeros(0), 0)


def test_forward_and_held_out_loss_against_a_numpy_rederivation():
    assert toy.width_groups((1, 16)) == [(1,), (16,)]
    models = _two_group_models()
    x = torch.rand(2, 50, 5, generator=torch.Generator().manual_seed(1))
    imp = toy.importance(5, 0.8)
    xs, expected_recon, expected_loss = x.double().numpy(), [], np.zeros((2, 2))
    for m, (weight, bias) in enumerate(zip(models.weights, models.biases)):
        w, b = weight[:, 0].double().numpy(), bias[:, 0].double().numpy()  # [S, d, F], [S, F]
        recon = np.maximum(np.einsum("sbf,sdf,sdg->sbg", xs, w, w) + b[:, None, :], 0.0)  # ReLU(Wᵀ W x + b)
        expected_recon.append(recon)
        expected_loss[:, m] = (imp.double().numpy() * (xs - recon) ** 2).sum(-1).mean(-1)  # mean over all 50
    out = models.forward(x)
    assert out.shape == (2, 2, 50, 5)  # [seeds, models of both groups, batch, F]
    # float32 against float64 on sums of 16 terms of order 1: 1e-5 is rounding.
    np.testing.assert_allclose(out.numpy(), np.stack(expected_recon, 1), rtol=1e-5, atol=1e-5)
    # Chunks of 7 do not divide 50: every sample must still count once.
    loss = toy._held_out_loss(models, x, x, imp, chunk=7)
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-5)


def test_init_is_xavier_normal_on_each_models_own_rows():
    weight, bias, mask = toy._init_models((4,), (0,), 396, "init-test", "cpu")
    # Xavier-normal std √(2/(d + F)) = √(2/400) = 0.0707. Over 4 × 396 = 1,584 draws the sample std's
    # relative standard error is 1/√(2·1584) = 1.8%, so 8% is 4.5 standard errors.
    assert weight[0, 0].std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.08)
    assert torch.all(bias == 0) and mask.flatten().tolist() == [1.0] * 4


def _feed(record, losses):
    """Add one loss per step (as a [1, 1] tensor) until the record says stop; the stopping step or None."""
    for step, value in enumerate(losses):
        if record.measures(step) and record.add(step, torch.tensor([[value]])):
            return step
    return None


def test_loss_curve_is_log_spaced_and_one_based():
    record = toy.LossRecord(steps=100, final_fraction=0.1, curve_points=5, tolerance=0.0)
    # geomspace(1, 100, 5) = 1, 3.16, 10, 31.6, 100 → steps 1, 3, 10, 31, 100, i.e. indices 0, 2, 9, 30, 99.
    assert toy._curve_steps(100, 5).tolist() == [0, 2, 9, 30, 99]
    assert [s for s in range(100) if record.measures(s)] == [0, 2, 9, 30] + list(range(90, 100))
    _feed(record, [float(s) for s in range(100)])
    assert [(s, float(c[0, 0])) for s, c in record.curve] == [(1, 0.0), (3, 2.0), (10, 9.0), (31, 30.0), (100, 99.0)]


def test_final_window_of_short_and_uneven_runs():
    # 4 steps × 10% rounds to 0: the window is one step, the last.
    short = toy.LossRecord(steps=4, final_fraction=0.1, curve_points=3, tolerance=0.0)
    _feed(short, [4.0, 3.0, 2.0, 1.0])
    assert short.window == 1 and short.final_loss[0, 0] == 1.0
    # 103 steps: the window of 10 ends at the last step, so it holds steps 93..102 (mean 97.5).
    uneven = toy.LossRecord(steps=103, final_fraction=0.1, curve_points=3, tolerance=0.0)
    _feed(uneven, [float(s) for s in range(103)])
    assert len(uneven.window_means) == 1 and uneven.final_loss[0, 0] == 97.5
    # With a tolerance every step is in a window: 23 steps, window round(2.3) = 2, the first starting at step
    # 23 % 2 = 1 so that the last ends at step 22: windows (1, 2), (3, 4), …, (21, 22).
    windows = toy.LossRecord(steps=23, final_fraction=0.1, curve_points=3, tolerance=1e-9)
    assert _feed(windows, [float(s) for s in range(23)]) is None
    assert [float(m[0, 0]) for m in windows.window_means] == [s + 0.5 for s in range(1, 23, 2)]


def test_convergence_stop_compares_the_last_two_window_means():
    def record():
        return toy.LossRecord(steps=100, final_fraction=0.1, curve_points=5, tolerance=0.05)

    # Window means 1.0, 0.5 (moved 50%), 0.2 (60%), 0.195 (2.5%): the stop is at the end of the fourth.
    steps = record()
    assert _feed(steps, [1.0] * 10 + [0.5] * 10 + [0.2] * 10 + [0.195] * 10) == 39
    np.testing.assert_allclose([float(m[0, 0]) for m in steps.window_means], [1.0, 0.5, 0.2, 0.195], rtol=1e-6)
    # A flat loss has settled after two windows, and so has a loss of exactly 0 (a move of 0 ≤ 0).
    assert _feed(record(), [1.0] * 30) == 19
    assert _feed(record(), [0.0] * 30) == 19


@pytest.mark.parametrize("factor", [0.1, 10.0])
def test_convergence_stop_is_relative(factor):
    """The stop compares relative moves, so scaling every loss leaves the stopping step unchanged."""
    sequences = [(29, [1.0] * 10 + [0.5] * 10 + [0.49] * 10),  # moved 2% of the previous window
                 (None, [1.0] * 10 + [0.5] * 10 + [0.45] * 10),  # moved 10%: no stop
                 # moved 10% of 0.004, which is only 0.04% of the first window: settled.
                 (29, [1.0] * 10 + [0.004] * 10 + [0.0036] * 10)]
    for stop, losses in sequences:
        record = toy.LossRecord(steps=100, final_fraction=0.1, curve_points=5, tolerance=0.05)
        assert _feed(record, [factor * v for v in losses]) == stop, (stop, factor)


def test_feature_mass_is_the_population_variance_of_the_held_out_sample():
    """I_i·Var(t_i) with Var the sample's own variance (divisor N): the loss of the best constant output on it.
    Four held-out samples make Bessel's N/(N − 1) a factor 4/3 that cannot hide in sampling noise."""
    cfg = toy.ToyConfig(n_features=3, alpha=0.5, student_widths=(1,), seeds=(0,), steps=2, batch_size=4,
                        eval_samples=4)
    runs = toy.run_config(cfg)
    # The held-out stream run_config draws from ("toy-eval-" + its tag F{F}_a{α}_dT{d_T}).
    x = toy.FeatureStream("toy-eval-F3_a0.5_dTNone", (0,), 4, 3, 0.5, "cpu").next()[0]
    expected = toy.importance(3, 0.9).double().numpy() * x.double().numpy().var(axis=0)  # numpy: ddof 0
    assert (expected > 0).all()
    np.testing.assert_allclose(runs["feature_mass"].iloc[0], expected, rtol=1e-5)  # float32 variance
    assert runs["target_mass"].iloc[0] == pytest.approx(expected.sum(), rel=1e-5)
