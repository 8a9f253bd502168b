"""The SAE library: init, fused gradients, normalisation and its fold, mixing buffer, L1 policies,
snapshots, resume, export."""
import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT
from interplab import kd
from interplab.config import validate_config
from interplab.sae import AdaptiveL1, L1Policy, SAETrainer, SparseAutoencoder, TrainConfig, load_sae
from interplab.sae.checkpoint import snapshot_name, snapshot_schedule
from interplab.sae.export import SAELENS_VERSION, export_snapshot, pt_name, saelens_usage, write_sparsity
from interplab.sae.buffer import mixed_batches
from interplab.sae.l1 import LambdaController
from interplab.sae.model import folded, initial_b_pre, normalization_scale
from interplab.sae.plan import sae_plan, train_config
from interplab.sae.trainer import FusedStep
from interplab.synthetic import InMemorySource, SyntheticConfig, mean_max_cosine, sample_activations, true_dictionary

SYNTH = SyntheticConfig(d_model=32, n_features=64, alpha=0.95, n_tokens=32768)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    dictionary = true_dictionary(SYNTH)
    return (dictionary, sample_activations(SYNTH, dictionary, SYNTH.n_tokens, "train"),
            sample_activations(SYNTH, dictionary, 8192, "heldout"))


def small_config(**overrides) -> TrainConfig:
    base = dict(d_in=32, d_sae=128, l1=L1Policy("sum", 1e-2), training_tokens=250_000, batch_size=256, lr=3e-3,
                log_every=20, snapshot_tokens=(100_000,), b_pre_init_tokens=1024, normalize_tokens=1024,
                buffer_tokens=4096)
    return TrainConfig(**{**base, **overrides})


def test_init_is_the_april_2024_recipe():
    sae = SparseAutoencoder(16, 64).initialize(torch.Generator().manual_seed(0), torch.ones(16), decoder_norm=0.1)
    norms = torch.linalg.vector_norm(sae.W_dec, dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, 0.1))
    assert torch.equal(sae.W_enc, sae.W_dec.T) and not sae.b_enc.any() and torch.equal(sae.b_pre, torch.ones(16))


@pytest.mark.parametrize("form", ["sum", "mean"])
def test_fused_gradients_match_autograd(form):
    """The hand-written backward is that of MSE + λ·w·Σ_f z_f·‖d_f‖ (rows of free norm)."""
    d, F, B, lam = 8, 32, 16, 0.05
    cfg = TrainConfig(d_in=d, d_sae=F, l1=L1Policy(form, lam), training_tokens=B, batch_size=B)
    sae = SparseAutoencoder(d, F).initialize(torch.Generator().manual_seed(0), torch.randn(d) * 0.1, decoder_norm=1.0)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.W_dec.mul_(torch.rand(F, 1) + 0.5)
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1), cfg)
    x = torch.randn(B, d)
    stats = step.forward_backward(x, 1, True)
    reference = SparseAutoencoder(d, F)
    reference.load_state_dict(sae.state_dict())
    x_hat, z = reference(x)
    weight = 1.0 if form == "sum" else 1.0 / F
    loss = ((x_hat - x) ** 2).mean() + lam * weight * (z * torch.linalg.vector_norm(reference.W_dec, dim=1)).sum(1).mean()
    loss.backward()
    for name, param in reference.named_parameters():
        torch.testing.assert_close(getattr(sae, name).grad, param.grad, rtol=1e-5, atol=1e-6)
    assert stats[3].item() == pytest.approx(loss.item(), rel=1e-5)


