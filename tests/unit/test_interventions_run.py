"""Run-level interventions: the four tables on planted features (shortcut known), on a tiny trained
run, and the across-run criteria and statistics."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from interplab.grok import checkpoints as ckpt
from interplab.grok.data import SplitConfig
from interplab.grok.fixture import FixtureConfig, write_fixture
from interplab.grok.runs import CAMELYON, CamelyonSetup, Regime, RunSpec
from interplab.grok.tasks import CamelyonTask
from interplab.grok.train import train_run
from interplab.interventions import across_runs, erasure, probes
from interplab.interventions.run import (InterventionConfig, LayerData, ablation_table, choose_epoch, fc_head,
                                         head_accuracy,
                                         neuron_table, run_interventions, steering_table)

D = 24
SMALL = InterventionConfig(random_draws=3, random_k_draws=3, neuron_k=(0, 2, 8, 64), bootstrap_samples=100, inlp_rounds=4)


def planted_layer(n: int = 900, seed: int = 0) -> LayerData:
    """Training hospitals 0–2 along channels 0–1 (the shortcut), tumour along channel 5; the OOD hospital
    sits elsewhere in the shortcut plane, and the head leans on the shortcut, so OOD accuracy suffers."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    hospital, tumour = rng.integers(0, 3, n), rng.integers(0, 2, n)
    train = rng.standard_normal((n, D))
    train[:, :2] += centers[hospital]
    train[:, 5] += 2.5 * tumour
    ood_tumour = rng.integers(0, 2, n)
    ood = rng.standard_normal((n, D))
    ood[:, :2] += [-3.0, 4.0]
    ood[:, 5] += 2.5 * ood_tumour
    w = np.zeros(D)
    w[5], w[0], w[1] = 1.5, 0.6, -0.6

    def head(h):
        return 1 / (1 + np.exp(-(h @ w - 2.0)))

    return LayerData(train, hospital, tumour, ood, ood_tumour, head)


@pytest.fixture(scope="module")
def layer():
    return planted_layer()


@pytest.fixture(scope="module")
def ablation(layer):
    return ablation_table(layer, SMALL)


@pytest.mark.parametrize("method, margin", [("rowspace", 0.15), ("inlp", 0.08), ("leace", 0.08)])
def test_erasure_reaches_chance_and_random_subspace_does_not(ablation, method, margin):
    rows = ablation[ablation["method"] == method]
    erased, random = rows[rows["variant"] == "erased"].iloc[0], rows[rows["variant"] == "random"]
    assert erased["hospital_probe_acc"] < erased["hospital_chance"] + margin
    assert erased["hospital_probe_acc"] >= erased["hospital_chance_lo"], "at chance, not below it"
    assert (random["hospital_probe_acc"] > 0.75).all() and len(random) == SMALL.random_draws
    assert (random["rank"] == erased["rank"]).all() and erased["rank"] >= 1
    none = ablation[ablation["method"] == "none"].iloc[0]
    assert erased["tumour_probe_acc"] > none["tumour_probe_acc"] - 0.05 > 0.75, "the task signal survives the erasure"


def test_leace_leaves_the_held_out_probe_inside_the_chance_interval(ablation):
    erased = ablation[(ablation["method"] == "leace") & (ablation["variant"] == "erased")].iloc[0]
    assert erased["hospital_chance_lo"] <= erased["hospital_probe_acc"] <= erased["hospital_chance_hi"]
    assert erased["n_probe_test"] == 270 and erased["n_probe_train"] == 630, "probe_test_fraction 0.3 of 900"


def test_every_eraser_is_fitted_on_the_probe_training_images_only(layer):
    """Changing only the probe-test images' features must not change the fitted edits: the head's OOD
    accuracy after each edit depends on the eraser alone, so it stays put."""
    train, test = layer.split(SMALL.probe_test_fraction, SMALL.seed)
    test_rows = np.flatnonzero(np.isin(layer.train, test.train).all(1))
    assert len(test_rows) == len(test.train)
    moved = layer.train.copy()
    moved[test_rows, :2] += np.random.default_rng(1).standard_normal((len(test_rows), 2)) * 5
    other = ablation_table(LayerData(moved, layer.hospital, layer.tumour, layer.ood, layer.ood_tumour, layer.head), SMALL)
    base = ablation_table(layer, SMALL)
    np.testing.assert_array_equal(other["head_ood_acc"].to_numpy(), base["head_ood_acc"].to_numpy())
    assert not np.array_equal(other["hospital_probe_acc"].to_numpy(), base["hospital_probe_acc"].to_numpy())


