"""Experiments 3–4 library: students, the KD loss, resume, floors and their fit, concepts, probes."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from interplab import theory
from interplab.distill.concepts import CONCEPTS, concept_datasets
from interplab.distill.floors import affine_fit, floors_table, predicted_floors
from interplab.distill.probe import probe_concept, wilson_interval
from interplab.teacher.plan import depth_layer
from interplab.distill.student import build_student, kd_loss, student_heads
from interplab.distill.train import DistillConfig, measured_floor, train_student
from interplab.teacher.corpus import Document


def test_student_heads_follow_the_paper_rule():
    assert [student_heads(w) for w in (128, 256, 512, 768, 1024)] == [8, 16, 16, 16, 16]
    assert [student_heads(w) for w in (16, 32, 64, 96)] == [1, 2, 4, 4]


def test_kd_loss_matches_a_hand_computation():
    student = torch.tensor([[[1.0, 0.0, -1.0]], [[0.5, 0.5, 0.0]]])
    teacher = torch.tensor([[[0.0, 2.0, 0.0]], [[1.0, 0.0, 0.0]]])
    t = 2.0
    expected = 0.0
    for s_row, t_row in zip(student.reshape(-1, 3), teacher.reshape(-1, 3)):
        p = [math.exp(v / t) for v in t_row.tolist()]
        q = [math.exp(v / t) for v in s_row.tolist()]
        p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected = expected / 2 * t * t  # mean over the two tokens, times T²
    assert kd_loss(student, teacher, t).item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(teacher, teacher, t).item() == pytest.approx(0.0, abs=1e-7)


def test_affine_fit_recovers_a_line_and_its_leave_one_out_errors():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    fit = affine_fit(x, 2 * x + 1)
    assert (fit.a, fit.b, fit.r2) == pytest.approx((2.0, 1.0, 1.0))
    assert fit.loo_rmse == pytest.approx(0.0, abs=1e-9)
    noisy = affine_fit(x, np.array([1.0, 3.0, 5.0, 9.0]))
    # leaving out the last point, the line through (0,1),(1,3),(2,5) predicts 7 at x=3: error +2
    assert noisy.loo_errors[-1] == pytest.approx(2.0)
    assert noisy.r2 < 1
    assert math.isnan(affine_fit([1.0, 1.0, 1.0], [3.0, 2.0, 1.0]).a), "a constant predictor cannot be fitted"


def test_floors_table_uses_the_refined_floor_of_the_kept_features():
    record = {"alpha": 0.9, "spectrum": list(np.linspace(1.0, 0.01, 40)), "f_alive": 40, "dstar": 40 / theory.capacity_g(0.9)}
    measured = pd.DataFrame({"width": [1, 1, 4, 8], "seed": [0, 1, 0, 0], "floor": [3.0, 3.2, 2.0, 1.0]})
    table = floors_table(measured, record)
    assert table["width"].tolist() == [1, 4, 8] and table["n_seeds"].tolist() == [2, 1, 1]
    assert table["floor_mean"].tolist() == pytest.approx([3.1, 2.0, 1.0])
    assert table["floor_spread"].tolist() == pytest.approx([0.1, 0.0, 0.0])
    kept = np.floor(np.array([1, 4, 8]) * theory.capacity_g(0.9)).astype(int)
    spectrum = np.sort(record["spectrum"])[::-1]
    assert table["floor_refined"].tolist() == pytest.approx([spectrum[k:].sum() for k in kept])
    assert table["monotonic"].all() and table["spearman_rho"].iloc[0] == pytest.approx(1.0)
    assert (predicted_floors(record, [100])["floor_refined"] == 0).all(), "a wide student keeps every feature"


def test_measured_floor_is_the_mean_of_the_last_evaluations():
    history = pd.DataFrame({"heldout_loss": [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.7]})
    assert measured_floor(history, 0.2) == pytest.approx(0.6)
    assert measured_floor(history, 0.01) == pytest.approx(0.7), "at least one evaluation"


def test_depth_layer_and_wilson_interval():
    assert depth_layer(24, 0.5) == 12 and depth_layer(4, 0.5) == 2 and depth_layer(4, 1.0) == 3
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7112, abs=1e-3) and high == pytest.approx(0.8666, abs=1e-3)


def test_probe_reads_a_planted_concept_and_the_control_does_not():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    features = rng.normal(size=(400, 8))
    features[:, 3] += 4.0 * labels  # one direction; Bayes accuracy Φ(2) = 0.977, 80 test points
    out = probe_concept(features, labels, 0.2, seed=0)
    assert out["accuracy"] > 0.9 and out["ci_low"] < out["accuracy"] < out["ci_high"]
    assert abs(out["shuffled_accuracy"] - 0.5) < 0.15 and out["n_test"] == 80


def test_concepts_are_balanced_deterministic_and_separate_classes():
    code = "\n".join(f"value_{i} = compute(x, {i})  # step {i} of the loop" if i % 3 == 0 else f"total += value_{i}"
                     for i in range(300))
    doc = Document("m.py", f'"""A module docstring that explains in prose what this code is for and why."""\n'
                           f"def f():\n    '''Return the answer to a question nobody asked about the code.'''\n"
                           f"    return 42\n{code}\n")
    datasets = concept_datasets([doc] * 3, list(CONCEPTS), 4, 40, seed=0)
    again = concept_datasets([doc] * 3, list(CONCEPTS), 4, 40, seed=0)
    for concept, (texts, labels) in datasets.items():
        assert labels.tolist() == [1] * 4 + [0] * 4 and texts == again[concept][0]
    assert all("#" in t for t in datasets["comment"][0][:4]) and not any("#" in t for t in datasets["comment"][0][4:])
    assert all(t.replace("+", "").replace("/", "").isalnum() for t in datasets["base64"][0][:4])
    with pytest.raises(ValueError, match="fewer than probe.examples_per_class"):
        concept_datasets([doc], ["docstring"], 50, 40, seed=0)


@pytest.fixture(scope="module")
def tiny_teacher():
    config = GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=16, rotary_pct=0.25, bos_token_id=0,
                           eos_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    teacher = GPTNeoXForCausalLM(config).eval()
    rows = torch.randint(0, 64, (64, 16), generator=torch.Generator().manual_seed(1))
    return teacher, {"train": rows[:48], "heldout": rows[48:]}


def tiny_config(**overrides):
    base = dict(width=16, seed=0, steps=12, batch_size=4, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01,
                warmup_steps=2, grad_clip=1.0, temperature=2.0, eval_every=4, eval_rows=8, floor_fraction=0.5)
    return DistillConfig(**{**base, **overrides})


def test_student_learns_the_teacher_and_a_wider_one_learns_more(tiny_teacher, tmp_path):
    teacher, streams = tiny_teacher
    narrow = train_student(tiny_config(width=4, steps=40, eval_every=10), teacher, streams, tmp_path / "n", "cpu", "d")
    wide = train_student(tiny_config(width=32, steps=40, eval_every=10), teacher, streams, tmp_path / "w", "cpu", "d")
    assert narrow.history["heldout_loss"].iloc[-1] < narrow.history["heldout_loss"].iloc[0]
    assert wide.history["heldout_loss"].iloc[-1] < narrow.history["heldout_loss"].iloc[-1]
    assert build_student(teacher.config, 32, 0).config.num_hidden_layers == 2


def test_resumed_student_equals_an_uninterrupted_one(tiny_teacher, tmp_path, monkeypatch):
    from interplab.distill import train as distill_train

    teacher, streams = tiny_teacher
    straight = train_student(tiny_config(), teacher, streams, tmp_path / "a", "cpu", "data")
    real_save = distill_train._save_state

    def killed_after_step_8(path, state):
        real_save(path, state)
        if state["step"] == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(distill_train, "_save_state", killed_after_step_8)
    with pytest.raises(KeyboardInterrupt):
        train_student(tiny_config(), teacher, streams, tmp_path / "b", "cpu", "data")
    monkeypatch.setattr(distill_train, "_save_state", real_save)
    resumed = train_student(tiny_config(), teacher, streams, tmp_path / "b", "cpu", "data")
    assert resumed.resumed_from_step == 8
    pd.testing.assert_frame_equal(straight.history, resumed.history)
    for key, value in straight.student.state_dict().items():
        assert torch.equal(value, resumed.student.state_dict()[key]), key
    fresh = train_student(tiny_config(), teacher, streams, tmp_path / "b", "cpu", "other data")
    assert fresh.resumed_from_step == 0, "a different teacher or token stream starts afresh"
