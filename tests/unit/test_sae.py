"""The SAE library: fused gradients, decoder constraint, L1 policies, snapshots, resume, export."""
import dataclasses
import json

import pytest
import yaml
import torch

from conftest import ROOT
from interplab.config import validate_config
from interplab.sae import AdaptiveL1, L1Policy, SAETrainer, SparseAutoencoder, TrainConfig, load_sae
from interplab.sae.checkpoint import snapshot_name, snapshot_schedule
from interplab.sae.export import export_snapshot, pt_name
from interplab.sae.l1 import LambdaController
from interplab.sae.model import initial_b_pre
from interplab.sae.plan import sae_plan, train_config
from interplab.sae.trainer import FusedStep
from interplab.synthetic import InMemorySource, SyntheticConfig, mean_max_cosine, sample_activations, true_dictionary

SYNTH = SyntheticConfig(d_model=32, n_features=64, alpha=0.95, n_tokens=32768)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matmuls run fastest on one thread, and the test suite shares its cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def synthetic():
    dictionary = true_dictionary(SYNTH)
    return (dictionary, sample_activations(SYNTH, dictionary, SYNTH.n_tokens, "train"),
            sample_activations(SYNTH, dictionary, 8192, "heldout"))


def small_config(**overrides) -> TrainConfig:
    base = dict(d_in=32, d_sae=128, l1=L1Policy("sum", 1e-2), training_tokens=250_000, batch_size=256, lr=3e-3,
                log_every=20, snapshot_tokens=(100_000,), b_pre_init_tokens=1024)
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize("form", ["sum", "mean"])
def test_fused_gradients_match_autograd(form):
    d, F, B, lam = 8, 32, 16, 0.05
    cfg = TrainConfig(d_in=d, d_sae=F, l1=L1Policy(form, lam), training_tokens=B, batch_size=B)
    sae = SparseAutoencoder(d, F).initialize(torch.Generator().manual_seed(0), torch.randn(d) * 0.1)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1), cfg)
    x = torch.randn(B, d)
    stats = step.forward_backward(x, 1, True)
    reference = SparseAutoencoder(d, F)
    reference.load_state_dict(sae.state_dict())
    x_hat, z = reference(x)
    weight = 1.0 if form == "sum" else 1.0 / F
    loss = ((x_hat - x) ** 2).mean() + lam * weight * z.abs().sum(1).mean()
    loss.backward()
    for name, param in reference.named_parameters():
        torch.testing.assert_close(getattr(sae, name).grad, param.grad, rtol=1e-5, atol=1e-6)
    assert stats[3].item() == pytest.approx(loss.item(), rel=1e-5)


