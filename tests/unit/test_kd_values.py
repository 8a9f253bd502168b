"""KD metrics on cases worked out by hand where test_kd.py's cases are blind: errors larger than 1,
decoder directions in several chunks, the merge threshold hit exactly, thresholds and α at their
boundaries, the default student widths, and the tables the DAG writes."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from interplab import kd, theory


class Affine:
    """encode = ReLU(x·E), decode = z·W + b: a linear decoder whose directions are W's rows."""

    def __init__(self, encoder, weights, bias):
        self.encoder, self.weights, self.bias = encoder, weights, bias

    def encode(self, x):
        return torch.relu(x @ self.encoder)

    def decode(self, z):
        return z @ self.weights + self.bias


def test_mse_and_fvu_with_errors_above_one_and_a_nonzero_mean():
    # d = 1, z = ReLU(x), x̂ = 2z: x = 2 → x̂ = 4 (error 2), x = −1 → x̂ = 0 (error 1).
    sae = Affine(torch.eye(1), 2 * torch.eye(1), torch.zeros(1))
    m = kd.measure(sae, [torch.tensor([[2.0], [-1.0]])])
    assert m.mse == pytest.approx((4 + 1) / 2)
    assert m.fvu == pytest.approx(5 / (5 - 2 * 0.5**2))  # Σx² − N·mean² = 5 − 0.5


def test_fvu_is_defined_for_data_of_variance_below_one():
    m = kd.measure(Affine(torch.eye(1), torch.eye(1), torch.zeros(1)), [torch.tensor([[0.25], [-0.25]])])
    # x̂ = ReLU(x): error 0.25 on the negative token only; total variance 2·0.25² = 0.125
    assert m.fvu == pytest.approx(0.0625 / 0.125)


def test_decoder_directions_subtract_the_bias_in_every_chunk():
    weights = torch.arange(10.0).reshape(5, 2)
    sae = Affine(torch.zeros(2, 5), weights, torch.tensor([3.0, -1.0]))
    for chunk in (1, 2, 5, 8):
        torch.testing.assert_close(kd.decoder_directions(sae, 5, 2, chunk=chunk), weights)


def test_unique_latents_keeps_the_most_important_of_a_chain():
    # A ~ B and B ~ C (cos 0.95), A vs C at cos 0.805: B is the most important, so it absorbs both
    # neighbours (1 left); greedy in the wrong order would keep A and C (2 left).
    s = math.sqrt(1 - 0.95**2)
    b = torch.tensor([1.0, 0.0])
    a, c = torch.tensor([0.95, s]), torch.tensor([0.95, -s])
    directions = torch.stack([a, b, c])
    alive = torch.ones(3, dtype=torch.bool)
    assert kd.unique_latents(directions, torch.tensor([1.0, 3.0, 2.0]), alive) == 1
    assert kd.unique_latents(directions, torch.tensor([3.0, 1.0, 2.0]), alive) == 2
    assert kd.unique_latents(directions, torch.tensor([3.0, 1.0, 2.0]), alive, chunk=1) == 2


def test_unique_latents_compares_cosines_not_dot_products():
    directions = torch.tensor([[3.0, 0.0], [1.5, 2.6]])  # norms 3 and 3.0: cosine 0.5, dot product 4.5
    assert kd.unique_latents(directions, torch.tensor([2.0, 1.0]), torch.ones(2, dtype=torch.bool)) == 2


@pytest.mark.parametrize("chunk", [1, 2])  # across chunks (against kept latents) and within one
def test_unique_latents_keeps_a_pair_exactly_at_the_threshold(chunk):
    directions = torch.tensor([[1.0, 0.0, 0.0], [3.0, 4.0, 0.0]])  # cosine 3/5 = 0.6 exactly in float64
    alive = torch.ones(2, dtype=torch.bool)
    assert kd.unique_latents(directions, torch.tensor([2.0, 1.0]), alive, threshold=0.6, chunk=chunk) == 2
    assert kd.unique_latents(directions, torch.tensor([2.0, 1.0]), alive, threshold=0.59, chunk=chunk) == 1


@pytest.mark.parametrize("l0", [0.0, 4.0])
def test_alpha_at_zero_or_one_gives_nan_capacity(l0):
    alpha, g, dstar = kd.alpha_and_dstar(l0, 4)
    assert alpha == 1.0 - l0 / 4 and math.isnan(g) and math.isnan(dstar)
    alpha, g, dstar = kd.alpha_and_dstar(1.0, 4)
    assert (alpha, g, dstar) == pytest.approx((0.75, theory.capacity_g(0.75), 4 / theory.capacity_g(0.75)))


def test_a_latent_firing_exactly_at_the_threshold_is_dead():
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])  # latent 0 fires on 1 of 4 tokens
    m = kd.measure(Affine(torch.eye(2), torch.eye(2), torch.zeros(2)), [x], alive_threshold=0.25)
    assert (m.f_alive, m.dead) == (1, 1)


