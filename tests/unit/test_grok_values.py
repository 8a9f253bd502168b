"""Data hygiene of the grokking tasks (held-out pairs disjoint from training, every training image
once per epoch, evaluation in stored order) and the curve summary's values on curves built by hand."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from interplab.grok.analysis import GROKKED, NEVER, NO_DELAY, UNGROKKED, Criteria, curve_summary
from interplab.grok.data import ImageSet, SplitConfig
from interplab.grok.runs import CAMELYON, MODULAR, CamelyonSetup, ModularSetup, Regime, RunSpec
from interplab.grok.tasks import EVAL_BATCH, CamelyonTask, ModularTask, images_to_input, make_task, modular_pairs


# ----------------------------------------------------------------------------------- modular task
@pytest.mark.parametrize("p, fraction", [(7, 0.3), (11, 0.5)])
def test_modular_pairs_split_every_sum_once_into_disjoint_train_and_test(p, fraction):
    pairs = modular_pairs(ModularSetup(p=p, train_fraction=fraction), seed=3)
    train, test = pairs["train"][0], pairs["test"][0]
    assert len(train) == round(fraction * p * p) and len(train) + len(test) == p * p
    seen = {tuple(row) for row in train.tolist()}
    assert not seen & {tuple(row) for row in test.tolist()}, "no held-out pair is a training pair"
    everything = seen | {tuple(row) for row in test.tolist()}
    assert everything == {(a, b, p) for a in range(p) for b in range(p)}, "every (a, b, =) once, '=' is token p"
    for tokens, labels in pairs.values():
        assert torch.equal(labels, (tokens[:, 0] + tokens[:, 1]) % p)


def test_modular_split_is_a_function_of_the_seed():
    setup = ModularSetup(p=7, train_fraction=0.5)
    first, again, other = (modular_pairs(setup, s)["train"][0] for s in (0, 0, 1))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_modular_task_trains_on_the_training_pairs_and_evaluates_each_split():
    setup = ModularSetup(p=7, train_fraction=0.5)
    task = ModularTask(setup, seed=2, device="cpu")
    pairs = modular_pairs(setup, seed=2)
    (x, y), = list(task.train_batches(epoch=5))
    assert torch.equal(x, pairs["train"][0]) and torch.equal(y, pairs["train"][1])
    for split in ("train", "test"):
        (x, y), = list(task.eval_batches(split))
        assert torch.equal(x, pairs[split][0]) and torch.equal(y, pairs[split][1])


# ---------------------------------------------------------------------------------- Camelyon task
def image_set(n: int, offset: int = 0) -> ImageSet:
    """Image i is a constant patch of value (offset + i) mod 256 with label i mod 2, so a batch shows
    which images it holds and whether labels travel with their images."""
    ids = torch.arange(n) + offset
    images = (ids % 256).to(torch.uint8)[:, None, None, None].expand(n, 3, 2, 2).clone()
    return ImageSet(images, ids % 2, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), ids.numpy())


def camelyon(n_train=50, n_eval=EVAL_BATCH + 88, batch_size=16, seed=0):
    setup = CamelyonSetup(data=SplitConfig(root_dir="unused"), n_train=n_train, batch_size=batch_size)
    sets = {"train": image_set(n_train), "id": image_set(n_eval, 1), "ood": image_set(n_eval, 2)}
    return CamelyonTask(setup, seed=seed, device="cpu", sets=sets)


def pixel_ids(x: torch.Tensor) -> list[int]:
    return torch.round((x[:, 0, 0, 0] + 1) * 127.5).long().tolist()


def test_images_map_to_minus_one_one():
    images = torch.tensor([0, 255, 51], dtype=torch.uint8)[:, None, None, None].expand(3, 3, 1, 1)
    torch.testing.assert_close(images_to_input(images, "cpu")[:, :, 0, 0], torch.tensor([-1.0, 1.0, -0.6])[:, None].expand(3, 3))


def test_every_training_image_once_per_epoch_with_its_label_in_a_fresh_order():
    task = camelyon()
    orders = []
    for epoch in (0, 1):
        batches = list(task.train_batches(epoch))
        assert [len(y) for _, y in batches] == [16, 16, 16, 2]
        ids = [i for x, _ in batches for i in pixel_ids(x)]
        assert sorted(ids) == list(range(50)), "each training image exactly once"
        labels = [label for _, y in batches for label in y.tolist()]
        assert labels == [i % 2 for i in ids], "labels stay with their images"
        orders.append(ids)
    assert orders[0] != orders[1], "a fresh order every epoch"
    assert orders[0] == [i for x, _ in camelyon().train_batches(0) for i in pixel_ids(x)], "a function of seed and epoch"
    assert orders[0] != [i for x, _ in camelyon(seed=1).train_batches(0) for i in pixel_ids(x)]


@pytest.mark.parametrize("split, offset", [("id", 1), ("ood", 2)])
def test_evaluation_reads_the_requested_split_in_stored_order(split, offset):
    batches = list(camelyon().eval_batches(split))
    assert [len(y) for _, y in batches] == [EVAL_BATCH, 88]
    ids = [i for x, _ in batches for i in pixel_ids(x)]
    assert ids == [(offset + i) % 256 for i in range(EVAL_BATCH + 88)]
    assert torch.cat([y for _, y in batches]).tolist() == [(offset + i) % 2 for i in range(EVAL_BATCH + 88)]


def test_make_task_builds_the_task_its_spec_names():
    spec = RunSpec(name="modadd-s0", task=MODULAR, seed=0, epochs=1, checkpoints=(0, 1), eval_every=1,
                   regime=Regime("standard", lr=1e-3, weight_decay=0.0), grokfast_alpha=0.98, grokfast_lamb=2.0,
                   setup=ModularSetup(p=5))
    task = make_task(spec, "cpu")
    assert isinstance(task, ModularTask) and task.splits == ("train", "test")
    assert CamelyonTask.splits == ("train", "id", "ood")


# ---------------------------------------------------------------------------------- curve summary
CRITERIA = Criteria(fit_threshold=0.99, heldout_threshold=0.95, drop_tolerance=0.05, min_delay={CAMELYON: 3, MODULAR: 500})


def history(train_acc, heldout_acc, epochs=None, **extra):
    epochs = np.arange(len(train_acc)) if epochs is None else np.asarray(epochs)
    return pd.DataFrame({"epoch": epochs, "train_acc": train_acc, "ood_acc": heldout_acc, **extra})


def test_curve_summary_values_on_a_grokking_curve_given_out_of_order():
    # fit (≥ 0.99) at epoch 2, held-out ≥ 0.95 at epoch 6, peak 0.98 first reached at 7, final 0.97.
    curve = history([0.5, 0.9, 0.99, 1, 1, 1, 1, 1, 0.995], [0.1, 0.1, 0.2, 0.2, 0.5, 0.9, 0.95, 0.98, 0.97],
                    id_acc=[0.5] * 8 + [0.875])
    shuffled = curve.iloc[[4, 0, 8, 2, 6, 1, 3, 7, 5]]
    out = curve_summary(shuffled, "ood", CRITERIA, CAMELYON)
    assert out == {
        "epochs": 8, "fit_epoch": 2.0, "generalise_epoch": 6.0, "delay": 4.0, "delay_over_fit": 2.0, "min_delay": 3,
        "peak_ood_epoch": 7, "peak_ood_acc": 0.98, "final_ood_acc": 0.97, "ood_drop": pytest.approx(0.01),
        "final_train_acc": 0.995, "final_id_acc": 0.875, "classification": GROKKED,
    }


@pytest.mark.parametrize("train_acc, heldout_acc, label", [
    # generalises exactly min_delay = 3 epochs after fitting: grokked (the delay is inclusive)
    ([0.5, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.5, 0.95], GROKKED),
    # two epochs after fitting: no delay
    ([0.5, 1, 1, 1, 1], [0.1, 0.2, 0.5, 0.95, 0.96], NO_DELAY),
    # peak 1.0 then a drop of exactly the tolerance 0.0625 (exact in binary): ungrokked
    ([0.5, 1, 1, 1, 1], [0.1, 0.2, 0.5, 1.0, 0.9375], UNGROKKED),
    # a drop just inside the tolerance, and never at the held-out threshold: never generalised
    ([0.5, 1, 1, 1, 1], [0.1, 0.2, 0.5, 0.9375, 0.9], NEVER),
])
def test_label_boundaries(train_acc, heldout_acc, label):
    criteria = dataclasses.replace(CRITERIA, drop_tolerance=0.0625)
    assert curve_summary(history(train_acc, heldout_acc), "ood", criteria, CAMELYON)["classification"] == label


def test_thresholds_are_inclusive_and_min_delay_follows_the_task():
    # train accuracy exactly 0.99 counts as fitted; held-out exactly 0.95 counts as generalised
    curve = history([0.5, 0.99, 0.99, 0.99, 0.99], [0.1, 0.1, 0.1, 0.5, 0.95])
    out = curve_summary(curve, "ood", CRITERIA, CAMELYON)
    assert (out["fit_epoch"], out["generalise_epoch"], out["classification"]) == (1.0, 4.0, GROKKED)
    steps = history([0.5, 1.0, 1.0], [0.1, 0.5, 0.97], epochs=[0, 100, 600]).rename(columns={"ood_acc": "test_acc"})
    modular = curve_summary(steps, "test", CRITERIA, MODULAR)
    assert (modular["delay"], modular["min_delay"], modular["classification"]) == (500.0, 500, GROKKED)


def test_fit_at_epoch_zero_has_no_delay_ratio_and_a_missing_id_split_is_nan():
    out = curve_summary(history([1.0, 1.0], [0.96, 0.97]), "ood", CRITERIA, CAMELYON)
    assert out["fit_epoch"] == 0.0 and np.isnan(out["delay_over_fit"]) and np.isnan(out["final_id_acc"])
    assert out["classification"] == NO_DELAY


def test_summarize_reads_each_run_on_its_own_heldout_split(tmp_path):
    from interplab.grok.analysis import load_histories, summarize
    from interplab.grok.checkpoints import HISTORY, MANIFEST
    from interplab.grok.runs import spec_to_dict
    from interplab.io import write_json

    regime = Regime("grokking", lr=1e-3, weight_decay=0.0)
    specs = {
        "camelyon": RunSpec(name="grokking-n48-s1", task=CAMELYON, seed=1, epochs=4, checkpoints=(0, 4), eval_every=1,
                            regime=regime, grokfast_alpha=0.98, grokfast_lamb=2.0,
                            setup=CamelyonSetup(data=SplitConfig(root_dir="unused"), n_train=48, batch_size=8)),
        "modular": RunSpec(name="modadd-plain-s0", task=MODULAR, seed=0, epochs=3, checkpoints=(0, 3), eval_every=1,
                           regime=regime, grokfast_alpha=0.98, grokfast_lamb=2.0, setup=ModularSetup(p=5)),
    }
    # Camelyon: OOD groks (delay 3 epochs) while ID stays low; modular: test accuracy lags by 2 steps only
    curves = {"camelyon": history([0.5, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.5, 0.97], id_acc=[0.2] * 5),
              "modular": history([0.5, 1, 1, 1], [0.1, 0.2, 0.3, 0.99]).rename(columns={"ood_acc": "test_acc"})}
    for key, spec in specs.items():
        (tmp_path / key).mkdir()
        write_json(tmp_path / key / MANIFEST, {"spec": spec_to_dict(spec)})
        curves[key].to_csv(tmp_path / key / HISTORY, index=False)
    summary = summarize(load_histories([tmp_path / "modular", tmp_path / "camelyon"]), CRITERIA).set_index("run")
    camelyon, modular = summary.loc["grokking-n48-s1"], summary.loc["modadd-plain-s0"]
    assert (camelyon["task"], camelyon["regime"], camelyon["n_train"], camelyon["seed"], camelyon["heldout_split"]) == (
        CAMELYON, "grokking", 48, 1, "ood")
    assert (camelyon["fit_epoch"], camelyon["generalise_epoch"], camelyon["classification"]) == (1, 4, GROKKED)
    assert camelyon["final_id_acc"] == 0.2
    assert modular["heldout_split"] == "test" and pd.isna(modular["n_train"]) and modular["seed"] == 0
    assert (modular["peak_ood_acc"], modular["generalise_epoch"], modular["classification"]) == (0.99, 3, NO_DELAY)
    assert np.isnan(modular["final_id_acc"]), "no id split: its all-NaN column is dropped per run"
    assert list(summary.index) == sorted(summary.index)
