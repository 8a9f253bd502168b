import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from interplab import theory, toy
from interplab.toy_analysis import (accuracy_by_alpha, add_predictions, fitted_capacity, point_accuracies,
                                    predicted_critical_width, summarize, width_curves)

SMALL = toy.ToyConfig(n_features=8, alpha=0.8, student_widths=(1, 2, 4, 8), seeds=(0, 1), steps=300,
                      batch_size=128, lr=1e-2, eval_samples=2000)


def test_sample_features_distribution():
    x = toy.FeatureStream("test", (0,), 50_000, 4, 0.9, "cpu").next()[0]
    assert x.min() >= 0 and 0.99 < x.max() <= 1, "U[0, 1] magnitudes over 5,000 active draws reach 0.99"
    assert (x == 0).float().mean().item() == pytest.approx(0.9, abs=0.01)
    assert x[x > 0].mean().item() == pytest.approx(0.5, abs=0.01)


def test_feature_stream_is_one_sequence_per_seed():
    """Batch size and the other seeds in the stack do not change a seed's numbers: two batches of 4
    are the first 8 rows of one batch of 8, and seed 1 alone draws what it draws beside seed 0."""
    stream = toy.FeatureStream("test", (0, 1), 4, 3, 0.5, "cpu")
    first, second = stream.next().clone(), stream.next().clone()
    whole = toy.FeatureStream("test", (0, 1), 8, 3, 0.5, "cpu").next()
    assert torch.equal(torch.cat([first, second], 1), whole)
    assert torch.equal(toy.FeatureStream("test", (1,), 8, 3, 0.5, "cpu").next()[0], whole[1])
    assert not torch.equal(whole[0], whole[1])


def test_width_groups_bound_padding():
    assert toy.width_groups((1, 2, 3, 10, 64, 30), ratio=8) == [(1, 2, 3), (10, 30, 64)]
    assert toy.width_groups((5,)) == [(5,)]
    assert toy.width_groups((1, 8, 9)) == [(1, 8), (9,)], "a group's largest may be exactly ratio × its smallest"


def test_run_config_is_deterministic_and_learns():
    a, b = toy.run_config(SMALL), toy.run_config(SMALL)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["mode"]) == {"direct"} and set(a["teacher_width"]) == {-1}  # −1: no teacher
    loss = a.groupby("student_width")["eval_loss"].mean()
    assert loss.is_monotonic_decreasing, "wider students reach lower loss"
    assert loss.iloc[-1] < 0.2 * loss.iloc[0]
    # Measured losses respect the refined floor (a lower bound), up to noise.
    assert (a["eval_loss"] >= a["pred_floor_refined"] - 0.02 * a["target_mass"]).all()


def test_models_are_independent_of_batch_mates():
    alone = toy.run_config(dataclasses.replace(SMALL, student_widths=(4,), seeds=(1,)))
    together = toy.run_config(SMALL)
    row = together[(together.student_width == 4) & (together.seed == 1)].iloc[0]
    assert alone.iloc[0]["final_loss"] == pytest.approx(row["final_loss"], rel=1e-5)


def test_masked_rows_stay_zero():
    weight = toy.train_models(SMALL, (1, 3), 50, "mask-test").weights[0]
    assert torch.all(weight[:, 0, 1:] == 0)
    assert torch.any(weight[:, 0, 0] != 0)


def test_distill_mode_targets_teacher():
    cfg = dataclasses.replace(SMALL, teacher_width=3, teacher_steps=200, student_widths=(1, 3))
    runs = toy.run_config(cfg)
    assert set(runs["mode"]) == {"distill"} and set(runs["teacher_width"]) == {3}
    # A student as wide as its teacher can copy it: loss far below the width-1 student's.
    loss = runs.groupby("student_width")["eval_loss"].mean()
    assert loss[3] < 0.3 * loss[1]
    assert predicted_critical_width(20, 0.8, 3) == 3  # F/g = 6.4, capped by the teacher
    assert predicted_critical_width(8, 0.8, -1) == pytest.approx(8 / 3.1067, rel=1e-3)


