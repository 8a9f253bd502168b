import math

import numpy as np
import pytest
import torch

from interplab import kd, theory


class ReluIdentity:
    """z = ReLU(x), x̂ = z: every metric below can be computed by hand."""

    def encode(self, x):
        return torch.relu(x)

    def decode(self, z):
        return z


X = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, -1]])


def test_metrics_match_hand_computation():
    m = kd.measure(ReluIdentity(), [X[:2], X[2:]], widths=[0, 1, 2])
    assert (m.n_latents, m.n_tokens, m.f_alive, m.dead) == (3, 4, 2, 1)
    assert m.l0 == pytest.approx(0.75)
    assert m.alpha == pytest.approx(1 - 0.75 / 2)
    g = 1 / (0.375 * math.log(1 / 0.375))
    assert m.g_alpha == pytest.approx(g)
    assert m.dstar == pytest.approx(2 / g)
    assert m.mse == pytest.approx(1 / 12)  # the only error is the clipped −1
    assert m.fvu == pytest.approx(1 / 9.75)  # Σx² − N·Σmean² = 15 − 5.25
    assert m.spectrum == pytest.approx([2.5, 1.0])  # E[z²] per alive latent, descending
    assert m.total_mass == pytest.approx(3.5)
    # width 0 keeps nothing; width 1 keeps ⌊2.72⌋ = 2 ≥ F → no floor.
    assert m.floor_refined == pytest.approx([3.5, 0.0, 0.0])
    assert m.floor_naive == pytest.approx([3.5, 0.0, 0.0])
    assert m.firing_frequency == pytest.approx([0.5, 0.25, 0.0])  # fraction of tokens each latent fired on


def test_batching_does_not_change_metrics():
    a = kd.measure(ReluIdentity(), [X]).scalars()
    b = kd.measure(ReluIdentity(), [X[:1], X[1:3], X[3:]]).scalars()
    assert a == pytest.approx(b)


def test_alive_threshold():
    m = kd.measure(ReluIdentity(), [X], alive_threshold=0.3)  # latent 1 fires at 0.25
    assert m.f_alive == 1 and m.dead == 2


def test_all_dead_gives_nan_not_crash():
    m = kd.measure(ReluIdentity(), [-torch.ones(5, 3)])
    assert m.f_alive == 0 and math.isnan(m.alpha) and math.isnan(m.dstar)


def test_empty_stream_is_a_clear_error():
    with pytest.raises(ValueError, match="no measurement tokens"):
        kd.measure(ReluIdentity(), [])


def test_floors_agree_with_theory_on_random_sae():
    torch.manual_seed(0)
    enc = torch.randn(8, 64)

    class Random:
        def encode(self, x):
            return torch.relu(x @ enc - 1.0)

        def decode(self, z):
            return z @ enc.T / 64

    m = kd.measure(Random(), [torch.randn(2000, 8)])
    assert 0 < m.alpha < 1
    assert m.floor_refined == pytest.approx(theory.refined_floor(m.floor_widths, m.alpha, m.spectrum).tolist())
    assert all(a >= b for a, b in zip(m.floor_refined, m.floor_refined[1:]))
    assert kd.student_widths(8)[0] == 1 and kd.student_widths(8)[-1] == 8


def test_measure_many_equals_separate_passes():
    class Scaled(ReluIdentity):
        def __init__(self, k):
            self.k = k

        def encode(self, x):
            return torch.relu(self.k * x)

    many = kd.measure_many({"a": ReluIdentity(), "b": Scaled(2.0)}, [X[:3], X[3:]])
    assert many["a"].scalars() == pytest.approx(kd.measure(ReluIdentity(), [X]).scalars())
    assert many["b"].scalars() == pytest.approx(kd.measure(Scaled(2.0), [X]).scalars())


def test_f_unique_merges_duplicate_directions_greedily_by_importance():
    # Directions: e0, a near-copy of e0 (cos 0.95), e1, a vector at cos 0.85 to e1 (kept), and
    # e2 twice; latent 5 is dead, so it cannot absorb or be counted.
    e = torch.eye(3)
    directions = torch.stack([e[0], 0.95 * e[0] + 0.312 * e[2], e[1], 0.85 * e[1] + 0.527 * e[0], e[2], e[2]])
    importance = torch.tensor([1.0, 2.0, 3.0, 0.5, 0.1, 9.0])
    alive = torch.tensor([True, True, True, True, True, False])
    assert kd.unique_latents(directions, importance, alive) == 4
    assert kd.unique_latents(directions, importance, alive, chunk=2) == 4, "chunking does not change the count"
    assert kd.unique_latents(directions, importance, torch.ones(6, dtype=torch.bool)) == 4


def test_metrics_report_f_unique_with_its_alpha_and_dstar():
    class Duplicated:
        """Two latents per input dimension, same decoder direction."""

        def encode(self, x):
            return torch.relu(torch.cat([x, x], dim=1)) / 2

        def decode(self, z):
            return z[:, :3] + z[:, 3:]

    m = kd.measure(Duplicated(), [X])
    assert (m.f_alive, m.f_unique) == (4, 2)
    assert m.alpha_unique == pytest.approx(1 - m.l0 / 2) and m.l0 == pytest.approx(1.5)
    assert m.dstar_unique == pytest.approx(2 / theory.capacity_g(m.alpha_unique))


# Explained variance, dense count and the feature-density histogram.
def test_explained_variance_and_firing_frequencies_by_hand():
    m = kd.measure(ReluIdentity(), [X[:2], X[2:]], widths=[1])
    assert m.explained_variance == pytest.approx(1 - 1 / 9.75)
    assert m.firing_frequency == pytest.approx([0.5, 0.25, 0.0])
    assert m.dense == 2, "latents firing on more than 10% of tokens"
    assert "firing_frequency" not in m.scalars() and m.scalars()["dense"] == 2


def test_identity_explains_all_variance():
    x = torch.rand(50, 4) + 0.1
    assert kd.measure(ReluIdentity(), [x], widths=[1]).explained_variance == pytest.approx(1.0)


def test_density_table_counts_every_fired_latent_once():
    freq = [0.0, 1e-9, 1e-3, 0.5, 1.0]
    rec = {**{k: "x" for k in kd.IDENTITY}, "firing_frequency": freq, "dead": 2, "dense": 2}
    table = kd.density_table([rec])
    assert len(table) == len(kd.DENSITY_EDGES) - 1 and table["latents"].sum() == 4
    assert (table["never_fired"] == 1).all() and (table["dense"] == 2).all()
    assert table.loc[0, "latents"] == 1, "below 1e-8 falls in the lowest bin"
    # 1e-3 → [-3, -2.75), 0.5 (log10 −0.30) → [-0.5, -0.25), 1.0 → the top bin, which includes 0
    assert np.allclose(table.loc[table["latents"] > 0, "log10_lo"], [-8.0, -3.0, -0.5, -0.25])
