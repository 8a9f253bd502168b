"""Seed 003's comparison of dictionary sizes (interplab.sae.sizes): MCS, the random baseline,
neuron-basis sparsity and the bimodality coefficient, each against a hand computation or a case with
a known answer."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from interplab.sae.sizes import (BIMODAL, SizeStudy, bimodality_coefficient, compare_sizes, effective_dimensions,
                                 max_cosine, random_directions, random_expectation)


def unit_rows(n, d, seed):
    rows = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return rows / rows.norm(dim=1, keepdim=True)


def test_a_dictionary_compared_with_itself_has_mmcs_one():
    dictionary = unit_rows(40, 16, 0)
    shuffled_and_scaled = dictionary[torch.randperm(40)] * torch.linspace(0.1, 5, 40)[:, None]
    assert torch.allclose(max_cosine(dictionary, shuffled_and_scaled), torch.ones(40, dtype=torch.float64))
    sizes, _ = compare_sizes({40: dictionary, 80: torch.cat([dictionary, unit_rows(40, 16, 1)])},
                             {40: torch.ones(40, dtype=torch.bool), 80: torch.ones(80, dtype=torch.bool)}, seed=0)
    row = sizes.iloc[0]
    assert row["mmcs_with_larger"] == pytest.approx(1.0) and row["mmcs_alive"] == pytest.approx(1.0)
    assert row["n_matched"] == 40 and row["share_matched"] == 1.0


def test_max_cosine_by_hand():
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    against = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    # [1,0]: best is [2,0] (1); [1,1]/√2: 1/√2 with either; [0,-1]: 0 with [2,0], −1 with [0,3] → 0
    assert max_cosine(rows, against, chunk=2).tolist() == pytest.approx([1.0, 1 / math.sqrt(2), 0.0])


def test_effective_dimensions():
    d = 128
    basis = torch.eye(d)[:3] * torch.tensor([[2.0], [-1.0], [0.5]])
    flat = torch.tensor([[1.0, -1.0] * (d // 2)])
    two = torch.tensor([[3.0, 4.0] + [0.0] * (d - 2)])  # (7/5)² = 1.96
    assert effective_dimensions(basis).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert effective_dimensions(flat).item() == pytest.approx(d)
    assert effective_dimensions(two).item() == pytest.approx(1.96)
    # Random directions: E[(‖w‖₁/‖w‖₂)²] = 1 + (d−1)·2/π exactly (81.85 at d = 128; 400k numpy draws
    # gave 81.84); the per-vector std is 3.8, so 4000 draws have a standard error of 0.06: ±0.25 is 4 of
    # them, while the large-d approximation d·2/π (81.49) is 6 standard errors away.
    random = effective_dimensions(random_directions(4000, d, seed=3))
    assert random_expectation(d) == pytest.approx(1 + 127 * 2 / math.pi)
    assert random.mean().item() == pytest.approx(random_expectation(d), abs=0.25)


def test_bimodality_coefficient_against_its_formula_and_known_shapes():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=50)
    n, m = x.size, x.mean()
    m2, m3, m4 = ((x - m) ** 2).mean(), ((x - m) ** 3).mean(), ((x - m) ** 4).mean()
    g1 = m3 / m2 ** 1.5 * math.sqrt(n * (n - 1)) / (n - 2)  # bias-corrected skewness
    g2 = ((n + 1) * (m4 / m2 ** 2 - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))  # bias-corrected excess kurtosis
    assert bimodality_coefficient(x) == pytest.approx((g1 ** 2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))
    # 20,000 draws: a normal sample sits near 1/3, a uniform one near 5/9, two separated modes far above
    assert bimodality_coefficient(rng.normal(size=20000)) == pytest.approx(1 / 3, abs=0.02)
    assert bimodality_coefficient(rng.uniform(size=20000)) == pytest.approx(BIMODAL, abs=0.02)
    two_modes = np.concatenate([rng.normal(0.3, 0.05, 6000), rng.normal(0.95, 0.02, 4000)])
    assert bimodality_coefficient(two_modes) > 0.8
    assert math.isnan(bimodality_coefficient(np.ones(10))) and math.isnan(bimodality_coefficient(np.arange(3.0)))


def test_planted_features_found_again_dead_latents_left_out_and_random_baseline():
    d = 32
    truth = unit_rows(96, d, 7)
    small = truth[:24].clone()
    small[20:] = unit_rows(4, d, 8)  # four latents the larger dictionary never learned: dead ones
    alive_small = torch.ones(24, dtype=torch.bool)
    alive_small[20:] = False
    sizes, features = compare_sizes({24: small, 96: truth}, {24: alive_small, 96: torch.ones(96, dtype=torch.bool)},
                                    seed=5)
    first, last = sizes.iloc[0], sizes.iloc[1]
    assert first["n_alive"] == 20 and first["mmcs_alive"] == pytest.approx(1.0) and first["n_matched"] == 20
    dead_mcs = max_cosine(small[20:], truth).mean().item()
    assert first["mmcs_with_larger"] == pytest.approx((20 + 4 * dead_mcs) / 24)
    # 24 random directions against 96 unit rows in 32 dimensions: well below a match, well above 0
    assert 0.3 < first["random_mmcs"] < 0.7
    assert last["size"] == 96 and math.isnan(last["mmcs_with_larger"]) and last["n_matched"] == 0
    assert math.isnan(last["share_matched"]) and math.isnan(last["mmcs_alive"]), "the largest has nothing to match"
    assert pd.isna(last["larger_size"])
    counts = features.groupby(["kind", "size"]).size().to_dict()
    assert counts == {("learned", 24): 24, ("learned", 96): 96, ("random", 24): 24, ("random", 96): 96}
    assert first["d_in"] == d
    # the random baseline is seeded: the same seed, the same numbers
    again, _ = compare_sizes({24: small, 96: truth}, {24: alive_small, 96: torch.ones(96, dtype=torch.bool)}, seed=5)
    assert again["random_mmcs"].iloc[0] == first["random_mmcs"]


def test_size_study_names_and_trials():
    study = SizeStudy(layer=2, expansions=(1, 4), l1_coefficient=5e-3, training_tokens=1000, seed=0)
    assert study.trials() == {"x1": {"l1_form": "sum", "l1_coefficient": 5e-3, "adaptive": None},
                              "x4": {"l1_form": "sum", "l1_coefficient": 5e-3, "adaptive": None}}
    for bad in [(4,), (4, 1), (2, 2, 4)]:
        with pytest.raises(ValueError, match="sizes.expansions"):
            SizeStudy(layer=2, expansions=bad, l1_coefficient=5e-3, training_tokens=1000, seed=0)


def test_sizes_draw_independent_inits_and_share_the_data_order(tmp_path):
    """One init seed would nest the dictionaries (the smaller start = the larger one's first rows), and
    MMCS-with-larger would then measure how little training moved them."""
    import yaml

    from interplab.sae.plan import train_config
    from interplab.sae.trainer import SAETrainer
    from interplab.synthetic import InMemorySource

    sae = yaml.safe_load(open("config.yaml"))["sae"]
    shared = {**sae, "training_tokens": 1024, "snapshots": []}
    small, large = (train_config({**shared, "expansion": e}, "B", 16, "m", "final", 2, "cpu", init_key=(f"x{e}",))
                    for e in (1, 2))
    assert small.data_seed == large.data_seed and small.init_seed != large.init_seed
    nested = [train_config({**shared, "expansion": e}, "B", 16, "m", "final", 2, "cpu") for e in (1, 2)]
    assert nested[0].init_seed == nested[1].init_seed
    x = torch.randn(2048, 16, generator=torch.Generator().manual_seed(0))
    starts = {}
    for name, cfg in (("small", small), ("large", large), ("nested_small", nested[0]), ("nested_large", nested[1])):
        trainer = SAETrainer(cfg, InMemorySource(x), tmp_path / name)
        starts[name] = trainer.sae.W_dec.detach().clone()
    assert torch.equal(starts["nested_small"], starts["nested_large"][:16]), "one seed nests the starts"
    assert max_cosine(starts["small"], starts["large"]).mean() < 0.9


def test_each_size_is_compared_with_the_next_larger_one_not_the_largest():
    """Three sizes: the smallest shares its rows with the middle one only, so comparing it with the
    largest instead would lose the matches; every table value is recomputed from the features table."""
    d = 16
    small = unit_rows(8, d, 1)
    middle = torch.cat([small, unit_rows(8, d, 2)])
    large = unit_rows(32, d, 3)  # unrelated to both
    alive = {size: torch.ones(size, dtype=torch.bool) for size in (8, 16, 32)}
    sizes, features = compare_sizes({8: small, 16: middle, 32: large}, alive, seed=0)
    assert sizes["larger_size"].tolist()[:2] == [16, 32] and pd.isna(sizes["larger_size"].iloc[2])
    assert sizes["mmcs_alive"].iloc[0] == pytest.approx(1.0) and sizes["n_matched"].iloc[0] == 8
    assert sizes["mmcs_alive"].iloc[1] < 0.9, "the middle size is compared with the unrelated largest"
    for row in sizes.itertuples():
        of_size = features[features["size"] == row.size]
        learned, random = of_size[of_size["kind"] == "learned"], of_size[of_size["kind"] == "random"]
        assert len(learned) == len(random) == row.size
        assert row.effective_dims == pytest.approx(learned["effective_dims"].mean())
        assert row.random_effective_dims == pytest.approx(random["effective_dims"].mean())
        if row.size < 32:
            assert row.random_mmcs == pytest.approx(random["mcs_with_larger"].mean())
            assert row.mmcs_with_larger == pytest.approx(learned["mcs_with_larger"].mean())


def test_a_size_with_no_alive_latent_or_just_one():
    d = 8
    truth = unit_rows(16, d, 4)
    none_alive = torch.zeros(8, dtype=torch.bool)
    one_alive = torch.zeros(8, dtype=torch.bool)
    one_alive[3] = True
    everything = torch.ones(16, dtype=torch.bool)
    sizes, _ = compare_sizes({8: truth[:8], 16: truth}, {8: none_alive, 16: everything}, seed=0)
    first = sizes.iloc[0]
    assert first["n_alive"] == 0 and first["n_matched"] == 0 and not first["bimodal"]
    for column in ("mmcs_alive", "share_matched", "bimodality", "effective_dims"):
        assert math.isnan(first[column]), column
    assert first["mmcs_with_larger"] == pytest.approx(1.0), "dead latents still count in the all-features MMCS"
    sizes, _ = compare_sizes({8: truth[:8], 16: truth}, {8: one_alive, 16: everything}, seed=0)
    first = sizes.iloc[0]
    assert (first["n_alive"], first["n_matched"], first["share_matched"]) == (1, 1, 1.0)
    assert first["mmcs_alive"] == pytest.approx(1.0) and math.isnan(first["bimodality"])
    assert first["effective_dims"] == pytest.approx(effective_dimensions(truth[3:4]).item())


def test_bimodality_guards_its_edges():
    """Four values are enough; values that coincide to 1e-9 of their scale (or of 1 near zero) are one mode."""
    four = np.array([0.1, 0.2, 0.4, 0.9])
    assert math.isfinite(bimodality_coefficient(four))
    assert math.isnan(bimodality_coefficient(np.full(5, 1000.0) + np.array([0, 1e-7, 2e-7, 5e-7, 3e-7])))
    assert math.isfinite(bimodality_coefficient(np.array([0.0, 0.0, 0.0, 1.5e-9, 1.0e-9])))
    assert math.isnan(bimodality_coefficient(np.array([0.0, 0.0, 0.0, 1.0e-9])))  # a spread of exactly 1e-9
