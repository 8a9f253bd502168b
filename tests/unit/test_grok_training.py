"""Grokfast, init scaling, checkpoint schedule, resumable training and run classification."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from interplab.grok import checkpoints as ckpt
from interplab.grok import train
from interplab.grok.analysis import Criteria, curve_summary
from interplab.grok.data import SplitConfig
from interplab.grok.fixture import FixtureConfig, write_fixture
from interplab.grok.grokfast import GrokfastEMA
from interplab.grok.models import ModularAdditionTransformer, group_norms, resnet18, scale_parameters_
from interplab.grok.runs import CAMELYON, CamelyonSetup, Regime, RunSpec
from interplab.grok.tasks import CamelyonTask


def test_grokfast_changes_gradients_exactly_as_its_formula_says():
    model = torch.nn.Linear(3, 2)
    gf = GrokfastEMA(alpha=0.9, lamb=2.0)
    grads = [torch.randn(2, 3, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    mu = None
    for g in grads:
        model.weight.grad, model.bias.grad = g.clone(), None
        gf.filter_(model)
        mu = g.clone() if mu is None else 0.9 * mu + 0.1 * g
        torch.testing.assert_close(model.weight.grad, g + 2.0 * mu, rtol=0, atol=1e-6)
    assert model.bias.grad is None


def test_init_scale_scales_parameter_norm():
    model = resnet18()
    before = group_norms(model)
    scale_parameters_(model, 4.0)
    after = group_norms(model)
    for group in ("conv", "bn", "fc", "total"):
        assert after[group] == pytest.approx(4.0 * before[group], rel=1e-6)
    assert torch.all(model.bn1.running_var == 1)  # buffers are not parameters: untouched


def test_modular_transformer_shapes_and_norm_groups():
    model = ModularAdditionTransformer(p=7, d_model=16, n_heads=4, d_mlp=32)
    assert model(torch.tensor([[1, 2, 7], [3, 4, 7]])).shape == (2, 7)
    assert set(group_norms(model)) == {"embed", "attn", "mlp", "unembed", "total"}


def test_modular_transformer_equals_attention_over_projected_sequences():
    """The gathered per-token keys/values give the textbook computation: project every position, attend from '='."""
    torch.manual_seed(0)
    model = ModularAdditionTransformer(p=11, d_model=16, n_heads=4, d_mlp=32)
    a, b = torch.randint(0, 11, (2, 50))
    tokens = torch.stack([a, b, torch.full_like(a, 11)], 1)
    x = model.embed(tokens) + model.pos
    split = lambda t: t.view(50, -1, 4, 4).transpose(1, 2)  # noqa: E731  [B, H, T, d_head]
    q, k, v = split(model.query(x)), split(model.key(x)), split(model.value(x))
    attn = torch.softmax(q[:, :, -1:] @ k.transpose(-1, -2) / 2.0, dim=-1)
    resid = x[:, -1] + model.out((attn @ v).reshape(50, -1))
    expected = model.unembed(resid + model.mlp_out(torch.relu(model.mlp_in(resid))))
    torch.testing.assert_close(model(tokens), expected, rtol=1e-5, atol=1e-5)


def test_checkpoint_schedule_is_log_spaced_then_regular():
    assert ckpt.checkpoint_schedule(100, log_points=5, every=25) == (0, 1, 3, 10, 25, 32, 50, 75, 100)
    assert ckpt.checkpoint_schedule(3, log_points=0, every=0) == (0, 3)


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("wilds")
    write_fixture(root, FixtureConfig(n_per_hospital=16, image_size=16))
    setup = CamelyonSetup(data=SplitConfig(root_dir=str(root), max_eval=16), n_train=24, batch_size=8)
    spec = RunSpec(name="grokking-n24-s0", task=CAMELYON, seed=0, epochs=3, checkpoints=(0, 2, 3), eval_every=1,
                   regime=Regime("grokking", lr=1e-3, weight_decay=1.0, init_scale=2.0, grokfast=True),
                   grokfast_alpha=0.98, grokfast_lamb=2.0, setup=setup)
    return spec, CamelyonTask(setup, seed=0, device="cpu")


def test_resumed_run_equals_uninterrupted_one(tiny_task, tmp_path, monkeypatch):
    spec, task = tiny_task
    straight = train.train_run(spec, task, tmp_path / "straight")

    real_save = train._save_resume

    def killed_after_epoch_2(run_dir, state):
        real_save(run_dir, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(train, "_save_resume", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train.train_run(spec, task, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / ckpt.MANIFEST).exists() and (tmp_path / "resumed" / ckpt.RESUME).exists()
    monkeypatch.setattr(train, "_save_resume", real_save)
    resumed = train.train_run(spec, task, tmp_path / "resumed")

    pd.testing.assert_frame_equal(straight, resumed)
    a = load_file(str(ckpt.checkpoint_path(tmp_path / "straight", 3)))
    b = load_file(str(ckpt.checkpoint_path(tmp_path / "resumed", 3)))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed" / ckpt.RESUME).exists()
    assert ckpt.checkpoint_epochs(tmp_path / "resumed") == [0, 2, 3]
    assert {"train_acc", "id_loss", "ood_acc", "norm_conv", "norm_bn", "norm_fc"} <= set(resumed.columns)
    model = ckpt.load_model(tmp_path / "resumed", 3)
    assert all(torch.equal(model.state_dict()[k], a[k]) for k in a)


def test_changed_spec_does_not_resume_stale_state(tiny_task, tmp_path):
    spec, task = tiny_task
    train.train_run(dataclasses.replace(spec, epochs=1, checkpoints=(0, 1)), task, tmp_path)
    history = train.train_run(spec, task, tmp_path)
    assert history["epoch"].tolist() == [0, 1, 2, 3]


def _history(train_acc, ood_acc):
    return pd.DataFrame({"epoch": np.arange(len(ood_acc)), "train_acc": train_acc, "ood_acc": ood_acc})


CRITERIA = Criteria(fit_threshold=0.99, heldout_threshold=0.95, drop_tolerance=0.05, min_delay={CAMELYON: 3})


@pytest.mark.parametrize("train_acc, ood_acc, label", [
    # fits at 1, OOD peaks at 2 and decays 0.25: ungrokked, whatever else happens
    ([0.5, 1, 1, 1, 1, 1, 1], [0.5, 0.7, 0.8, 0.7, 0.6, 0.55, 0.55], "ungrokked"),
    # fits at 1, crosses 0.95 at 5: a delay of 4 ≥ 3
    ([0.5, 1, 1, 1, 1, 1, 1], [0.1, 0.1, 0.1, 0.3, 0.9, 0.97, 0.98], "grokked"),
    # fits at 1, crosses 0.95 at 3: generalised, but only 2 epochs after fitting
    ([0.5, 1, 1, 1, 1, 1, 1], [0.1, 0.5, 0.9, 0.96, 0.97, 0.97, 0.98], "no delay"),
    # the standard run of issue 18: fit at 2, OOD 1.0 at 3 (it used to be called grokked)
    ([0.5, 0.9, 1, 1, 1, 1, 1], [0.5, 0.8, 0.9, 1.0, 1.0, 1.0, 0.99], "no delay"),
    # fits, rises a lot after fitting, but never reaches the threshold
    ([0.5, 1, 1, 1, 1, 1, 1], [0.1, 0.1, 0.3, 0.5, 0.7, 0.9, 0.93], "never generalised"),
    # never fits, never generalises
    ([0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8], [0.5, 0.55, 0.6, 0.6, 0.6, 0.62, 0.62], "never generalised"),
])
def test_classification(train_acc, ood_acc, label):
    out = curve_summary(_history(train_acc, ood_acc), "ood", CRITERIA, CAMELYON)
    assert out["classification"] == label
    assert out["peak_ood_acc"] == max(ood_acc) and out["final_ood_acc"] == ood_acc[-1]


def test_delay_is_generalisation_minus_fit_epoch():
    out = curve_summary(_history([0.5, 1, 1, 1, 1, 1, 1], [0.1, 0.1, 0.1, 0.3, 0.9, 0.97, 0.98]), "ood", CRITERIA,
                        CAMELYON)
    assert (out["fit_epoch"], out["generalise_epoch"], out["delay"], out["delay_over_fit"]) == (1, 5, 4, 4.0)
    never = curve_summary(_history([0.5] * 3, [0.5] * 3), "ood", CRITERIA, CAMELYON)
    assert np.isnan(never["fit_epoch"]) and np.isnan(never["generalise_epoch"]) and np.isnan(never["delay"])


def test_min_delay_is_per_task():
    curve = _history([0.5, 1, 1, 1, 1, 1, 1], [0.1, 0.1, 0.1, 0.3, 0.9, 0.97, 0.98])
    strict = dataclasses.replace(CRITERIA, min_delay={CAMELYON: 5})
    assert curve_summary(curve, "ood", strict, CAMELYON)["classification"] == "no delay"