def test_an_eraser_fitted_on_the_probes_own_images_pushes_it_below_chance(layer):
    """Why the fit and probe images are disjoint: LEACE equalises the class means of exactly the images
    it saw, so a probe split from them learns a direction that is wrong on its test half."""
    erase, _ = erasure.leace(layer.train, layer.hospital)
    leaky = probes.heldout_accuracy(erase(layer.train), layer.hospital, SMALL.probe_test_fraction, SMALL.seed)
    assert leaky < probes.chance_interval(layer.hospital, SMALL.probe_test_fraction)[0]


def test_erasing_the_planted_shortcut_helps_the_head_on_ood(ablation):
    none = ablation.loc[ablation["method"] == "none", "head_ood_acc"].item()
    leace = ablation[ablation["method"] == "leace"]
    erased = leace.loc[leace["variant"] == "erased", "head_ood_acc"].item()
    assert none < 0.75 and erased > none + 0.15
    assert erased > leace.loc[leace["variant"] == "random", "head_ood_acc"].max()


def test_steering_along_hospital_direction_moves_predictions_more_than_random(layer):
    table = steering_table(layer, SMALL)
    assert len(table) == (1 + SMALL.random_draws) * len(SMALL.steering_strengths)
    along, random = table[table["direction"] == "hospital"], table[table["direction"] == "random"]
    assert along["mean_abs_shift"].max() > 3 * random["mean_abs_shift"].max()
    assert along["slope_lo"].iloc[0] > random["slope"].max()
    assert along.loc[along["strength"] == 0, "flip_rate"].item() == 0
    assert table["monotone"].dtype == bool


def test_neuron_ablation_top_k_hospital_vs_controls_and_k_capped(layer):
    table = neuron_table(layer, SMALL)
    assert sorted(table["k"].unique()) == [0, 2, 8, D], "K beyond the channel count is capped at it"
    at2 = table[table["k"] == 2]
    chance = probes.chance_accuracy(layer.hospital)
    hospital_k = at2.loc[at2["ranking"] == "hospital"].iloc[0]
    assert hospital_k["hospital_probe_acc"] < chance + 0.08, "the two planted channels are ranked first"
    assert at2.loc[at2["ranking"] == "random", "hospital_probe_acc"].mean() > hospital_k["hospital_probe_acc"] + 0.2
    assert at2.loc[at2["ranking"] == "tumour", "tumour_probe_acc"].item() < 0.7, "tumour-K removes channel 5"
    assert hospital_k["head_ood_acc"] > at2.loc[at2["ranking"] == "random", "head_ood_acc"].mean()


@pytest.mark.parametrize("kind", ["mean", "zero"])
def test_ablated_channels_take_the_training_mean_or_zero(layer, kind):
    table = neuron_table(layer, InterventionConfig(**{**SMALL.__dict__, "ablation": kind}))
    assert (table["ablation"] == kind).all()
    ood = layer.ood.copy()
    train, _ = layer.split(SMALL.probe_test_fraction, SMALL.seed)
    ood[:, :2] = train.train.mean(0)[:2] if kind == "mean" else 0.0  # the two planted channels rank first
    by_hand = head_accuracy(layer.head, ood, layer.ood_tumour)
    pick = (table["ranking"] == "hospital") & (table["k"] == 2)
    assert table.loc[pick, "head_ood_acc"].item() == pytest.approx(by_hand)


def test_fc_head_is_the_softmax_tumour_probability():
    model = torch.nn.Module()
    model.fc = torch.nn.Linear(6, 2)
    x = np.random.default_rng(0).standard_normal((5, 6))
    expected = torch.softmax(model.fc(torch.from_numpy(x).float()), 1)[:, 1].detach().numpy()
    np.testing.assert_allclose(fc_head(model)(x), expected, atol=1e-6)


def test_choose_epoch_uses_checkpointed_epochs_only(tmp_path):
    (tmp_path / ckpt.MANIFEST).write_text(json.dumps({"checkpoints": [{"epoch": e} for e in (0, 2, 5)]}))
    pd.DataFrame({"epoch": range(6), "ood_acc": [0.5, 0.6, 0.7, 0.9, 0.65, 0.6]}).to_csv(tmp_path / ckpt.HISTORY, index=False)
    assert choose_epoch(tmp_path, "peak_ood") == 2, "epoch 3 is better but has no checkpoint"
    assert choose_epoch(tmp_path, "final") == 5 and choose_epoch(tmp_path, 0) == 0
    with pytest.raises(ValueError, match=r"not a checkpoint.*\[0, 2, 5\]"):
        choose_epoch(tmp_path, 3)