def test_fold_gives_unit_rows_on_raw_inputs():
    """An SAE trained on c·x, folded, maps raw x to the same reconstruction (in raw units) with the
    same firing pattern; its latents are z·‖d‖/c and its decoder rows have unit norm."""
    sae = SparseAutoencoder(8, 24).initialize(torch.Generator().manual_seed(1), torch.randn(8))
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.W_dec.mul_(torch.rand(24, 1) + 0.05)
    c, x = 0.37, torch.randn(64, 8) * 3
    raw = SparseAutoencoder(8, 24)
    raw.load_state_dict(folded(dict(sae.state_dict()), c))
    (x_hat, z), (raw_hat, raw_z) = sae(c * x), raw(x)
    torch.testing.assert_close(raw_hat, x_hat / c)
    torch.testing.assert_close(raw_z, z * torch.linalg.vector_norm(sae.W_dec, dim=1) / c)
    norms = torch.linalg.vector_norm(raw.W_dec, dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_normalization_scale_gives_mean_norm_sqrt_d():
    x = torch.randn(4096, 64) * 7 + 3
    c = normalization_scale(x)
    assert torch.linalg.vector_norm(c * x, dim=1).mean().item() == pytest.approx(8.0, rel=1e-5)


class Sharded:
    """A source of two 'shards' (token ids 0..n−1 and n..2n−1, in order within a shard) that reads
    like the cache: a seeded shard order per epoch, rows in order (the worst case for mixing)."""

    def __init__(self, n):
        self.n, self.d_model = n, 1

    def batches(self, batch_size, seed, epoch=0):
        for shard in torch.randperm(2, generator=torch.Generator().manual_seed(seed * 1000 + epoch)):
            yield from (torch.arange(self.n, dtype=torch.float32) + shard * self.n)[:, None].split(batch_size)


def test_mixing_buffer_mixes_shards_and_is_deterministic():
    source, n = Sharded(4096), 4096
    batches = list(itertools.islice(mixed_batches(source, 64, 4096, seed=3), 200))
    assert all(b.shape == (64, 1) for b in batches)
    from_second_shard = [((b >= n).float().mean().item()) for b in batches]
    assert sum(0 < f < 1 for f in from_second_shard[32:96]) > 40, "batches mix tokens from both shards"
    again = list(itertools.islice(mixed_batches(source, 64, 4096, seed=3), 200))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    resumed = list(itertools.islice(mixed_batches(source, 64, 4096, seed=3, start_step=150), 50))
    assert all(torch.equal(a, b) for a, b in zip(batches[150:], resumed))
    other = next(mixed_batches(source, 64, 4096, seed=4))
    assert not torch.equal(other, batches[0])
    seen = torch.cat(batches[:128]).flatten()  # 8192 tokens = one epoch: each token at most twice
    assert torch.bincount(seen.long(), minlength=2 * n).max() <= 2


def test_recovers_ground_truth_dictionary(synthetic, tmp_path):
    dictionary, train, _ = synthetic
    trainer = SAETrainer(small_config(), InMemorySource(train), tmp_path)
    run = trainer.train()
    assert mean_max_cosine(dictionary, trainer.sae.W_dec) >= 0.9
    assert (run.log["lambda"] == run.log["lambda"].iloc[0]).all(), "a fixed trial keeps λ constant"
    assert run.log["mse"].iloc[-1] < 0.1 * run.log["mse"].iloc[0]


def planted(d_in, n_true, true_l0, n_tokens, seed):
    """The test's own planted data: n_true random unit directions, each active independently with
    probability true_l0/n_true at a magnitude in U[0, 2], a large constant offset (as residual
    streams have) and noise at 1% of a feature's mean magnitude."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_true, d_in, generator=generator)
    directions /= torch.linalg.vector_norm(directions, dim=1, keepdim=True)
    active = torch.rand(n_tokens, n_true, generator=generator) < true_l0 / n_true
    codes = active * (2 * torch.rand(n_tokens, n_true, generator=generator))
    offset = 3 * torch.randn(d_in, generator=generator)
    return directions, codes @ directions + offset + 0.01 * torch.randn(n_tokens, d_in, generator=generator)


def test_default_settings_recover_a_planted_dictionary(tmp_path):
    """The default trainer (init, normalisation, lr, buffer, the adaptive trial aimed at the true L0)
    on an 8× overcomplete planted dictionary, with an SAE twice as wide as the truth."""
    d_in, n_true, true_l0 = 32, 256, 4.0
    directions, x = planted(d_in, n_true, true_l0, 65536 + 16384, seed=7)
    config = validate_config(yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text()))
    sae = {**config["sae"], "dict_size": 2 * n_true}
    cfg = train_config(sae, "C", d_in, "planted", "final", 0, "cpu")
    cfg = dataclasses.replace(cfg, snapshot_tokens=(), l1=dataclasses.replace(
        cfg.l1, adaptive=dataclasses.replace(cfg.l1.adaptive, target_l0=true_l0)))
    trainer = SAETrainer(cfg, InMemorySource(x[:65536]), tmp_path)
    trainer.train()
    raw = SparseAutoencoder(d_in, 2 * n_true)
    raw.load_state_dict(folded(dict(trainer.sae.state_dict()), trainer.input_scale))
    best = (directions @ raw.W_dec.detach().T).amax(dim=1)
    metrics = kd.measure(raw, [x[65536:]])
    assert best.mean() >= 0.95, "mean max cosine similarity to the true directions"
    assert (best > 0.9).float().mean() >= 0.9, "true directions recovered at cosine > 0.9"
    # Spare latents (the SAE is twice as wide as the truth) may die or copy a feature; every true
    # direction keeps a live latent, and distinct live directions stay within 15% of the truth.
    assert metrics.f_alive >= n_true, (metrics.f_alive, n_true)
    assert n_true <= metrics.f_unique <= 1.15 * n_true, (metrics.f_unique, metrics.f_alive)
    assert metrics.l0 == pytest.approx(true_l0, rel=0.15)


def test_controller_log_gain_warmup_and_bounds():
    policy = L1Policy("sum", 1e-3, AdaptiveL1(target_l0=10, rate=0.1, update_interval=2, ema=0.0, horizon=0,
                                              warmup_steps=4, bounds=(1e-4, 2e-3)))
    controller = LambdaController(policy)
    assert controller.coefficient(1).item() == pytest.approx(0.25e-3), "λ ramps up during the warm-up"
    controller.update(1, torch.tensor(30.0))
    controller.update(2, torch.tensor(30.0))
    assert controller.value.item() == pytest.approx(1e-3), "no update off the interval or in the warm-up"
    controller.update(4, torch.tensor(10 * math.exp(0.5)))
    assert controller.value.item() == pytest.approx(1e-3 * math.exp(0.05)), "log λ moves by rate·log(L0/target)"
    assert controller.coefficient(4) is controller.value
    controller.update(6, torch.tensor(1e6))
    assert controller.value.item() == pytest.approx(1e-3 * math.exp(0.15)), "the log error is clipped at ±1"
    for step in range(8, 100, 2):
        controller.update(step, torch.tensor(1000.0))
    assert controller.value.item() == pytest.approx(2e-3)
    fixed = LambdaController(L1Policy("mean", 3e-4))
    fixed.update(1, torch.tensor(1e6))
    assert fixed.value.item() == pytest.approx(3e-4) and not fixed.wants_l0(1)


def test_controller_stops_raising_lambda_when_l0_already_falls_onto_target():
    def run(horizon):
        policy = L1Policy("sum", 1e-3, AdaptiveL1(target_l0=10, rate=0.1, update_interval=1, ema=0.5, horizon=horizon))
        controller = LambdaController(policy)
        for step, l0 in enumerate([40.0, 30.0, 22.0, 16.0, 12.0], start=1):
            controller.update(step, torch.tensor(l0))
        return controller.value.item()
    assert run(horizon=10) < run(horizon=0), "the trend term anticipates the lag of L0 behind λ"


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


@pytest.mark.parametrize("resample_every_tokens, ghost_window_tokens, lazy_encoder, start_lambda",
                         [(0, 0, False, 1e-2), (256 * 2, 0, False, 0.3), (0, 256 * 2, False, 0.3), (0, 0, True, 0.3)])
def test_resume_after_kill_equals_uninterrupted(synthetic, tmp_path, caplog, resample_every_tokens,
                                                ghost_window_tokens, lazy_encoder, start_lambda):
    _, train, _ = synthetic
    cfg = small_config(training_tokens=256 * 60, snapshot_tokens=(256 * 20, 256 * 40),
                       l1=L1Policy("sum", start_lambda, AdaptiveL1(target_l0=4, rate=0.05)),
                       resample_every_tokens=resample_every_tokens, resample_until=1.0,
                       ghost_window_tokens=ghost_window_tokens, lazy_encoder=lazy_encoder)
    straight = SAETrainer(cfg, InMemorySource(train), tmp_path / "straight")
    with caplog.at_level("INFO", logger="interplab.sae.trainer"):
        expected = straight.train()
    if ghost_window_tokens:  # a strong start silences latents, so the ghost path runs (and changes the result)
        without = SAETrainer(dataclasses.replace(cfg, ghost_window_tokens=0), InMemorySource(train), tmp_path / "plain")
        without.train()
        assert not torch.equal(without.sae.W_enc, straight.sae.W_enc)
    resampled_at = [int(r.getMessage().split("step ")[1].split(":")[0]) for r in caplog.records
                    if "dead latents resampled" in r.getMessage()]
    if resample_every_tokens:  # a strong start silences latents; resampling on both sides of the resume point
        assert min(resampled_at) <= 40 < max(resampled_at), resampled_at
    else:
        assert resampled_at == []
    # Source batches read: 16 fill the buffer for the init samples; training refills 16, then 8
    # every 8 steps, so the 77th read (the refill before step 49) is the kill.
    with pytest.raises(Killed):
        SAETrainer(cfg, KilledAfter(InMemorySource(train), 16 + 16 + 5 * 8), tmp_path / "killed").train()
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
        SAETrainer(cfg, KilledAfter(InMemorySource(train), 16 + 16 + 8), tmp_path).train()
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
    assert cfg["metadata"]["sae_lens_version"] == SAELENS_VERSION, "without it SAELens drops the nested metadata"
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


def test_saelens_usage_names_a_hub_model_only_when_there_is_one():
    hub = {"source": "hf", "name": "EleutherAI/pythia-410m", "context_length": 1024,
           "corpus": {"source": "hf", "dataset": "monology/pile-uncopyrighted"}}
    usage = saelens_usage(hub, "step143000")
    assert usage["model_name"] == "EleutherAI/pythia-410m"
    assert usage["model_from_pretrained_kwargs"] == {"checkpoint_value": 143000}
    assert (usage["context_size"], usage["dataset_path"], usage["prepend_bos"]) == (1024, "monology/pile-uncopyrighted", False)
    assert saelens_usage(hub, "main")["model_from_pretrained_kwargs"] == {}
    local = {**hub, "source": "local", "name": "stdlib-neox", "context_length": 128,
             "corpus": {"source": "stdlib", "dataset": "monology/pile-uncopyrighted"}}
    usage = saelens_usage(local, "step64")
    assert usage["model_name"] == "stdlib-neox" and usage["model_from_pretrained_kwargs"] == {}
    assert usage["dataset_path"] is None, "the stdlib corpus is no hub dataset"
    assert saelens_usage({**local, "source": "synthetic", "name": "synthetic/planted"}, "final")["context_size"] is None


def test_sparsity_file_is_log10_density_keyed_as_saelens_reads_it(tmp_path):
    from safetensors.torch import load_file

    write_sparsity(tmp_path / "sparsity.safetensors", torch.tensor([0.0, 0.01, 1.0]))
    got = load_file(tmp_path / "sparsity.safetensors")["sparsity"]
    assert torch.allclose(got, torch.tensor([-10.0, -2.0, 0.0]), atol=1e-6)


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
    assert a.resample_steps == 0, "the default does not resample"
    resampling = train_config({**config["sae"], "resample": {"every_tokens": 16384, "until": 0.5}}, "C", 128, "m",
                              "final", 2, "cpu")
    assert (resampling.resample_steps, resampling.resample_until) == (16384 // config["sae"]["batch_size"], 0.5)
    assert a.ghost_window_steps == 0 and not a.lazy_encoder, "the default: no ghost grads, plain Adam"
    ghost = train_config({**config["sae"], "ghost_grads": {"window_tokens": 2048}}, "C", 128, "m", "final", 2, "cpu")
    assert ghost.ghost_window_steps == 2048 // config["sae"]["batch_size"] and "ghost_grads" in ghost.recipe()
    bad = {**config, "sae": {**config["sae"], "snapshots": [10**9]}}
    with pytest.raises(ValueError, match="sae.snapshots"):
        sae_plan(bad)