def test_decoder_rows_stay_unit_norm_and_parallel_grad_is_removed(synthetic):
    _, train, _ = synthetic
    trainer = SAETrainer(small_config(training_tokens=256 * 30, snapshot_tokens=()), InMemorySource(train), "/nonexistent")
    trainer.work.save_snapshot = lambda *a, **k: None  # nothing on disk for this test
    trainer._resume_or_initialize()
    for step, x in zip(range(1, 31), InMemorySource(train).batches(256, 0)):
        trainer.step_fn(x, step, False)
        norms = torch.linalg.vector_norm(trainer.sae.W_dec, dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
    trainer.step_fn.forward_backward(x, 31, False)
    grad = trainer.sae.W_dec.grad
    assert torch.linalg.vecdot(grad, trainer.sae.W_dec, dim=1).abs().max() > 1e-4 * grad.norm()
    trainer.sae.remove_parallel_decoder_grad_()
    assert torch.linalg.vecdot(grad, trainer.sae.W_dec, dim=1).abs().max() < 1e-6 * grad.norm()


def test_recovers_ground_truth_dictionary(synthetic, tmp_path):
    dictionary, train, _ = synthetic
    trainer = SAETrainer(small_config(), InMemorySource(train), tmp_path)
    run = trainer.train()
    assert mean_max_cosine(dictionary, trainer.sae.W_dec) >= 0.9
    assert (run.log["lambda"] == run.log["lambda"].iloc[0]).all(), "a fixed trial keeps λ constant"
    assert run.log["mse"].iloc[-1] < 0.1 * run.log["mse"].iloc[0]


def test_adaptive_trial_ends_within_ten_percent_of_target_l0(synthetic, tmp_path):
    _, train, heldout = synthetic
    target = 4.0
    cfg = small_config(l1=L1Policy("sum", 1e-2, AdaptiveL1(target_l0=target, rate=0.05)))
    trainer = SAETrainer(cfg, InMemorySource(train), tmp_path)
    run = trainer.train()
    with torch.no_grad():
        l0 = (trainer.sae.encode(heldout) > 0).float().sum(1).mean().item()
    assert l0 == pytest.approx(target, rel=0.10)
    assert run.log["lambda"].nunique() > 10, "the controller moved λ"


def test_controller_moves_lambda_toward_target_and_respects_bounds():
    policy = L1Policy("sum", 1e-3, AdaptiveL1(target_l0=10, rate=0.1, update_interval=2, bounds=(1e-4, 2e-3)))
    controller = LambdaController(policy)
    controller.update(1, torch.tensor(30.0))
    assert controller.value.item() == pytest.approx(1e-3), "no update off the interval"
    controller.update(2, torch.tensor(15.0))
    assert controller.value.item() == pytest.approx(1e-3 * 1.05)
    controller.update(4, torch.tensor(1e6))
    assert controller.value.item() == pytest.approx(1e-3 * 1.05 * 1.1), "the error is clipped at ±1"
    for step in range(6, 100, 2):
        controller.update(step, torch.tensor(1000.0))
    assert controller.value.item() == pytest.approx(2e-3)
    fixed = LambdaController(L1Policy("mean", 3e-4))
    fixed.update(1, torch.tensor(1e6))
    assert fixed.value.item() == pytest.approx(3e-4) and not fixed.wants_l0(1)


class Killed(Exception):
    pass


class KilledAfter:
    """A source that dies after `limit` batches, like a job killed mid-training."""

    def __init__(self, inner, limit):
        self.inner, self.limit, self.d_model, self.served = inner, limit, inner.d_model, 0
        self.fingerprint = inner.fingerprint

    def batches(self, batch_size, seed, epoch=0):
        for batch in self.inner.batches(batch_size, seed, epoch):
            if self.served == self.limit:
                raise Killed
            self.served += 1
            yield batch


def test_resume_after_kill_equals_uninterrupted(synthetic, tmp_path):
    _, train, _ = synthetic
    cfg = small_config(training_tokens=256 * 60, snapshot_tokens=(256 * 20, 256 * 40),
                       l1=L1Policy("sum", 1e-2, AdaptiveL1(target_l0=4, rate=0.05)))
    straight = SAETrainer(cfg, InMemorySource(train), tmp_path / "straight")
    expected = straight.train()
    with pytest.raises(Killed):
        SAETrainer(cfg, KilledAfter(InMemorySource(train), 4 + 50), tmp_path / "killed").train()
    resumed_trainer = SAETrainer(cfg, InMemorySource(train), tmp_path / "killed")
    resumed = resumed_trainer.train()
    assert resumed.resumed_from_step == 40
    for name, tensor in straight.sae.state_dict().items():
        assert torch.equal(tensor, resumed_trainer.sae.state_dict()[name]), name
    assert [s.name for s in resumed.snapshots] == ["5120", "10240", "final"]
    assert resumed.log.equals(expected.log)


def test_changed_config_does_not_resume(synthetic, tmp_path):
    _, train, _ = synthetic
    cfg = small_config(training_tokens=256 * 20, snapshot_tokens=(256 * 10,))
    with pytest.raises(Killed):
        SAETrainer(cfg, KilledAfter(InMemorySource(train), 4 + 15), tmp_path).train()
    other = SAETrainer(dataclasses.replace(cfg, lr=1e-3), InMemorySource(train), tmp_path).train()
    assert other.resumed_from_step == 0


def test_export_reloads_to_identical_outputs(tmp_path):
    sae = SparseAutoencoder(8, 24).initialize(torch.Generator().manual_seed(1), torch.randn(8))
    with torch.no_grad():
        sae.b_enc.normal_()
    weights = dict(sae.state_dict())
    export_snapshot(weights, tmp_path / "final", tmp_path / pt_name(3, "final"), {"trial": "B", "snapshot": "final"})
    cfg = json.loads((tmp_path / "final" / "cfg.json").read_text())
    assert cfg["architecture"] == "standard" and cfg["apply_b_dec_to_input"] is True
    assert (cfg["d_in"], cfg["d_sae"]) == (8, 24) and cfg["metadata"]["trial"] == "B"
    x = torch.randn(64, 8)
    expected = sae(x)
    for path in (tmp_path / "final", tmp_path / "sae_layer03_final.pt"):
        loaded = load_sae(path)
        for got, want in zip(loaded(x), expected):
            assert torch.equal(got, want)
    raw = torch.load(tmp_path / "sae_layer03_final.pt", weights_only=True)
    assert raw["W_dec"].shape == (24, 8) and torch.equal(raw["b_dec"], sae.b_pre.detach())
    with pytest.raises(FileNotFoundError, match="sae_weights.safetensors"):
        load_sae(tmp_path)


def test_snapshot_names_and_schedule():
    assert [snapshot_name(t) for t in (50_000_000, 250_000, 1_234, 2 * 10**9)] == ["50M", "250k", "1234", "2G"]
    assert snapshot_schedule((100_000, 200_000), 1024, 292) == {"100k": 98, "200k": 196, "final": 292}
    with pytest.raises(ValueError, match="sae.snapshots"):
        snapshot_schedule((300_000,), 1024, 292)
    with pytest.raises(ValueError, match="previous"):
        snapshot_schedule((2000, 1000), 100, 50)


def test_geometric_median_ignores_outliers():
    samples = torch.cat([torch.randn(500, 4) * 0.1 + 1.0, torch.full((20, 4), 1000.0)])
    assert torch.allclose(initial_b_pre(samples, "geometric_median"), torch.ones(4), atol=0.05)
    assert initial_b_pre(samples, "mean").min() > 30
    assert torch.equal(initial_b_pre(samples, "zeros"), torch.zeros(4))


def test_plan_and_train_config_from_validated_config():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config = validate_config({**config, "stages": ["sae"], "model": {"source": "synthetic", "name": "synth"}})
    plan = sae_plan(config)
    assert (plan.model, plan.ckpts, plan.layers, plan.synthetic) == ("synth", ("final",), (0,), True)
    assert set(plan.trials) == {"A", "B", "C"} and plan.snapshots[-1] == "final"
    a = train_config(config["sae"], "A", 128, "m", "final", 2, "cpu")
    c = train_config(config["sae"], "C", 128, "m", "final", 2, "cpu")
    assert (a.init_seed, a.data_seed) == (c.init_seed, c.data_seed), "trials share init and data order"
    assert a.d_sae == 8 * 128 and a.l1.form == "mean" and c.l1.adaptive is not None
    bad = {**config, "sae": {**config["sae"], "snapshots": [10**9]}}
    with pytest.raises(ValueError, match="sae.snapshots"):
        sae_plan(bad)