def test_grid_names_and_auto_widths():
    section = {"mode": "distill", "n_features": [10], "alphas": [0.9], "teacher_widths": [3, 5], "n_seeds": 2,
               "student_widths": "auto", "n_widths": 4, "importance_decay": 0.9, "steps": 10, "teacher_steps": 10,
               "batch_size": 8, "lr": 1e-3, "eval_samples": 100, "final_fraction": 0.1, "convergence_tolerance": 0.0,
               "engine": "torch"}
    configs = toy.grid(section)
    assert list(configs) == ["F10_a0.9_dT3", "F10_a0.9_dT5"]
    assert configs["F10_a0.9_dT5"].student_widths == (1, 2, 3, 5)
    assert configs["F10_a0.9_dT5"].engine == "torch"
    assert toy.run_name(64, 0.95, None) == "F64_a0.95_direct"


def test_summary_columns_and_accuracy():
    runs = toy.run_config(SMALL)
    runs = add_predictions(runs, fitted_capacity(runs))
    summary = summarize(runs, point_accuracies(runs), tolerance=0.05, tolerance_sweep=(0.02, 0.1))
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["predicted_critical_width"] == pytest.approx(8 / 3.1067, rel=1e-3)
    assert row["measured_critical_width"] in SMALL.student_widths
    assert row["measured_critical_width_tol2pct"] >= row["measured_critical_width"] >= row["measured_critical_width_tol10pct"]
    assert row["critical_width_accuracy"] == pytest.approx(
        theory.prediction_accuracy(row["measured_critical_width"], row["predicted_critical_width"]))
    assert 0 <= row["floor_accuracy_refined_n"] <= len(runs)
    curves = width_curves(runs)
    assert list(curves["student_width"]) == [1, 2, 4, 8]
    by_width = runs.groupby("student_width")["final_loss"]
    np.testing.assert_allclose(curves["loss_mean"], by_width.mean())
    np.testing.assert_allclose(curves["loss_min"], by_width.min())
    np.testing.assert_allclose(curves["loss_max"], by_width.max())
    # final_loss averages the last recorded window of training batches (128 samples each); the loss on
    # 2,000 fresh samples must agree: measured gaps are at most 0.007 here, 0.02 leaves 3x room, and a
    # window taken early in training (losses 0.2-0.3 at every width) is far outside it.
    assert np.abs(runs["final_loss"] - runs["eval_loss"]).max() < 0.02


def test_fused_step_gradients_match_autograd():
    torch.manual_seed(0)
    n_seeds, widths, batch, n_features = 2, (1, 3), 64, 6
    weight, bias, mask = toy._init_models(widths, tuple(range(n_seeds)), n_features, "grad-test", "cpu")
    bias += 0.1 * torch.randn_like(bias)
    imp = toy.importance(n_features, 0.8)
    x = torch.rand(n_seeds, batch, n_features)
    target = torch.rand(n_seeds, batch, n_features)
    w_ref, b_ref = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    recon = torch.relu((x.unsqueeze(1) @ w_ref.transpose(-1, -2)) @ w_ref + b_ref.unsqueeze(2))
    ref_loss = ((target.unsqueeze(1) - recon) ** 2 * imp).sum(-1).mean(-1)
    ref_loss.sum().backward()
    step = toy.FusedStep(weight, bias, mask, batch, imp, lr=1e-3)
    loss = step(x, target * step.scale, measure=True)
    # float32 sums over batch × F terms: agreement to 1e-5 relative is rounding, not a different formula.
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(weight.grad, w_ref.grad * mask, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bias.grad, b_ref.grad, rtol=1e-4, atol=1e-6)


def test_loss_windows_end_at_the_last_step_and_the_stop_needs_settled_windows():
    record = toy.LossRecord(steps=105, final_fraction=0.1, curve_points=5, tolerance=0.0)
    assert record.window == 10 and [s for s in range(105) if record.in_windows(s)] == list(range(95, 105))
    for step in range(105):
        if record.measures(step):
            assert not record.add(step, torch.full((1, 1), float(step)))
    assert record.final_loss[0, 0] == pytest.approx(np.mean(range(95, 105)))
    stopping = toy.LossRecord(steps=100, final_fraction=0.1, curve_points=5, tolerance=0.05)
    losses = [1.0] * 10 + [0.5] * 10 + [0.49] * 10  # window means 1.0, 0.5 (moved 50%), 0.49 (moved 2%)
    stops = [stopping.add(step, torch.tensor([[value]])) for step, value in enumerate(losses)]
    assert stops.index(True) == 29
    near_zero = toy.LossRecord(steps=100, final_fraction=0.1, curve_points=5, tolerance=0.05)
    losses = [1.0] * 10 + [0.004] * 10 + [0.0036] * 10  # moved 10%, but by 0.04% of the first window: settled
    assert [near_zero.add(step, torch.tensor([[v]])) for step, v in enumerate(losses)].index(True) == 29