def test_a_latent_firing_on_exactly_the_dense_share_is_not_dense():
    # 10 tokens: latent 0 fires on 1 (1/10, the same double as DENSE_THRESHOLD = 0.1), latent 1 on 2.
    x = torch.zeros(10, 2)
    x[0, 0], x[:2, 1] = 1.0, 1.0
    m = kd.measure(Affine(torch.eye(2), torch.eye(2), torch.zeros(2)), [x], widths=[1])
    assert m.firing_frequency == [0.1, 0.2] and kd.DENSE_THRESHOLD == 0.1
    assert m.dense == 1, "dense means firing on more than 10% of the tokens"


def test_density_table_counts_the_never_fired_latents():
    # Two latents never fired, none fired on every token (a count of the frequency-1 latents would say 0).
    rec = {**{k: "x" for k in kd.IDENTITY}, "firing_frequency": [0.0, 0.0, 0.25, 0.5], "dead": 2, "dense": 2}
    table = kd.density_table([rec])
    assert (table["never_fired"] == 2).all() and table["latents"].sum() == 2


def test_default_widths_reach_past_dstar_or_the_teacher_width_whichever_is_larger():
    x = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, -1]])
    identity = Affine(torch.eye(3), torch.eye(3), torch.zeros(3))
    small = kd.measure(identity, [x])
    assert small.dstar < 3 and small.floor_widths[-1] == 3, "d*_S below the teacher's width: widths end at d_in"
    # 8 latents on a 2-d input, one firing per token: α = 7/8, d*_S = 8/g(7/8) = ln 8 ≈ 2.08 > 2.
    angles = torch.arange(8) * (2 * math.pi / 8)
    directions = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    tokens = directions.repeat(4, 1)  # token k points along latent k

    class Winner(Affine):
        """Winner-take-all: only the latent most aligned with the token fires."""

        def encode(self, x):
            z = x @ self.encoder
            return torch.where(z >= z.amax(1, keepdim=True), z, torch.zeros_like(z))

    m = kd.measure(Winner(directions.T, directions, torch.zeros(2)), [tokens])
    assert m.l0 == 1.0 and m.f_alive == 8
    assert m.dstar == pytest.approx(8 / theory.capacity_g(7 / 8))
    assert m.floor_widths[-1] == math.ceil(1.25 * m.dstar) == 3


def test_metric_and_floor_tables_keep_identity_first_and_one_row_per_width():
    x = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, -1]])
    metrics = kd.measure(Affine(torch.eye(3), torch.eye(3), torch.zeros(3)), [x], widths=[1, 2])
    identity = dict(trial="A", model="m", ckpt="final", layer=2, snapshot="final", tokens=100)
    later = kd.record(metrics, **{**identity, "tokens": 200, "snapshot": "200"})
    earlier = {**kd.record(metrics, **identity), "ground_truth": {"f": 3}}
    metrics_first = dict(reversed(list(earlier.items())))  # identity keys last: the table must reorder them
    table = kd.metrics_table([metrics_first, later])
    assert list(table.columns[:6]) == kd.IDENTITY
    assert "spectrum" not in table and "ground_truth" not in table and table["f_alive"].tolist() == [2, 2]
    assert table["snapshot"].tolist() == ["200", "final"], "rows sorted by identity"
    floors = kd.floors_table([earlier])
    assert floors["d_student"].tolist() == [1, 2]
    assert floors["floor_refined"].tolist() == pytest.approx(metrics.floor_refined)
    assert floors["floor_naive"].tolist() == pytest.approx(metrics.floor_naive)
    assert (floors["tokens"] == 100).all()


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(arrays(np.float64, (12, 5), elements=st.sampled_from([0.0, 0.0, 0.5, 1.0, 3.0])))
def test_alpha_counts_firing_and_floors_fall_with_width(codes):
    """For any firing pattern through an identity SAE: α = 1 − L0/F_alive with L0 and F_alive counted
    here, the spectrum is the per-latent mean of z² of the alive latents, and both floors never rise
    with the student's width."""
    x = torch.from_numpy(codes).float()
    m = kd.measure(Affine(torch.eye(5), torch.eye(5), torch.zeros(5)), [x], widths=[1, 2, 3, 5, 8])
    fires = codes > 0
    alive = fires.any(0)
    assert m.l0 == pytest.approx(fires.sum() / 12) and m.f_alive == alive.sum()
    assert m.spectrum == pytest.approx(sorted((codes[:, alive] ** 2).mean(0), reverse=True))
    if m.f_alive and 0 < 1 - m.l0 / m.f_alive < 1:  # else α and the floors are NaN (test_kd.py)
        assert m.alpha == pytest.approx(1 - m.l0 / m.f_alive)
        for floor in (m.floor_refined, m.floor_naive):
            assert all(a >= b for a, b in zip(floor, floor[1:])), floor