def test_run_criteria_on_planted_tables(layer, ablation):
    probes_table = pd.DataFrame({"epoch": [0, 1, 2], "layer": "layer4", "target": "hospital", "accuracy": [0.9, 0.95, 0.7]})
    tables = {"probes": probes_table, "ablation": ablation, "steering": steering_table(layer, SMALL),
              "neurons": neuron_table(layer, SMALL)}
    out = across_runs.run_criteria(tables, across_runs.Criteria(neuron_k=2)).set_index("criterion")
    assert list(out.index) == list(across_runs.DESCRIPTIONS)
    assert out.loc["hospital_probe_drop", "metric"] == pytest.approx(0.25) and out.loc["hospital_probe_drop", "met"]
    assert out.loc["erasure_helps_ood", "met"] and out.loc["steering_beats_random", "met"]
    assert out.loc["neuron_ablation_helps", "met"]


def test_stats_table_counts_tests_and_power_line():
    # The reference's steering count: 4 of 5 grokking vs 1 of 3 standard runs; one-sided Fisher p = 0.286.
    met = [True, True, True, True, False, True, False, False]
    per_run = pd.DataFrame({"run": [f"r{i}" for i in range(8)], "regime": ["grokking"] * 5 + ["standard"] * 3,
                            "n_train": 1000, "criterion": "steering_monotone", "met": met,
                            "metric": [0.3, 0.2, 0.25, 0.4, 0.0, 0.1, -0.05, 0.0]})
    row = across_runs.stats_table(per_run, "grokking", "standard", n_boot=500).iloc[0]
    assert (row["n_treatment"], row["met_treatment"], row["n_control"], row["met_control"]) == (5, 4, 3, 1)
    assert row["fisher_p_greater"] == pytest.approx(0.2857, abs=1e-3) and not row["significant"]
    assert row["metric_diff_lo"] < row["metric_diff"] < row["metric_diff_hi"]
    assert 0 < row["mannwhitney_p"] < 1
    assert "0.018" in row["power"] and "4 runs per arm" in row["power"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One ResNet-18 run trained for two epochs on a small synthetic fixture (hospital stain planted)."""
    root = tmp_path_factory.mktemp("wilds")
    write_fixture(root, FixtureConfig(n_per_hospital=80, image_size=16))
    setup = CamelyonSetup(data=SplitConfig(root_dir=str(root), max_eval=40), n_train=180, batch_size=30)
    spec = RunSpec(name="standard-n180-s0", task=CAMELYON, seed=0, epochs=2, checkpoints=(0, 1, 2), eval_every=1,
                   regime=Regime("standard", lr=1e-3, weight_decay=1e-4), grokfast_alpha=0.98, grokfast_lamb=2.0,
                   setup=setup)
    run_dir = tmp_path_factory.mktemp("run")
    train_run(spec, CamelyonTask(setup, seed=0, device="cpu"), run_dir)
    return run_dir, run_interventions(run_dir, SMALL)


def test_tiny_run_tables(tiny_run):
    run_dir, tables = tiny_run
    epoch = choose_epoch(run_dir, "peak_ood")
    probe = tables["probes"]
    assert len(probe) == 3 * 4 * 2 and set(probe.loc[probe["selected"], "epoch"]) == {epoch}
    for name in ("ablation", "steering", "neurons"):
        assert (tables[name]["epoch"] == epoch).all()
    assert tables["neurons"]["n_channels"].iloc[0] == 512
    # The fc head on extracted layer4 features reproduces the model's own OOD accuracy at that epoch,
    # as the training loop measured it from the images (exact: 40 OOD images, no prediction near 0.5).
    history = pd.read_csv(run_dir / ckpt.HISTORY).set_index("epoch")
    unedited = tables["ablation"][tables["ablation"]["method"] == "none"]
    assert unedited["head_ood_acc"].item() == pytest.approx(history.loc[epoch, "ood_acc"], abs=1e-12)


def test_tiny_run_hospital_probe_finds_the_planted_stain_and_leace_takes_it_to_chance(tiny_run):
    """The stain is decodable from every block; LEACE fitted on the probe-training images (126 images
    in 512 dimensions) leaves the retrained probe inside the no-information interval, and no edit
    drives it below chance, which would be the eraser's fit leaking into the probe's test images."""
    _, tables = tiny_run
    probe = tables["probes"]
    hospital = probe[probe["target"] == "hospital"]
    chance = hospital["chance"].iloc[0]
    assert hospital["accuracy"].mean() > chance + 0.3, "the stain shortcut is decodable far above chance"
    assert hospital["accuracy"].min() > chance + 0.15, "at every checkpoint and block"
    ablation = tables["ablation"]
    assert (ablation["hospital_probe_acc"] >= ablation["hospital_chance_lo"]).all()
    leace = ablation[(ablation["method"] == "leace") & (ablation["variant"] == "erased")].iloc[0]
    assert leace["hospital_probe_acc"] <= leace["hospital_chance_hi"]
    assert (ablation["n_probe_train"] == 126).all() and (ablation["n_probe_test"] == 54).all()
