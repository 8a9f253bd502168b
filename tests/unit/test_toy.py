import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from interplab import toy
from interplab.toy_analysis import predicted_critical_width, summarize, width_curves

SMALL = toy.ToyConfig(n_features=8, alpha=0.8, student_widths=(1, 2, 4, 8), seeds=(0, 1), steps=300,
                      batch_size=128, lr=1e-2, eval_samples=2000)


def test_sample_features_distribution():
    x = toy.sample_features(toy.data_generators("test", (0,)), 50_000, 4, 0.9, "cpu")[0, 0]
    assert x.min() >= 0 and x.max() <= 1
    assert (x == 0).float().mean().item() == pytest.approx(0.9, abs=0.01)
    assert x[x > 0].mean().item() == pytest.approx(0.5, abs=0.01)


def test_width_groups_bound_padding():
    assert toy.width_groups((1, 2, 3, 10, 64, 30), ratio=8) == [(1, 2, 3), (10, 30, 64)]
    assert toy.width_groups((5,)) == [(5,)]


def test_run_config_is_deterministic_and_learns():
    a, b = toy.run_config(SMALL), toy.run_config(SMALL)
    pd.testing.assert_frame_equal(a, b)
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
               "batch_size": 8, "lr": 1e-3, "eval_samples": 100, "final_fraction": 0.1, "convergence_tolerance": 0.0}
    configs = toy.grid(section)
    assert list(configs) == ["F10_a0.9_dT3", "F10_a0.9_dT5"]
    assert configs["F10_a0.9_dT5"].student_widths == (1, 2, 3, 5)
    assert toy.run_name(64, 0.95, None) == "F64_a0.95_direct"


def test_summary_columns_and_accuracy():
    runs = toy.run_config(SMALL)
    summary = summarize(runs, tolerance=0.05)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["predicted_critical_width"] == pytest.approx(8 / 3.1067, rel=1e-3)
    assert row["measured_critical_width"] in SMALL.student_widths
    assert 0 <= row["critical_width_accuracy"] <= 1
    curves = width_curves(runs)
    assert list(curves["student_width"]) == [1, 2, 4, 8]
    assert np.all(curves["loss_min"] <= curves["loss_mean"])
