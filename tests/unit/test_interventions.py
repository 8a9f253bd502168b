"""Interventions on planted data, where the hospital shortcut and the tumour signal are known."""
import numpy as np
import pytest

from interplab.interventions import erasure, neurons, probes, stats, steering

D = 24


def planted(n: int = 900, seed: int = 0):
    """3 hospitals separated along channels 0–1 (the shortcut), tumour along channel 5, noise elsewhere."""
    rng = np.random.default_rng(seed)
    hospital = rng.integers(0, 3, n)
    tumour = rng.integers(0, 2, n)
    x = rng.standard_normal((n, D))
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x[:, :2] += centers[hospital]
    x[:, 5] += 2.5 * tumour
    return x, hospital, tumour


def test_probe_finds_planted_shortcut_far_above_chance():
    x, hospital, tumour = planted()
    assert probes.chance_accuracy(hospital) < 0.4
    assert probes.heldout_accuracy(x, hospital) > 0.85
    assert probes.heldout_accuracy(x, tumour) > 0.85
    assert np.isnan(probes.heldout_accuracy(x, np.zeros(len(x))))


def test_rowspace_projection_hand_checked():
    assert np.allclose(erasure.rowspace_projection([[2.0, 0, 0]]), np.diag([1.0, 0, 0]))
    p = erasure.rowspace_projection([[1.0, 1.0, 0]])
    assert np.allclose(p, 0.5 * np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]]))
    assert np.allclose(p @ p, p) and np.allclose(p, p.T)
    erase = erasure.projection_eraser(p, center=np.array([1.0, 2.0, 3.0]))
    assert np.allclose(erase(np.array([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0]])  # the mean survives
    assert np.allclose(erase(np.array([[2.0, 2.0, 0.0]])), [[1.5, 1.5, 0.0]])


# One projection off the probe's row space leaves residual linear information (the probe's weights
# are not exactly the planted plane), which is why INLP iterates: allow it a larger margin.
@pytest.mark.parametrize("method, margin", [("rowspace", 0.15), ("inlp", 0.08), ("leace", 0.08)])
def test_erasure_drives_hospital_probe_to_chance_but_random_control_does_not(method, margin):
    x, hospital, tumour = planted()
    fit = {"rowspace": lambda: erasure.probe_rowspace(x, hospital),
           "inlp": lambda: erasure.inlp(x, hospital, rounds=3),
           "leace": lambda: erasure.leace(x, hospital)}[method]
    erase, rank = fit()
    assert 1 <= rank <= D
    chance = probes.chance_accuracy(hospital)
    assert probes.heldout_accuracy(erase(x), hospital) < chance + margin
    assert probes.heldout_accuracy(erase(x), tumour) > 0.85, "the task signal survives"
    control = erasure.random_subspace(x, rank, seed=1)
    assert probes.heldout_accuracy(control(x), hospital) > 0.75


def test_leace_equalises_class_means_hand_checked():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    labels = np.array([0, 0, 1, 1])  # the class is coordinate 1
    erase, rank = erasure.leace(x, labels)
    out = erase(x)
    assert rank == 1
    assert np.allclose(out[labels == 0].mean(0), out[labels == 1].mean(0), atol=1e-6)


def test_inlp_removes_information_a_single_projection_leaves():
    x, hospital, _ = planted(seed=3)
    erase, rank = erasure.inlp(x, hospital, rounds=4)
    assert rank >= 2
    assert probes.heldout_accuracy(erase(x), hospital) < probes.chance_accuracy(hospital) + 0.08


def test_steering_along_hospital_direction_moves_predictions_more_than_random():
    x, hospital, tumour = planted()
    w = np.zeros(D)
    w[5], w[0], w[1] = 1.5, 0.6, -0.6  # the head leans on the shortcut

    def head(h):
        return 1 / (1 + np.exp(-(h @ w - 3.0)))

    v = steering.lda_direction(x, hospital)
    assert np.linalg.norm(v[:2]) > 0.9, "LDA-1 lies in the planted hospital plane"
    strengths = [-3, -2, -1, 0, 1, 2, 3]
    along = steering.dose_response(head, x, tumour, v, strengths)
    rand = steering.dose_response(head, x, tumour, steering.random_direction(D, 0), strengths)
    assert along["mean_abs_shift"].max() > 3 * rand["mean_abs_shift"].max()
    assert along.loc[along.strength == 0, "flip_rate"].item() == 0
    slope = steering.shift_slope(head, x, v, strengths, n_boot=100)
    assert slope["slope_lo"] > 0 and slope["spearman_rho"] > 0.8


def test_monotone_in_magnitude():
    import pandas as pd

    curve = pd.DataFrame({"strength": [-2, -1, 0, 1, 2], "accuracy": [0.5, 0.7, 0.9, 0.8, 0.6]})
    assert steering.monotone_in_magnitude(curve)
    curve.loc[4, "accuracy"] = 0.85
    assert not steering.monotone_in_magnitude(curve)


def test_selectivity_ranks_planted_channels_first_and_mean_ablation():
    x, hospital, tumour = planted()
    assert set(neurons.top_channels(neurons.selectivity(x, hospital), 2)) == {0, 1}
    assert neurons.top_channels(neurons.selectivity(x, tumour), 1)[0] == 5
    means = x.mean(0)
    ablated = neurons.mean_ablate(x, [0, 1], means)
    assert np.allclose(ablated[:, :2], means[:2]) and np.array_equal(ablated[:, 2:], x[:, 2:])
    assert probes.heldout_accuracy(ablated, hospital) < probes.chance_accuracy(hospital) + 0.08
    assert len(set(neurons.random_channels(D, 8, 0))) == 8


def test_stats():
    # The reference study's steering count, 4/5 vs 1/3: one-sided Fisher p = 0.286.
    assert stats.fisher(4, 5, 1, 3)["fisher_p_greater"] == pytest.approx(0.2857, abs=1e-3)
    assert stats.min_fisher_p(5, 3) == pytest.approx(1 / 56)
    assert stats.runs_needed(0.05) == 4
    assert stats.mann_whitney([1, 2, 3], [4, 5, 6, 7]) == pytest.approx(2 / 35)
    diff, lo, hi = stats.bootstrap_mean_diff([1.0, 1.2, 0.9], [0.1, 0.2, 0.0])
    assert lo < diff < hi and lo > 0
    text = stats.power_statement(5, 3)
    assert "0.018" in text and "4 runs per arm" in text
    assert "no count can be significant" in stats.power_statement(2, 2)


def test_probe_ignores_rounding_residue_in_constant_channels():
    """An eraser leaves ~1e-20 residue in dead channels that still tracks the concept; standardising must
    not blow it up and hand the probe back what was erased (seen on real ResNet features)."""
    x, hospital, _ = planted()
    dead = 1e-20 * (hospital[:, None] + np.zeros((1, 3)))  # perfectly informative, numerically zero
    noisy = np.hstack([np.random.default_rng(1).standard_normal((len(x), D)), dead])
    assert probes.heldout_accuracy(noisy, hospital) < probes.chance_accuracy(hospital) + 0.1
    directions = probes.raw_space_directions(probes.fit_probe(np.hstack([x, dead]), hospital))
    assert directions.shape == (3, D + 3) and np.all(directions[:, D:] == 0)
    assert probes.heldout_accuracy(np.zeros((60, 4)), np.arange(60) % 2) == pytest.approx(0.5, abs=0.2)