def test_convergence_stop_shortens_training_only_when_asked():
    assert set(toy.run_config(SMALL)["steps_run"]) == {SMALL.steps}
    stopped = toy.run_config(dataclasses.replace(SMALL, convergence_tolerance=0.5))
    assert stopped["steps_run"].iloc[0] < SMALL.steps and stopped["steps_run"].nunique() == 1
    # The stop falls at the end of a window (30 steps = 10% of 300, aligned to end at step 300), and
    # steps_run counts the steps taken: a multiple of 30.
    assert stopped["steps_run"].iloc[0] % 30 == 0


def test_target_mass_is_importance_times_variance():
    runs = toy.run_config(dataclasses.replace(SMALL, student_widths=(1,), seeds=(0,), eval_samples=200_000))
    alpha, imp = SMALL.alpha, toy.importance(SMALL.n_features, SMALL.importance_decay).numpy()
    # x is 0 w.p. α, else U[0, 1]: E[x] = (1−α)/2, E[x²] = (1−α)/3.
    variance = (1 - alpha) / 3 - ((1 - alpha) / 2) ** 2
    # 200k samples, kurtosis ≈ 7.4 at α = 0.8: the sample variance's relative std is √(6.4/2e5) ≈ 0.6%,
    # so 3% is five standard deviations.
    np.testing.assert_allclose(runs["feature_mass"].iloc[0], imp * variance, rtol=0.03)


def test_measured_losses_respect_the_variance_floor_up_to_seed_noise():
    cfg = dataclasses.replace(SMALL, seeds=(0, 1, 2, 3), steps=600)
    runs = toy.run_config(cfg)
    per_width = runs.groupby("student_width").agg(loss=("eval_loss", "mean"), spread=("eval_loss", "std"),
                                                  floor=("pred_floor_refined", "mean"))
    # Seed noise: two standard deviations of the seed-to-seed loss.
    assert (per_width["loss"] >= per_width["floor"] - 2 * per_width["spread"]).all()
    assert (per_width["floor"] > 0).any(), "the check bites: some width has a nonzero floor"


@pytest.mark.parametrize("alpha", [0.8, 0.9])
def test_width_one_represents_an_antipodal_pair(alpha):
    cfg = toy.ToyConfig(n_features=8, alpha=alpha, student_widths=(1,), seeds=(0, 1, 2), steps=1500, batch_size=256,
                        lr=1e-2, eval_samples=1000)
    runs = toy.run_config(cfg)
    assert list(runs["features_represented"]) == [2, 2, 2]


def _runs(rows):
    """Hand-made run rows of one direct configuration (F = 4, α = 0.8) for the analysis tests."""
    base = {"mode": "direct", "n_features": 4, "alpha": 0.8, "teacher_width": -1, "target_mass": 1.0,
            "feature_mass": [0.4, 0.3, 0.2, 0.1], "features_available": 4}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_fitted_capacity_skips_saturated_models():
    runs = _runs([{"seed": 0, "student_width": 1, "features_represented": 2},
                  {"seed": 0, "student_width": 2, "features_represented": 3},
                  {"seed": 0, "student_width": 4, "features_represented": 4}])  # saturated: all 4 held
    row = fitted_capacity(runs).iloc[0]
    assert row["capacity_fitted"] == pytest.approx(1.75)  # median of 2/1 and 3/2
    assert row["n_saturated_excluded"] == 1 and row["represented_at_width_1_median"] == 2
    assert row["g_over_c"] == pytest.approx(3.1067 / 1.75, rel=1e-3)


