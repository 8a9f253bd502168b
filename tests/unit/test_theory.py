import math

import numpy as np
import pytest

from interplab import theory


@pytest.mark.parametrize("alpha, expected", [(0.80, 3.107), (0.90, 4.343), (0.95, 6.676), (0.99, 21.715)])
def test_g_check_values(alpha, expected):
    assert theory.capacity_g(alpha) == pytest.approx(expected, abs=1e-3)


def test_g_increases_above_its_minimum_at_one_minus_inverse_e():
    # (1−α)·ln(1/(1−α)) peaks at 1−α = 1/e, so g is minimal (= e) there and increases on
    # (1 − 1/e, 1), the whole sparse regime; below that it decreases. "g increases on (0,1)" is
    # only true above α ≈ 0.632.
    minimum = 1 - 1 / math.e
    assert theory.capacity_g(minimum) == pytest.approx(math.e)
    sparse = np.linspace(minimum, 0.9999, 500)
    assert np.all(np.diff(theory.capacity_g(sparse)) > 0)
    dense = np.linspace(0.01, minimum, 100)
    assert np.all(np.diff(theory.capacity_g(dense)) < 0)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_g_rejects_alpha_outside_open_interval(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        theory.capacity_g(bad)


def test_critical_width_is_F_over_g_and_matches_paper_layer12():
    assert theory.critical_width(100, 0.9) == pytest.approx(100 / theory.capacity_g(0.9))
    # Authors' layer-12 SAE: F = 28,665 alive, L0 = 218.29.
    alpha = 1 - 218.29 / 28_665
    assert theory.capacity_g(alpha) == pytest.approx(26.92, abs=0.01)
    assert theory.critical_width(28_665, alpha) == pytest.approx(1_065, abs=1)


def test_capacity_and_features_kept():
    assert theory.capacity(10, 0.9) == pytest.approx(43.43, abs=0.01)
    assert list(theory.features_kept([0, 1, 2, 100], 0.9, 20)) == [0, 4, 8, 20]


def test_naive_floor_endpoints_and_monotone():
    widths = np.arange(0, 30)
    floor = theory.naive_floor(widths, 0.8, 40, eps_inf=2.0)
    assert floor[0] == 2.0
    assert np.all(np.diff(floor) <= 0)
    assert floor[-1] == 0.0


def test_naive_floor_hand_computed_between_the_endpoints():
    # g(0.8) = 1/(0.2·ln 5) = 3.10667: width 5 carries 15.533 of F = 40 features, so
    # ε∞·(1 − 15.533/40) = 2 · 0.61167 = 1.22333 (abs 1e-4: the hand value's rounding).
    assert theory.naive_floor(5, 0.8, 40, eps_inf=2.0) == pytest.approx(1.22333, abs=1e-4)


def test_refined_floor_hand_computed():
    mass = [0.1, 0.5, 0.2, 0.05]  # sorted: 0.5, 0.2, 0.1, 0.05
    # g(0.8) = 3.107: width 1 keeps 3 features → floor = 0.05; width 0 keeps none → total.
    assert theory.refined_floor([0, 1], 0.8, mass) == pytest.approx([0.85, 0.05])
    # g(0.5) = 2.885: width 1 keeps 2 → 0.1 + 0.05.
    assert theory.refined_floor(1, 0.5, mass)[()] == pytest.approx(0.15)


def test_refined_floor_properties():
    rng = np.random.default_rng(0)
    mass = rng.exponential(size=50)
    widths = np.arange(0, 60)
    floor = theory.refined_floor(widths, 0.9, mass)
    assert np.all(np.diff(floor) <= 1e-12), "floors never increase with width"
    kept_all = int(math.ceil(50 / theory.capacity_g(0.9)))
    assert floor[kept_all] == 0.0, "refined floor is 0 when every feature is kept"
    assert floor[0] == pytest.approx(mass.sum())


def test_measured_critical_width():
    widths = [1, 2, 4, 8, 16]
    losses = [1.0, 0.5, 0.1, 0.03, 0.0]
    assert theory.measured_critical_width(widths, losses, 0.05) == 8
    assert theory.measured_critical_width(widths, losses, 0.2) == 4
    assert theory.measured_critical_width(widths[::-1], losses[::-1], 0.05) == 8  # order-free
    assert theory.measured_critical_width([1, 2], [0.3, 0.3]) == 1  # flat curve


def test_measured_critical_width_measures_from_the_floor_over_the_range():
    widths = [1, 2, 4, 8, 16]
    losses = np.array([1.0, 0.5, 0.1, 0.03, 0.0])
    # A curve above zero: floor 1.0 and range 1.0, threshold 1.05 → width 8 (a range of max + min = 3
    # would put the threshold at 1.15 and answer 4).
    assert theory.measured_critical_width(widths, losses + 1.0, 0.05) == 8
    # A curve ten times higher: range 10, threshold 0.05 · 10 = 0.5 → width 8 (0.3 within, 1.0 not).
    assert theory.measured_critical_width(widths, 10 * losses, 0.05) == 8
    # Tolerance 0: the width of the lowest loss itself, the first of tied minima.
    assert theory.measured_critical_width(widths, [1.0, 0.2, 0.1, 0.1, 0.3], 0.0) == 4
    # Inclusive bound: a loss exactly tolerance · range above the floor (0 + 0.5 · 1.0, exact in
    # binary) is within it.
    assert theory.measured_critical_width([1, 2, 3], [1.0, 0.5, 0.0], 0.5) == 2
    assert theory.measured_critical_width([7], [0.4]) == 7  # a one-point curve is its own floor


def test_measured_critical_width_rejects_empty_and_mismatched_curves():
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        theory.measured_critical_width([], [])
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        theory.measured_critical_width([1, 2], [0.5])


def test_prediction_accuracy():
    assert theory.prediction_accuracy(11, 10) == pytest.approx(0.9)
    assert theory.prediction_accuracy(30, 10) == 0.0
    assert math.isnan(theory.prediction_accuracy(1, 0))
    assert theory.curve_accuracy([1.0, 2.0, 5.0], [1.0, 1.0, 0.0]) == pytest.approx(0.5)
    assert math.isnan(theory.curve_accuracy([1.0], [0.0]))


def test_measured_capacity_replaces_g_in_the_refined_floor():
    mass = [0.1, 0.5, 0.2, 0.05]  # sorted: 0.5, 0.2, 0.1, 0.05
    assert list(theory.features_kept([1, 2], 0.8, 4, per_dimension=1.5)) == [1, 3]
    # c = 1.5: width 1 keeps 1 feature (0.5) → floor 0.35; width 2 keeps 3 → 0.05.
    assert theory.refined_floor([1, 2], 0.8, mass, per_dimension=1.5) == pytest.approx([0.35, 0.05])


def test_accuracy_readings_hand_computed():
    measured = np.array([0.2, 0.1, 0.0])
    predicted = np.array([0.1, 0.0, 0.05])
    readings = theory.accuracy_readings(measured, predicted, eps_inf=1.0)
    # relative to prediction: 1 − 0.1/0.1 = 0; undefined at p = 0; 1 − 0.05/0.05 = 0.
    np.testing.assert_allclose(readings["relative_to_prediction"], [0.0, np.nan, 0.0])
    # relative to measured: 1 − 0.1/0.2 = 0.5; 1 − 0.1/0.1 = 0; undefined at m = 0.
    np.testing.assert_allclose(readings["relative_to_measured"], [0.5, 0.0, np.nan])
    # absolute (ε∞ = 1): 1 − |m − p|.
    np.testing.assert_allclose(readings["absolute"], [0.9, 0.9, 0.95])
    zero = theory.accuracy_readings(measured, np.zeros(3), eps_inf=0.5)
    assert np.all(np.isnan(zero["relative_to_prediction"]))
    np.testing.assert_allclose(zero["relative_to_measured"], [0.0, 0.0, np.nan])
    np.testing.assert_allclose(zero["absolute"], [0.6, 0.8, 1.0])
