"""Explained variance, dense count and the feature-density histogram of the KD measurement."""
import numpy as np
import pytest
import torch

from interplab import kd


class ReluIdentity:
    def encode(self, x):
        return torch.relu(x)

    def decode(self, z):
        return z


X = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, -1]])


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