def test_accuracy_by_alpha_hand_computed():
    runs = _runs([{"seed": 0, "student_width": w, "final_loss": loss, "features_represented": 2 * w,
                   "pred_floor_refined": refined, "pred_floor_naive": naive}
                  for w, loss, refined, naive in [(1, 0.5, 0.25, 0.6), (2, 0.2, 0.2, 0.0), (3, 0.1, 0.0, 0.0)]])
    runs = add_predictions(runs, pd.DataFrame({"alpha": [0.8], "capacity_fitted": [1.0]}))
    # c = 1: widths 1, 2, 3 keep 1, 2, 3 features → floors 0.6, 0.3, 0.1.
    np.testing.assert_allclose(runs["pred_floor_capacity"], [0.6, 0.3, 0.1])
    table = accuracy_by_alpha(point_accuracies(runs)).set_index(["predictor", "reading"])
    # refined, relative to prediction: widths 1, 2 → 1 − 0.25/0.25 = 0 and 1 → median 0.5 on 2 points.
    assert table.loc[("refined", "relative_to_prediction"), "median_accuracy"] == pytest.approx(0.5)
    assert table.loc[("refined", "relative_to_prediction"), "n_points"] == 2
    # refined, absolute (ε∞ = 1): 0.75, 1.0, 0.9 → 0.9.
    assert table.loc[("refined", "absolute"), "median_accuracy"] == pytest.approx(0.9)
    # zero predictor: undefined relative to itself, 0 relative to the measurement, 1 − loss absolutely.
    assert table.loc[("zero", "relative_to_prediction"), "n_points"] == 0
    assert table.loc[("zero", "relative_to_measured"), "median_accuracy"] == 0.0
    assert table.loc[("zero", "absolute"), "median_accuracy"] == pytest.approx(0.8)
    # measured capacity relative to measurement: 1 − 0.1/0.5, 1 − 0.1/0.2, 1 → median 0.8.
    assert table.loc[("measured_capacity", "relative_to_measured"), "median_accuracy"] == pytest.approx(0.8)


def test_affine_calibration_is_leave_one_out():
    # measured = 2·refined + 0.1 exactly: every left-out width is predicted exactly.
    runs = _runs([{"seed": 0, "student_width": w, "final_loss": 2 * r + 0.1, "pred_floor_refined": r,
                   "pred_floor_naive": 0.0, "features_represented": w} for w, r in [(1, 0.3), (2, 0.2), (3, 0.05)]])
    runs = add_predictions(runs, pd.DataFrame({"alpha": [0.8], "capacity_fitted": [1.0]}))
    np.testing.assert_allclose(runs["pred_affine_loo"], runs["final_loss"])
    # A kink the other widths cannot see is not fitted away.
    runs.loc[runs["student_width"] == 3, "final_loss"] = 0.5
    assert add_predictions(runs, pd.DataFrame({"alpha": [0.8], "capacity_fitted": [1.0]}))["pred_affine_loo"].iloc[2] \
        == pytest.approx(0.2)


def test_scaled_teacher_matches_the_teacher_forward():
    teacher = toy.train_models(SMALL, (3,), 20, "teacher-test")
    x = torch.rand(len(SMALL.seeds), 32, SMALL.n_features)
    scale = toy.importance(SMALL.n_features, SMALL.importance_decay).sqrt()
    torch.testing.assert_close(toy.ScaledTeacher(teacher, scale)(x), teacher.forward(x)[:, 0] * scale)


def test_held_out_loss_does_not_depend_on_the_chunking():
    models = toy.train_models(SMALL, (1, 3), 10, "chunk-test")
    x = torch.rand(len(SMALL.seeds), 50, SMALL.n_features)
    imp = toy.importance(SMALL.n_features, SMALL.importance_decay)
    whole = toy._held_out_loss(models, x, x, imp, chunk=50)
    torch.testing.assert_close(toy._held_out_loss(models, x, x, imp, chunk=7), whole)


def test_capacity_from_the_other_feature_counts():
    rows = [{"seed": 0, "student_width": w, "final_loss": 0.5 / w, "pred_floor_refined": 0.0, "pred_floor_naive": 0.0,
             "features_represented": 2 * w} for w in (1, 2)]
    small = _runs(rows)
    large = _runs(rows).assign(n_features=8, features_available=8,
                               features_represented=lambda d: 3 * d["student_width"],
                               feature_mass=[[0.1] * 8] * 2)
    runs = pd.concat([small, large], ignore_index=True)
    runs = add_predictions(runs, fitted_capacity(runs))
    # F = 4 is scored with c = 3 from F = 8 alone: width 1 keeps 3 of [0.4, 0.3, 0.2, 0.1] → 0.1; width 2 all → 0.
    np.testing.assert_allclose(runs.loc[runs["n_features"] == 4, "pred_floor_capacity_other_F"], [0.1, 0.0])
    # F = 8 with c = 2 from F = 4: width 1 keeps 2 of eight 0.1s → 0.6; width 2 keeps 4 → 0.4.
    np.testing.assert_allclose(runs.loc[runs["n_features"] == 8, "pred_floor_capacity_other_F"], [0.6, 0.4])
