"""Values of the intervention helpers on inputs small enough to work out by hand: erasure as a
projection, the dose-response of a linear head, the exact tests, and every across-run criterion on
tables built so each filter, sign and threshold changes the answer if it is wrong."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from interplab.grok.checkpoints import MANIFEST
from interplab.grok.data import SplitConfig
from interplab.grok.runs import CAMELYON, CamelyonSetup, Regime, RunSpec, spec_to_dict
from interplab.interventions import across_runs, erasure, stats, steering
from interplab.io import write_json

# Hypothesis: reproducible (no example database, fixed seed) and bounded, so the suite stays fast.
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)
FINITE = st.floats(-10, 10, allow_nan=False, width=64)


# ------------------------------------------------------------------------------------------ erasure
@PROPERTY
@given(arrays(np.float64, (2, 4), elements=FINITE), arrays(np.float64, (3, 4), elements=FINITE))
@example(np.full((2, 4), 1e-170), np.zeros((3, 4)))  # tiny weights still span their row (WWᵀ would underflow)
def test_rowspace_projection_is_the_orthogonal_projection_onto_the_rows(weights, points):
    p = erasure.rowspace_projection(weights)
    # 1e-8: pinv's cutoff and float64 round-off on entries up to 10.
    assert np.allclose(p @ p, p, atol=1e-8) and np.allclose(p, p.T, atol=1e-8)
    assert np.allclose(p @ weights.T, weights.T, atol=1e-8), "the rows themselves are kept"
    # The rank of the rows' span, which does not depend on their scale (tiny weights span it too).
    assert round(np.trace(p)) == np.linalg.matrix_rank(weights, tol=1e-8 * np.abs(weights).max())
    erase = erasure.projection_eraser(p, center=points[0])
    once = erase(points)
    assert np.allclose(erase(once), once, atol=1e-8), "erasing twice changes nothing"
    assert np.allclose((once - points[0]) @ weights.T, 0, atol=1e-7), "nothing is left along the rows"
    assert np.allclose(erase(points[:1]), points[:1]), "the centre is kept"


def test_random_subspace_removes_exactly_its_rank_around_the_training_mean():
    x = np.random.default_rng(0).standard_normal((50, 6)) + 5.0
    for rank in (0, 1, 4):
        erase = erasure.random_subspace(x, rank, seed=2)
        out = erase(x)
        assert np.linalg.matrix_rank(out - x.mean(0), tol=1e-9) == 6 - rank
        assert np.allclose(out.mean(0), x.mean(0)), "the training mean is the centre"
        assert np.allclose(erase(out), out)
    assert not np.allclose(erasure.random_subspace(x, 2, seed=2)(x), erasure.random_subspace(x, 2, seed=3)(x))


def _hospitals(n=600, seed=0):
    rng = np.random.default_rng(seed)
    hospital = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 8))
    x[:, :2] += np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])[hospital]
    return x, hospital


def test_probe_rowspace_removes_a_rank_two_subspace_for_three_hospitals():
    # The multinomial probe's three weight rows sum to zero (scikit-learn's symmetric
    # parametrisation), so their span has rank 2.
    x, hospital = _hospitals()
    erase, rank = erasure.probe_rowspace(x, hospital)
    assert rank == 2
    out = erase(x)
    assert np.linalg.matrix_rank(out - x.mean(0), tol=1e-9) == 8 - 2
    assert np.allclose(out.mean(0), x.mean(0)), "projected around the training mean"


def test_inlp_stops_at_chance_and_respects_its_round_limit():
    x, hospital = _hospitals()
    noise = np.random.default_rng(5).integers(0, 3, len(x))  # labels with nothing to find
    erase, rank = erasure.inlp(x, noise)
    assert rank == 0 and np.allclose(erase(x), x), "a probe already at chance: no round is kept"
    one_round, rank_one = erasure.inlp(x, hospital, rounds=1)
    rowspace, rank_rowspace = erasure.probe_rowspace(x, hospital)
    assert rank_one == rank_rowspace == 2 and np.allclose(one_round(x), rowspace(x))
    _, rank_three = erasure.inlp(x, hospital, rounds=3)
    assert rank_three > rank_one, "later rounds remove what the first one left"
    _, rank_stopped = erasure.inlp(x, hospital, rounds=3, stop_margin=1.0)
    assert rank_stopped == 0, "a margin of 1 counts every probe as at chance"
    separable = np.repeat([0, 1], 50)  # chance 0.5, and a held-out probe scores exactly 1.0 = 0.5 + 0.5
    features = np.column_stack([separable * 10.0, np.random.default_rng(1).standard_normal(100)])
    assert erasure.inlp(features, separable, stop_margin=0.5)[1] == 0, "within the margin, inclusive"
    assert erasure.inlp(features, separable, stop_margin=0.49)[1] == 1


def test_leace_rank_is_classes_minus_one():
    x, hospital = _hospitals()
    assert erasure.leace(x, hospital)[1] == 2
    assert erasure.leace(x, hospital % 2)[1] == 1


# ----------------------------------------------------------------------------------------- steering
FEATURES = np.array([[0.0], [1.0], [2.0], [3.0]])
LABELS = np.array([0, 0, 1, 1])
SIGMA = math.sqrt(1.25)  # std of 0, 1, 2, 3


def linear_head(h):
    """P(tumour) = h₀/4: the shift of every image is a·σ/4, so the table can be written down."""
    return h[:, 0] / 4


def test_dose_response_hand_computed():
    table = steering.dose_response(linear_head, FEATURES, LABELS, np.array([1.0]), [-1, 0, 1]).set_index("strength")
    # base P = 0, .25, .5, .75 → predictions F F F T: accuracy 3/4.
    # a = +1 adds σ/4 = 0.2795: P = .28 .53 .78 1.03 → F T T T, accuracy 3/4, two flips.
    # a = −1: P = −.28 −.03 .22 .47 → all F, accuracy 1/2, one flip.
    assert table["sigma"].tolist() == pytest.approx([SIGMA] * 3)
    assert table["accuracy"].tolist() == [0.5, 0.75, 0.75]
    assert table["flip_rate"].tolist() == [0.25, 0.0, 0.5]
    assert table["mean_abs_shift"].tolist() == pytest.approx([SIGMA / 4, 0.0, SIGMA / 4])
    scaled = steering.dose_response(linear_head, FEATURES, LABELS, np.array([1.0]), [1],
                                    scale_features=np.array([[0.0], [10.0]]))
    assert scaled["sigma"].item() == pytest.approx(5.0), "σ comes from the scale features when given"
    assert scaled["mean_abs_shift"].item() == pytest.approx(5.0 / 4)


def test_shift_slope_of_a_linear_head_is_sigma_over_four_with_a_zero_width_interval():
    out = steering.shift_slope(linear_head, FEATURES, np.array([1.0]), [-2, -1, 0, 1, 2], n_boot=50)
    # every image moves by |a|·σ/4, so every bootstrap resample has the same slope
    assert out["slope"] == pytest.approx(SIGMA / 4)
    assert out["slope_lo"] == pytest.approx(SIGMA / 4) and out["slope_hi"] == pytest.approx(SIGMA / 4)
    assert out["spearman_rho"] == pytest.approx(1.0)
    scaled = steering.shift_slope(linear_head, FEATURES, np.array([1.0]), [0, 1], n_boot=10,
                                  scale_features=np.array([[0.0], [10.0]]))
    assert scaled["slope"] == pytest.approx(5.0 / 4)


def test_shift_slope_steers_in_the_direction_given_and_resamples_every_image():
    def relu_head(h):  # asymmetric: a step against the direction is clipped at 0, a step along it is not
        return np.maximum(h[:, 0], 0.0) / 4

    out = steering.shift_slope(relu_head, FEATURES, np.array([1.0]), [0, 1, 2], n_boot=20)
    assert out["slope"] == pytest.approx(SIGMA / 4)

    def product_head(h):
        return h[:, 0] * h[:, 1]

    # two images moving at slopes 1 and 3: resampled means are 1, 2 or 3 (1 and 3 a quarter of the time
    # each), so the 95% interval is exactly [1, 3] and needs both images in the resampling
    two = np.array([[1.0, 0.0], [3.0, 0.0]])
    out = steering.shift_slope(product_head, two, np.array([0.0, 1.0]), [0, 1, 2], n_boot=400,
                               scale_features=np.array([[0.0, -1.0], [0.0, 1.0]]))
    assert (out["slope"], out["slope_lo"], out["slope_hi"]) == pytest.approx((2.0, 1.0, 3.0))


def test_shift_slope_interval_is_the_95_percent_bootstrap_interval():
    """Per image i the shift is |a|·s_i, so the slope is the mean of the s_i and its bootstrap interval
    is ≈ mean ± 1.96·sd/√n (n = 400 images: the normal approximation is close)."""
    s = np.random.default_rng(0).uniform(0, 2, 400)
    features = np.column_stack([s, np.zeros_like(s)])

    def head(h):  # P moves by s_i·(h₁ − 0): steering along channel 1 with σ = 1 (scale_features below)
        return h[:, 0] * h[:, 1]

    out = steering.shift_slope(head, features, np.array([0.0, 1.0]), [0, 1, 2, 3], n_boot=2000, seed=1,
                               scale_features=np.array([[0.0, -1.0], [0.0, 1.0]]))
    se = s.std() / math.sqrt(len(s))
    assert out["slope"] == pytest.approx(s.mean())
    # Tolerance 0.15 SE: the 2.5th percentile of 2000 resamples has a Monte-Carlo error of ≈ 0.06 SE;
    # a 90% interval would sit 0.32 SE inside.
    assert out["slope_lo"] == pytest.approx(s.mean() - 1.96 * se, abs=0.15 * se)
    assert out["slope_hi"] == pytest.approx(s.mean() + 1.96 * se, abs=0.15 * se)


def test_lda_direction_is_the_unit_vector_separating_the_groups():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, 400)
    x = rng.standard_normal((400, 3))
    x[:, 2] += 6.0 * groups
    v = steering.lda_direction(x, groups)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert abs(v[2]) > 0.99  # the groups differ only along channel 2 (sampling noise tilts it < 8°)
    r = steering.random_direction(5, seed=4)
    assert np.linalg.norm(r) == pytest.approx(1.0) and not np.allclose(r, steering.random_direction(5, seed=5))


@pytest.mark.parametrize("accuracy, tolerance, monotone", [
    ([0.5, 0.7, 0.9, 0.8, 0.6], 0.0, True),
    ([0.9, 0.9, 0.9, 0.9, 0.9], 0.0, True),  # a plateau does not rise
    ([0.3, 0.4, 0.45], 0.0, False),  # rises from a = 0 to a = +1 (a = 0 belongs to both sides)
    ([0.45, 0.4, 0.3], 0.0, False),  # rises from a = 0 to a = −1
    ([0.5, 0.42, 0.4], 0.0, False),  # rises on the negative side only
    ([0.41, 0.4, 0.3], 0.02, True),  # a rise of 0.01 within the tolerance
])
def test_monotone_in_magnitude_checks_each_side_from_zero(accuracy, tolerance, monotone):
    strengths = [-2, -1, 0, 1, 2] if len(accuracy) == 5 else [-1, 0, 1]
    curve = pd.DataFrame({"strength": strengths, "accuracy": accuracy})
    assert steering.monotone_in_magnitude(curve, tolerance=tolerance) is monotone


# -------------------------------------------------------------------------------------------- stats
def test_fisher_two_sided_and_greater_by_hand():
    # [[4, 1], [1, 2]]: margins 5, 3 / 5, 3; P(top-left = k) = C(5,k)·C(3,5−k)/C(8,5) = 10, 30, 15, 1 (/56)
    # for k = 2..5. Greater: k ≥ 4 → 16/56; two-sided: outcomes no likelier than 15/56 → 26/56.
    p = stats.fisher(4, 5, 1, 3)
    assert p["fisher_p_greater"] == pytest.approx(16 / 56)
    assert p["fisher_p_two_sided"] == pytest.approx(26 / 56)
    assert stats.fisher(3, 3, 0, 3)["fisher_p_greater"] == pytest.approx(1 / 20)  # perfect split: 1/C(6,3)


def test_empty_groups_give_nan_and_single_runs_a_value():
    for a, b in (([], [1.0]), ([1.0], [])):
        assert math.isnan(stats.mann_whitney(a, b))
        out = stats.bootstrap_mean_diff(a, b)
        assert len(out) == 3 and all(math.isnan(v) for v in out)
    # one run against two: U ∈ {0, 1, 2} equally likely, the observed extreme has two-sided p = 2/3
    assert stats.mann_whitney([5.0], [1.0, 2.0]) == pytest.approx(2 / 3)
    assert stats.mann_whitney([1.0, 2.0], [5.0]) == pytest.approx(2 / 3)
    # 2 − mean of two draws from {1, 3}: 1, 0 or −1, so the 95% interval is [−1, 1]
    assert stats.bootstrap_mean_diff([2.0], [1.0, 3.0], n_boot=500) == pytest.approx((0.0, -1.0, 1.0))
    assert stats.bootstrap_mean_diff([1.0, 3.0], [2.0], n_boot=500) == pytest.approx((0.0, -1.0, 1.0))


def test_bootstrap_mean_diff_interval_is_95_percent():
    """Mean of 10 draws from 0..9 minus 0: 4.5 ± 1.96·σ/√10 with σ = √8.25 (normal approximation)."""
    diff, lo, hi = stats.bootstrap_mean_diff(np.arange(10.0), [0.0], n_boot=5000)
    half = 1.96 * math.sqrt(8.25 / 10)
    assert diff == 4.5
    # Tolerance 0.1: Monte-Carlo error of a 2.5th percentile of 5000 resamples ≈ 0.035; a 90% interval
    # would be 0.29 narrower on each side.
    assert lo == pytest.approx(4.5 - half, abs=0.1) and hi == pytest.approx(4.5 + half, abs=0.1)


def test_runs_needed_and_power_statement_at_their_boundaries():
    assert stats.runs_needed(0.6) == 1  # 1 vs 1: p = 1/2 < 0.6
    assert stats.runs_needed(0.5) == 2  # 1/2 is not below 0.5; 2 vs 2: 1/6
    assert "no count can be significant" in stats.power_statement(1, 1, alpha=0.5)
    assert "only a split at least that extreme" in stats.power_statement(2, 2, alpha=0.5)


# ------------------------------------------------------------------------------------- across_runs
def probe_rows():
    """Layer-4 hospital probe: 0.75 at epoch 1, 0.5 at the last epoch (rows out of order); other targets
    and layers carry values (and a later epoch) that would change the drop if they leaked in."""
    return pd.DataFrame({
        "epoch": [2, 0, 1, 1, 3, 2],
        "layer": ["layer4", "layer4", "layer4", "layer4", "layer3", "layer3"],
        "target": ["hospital", "hospital", "hospital", "tumour", "hospital", "hospital"],
        "accuracy": [0.5, 0.625, 0.75, 1.0, 0.125, 1.0],
    })


def ablation_rows():
    """LEACE: erased 0.75 vs random 0.5, 0.5 (gain 0.25); INLP: erased 0.25 vs random 0.75, 0.75."""
    return pd.DataFrame({
        "method": ["none", "leace", "leace", "leace", "inlp", "inlp", "inlp"],
        "variant": ["none", "erased", "random", "random", "erased", "random", "random"],
        "head_ood_acc": [0.875, 0.75, 0.5, 0.5, 0.25, 0.75, 0.75],
    })


def steering_rows(slope_lo=0.5, hospital_accuracy=(0.5, 0.75, 1.0, 0.75, 0.5)):
    """Hospital direction at a = −2..2 (slope 1, slope_lo as given), random draws with slopes 0.25 and 0.375."""
    strengths = [-2, -1, 0, 1, 2]
    rows = [{"direction": "hospital", "draw": 0, "strength": a, "accuracy": acc, "slope": 1.0, "slope_lo": slope_lo,
             "monotone": True} for a, acc in zip(strengths, hospital_accuracy)]
    rows += [{"direction": "random", "draw": d, "strength": a, "accuracy": 0.9, "slope": s, "slope_lo": 0.0,
              "monotone": False} for d, s in ((0, 0.25), (1, 0.375)) for a in strengths]
    return pd.DataFrame(rows)


def neuron_rows():
    """8 channels: at K = 8 the hospital ranking gives 0.75, random 0.5 and 0.5; K = 2 rows differ."""
    return pd.DataFrame({
        "k": [2, 2, 8, 8, 8, 8],
        "ranking": ["hospital", "random", "hospital", "random", "random", "tumour"],
        "head_ood_acc": [0.125, 0.875, 0.75, 0.5, 0.5, 0.0],
        "n_channels": 8,
    })


def tables(**overrides):
    return {"probes": probe_rows(), "ablation": ablation_rows(), "steering": steering_rows(),
            "neurons": neuron_rows(), **overrides}


def test_run_criteria_metrics_by_hand():
    out = across_runs.run_criteria(tables(), across_runs.Criteria(neuron_k=64)).set_index("criterion")
    assert list(out.index) == list(across_runs.DESCRIPTIONS)
    assert out["metric"].to_dict() == pytest.approx({
        "hospital_probe_drop": 0.75 - 0.5,  # best − last epoch, layer-4 hospital rows only
        "erasure_helps_ood": 0.75 - 0.5,  # LEACE erased − mean random
        "steering_monotone": 1.0 - 0.5,  # accuracy at a = 0 − accuracy at |a| = 2
        "steering_beats_random": 1.0 - (0.25 + 0.375) / 2,  # slope − mean random slope
        "neuron_ablation_helps": 0.75 - 0.5,  # K capped at the 8 channels: hospital − mean random
    })
    assert out["met"].all()


def test_run_criteria_thresholds_are_inclusive_and_each_can_fail():
    at_threshold = across_runs.Criteria(probe_drop=0.25, erasure_min_gain=0.25, neuron_k=8, neuron_min_gain=0.25)
    assert across_runs.run_criteria(tables(), at_threshold)["met"].all(), "a metric equal to its threshold meets it"
    above = across_runs.Criteria(probe_drop=0.375, erasure_min_gain=0.375, neuron_k=8, neuron_min_gain=0.375)
    met = across_runs.run_criteria(tables(), above).set_index("criterion")["met"]
    assert not met[["hospital_probe_drop", "erasure_helps_ood", "neuron_ablation_helps"]].any()
    for slope_lo in (0.35, 0.375):  # above the mean random slope, below or at the largest: not met
        between = tables(steering=steering_rows(slope_lo=slope_lo))
        assert not across_runs.run_criteria(between, across_runs.Criteria()).set_index("criterion").loc[
            "steering_beats_random", "met"]


def test_steering_drop_uses_both_signs_at_the_largest_magnitude():
    asymmetric = tables(steering=steering_rows(hospital_accuracy=(0.25, 0.75, 1.0, 0.75, 0.75)))
    out = across_runs.run_criteria(asymmetric, across_runs.Criteria()).set_index("criterion")
    assert out.loc["steering_monotone", "metric"] == pytest.approx(1.0 - (0.25 + 0.75) / 2)


def test_neuron_k_missing_from_the_table_is_a_clear_error():
    with pytest.raises(ValueError, match="neuron_k 4 is not among the ablated K"):
        across_runs.run_criteria(tables(), across_runs.Criteria(neuron_k=4))


def test_stats_table_groups_by_criterion_and_size_and_counts_each_regime():
    rows = []
    for n_train, met_treatment in ((100, [True, True, True]), (200, [True, False, False])):
        for i, met in enumerate(met_treatment):
            rows.append({"run": f"g{n_train}-{i}", "regime": "grokking", "n_train": n_train,
                         "criterion": "erasure_helps_ood", "metric": 1.0 if met else 0.0, "met": met})
        for i in range(3):
            rows.append({"run": f"s{n_train}-{i}", "regime": "standard", "n_train": n_train,
                         "criterion": "erasure_helps_ood", "metric": 0.0, "met": False})
    table = across_runs.stats_table(pd.DataFrame(rows[::-1]), "grokking", "standard", n_boot=200)
    assert table["n_train"].tolist() == [100, 200], "rows sorted by criterion and size"
    out = table.set_index("n_train")
    assert out.loc[100, ["n_treatment", "met_treatment", "n_control", "met_control"]].tolist() == [3, 3, 3, 0]
    assert out.loc[200, ["met_treatment", "met_control"]].tolist() == [1, 0]
    assert out.loc[100, "fisher_p_greater"] == pytest.approx(1 / 20)  # perfect 3/3 vs 0/3 split: 1/C(6,3)
    assert out.loc[100, "metric_diff"] == pytest.approx(1.0) and out.loc[200, "metric_diff"] == pytest.approx(1 / 3)
    assert not out["significant"].any(), "1/20 is not below α = 0.05"
    loose = across_runs.stats_table(pd.DataFrame(rows), "grokking", "standard", alpha=0.1, n_boot=200)
    assert loose.set_index("n_train").loc[100, "significant"] and not loose.set_index("n_train").loc[200, "significant"]
    p = out.loc[100, "fisher_p_greater"]
    at_p = across_runs.stats_table(pd.DataFrame(rows), "grokking", "standard", alpha=p, n_boot=200)
    assert not at_p["significant"].any(), "significance needs p strictly below α"


def _write_run(run_dir, name, regime, n_train, seed):
    setup = CamelyonSetup(data=SplitConfig(root_dir="unused"), n_train=n_train, batch_size=8)
    spec = RunSpec(name=name, task=CAMELYON, seed=seed, epochs=1, checkpoints=(0, 1), eval_every=1,
                   regime=Regime(regime, lr=1e-3, weight_decay=0.0), grokfast_alpha=0.98, grokfast_lamb=2.0,
                   setup=setup)
    run_dir.mkdir()
    write_json(run_dir / MANIFEST, {"spec": spec_to_dict(spec)})
    return run_dir


def test_summarise_runs_tags_each_run_from_its_manifest(tmp_path):
    dirs = [_write_run(tmp_path / "a", "grokking-n200-s1", "grokking", 200, 1),
            _write_run(tmp_path / "b", "standard-n100-s0", "standard", 100, 0)]
    info = across_runs.run_info(dirs)
    assert info.loc["grokking-n200-s1"].tolist() == ["grokking", 200, 1]
    assert info.loc["standard-n100-s0"].tolist() == ["standard", 100, 0]
    worse = tables(ablation=ablation_rows().replace({0.75: 0.5}))
    per_run = across_runs.summarise_runs({"standard-n100-s0": worse, "grokking-n200-s1": tables()}, info,
                                         across_runs.Criteria(neuron_k=8))
    assert list(per_run.columns) == ["run", "regime", "n_train", "seed", "criterion", "metric", "met"]
    erasure_rows = per_run[per_run["criterion"] == "erasure_helps_ood"].set_index("run")
    assert erasure_rows.loc["grokking-n200-s1", ["regime", "n_train", "seed", "metric"]].tolist() == [
        "grokking", 200, 1, 0.25]
    assert erasure_rows.loc["standard-n100-s0", ["regime", "metric"]].tolist() == ["standard", 0.0]
    assert per_run["criterion"].is_monotonic_increasing, "sorted by criterion first"
    assert per_run.index.tolist() == list(range(len(per_run)))
